//! When the member snapshots its state and how much Raft log it keeps.
//!
//! A snapshot is due when both hold (see docs/snapshots.md, "When a member
//! snapshots"):
//! - `--snapshot-count` entries were applied since the newest snapshot
//!   (etcd's rule, `EtcdServer.triggerSnapshot`), and
//! - the WAL has written at least as many bytes since then as that
//!   snapshot's size (the rule Redis uses to rewrite its append-only file):
//!   a snapshot rewrites the whole state, so this keeps the bytes snapshots
//!   write per put at most about the WAL's bytes per put, whatever the size
//!   of the keyspace; but never more than [`LOG_SINCE_SNAPSHOT_BYTES_MAX`],
//!   because the Raft log since the last snapshot is held in memory until
//!   the next one compacts it (past that bound a larger state costs more
//!   snapshot bytes per put instead of more memory).
//!
//! After it the log is compacted but keeps `snapshot_catchup_entries`
//! entries so slow followers catch up from the log rather than a whole
//! snapshot. A snapshot a full disk refused is tried again after a pause.
//! Pure bookkeeping: the driver does the I/O.

/// Most WAL bytes written since the last snapshot that the size rule may
/// wait for: the Raft log entries they hold stay in memory until the next
/// snapshot, so this bounds that memory (256 MiB).
pub const LOG_SINCE_SNAPSHOT_BYTES_MAX: u64 = 256 << 20;

/// The snapshot schedule of one member.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    snapshot_count: u64,
    catchup_entries: u64,
    /// Index of the newest durable (or installed) snapshot.
    snapshot_index: u64,
    /// Size in bytes of the newest snapshot's data (`None`: not known yet,
    /// as after a restart until the driver reports it).
    snapshot_size_bytes: Option<u64>,
    /// The WAL's appended-bytes counter when the newest snapshot was taken.
    wal_bytes_at_snapshot: u64,
    /// No snapshot is attempted before this time (ms, the driver's clock).
    retry_at_ms: u64,
}

impl SnapshotPolicy {
    /// A schedule snapshotting every `snapshot_count` entries after
    /// `snapshot_index` (and once the WAL outgrew the newest snapshot),
    /// keeping `catchup_entries` of log behind each.
    pub fn new(snapshot_count: u64, catchup_entries: u64, snapshot_index: u64) -> SnapshotPolicy {
        SnapshotPolicy {
            snapshot_count,
            catchup_entries,
            snapshot_index,
            snapshot_size_bytes: None,
            wal_bytes_at_snapshot: 0,
            retry_at_ms: 0,
        }
    }

    /// Index of the newest durable or installed snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// Size in bytes of the newest snapshot's data, if known.
    pub fn snapshot_size_bytes(&self) -> Option<u64> {
        self.snapshot_size_bytes
    }

    /// Tells the schedule the size of the newest snapshot's data when it
    /// did not take it (after a restart: the snapshot loaded), with the
    /// WAL's appended-bytes counter now.
    pub fn restored(&mut self, size_bytes: u64, wal_appended_bytes: u64) {
        self.snapshot_size_bytes = Some(size_bytes);
        self.wal_bytes_at_snapshot = wal_appended_bytes;
    }

    /// True when a snapshot of the state applied up to `applied` is due at
    /// `now_ms`, the WAL's appended-bytes counter being
    /// `wal_appended_bytes` (see the module doc). A newest snapshot of
    /// unknown size counts as empty.
    pub fn is_due(&self, applied: u64, wal_appended_bytes: u64, now_ms: u64) -> bool {
        let wal_since = wal_appended_bytes.saturating_sub(self.wal_bytes_at_snapshot);
        let wal_due = self
            .snapshot_size_bytes
            .unwrap_or(0)
            .min(LOG_SINCE_SNAPSHOT_BYTES_MAX);
        applied >= self.snapshot_index.saturating_add(self.snapshot_count)
            && wal_since >= wal_due
            && now_ms >= self.retry_at_ms
    }

