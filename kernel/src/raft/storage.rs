//! The stable part of the Raft log as seen by Raft ([`Storage`]) and an
//! in-memory implementation ([`MemoryStorage`]) that the server keeps in
//! step with the write-ahead log: everything the WAL has made durable is
//! appended here, so Raft can read entries back without disk I/O.

use super::{ConfState, Entry, HardState, Snapshot, SnapshotMetadata, StorageError};
use crate::invariant::{InvariantViolation, ensure};
use bytes::Bytes;

const STRUCTURE: &str = "raft storage";

/// What a node recovers on start: hard state and configuration.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RaftState {
    /// Persisted term, vote and commit index.
    pub hard_state: HardState,
    /// Persisted membership configuration.
    pub conf_state: ConfState,
}

/// Read access to the persisted log (etcd-io/raft `Storage`).
///
/// Indexes are 1-based log positions. The log holds a snapshot at
/// `first_index() - 1` followed by entries `first_index()..=last_index()`.
pub trait Storage {
    /// Hard state and configuration to start from.
    fn initial_state(&self) -> Result<RaftState, StorageError>;

    /// Entries in `[low, high)`, stopping once their total
    /// [`Entry::size_bytes`] would exceed `max_size_bytes` (but always at
    /// least one entry when the range is not empty).
    /// Errors: `Compacted` if `low < first_index()`, `Unavailable` if
    /// `high > last_index() + 1`.
    fn entries(&self, low: u64, high: u64, max_size_bytes: u64)
    -> Result<Vec<Entry>, StorageError>;

    /// Term of the entry at `index`; valid for `first_index() - 1 ..= last_index()`.
    /// Errors: `Compacted` below that range, `Unavailable` above it.
    fn term(&self, index: u64) -> Result<u64, StorageError>;

    /// Index of the first entry still available (snapshot index + 1).
    fn first_index(&self) -> Result<u64, StorageError>;

    /// Index of the last entry (the snapshot index if there are none).
    fn last_index(&self) -> Result<u64, StorageError>;

    /// The most recent snapshot; `SnapshotTemporarilyUnavailable` if none
    /// can be given right now.
    fn snapshot(&self) -> Result<Snapshot, StorageError>;

    /// Checks the stable log's own rules (for [`MemoryStorage`], see
    /// [`MemoryStorage::check_invariants`]); part of
    /// `RaftLog::check_invariants`. For tests and the simulator: may walk
    /// every entry.
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    fn check_invariants(&self) -> Result<(), InvariantViolation>;
}

/// An in-memory [`Storage`]. Entries are kept in a vector that starts right
/// after the base position `(base_index, base_term)`; `compact` moves the
/// base forward, `apply_snapshot` resets it to the snapshot.
#[derive(Clone, Debug, Default)]
pub struct MemoryStorage {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    base_index: u64,
    base_term: u64,
    entries: Vec<Entry>,
}

impl MemoryStorage {
    /// An empty log (first index 1, last index 0).
    pub fn new() -> MemoryStorage {
        MemoryStorage::default()
    }

    /// A log for a brand-new cluster whose voters are `voters`
    /// (what `initial_state` returns as the configuration).
    pub fn new_with_voters(voters: &[u64]) -> MemoryStorage {
        let mut voters = voters.to_vec();
        voters.sort_unstable();
        voters.dedup();
        let conf_state = ConfState {
            voters,
            ..ConfState::default()
        };
        MemoryStorage {
            conf_state,
            ..MemoryStorage::default()
        }
    }

    /// The stored hard state.
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// The stored configuration.
    pub fn conf_state(&self) -> &ConfState {
        &self.conf_state
    }

    /// Records the hard state (after the WAL made it durable).
    pub fn set_hard_state(&mut self, hard_state: HardState) {
        self.hard_state = hard_state;
    }

    /// Records the configuration in force (after applying a conf change).
    pub fn set_conf_state(&mut self, conf_state: ConfState) {
        self.conf_state = conf_state;
    }

    fn last(&self) -> u64 {
        self.base_index + self.entries.len() as u64
    }

