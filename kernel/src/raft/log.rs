//! The Raft log as Raft sees it (etcd-io/raft `raftLog`): stable entries in
//! [`Storage`], unpersisted ones in [`Unstable`], and the commit, applying,
//! applied and persisted positions.
//!
//! Invariants: `applied <= applying <= committed <= last_index`; the commit
//! index never decreases; committed entries are never truncated; no gap
//! between the stable and unstable parts. The O(1) ones are asserted in
//! release builds where the log changes; [`RaftLog::check_invariants`]
//! checks them all.

use super::log_unstable::Unstable;
use super::storage::{Storage, count_within_size};
use super::{Entry, Snapshot, StorageError};
use crate::invariant::{InvariantViolation, ensure};

const STRUCTURE: &str = "raft log";

/// The log of one node.
pub struct RaftLog<S: Storage> {
    /// Persisted entries.
    pub(crate) store: S,
    /// Not yet persisted entries and snapshot.
    pub(crate) unstable: Unstable,
    /// Highest index known to be committed.
    pub(crate) committed: u64,
    /// Highest index handed to the application for applying.
    pub(crate) applying: u64,
    /// Highest index the application has applied.
    pub(crate) applied: u64,
    /// Highest index known to be on stable storage in this node's log.
    pub(crate) persisted: u64,
}

impl<S: Storage> RaftLog<S> {
    /// A log over `store`, with everything in it treated as committed up
    /// to its first index (the snapshot) and persisted up to its last.
    pub(crate) fn new(store: S) -> Result<RaftLog<S>, StorageError> {
        let first = store.first_index()?;
        let last = store.last_index()?;
        Ok(RaftLog {
            store,
            unstable: Unstable::new(last + 1),
            committed: first - 1,
            applying: first - 1,
            applied: first - 1,
            persisted: last,
        })
    }

    /// Highest index known to be committed.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Highest index the application has applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Highest index known to be on stable storage.
    pub fn persisted(&self) -> u64 {
        self.persisted
    }

    /// Index of the first entry still available.
    pub fn first_index(&self) -> u64 {
        match self.unstable.maybe_first_index() {
            Some(i) => i,
            None => self.store.first_index().unwrap_or(1),
        }
    }

    /// Index of the last entry.
    pub fn last_index(&self) -> u64 {
        match self.unstable.maybe_last_index() {
            Some(i) => i,
            None => self.store.last_index().unwrap_or(0),
        }
    }

    /// Term of the entry at `index` (`first_index() - 1 ..= last_index()`).
    /// Errors: `Compacted` below, `Unavailable` above that range.
    pub fn term(&self, index: u64) -> Result<u64, StorageError> {
        if index + 1 < self.first_index() {
            return Err(StorageError::Compacted);
        }
        if index > self.last_index() {
            return Err(StorageError::Unavailable);
        }
        match self.unstable.maybe_term(index) {
            Some(t) => Ok(t),
            None => self.store.term(index),
        }
    }

    /// Term of the last entry (0 for an empty log).
    pub fn last_term(&self) -> u64 {
        self.term(self.last_index()).unwrap_or(0)
    }

    /// Whether the entry at `index` has term `term`.
    pub fn match_term(&self, index: u64, term: u64) -> bool {
        self.term(index).is_ok_and(|t| t == term)
    }

    /// Whether a log ending at `(last_index, term)` is at least as
    /// up-to-date as this one (Raft paper §5.4.1).
    pub fn is_up_to_date(&self, last_index: u64, term: u64) -> bool {
        let my_term = self.last_term();
        term > my_term || (term == my_term && last_index >= self.last_index())
    }

    /// Index of the first entry of `entries` that is missing or conflicts
    /// with this log; 0 if all are present.
    fn find_conflict(&self, entries: &[Entry]) -> u64 {
        entries
            .iter()
            .find(|e| !self.match_term(e.index, e.term))
            .map_or(0, |e| e.index)
    }