    /// A full disk refused a snapshot file: none is attempted before
    /// `retry_at_ms`.
    pub fn defer_until(&mut self, retry_at_ms: u64) {
        self.retry_at_ms = retry_at_ms;
    }

    /// True when a snapshot at `index` is newer than the newest one (a
    /// leader's snapshot may have been installed while a file was written).
    pub fn is_newer(&self, index: u64) -> bool {
        index > self.snapshot_index
    }

    /// Records a durable or installed snapshot at `index` of `size_bytes`
    /// bytes of data, the WAL's appended-bytes counter being
    /// `wal_appended_bytes`.
    pub fn taken(&mut self, index: u64, size_bytes: u64, wal_appended_bytes: u64) {
        self.snapshot_index = index;
        self.snapshot_size_bytes = Some(size_bytes);
        self.wal_bytes_at_snapshot = wal_appended_bytes;
    }

    /// The index to compact the in-memory log to after a snapshot at
    /// `index`, given the log's first index; `None` when nothing may go.
    pub fn compact_to(&self, index: u64, first_index: u64) -> Option<u64> {
        let compact_to = index.saturating_sub(self.catchup_entries);
        (compact_to >= first_index && compact_to > 0).then_some(compact_to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_every_snapshot_count_entries_while_the_wal_outgrows_the_state() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        assert!(!policy.is_due(99, 0, 0));
        assert!(policy.is_due(100, 0, 0), "no snapshot yet: count only");
        policy.taken(100, 50, 1_000);
        assert!(!policy.is_due(199, 5_000, 0));
        assert!(policy.is_due(200, 1_050, 0));
    }

    #[test]
    fn a_large_state_waits_until_the_wal_written_since_reaches_its_size() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        policy.taken(100, 1_000_000, 5_000);
        // Many entries, but the log has not written the state's size yet.
        assert!(!policy.is_due(10_000, 5_000 + 999_999, 0));
        assert!(policy.is_due(10_000, 5_000 + 1_000_000, 0));
        // Both rules must hold: a large log with few entries waits too.
        assert!(!policy.is_due(150, 10_000_000, 0));
    }

    #[test]
    fn the_log_held_in_memory_is_bounded_whatever_the_state() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        policy.taken(100, 10 * LOG_SINCE_SNAPSHOT_BYTES_MAX, 0);
        assert!(!policy.is_due(10_000, LOG_SINCE_SNAPSHOT_BYTES_MAX - 1, 0));
        assert!(policy.is_due(10_000, LOG_SINCE_SNAPSHOT_BYTES_MAX, 0));
    }

    #[test]
    fn a_restored_size_counts_from_the_wal_at_restart() {
        let mut policy = SnapshotPolicy::new(100, 10, 300);
        assert_eq!(policy.snapshot_size_bytes(), None);
        policy.restored(4_000, 0);
        assert_eq!(policy.snapshot_size_bytes(), Some(4_000));
        assert!(!policy.is_due(400, 3_999, 0));
        assert!(policy.is_due(400, 4_000, 0));
    }

    #[test]
    fn a_refused_snapshot_waits_for_its_retry_time() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        policy.defer_until(5_000);
        assert!(!policy.is_due(150, 0, 4_999));
        assert!(policy.is_due(150, 0, 5_000));
    }

    #[test]
    fn compaction_keeps_the_catchup_entries() {
        let policy = SnapshotPolicy::new(100, 10, 0);
        assert_eq!(policy.compact_to(100, 1), Some(90));
        assert_eq!(
            policy.compact_to(100, 91),
            None,
            "never below the log's start"
        );
        assert_eq!(policy.compact_to(5, 1), None, "nothing to compact");
    }

    #[test]
    fn only_newer_snapshots_replace_the_newest() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        policy.taken(300, 1, 0);
        assert!(!policy.is_newer(200));
        assert!(!policy.is_newer(300));
        assert!(policy.is_newer(301));
    }
}
