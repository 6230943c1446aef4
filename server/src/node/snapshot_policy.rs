//! When the member snapshots its state and how much Raft log it keeps.
//!
//! etcd's rule (`EtcdServer.triggerSnapshot`): a snapshot every
//! `--snapshot-count` applied entries; after it, the log is compacted but
//! keeps `snapshot_catchup_entries` entries so slow followers catch up from
//! the log rather than a whole snapshot. A snapshot a full disk refused is
//! tried again after a pause. Pure bookkeeping: the driver does the I/O.

/// The snapshot schedule of one member.
#[derive(Debug, Clone)]
pub struct SnapshotPolicy {
    snapshot_count: u64,
    catchup_entries: u64,
    /// Index of the newest durable (or installed) snapshot.
    snapshot_index: u64,
    /// No snapshot is attempted before this time (ms, the driver's clock).
    retry_at_ms: u64,
}

impl SnapshotPolicy {
    /// A schedule snapshotting every `snapshot_count` entries after
    /// `snapshot_index`, keeping `catchup_entries` of log behind each.
    pub fn new(snapshot_count: u64, catchup_entries: u64, snapshot_index: u64) -> SnapshotPolicy {
        SnapshotPolicy {
            snapshot_count,
            catchup_entries,
            snapshot_index,
            retry_at_ms: 0,
        }
    }

    /// Index of the newest durable or installed snapshot.
    pub fn snapshot_index(&self) -> u64 {
        self.snapshot_index
    }

    /// True when a snapshot of the state applied up to `applied` is due at
    /// `now_ms`.
    pub fn is_due(&self, applied: u64, now_ms: u64) -> bool {
        applied >= self.snapshot_index.saturating_add(self.snapshot_count)
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

    /// Records a durable or installed snapshot at `index`.
    pub fn taken(&mut self, index: u64) {
        self.snapshot_index = index;
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
    fn due_every_snapshot_count_entries() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        assert!(!policy.is_due(99, 0));
        assert!(policy.is_due(100, 0));
        policy.taken(100);
        assert!(!policy.is_due(199, 0));
        assert!(policy.is_due(200, 0));
    }

    #[test]
    fn a_refused_snapshot_waits_for_its_retry_time() {
        let mut policy = SnapshotPolicy::new(100, 10, 0);
        policy.defer_until(5_000);
        assert!(!policy.is_due(150, 4_999));
        assert!(policy.is_due(150, 5_000));
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
        policy.taken(300);
        assert!(!policy.is_newer(200));
        assert!(!policy.is_newer(300));
        assert!(policy.is_newer(301));
    }
}