    /// The largest index `<= index` whose term is `<= term` (used for the
    /// conflict hint of a rejected append, etcd `findConflictByTerm`).
    pub fn find_conflict_by_term(&self, index: u64, term: u64) -> u64 {
        let floor = self.first_index().saturating_sub(1);
        let mut i = index.min(self.last_index());
        // Bounded: each step lowers `i`, which stops at `floor`.
        while i > floor {
            match self.term(i) {
                Ok(t) if t > term => i -= 1,
                _ => return i,
            }
        }
        i
    }

    /// Follower side of AppendEntries: if the entry at `prev_index` has
    /// `prev_term`, appends `entries` (dropping a conflicting suffix),
    /// advances the commit index to `min(leader_commit, last new index)` and
    /// returns the last new index; `None` if the logs do not match.
    pub(crate) fn maybe_append(
        &mut self,
        prev_index: u64,
        prev_term: u64,
        leader_commit: u64,
        mut entries: Vec<Entry>,
    ) -> Option<u64> {
        if !self.match_term(prev_index, prev_term) {
            return None;
        }
        let last_new = prev_index + entries.len() as u64;
        let conflict = self.find_conflict(&entries);
        if conflict != 0 {
            assert!(
                conflict > self.committed,
                "raft log: append conflicts with committed entry {conflict} (commit {})",
                self.committed
            );
            let mut start = (conflict - prev_index - 1) as usize;
            if cfg!(feature = "planted-bug-keep-conflicting-suffix") {
                // The planted bug keeps the conflicting entries it holds and
                // appends only what lies past its last index.
                start = start.max(self.last_index().saturating_sub(prev_index) as usize);
            }
            if start < entries.len() {
                entries.drain(..start);
                self.append(entries);
            }
        }
        self.commit_to(leader_commit.min(last_new));
        Some(last_new)
    }

    /// Whether appending `entries` after `(prev_index, prev_term)` would
    /// replace a committed entry (only a faulty leader can ask for that).
    pub(crate) fn conflicts_with_committed(
        &self,
        prev_index: u64,
        prev_term: u64,
        entries: &[Entry],
    ) -> bool {
        if !self.match_term(prev_index, prev_term) {
            return false;
        }
        let conflict = self.find_conflict(entries);
        conflict != 0 && conflict <= self.committed
    }

    /// Appends contiguous entries after (possibly over) the log; returns the
    /// new last index. Committed entries are never overwritten.
    pub(crate) fn append(&mut self, entries: Vec<Entry>) -> u64 {
        let Some(first) = entries.first() else {
            return self.last_index();
        };
        let after = first.index - 1;
        assert!(
            after >= self.committed,
            "raft log: append after {after} would truncate committed entries (commit {})",
            self.committed
        );
        let last = self.last_index();
        assert!(
            after <= last,
            "raft log: append after {after} leaves a gap after last index {last}"
        );
        assert!(
            after < self.first_index() || self.term(after).is_ok_and(|t| t <= first.term),
            "raft log: term {} appended after index {after} of a later term",
            first.term
        );
        debug_assert!(
            entries
                .windows(2)
                .all(|w| w[1].index == w[0].index + 1 && w[1].term >= w[0].term),
            "appended entries must be contiguous with non-decreasing terms"
        );
        self.unstable.truncate_and_append(entries);
        self.persisted = self.persisted.min(after);
        self.last_index()
    }

    /// Raises the commit index to `index` (never lowers it).
    pub(crate) fn commit_to(&mut self, index: u64) {
        if index > self.committed {
            let last = self.last_index();
            assert!(
                index <= last,
                "raft log: commit {index} beyond last index {last}"
            );
            self.committed = index;
        }
    }

    /// Commits `index` if the entry there has `term` (only current-term
    /// entries are committed by counting replicas, Raft paper §5.4.2).
    pub(crate) fn maybe_commit(&mut self, index: u64, term: u64) -> bool {
        // The planted bug commits an entry of an earlier term by counting
        // its replicas (the paper's Figure 8).
        let current_term =
            cfg!(feature = "planted-bug-commit-previous-term") || self.match_term(index, term);
        if index > self.committed && current_term {
            self.commit_to(index);
            return true;
        }
        false
    }