    /// Appends entries, replacing any conflicting suffix.
    /// Entries at or below the compaction point are ignored.
    /// Errors: `Gap` if the first new entry would leave a hole.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        let Some(first_new) = entries.first() else {
            return Ok(());
        };
        let skip = (self.base_index + 1).saturating_sub(first_new.index) as usize;
        if skip >= entries.len() {
            return Ok(());
        }
        let entries = &entries[skip..];
        let first = entries[0].index;
        let next = self.last() + 1;
        if first > next {
            return Err(StorageError::Gap {
                expected: next,
                got: first,
            });
        }
        let prev_term = self.term(first - 1)?;
        assert_appendable(first, prev_term, entries);
        self.entries
            .truncate((first - self.base_index - 1) as usize);
        self.entries.extend_from_slice(entries);
        Ok(())
    }

    /// Replaces the whole log with a snapshot (follower catch-up or restart):
    /// entries are dropped, the configuration becomes the snapshot's and the
    /// hard state's term and commit are raised to cover it.
    /// Errors: `SnapshotOutOfDate` if it is older than the stored snapshot.
    pub fn apply_snapshot(&mut self, snapshot: Snapshot) -> Result<(), StorageError> {
        let meta = &snapshot.metadata;
        if meta.index < self.snapshot.metadata.index {
            return Err(StorageError::SnapshotOutOfDate);
        }
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = self.hard_state.commit.max(meta.index);
        self.conf_state = meta.conf_state.clone();
        self.base_index = meta.index;
        self.base_term = meta.term;
        self.entries.clear();
        self.snapshot = snapshot;
        Ok(())
    }

    /// Records a snapshot at `index` (already applied by the caller) holding
    /// `data` and the configuration `conf_state`. Entries are kept; call
    /// [`MemoryStorage::compact`] to drop them.
    /// Errors: `SnapshotOutOfDate` if `index` is not after the current
    /// snapshot, `Compacted`/`Unavailable` if its term is not known.
    pub fn create_snapshot(
        &mut self,
        index: u64,
        conf_state: ConfState,
        data: Bytes,
    ) -> Result<Snapshot, StorageError> {
        if index <= self.snapshot.metadata.index {
            return Err(StorageError::SnapshotOutOfDate);
        }
        let term = self.term(index)?;
        self.snapshot = Snapshot {
            metadata: SnapshotMetadata {
                index,
                term,
                conf_state,
            },
            data,
        };
        Ok(self.snapshot.clone())
    }

    /// Replaces the data of the stored snapshot, if it is the one at
    /// `index`, with `data` holding the same bytes (say, the snapshot's file
    /// mapped in memory, so the heap copy can be freed). Returns whether it
    /// did; the caller vouches that the bytes are the same.
    pub fn replace_snapshot_data(&mut self, index: u64, data: Bytes) -> bool {
        if self.snapshot.metadata.index != index || self.snapshot.data.len() != data.len() {
            return false;
        }
        self.snapshot.data = data;
        true
    }

    /// Drops entries up to and including `compact_index`. Only entries a
    /// stored snapshot covers may be dropped, so a lagging follower can
    /// always be sent that snapshot instead.
    /// Errors: `Compacted` if already compacted that far, `Unavailable` if
    /// `compact_index` is beyond the snapshot index.
    pub fn compact(&mut self, compact_index: u64) -> Result<(), StorageError> {
        if compact_index <= self.base_index {
            return Err(StorageError::Compacted);
        }
        if compact_index > self.snapshot.metadata.index {
            return Err(StorageError::Unavailable);
        }
        let term = self.term(compact_index)?;
        self.entries
            .drain(..(compact_index - self.base_index) as usize);
        self.base_index = compact_index;
        self.base_term = term;
        Ok(())
    }
}

/// Asserts the O(1) rules of entries about to follow index `first - 1`
/// (of term `prev_term`): the last is `len - 1` past the first, and the
/// first's term is not below `prev_term`. The whole run is checked in debug
/// builds only. Panics otherwise: a log that skips or reorders entries, or
/// whose terms fall, must never be stored.
fn assert_appendable(first: u64, prev_term: u64, entries: &[Entry]) {
    let (Some(head), Some(tail)) = (entries.first(), entries.last()) else {
        return;
    };
    assert!(
        tail.index == first + entries.len() as u64 - 1 && head.term >= prev_term,
        "raft storage: appending {}..={} (first term {}) after term {prev_term}",
        head.index,
        tail.index,
        head.term
    );
    debug_assert!(
        entries
            .windows(2)
            .all(|w| w[1].index == w[0].index + 1 && w[1].term >= w[0].term),
        "raft storage: appended entries out of order"
    );
}