    /// Records that the application applied everything up to `index`.
    pub(crate) fn applied_to(&mut self, index: u64) {
        assert!(
            index <= self.committed,
            "raft log: applied {index} beyond commit {}",
            self.committed
        );
        if index > self.applied {
            self.applied = index;
            self.applying = self.applying.max(index);
        }
    }

    /// Whether committed entries wait to be handed to the application.
    pub(crate) fn has_next_committed_entries(&self) -> bool {
        self.unstable.snapshot.is_none() && self.committed > self.applying
    }

    /// The next committed entries to apply, up to `max_size_bytes` (at least one).
    pub(crate) fn next_committed_entries(&self, max_size_bytes: u64) -> Vec<Entry> {
        if !self.has_next_committed_entries() {
            return Vec::new();
        }
        let low = self.applying.max(self.first_index() - 1) + 1;
        self.slice(low, self.committed + 1, max_size_bytes)
            .unwrap_or_default()
    }

    /// Entries from `index` to the end, up to `max_size_bytes` (at least one).
    pub(crate) fn entries(
        &self,
        index: u64,
        max_size_bytes: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        let last = self.last_index();
        if index > last {
            return Ok(Vec::new());
        }
        self.slice(index, last + 1, max_size_bytes)
    }

    /// Entries `[low, high)` up to `max_size_bytes` (at least one).
    /// Errors: `Compacted` if `low` was compacted, `Unavailable` beyond the log.
    pub(crate) fn slice(
        &self,
        low: u64,
        high: u64,
        max_size_bytes: u64,
    ) -> Result<Vec<Entry>, StorageError> {
        if low < self.first_index() {
            return Err(StorageError::Compacted);
        }
        if high > self.last_index() + 1 {
            return Err(StorageError::Unavailable);
        }
        if low >= high {
            return Ok(Vec::new());
        }
        let offset = self.unstable.offset;
        let mut out = Vec::new();
        if low < offset {
            out = self.store.entries(low, high.min(offset), max_size_bytes)?;
            if (out.len() as u64) < high.min(offset) - low {
                return Ok(out);
            }
        }
        if high > offset {
            let part = self.unstable.slice(low.max(offset), high);
            let used: u64 = out.iter().map(Entry::size_bytes).sum();
            if out.is_empty() {
                let n = count_within_size(part, max_size_bytes);
                out.extend_from_slice(&part[..n]);
            } else {
                let n = count_within_size(part, max_size_bytes.saturating_sub(used));
                let fits = part
                    .first()
                    .is_some_and(|e| used + e.size_bytes() <= max_size_bytes);
                if fits {
                    out.extend_from_slice(&part[..n]);
                }
            }
        }
        Ok(out)
    }

    /// The snapshot to send a lagging follower: a pending incoming one or
    /// the stored one.
    pub(crate) fn snapshot(&self) -> Result<Snapshot, StorageError> {
        match &self.unstable.snapshot {
            Some(s) => Ok(s.clone()),
            None => self.store.snapshot(),
        }
    }