impl MemoryStorage {
    /// Checks the stored log: entries follow the base position one index
    /// at a time with terms that never fall; the stored snapshot lies
    /// between the base and the last index with the term the log has
    /// there; the hard state commits no entry past the last; the
    /// configuration's voters and learners are consistent (see
    /// [`crate::raft::confchange::restore`]). O(entries).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_entries()?;
        let (base, last) = (self.base_index, self.last());
        let snap = &self.snapshot.metadata;
        ensure(base <= snap.index && snap.index <= last, STRUCTURE, || {
            format!(
                "snapshot {} outside base {base} ..= last {last}",
                snap.index
            )
        })?;
        let term = self.term(snap.index).ok();
        ensure(
            snap.index == 0 || term == Some(snap.term),
            STRUCTURE,
            || {
                format!(
                    "snapshot {} of term {} where the log has term {term:?}",
                    snap.index, snap.term
                )
            },
        )?;
        let commit = self.hard_state.commit;
        ensure(commit <= last, STRUCTURE, || {
            format!("hard state commits {commit} past last index {last}")
        })?;
        super::confchange::restore(&self.conf_state)
            .map(|_| ())
            .map_err(|e| InvariantViolation {
                structure: STRUCTURE,
                detail: format!("conf state {:?}: {e}", self.conf_state),
            })
    }

    fn check_entries(&self) -> Result<(), InvariantViolation> {
        let (mut want, mut prev_term) = (self.base_index + 1, self.base_term);
        for entry in &self.entries {
            ensure(entry.index == want, STRUCTURE, || {
                format!("entry {} where {want} belongs", entry.index)
            })?;
            ensure(entry.term >= prev_term, STRUCTURE, || {
                format!("entry {want} of term {} after term {prev_term}", entry.term)
            })?;
            want += 1;
            prev_term = entry.term;
        }
        Ok(())
    }
}

impl Storage for MemoryStorage {
    fn initial_state(&self) -> Result<RaftState, StorageError> {
        Ok(RaftState {
            hard_state: self.hard_state,
            conf_state: self.conf_state.clone(),
        })
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size_bytes: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        if low <= self.base_index {
            return Err(StorageError::Compacted);
        }
        if high > self.last() + 1 {
            return Err(StorageError::Unavailable);
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let from = (low - self.base_index - 1) as usize;
        let to = (high - self.base_index - 1) as usize;
        let slice = &self.entries[from..to];
        let n = count_within_size(slice, max_size_bytes);
        Ok(slice[..n].to_vec())
    }

    fn term(&self, index: u64) -> Result<u64, StorageError> {
        if index < self.base_index {
            return Err(StorageError::Compacted);
        }
        if index == self.base_index {
            return Ok(self.base_term);
        }
        let pos = (index - self.base_index - 1) as usize;
        self.entries
            .get(pos)
            .map(|e| e.term)
            .ok_or(StorageError::Unavailable)
    }

    fn first_index(&self) -> Result<u64, StorageError> {
        Ok(self.base_index + 1)
    }

    fn last_index(&self) -> Result<u64, StorageError> {
        Ok(self.last())
    }

    fn snapshot(&self) -> Result<Snapshot, StorageError> {
        Ok(self.snapshot.clone())
    }

    fn check_invariants(&self) -> Result<(), InvariantViolation> {
        MemoryStorage::check_invariants(self)
    }
}

/// How many leading entries of `entries` fit in `max_size_bytes` (at least
/// one if `entries` is not empty).
pub(crate) fn count_within_size(entries: &[Entry], max_size_bytes: u64) -> usize {
    let mut total = 0u64;
    for (i, e) in entries.iter().enumerate() {
        total += e.size_bytes();
        if total > max_size_bytes && i > 0 {
            return i;
        }
    }
    entries.len()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::raft::test_util::ents;

    #[test]
    fn append_truncates_conflicts_and_rejects_gaps() {
        let mut s = MemoryStorage::new();
        s.append(&ents(1..=5, 1)).unwrap();
        s.append(&ents(4..=6, 2)).unwrap();
        assert_eq!(s.last_index(), Ok(6));
        assert_eq!(s.term(3), Ok(1));
        assert_eq!(s.term(4), Ok(2));
        assert_eq!(
            s.append(&ents(9..=9, 2)),
            Err(StorageError::Gap {
                expected: 7,
                got: 9
            })
        );
        assert_eq!(s.last_index(), Ok(6));
    }

    #[test]
    fn entries_respect_bounds_and_size() {
        let mut s = MemoryStorage::new();
        s.append(&ents(1..=5, 1)).unwrap();
        assert_eq!(s.entries(2, 5, u64::MAX).unwrap().len(), 3);
        assert_eq!(s.entries(2, 5, 0).unwrap().len(), 1);
        assert_eq!(s.entries(2, 5, 48).unwrap().len(), 2);
        assert_eq!(s.entries(2, 7, u64::MAX), Err(StorageError::Unavailable));
    }

    #[test]
    fn compaction_needs_a_snapshot_and_keeps_the_base_term() {
        let mut s = MemoryStorage::new();
        s.append(&ents(1..=5, 1)).unwrap();
        assert_eq!(s.compact(3), Err(StorageError::Unavailable));
        s.create_snapshot(3, ConfState::default(), Bytes::from_static(b"sm"))
            .unwrap();
        s.compact(3).unwrap();
        assert_eq!(s.first_index(), Ok(4));
        assert_eq!(s.term(3), Ok(1));
        assert_eq!(s.term(2), Err(StorageError::Compacted));
        assert_eq!(s.entries(3, 5, u64::MAX), Err(StorageError::Compacted));
        assert_eq!(s.compact(3), Err(StorageError::Compacted));
        assert_eq!(s.snapshot().unwrap().metadata.index, 3);
    }

    #[test]
    fn snapshot_data_is_replaced_only_for_the_same_snapshot() {
        let mut s = MemoryStorage::new();
        s.append(&ents(1..=5, 1)).unwrap();
        s.create_snapshot(3, ConfState::default(), Bytes::from(b"sm".to_vec()))
            .unwrap();
        assert!(!s.replace_snapshot_data(2, Bytes::from_static(b"sm")));
        assert!(!s.replace_snapshot_data(3, Bytes::from_static(b"longer")));
        let mapped = Bytes::from_static(b"sm");
        assert!(s.replace_snapshot_data(3, mapped.clone()));
        let data = s.snapshot().unwrap().data;
        assert_eq!(data.as_ptr(), mapped.as_ptr(), "the new bytes are held");
    }

    #[test]
    fn apply_snapshot_resets_the_log() {
        let mut s = MemoryStorage::new();
        s.append(&ents(1..=5, 1)).unwrap();
        let snap = Snapshot {
            metadata: SnapshotMetadata {
                index: 10,
                term: 3,
                conf_state: ConfState::default(),
            },
            data: Bytes::new(),
        };
        s.apply_snapshot(snap.clone()).unwrap();
        assert_eq!((s.first_index(), s.last_index()), (Ok(11), Ok(10)));
        assert_eq!(s.term(10), Ok(3));
        assert_eq!(s.hard_state().commit, 10);
        let old = Snapshot {
            metadata: SnapshotMetadata {
                index: 4,
                ..snap.metadata
            },
            ..snap
        };
        assert_eq!(s.apply_snapshot(old), Err(StorageError::SnapshotOutOfDate));
    }

    fn detail(s: &MemoryStorage) -> Option<String> {
        s.check_invariants().err().map(|e| e.detail)
    }

    /// A log of entries 1..=5 (terms 1, 1, 2, 2, 2) with a snapshot at 3
    /// compacted away, voters 1-3, commit 4.
    fn compacted() -> MemoryStorage {
        let mut s = MemoryStorage::new_with_voters(&[1, 2, 3]);
        s.append(&ents(1..=2, 1)).unwrap();
        s.append(&ents(3..=5, 2)).unwrap();
        s.set_hard_state(HardState {
            term: 2,
            vote: 1,
            commit: 4,
        });
        let voters = s.conf_state().clone();
        s.create_snapshot(3, voters, Bytes::new()).unwrap();
        s.compact(2).unwrap();
        s
    }

    #[test]
    fn a_kept_log_passes_its_checks() {
        assert_eq!(MemoryStorage::new().check_invariants(), Ok(()));
        let s = compacted();
        assert_eq!(s.check_invariants(), Ok(()));
        assert_eq!(Storage::check_invariants(&s), Ok(()));
    }

    #[test]
    fn a_broken_stored_log_is_reported() {
        let mut s = compacted();
        s.entries[1].index = 7;
        assert_eq!(detail(&s).as_deref(), Some("entry 7 where 4 belongs"));
        let mut s = compacted();
        s.entries[2].term = 1;
        assert_eq!(
            detail(&s).as_deref(),
            Some("entry 5 of term 1 after term 2")
        );
        let mut s = compacted();
        s.snapshot.metadata.term = 1;
        assert_eq!(
            detail(&s).as_deref(),
            Some("snapshot 3 of term 1 where the log has term Some(2)")
        );
        let mut s = compacted();
        s.snapshot.metadata.index = 1;
        assert_eq!(
            detail(&s).as_deref(),
            Some("snapshot 1 outside base 2 ..= last 5")
        );
        let mut s = compacted();
        s.hard_state.commit = 6;
        assert_eq!(
            detail(&s).as_deref(),
            Some("hard state commits 6 past last index 5")
        );
        let mut s = compacted();
        s.conf_state.learners = vec![3];
        assert!(detail(&s).is_some_and(|d| d.contains("3 is in learners and voters")));
    }

    #[test]
    #[should_panic(expected = "appending 6..=8 (first term 1) after term 2")]
    fn appending_a_falling_term_stops_the_member() {
        let mut s = compacted();
        let _ = s.append(&ents(6..=8, 1));
    }

    #[test]
    #[should_panic(expected = "appending 6..=9")]
    fn appending_a_run_with_a_hole_stops_the_member() {
        let mut s = compacted();
        let mut run = ents(6..=8, 2);
        run[2].index = 9;
        let _ = s.append(&run);
    }
}