    /// Replaces the log with `snapshot` (follower catch-up).
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        assert!(
            index >= self.committed,
            "raft log: restoring snapshot {index} below commit {}",
            self.committed
        );
        self.committed = index;
        self.persisted = self.persisted.min(index);
        self.unstable.restore(snapshot);
    }

    /// Checks every invariant of the log: `applied <= applying <= committed
    /// <= last_index`, `persisted <= last_index`, the committed entry's term
    /// is known (`committed >= first_index - 1`), no gap between storage
    /// and the unstable part, the stable part's own rules
    /// ([`Storage::check_invariants`]) and the unstable part's. O(number of
    /// entries).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let (applied, applying, committed) = (self.applied, self.applying, self.committed);
        let (first, last) = (self.first_index(), self.last_index());
        ensure(applied <= applying, STRUCTURE, || {
            format!("applied {applied} > applying {applying}")
        })?;
        ensure(applying <= committed, STRUCTURE, || {
            format!("applying {applying} > committed {committed}")
        })?;
        ensure(committed <= last, STRUCTURE, || {
            format!("committed {committed} > last index {last}")
        })?;
        ensure(committed + 1 >= first, STRUCTURE, || {
            format!("committed {committed} below first index {first} - 1")
        })?;
        ensure(self.persisted <= last, STRUCTURE, || {
            format!("persisted {} > last index {last}", self.persisted)
        })?;
        self.check_boundary()?;
        self.store.check_invariants()?;
        self.unstable.check_invariants()
    }

    /// Without a pending snapshot, the unstable part starts at most one
    /// past the stored entries (it may overlap entries it replaces).
    fn check_boundary(&self) -> Result<(), InvariantViolation> {
        if self.unstable.snapshot.is_some() {
            return Ok(());
        }
        let stored = self.store.last_index().unwrap_or(0);
        let offset = self.unstable.offset;
        ensure(offset <= stored + 1, STRUCTURE, || {
            format!("gap between stored last index {stored} and unstable offset {offset}")
        })
    }

    /// Marks entries up to `(index, term)` as persisted.
    pub(crate) fn stable_to(&mut self, index: u64, term: u64) {
        if self.unstable.stable_to(index, term) {
            self.persisted = self.persisted.max(index);
        }
    }

    /// Marks the pending snapshot at `index` as persisted and applied.
    pub(crate) fn stable_snap_to(&mut self, index: u64) {
        self.unstable.stable_snap_to(index);
        self.persisted = self.persisted.max(index);
        self.applied = self.applied.max(index);
        self.applying = self.applying.max(index);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::MemoryStorage;
    use super::*;
    use crate::raft::test_util::ents;

    fn log_with(stable: &[Entry], unstable: &[Entry]) -> RaftLog<MemoryStorage> {
        let mut store = MemoryStorage::new();
        store.append(stable).unwrap();
        let mut log = RaftLog::new(store).unwrap();
        log.append(unstable.to_vec());
        log
    }

    #[test]
    fn slices_span_stable_and_unstable_parts() {
        let log = log_with(&ents(1..=3, 1), &ents(4..=6, 2));
        assert_eq!(log.slice(2, 6, u64::MAX).unwrap().len(), 4);
        assert_eq!(log.slice(2, 6, 24 * 3).unwrap().len(), 3);
        assert_eq!(log.slice(4, 7, 0).unwrap().len(), 1);
        assert_eq!(log.slice(0, 2, u64::MAX), Err(StorageError::Compacted));
        assert_eq!(log.slice(2, 8, u64::MAX), Err(StorageError::Unavailable));
        assert_eq!(log.last_term(), 2);
    }

    #[test]
    fn maybe_append_repairs_divergence_and_commits() {
        let mut log = log_with(&ents(1..=3, 1), &ents(4..=5, 1));
        assert_eq!(log.maybe_append(3, 2, 3, ents(4..=4, 2)), None);
        assert_eq!(log.maybe_append(3, 1, 4, ents(4..=4, 2)), Some(4));
        assert_eq!((log.last_index(), log.committed), (4, 4));
        assert_eq!(log.find_conflict_by_term(4, 1), 3);
        assert!(!log.maybe_commit(4, 1));
        assert_eq!(log.check_invariants(), Ok(()));
    }

    #[test]
    fn broken_positions_are_reported() {
        let mut log = log_with(&ents(1..=3, 1), &ents(4..=5, 1));
        log.commit_to(4);
        log.applied_to(3);
        assert_eq!(log.check_invariants(), Ok(()));
        log.applied = 4;
        let err = log.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("applied 4 > applying 3"));
        log.applied = 3;
        log.committed = 6;
        log.applying = 6;
        let err = log.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("committed 6 > last index 5"));
        log.committed = 4;
        log.applying = 4;
        log.unstable.offset = 6;
        let err = log.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("gap between stored last index 3 and unstable offset 6")
        );
    }

    #[test]
    #[should_panic(expected = "raft log: commit 9 beyond last index 5")]
    fn committing_past_the_log_stops_the_member() {
        let mut log = log_with(&ents(1..=3, 1), &ents(4..=5, 1));
        log.commit_to(9);
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let log = log_with(&ents(1..=3, 2), &[]);
        assert!(log.is_up_to_date(1, 3));
        assert!(log.is_up_to_date(3, 2));
        assert!(!log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(9, 1));
    }
}
