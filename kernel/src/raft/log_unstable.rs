//! The part of the log not yet persisted: an optional incoming snapshot and
//! entries from `offset` on (etcd-io/raft `unstable`).

use super::{Entry, Snapshot};
use crate::invariant::{InvariantViolation, ensure};

const STRUCTURE: &str = "unstable log";

/// Entries (and possibly a snapshot) that the application has not yet
/// written to stable storage.
#[derive(Clone, Debug, Default)]
pub(crate) struct Unstable {
    /// A snapshot received from the leader, to be persisted and applied.
    pub(crate) snapshot: Option<Snapshot>,
    /// Unpersisted entries; `entries[i]` has index `offset + i`.
    pub(crate) entries: Vec<Entry>,
    /// Index of `entries[0]` (or of the next entry to append).
    pub(crate) offset: u64,
}

impl Unstable {
    /// An empty unstable log whose next entry has index `offset`.
    pub(crate) fn new(offset: u64) -> Unstable {
        Unstable {
            snapshot: None,
            entries: Vec::new(),
            offset,
        }
    }

    /// First index known only here: the entry after a pending snapshot.
    pub(crate) fn maybe_first_index(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.metadata.index + 1)
    }

    /// Last index known here, if any.
    pub(crate) fn maybe_last_index(&self) -> Option<u64> {
        match (self.entries.len(), &self.snapshot) {
            (0, Some(s)) => Some(s.metadata.index),
            (0, None) => None,
            (n, _) => Some(self.offset + n as u64 - 1),
        }
    }

    /// Term of entry `index` if this part of the log knows it.
    pub(crate) fn maybe_term(&self, index: u64) -> Option<u64> {
        if index < self.offset {
            let snap = self.snapshot.as_ref()?;
            return (snap.metadata.index == index).then_some(snap.metadata.term);
        }
        self.entries
            .get((index - self.offset) as usize)
            .map(|e| e.term)
    }

    /// Drops entries up to `index` once persisted, if `(index, term)` still
    /// names an entry here. Returns whether anything was marked stable.
    pub(crate) fn stable_to(&mut self, index: u64, term: u64) -> bool {
        if index < self.offset || self.maybe_term(index) != Some(term) {
            return false;
        }
        self.entries.drain(..=(index - self.offset) as usize);
        self.offset = index + 1;
        true
    }

    /// Forgets the pending snapshot once persisted.
    pub(crate) fn stable_snap_to(&mut self, index: u64) {
        if self
            .snapshot
            .as_ref()
            .is_some_and(|s| s.metadata.index == index)
        {
            self.snapshot = None;
        }
    }

    /// Replaces everything with `snapshot`.
    pub(crate) fn restore(&mut self, snapshot: Snapshot) {
        self.offset = snapshot.metadata.index + 1;
        self.entries.clear();
        self.snapshot = Some(snapshot);
    }

    /// Appends `entries` (contiguous, non-empty), truncating any suffix
    /// from the first new index on.
    pub(crate) fn truncate_and_append(&mut self, entries: Vec<Entry>) {
        let first = entries[0].index;
        let next = self.offset + self.entries.len() as u64;
        if first < self.offset {
            self.offset = first;
            self.entries.clear();
        } else if first < next {
            self.entries.truncate((first - self.offset) as usize);
        }
        assert_eq!(
            first,
            self.offset + self.entries.len() as u64,
            "unstable log: appended entries must follow the last one (offset {})",
            self.offset
        );
        if self.entries.is_empty() {
            // The common case: take the vector as is, no per-entry copy.
            self.entries = entries;
        } else {
            self.entries.extend(entries);
        }
    }

    /// Checks that `entries[i]` has index `offset + i`, that terms do not
    /// decrease, and that a pending snapshot lies before the entries.
    /// O(number of unstable entries).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub(crate) fn check_invariants(&self) -> Result<(), InvariantViolation> {
        if let Some(snap) = &self.snapshot {
            let index = snap.metadata.index;
            ensure(self.offset > index, STRUCTURE, || {
                format!("offset {} not after snapshot {index}", self.offset)
            })?;
        }
        for (i, entry) in self.entries.iter().enumerate() {
            let want = self.offset + i as u64;
            ensure(entry.index == want, STRUCTURE, || {
                format!("entry {i} has index {} instead of {want}", entry.index)
            })?;
        }
        let decreasing = self.entries.windows(2).find(|w| w[1].term < w[0].term);
        ensure(decreasing.is_none(), STRUCTURE, || {
            format!(
                "term decreases after index {:?}",
                decreasing.map(|w| w[0].index)
            )
        })
    }

    /// Entries `[low, high)`; callers keep the range within this part.
    pub(crate) fn slice(&self, low: u64, high: u64) -> &[Entry] {
        assert!(
            self.offset <= low && low <= high && high <= self.offset + self.entries.len() as u64,
            "unstable log: slice [{low}, {high}) outside [{}, {})",
            self.offset,
            self.offset + self.entries.len() as u64
        );
        &self.entries[(low - self.offset) as usize..(high - self.offset) as usize]
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::raft::test_util::ents;

    #[test]
    fn append_truncate_and_stabilise() {
        let mut u = Unstable::new(5);
        u.truncate_and_append(ents(5..=8, 1));
        u.truncate_and_append(ents(7..=9, 2));
        assert_eq!(u.maybe_last_index(), Some(9));
        assert_eq!(u.maybe_term(6), Some(1));
        assert_eq!(u.maybe_term(7), Some(2));
        assert!(!u.stable_to(7, 1));
        assert!(u.stable_to(7, 2));
        assert_eq!(u.offset, 8);
        u.truncate_and_append(ents(3..=3, 3));
        assert_eq!((u.offset, u.entries.len()), (3, 1));
        assert_eq!(u.check_invariants(), Ok(()));
    }

    /// A leader's entry replaces the only unstable one at its index (the
    /// suffix is cut from the first new index, whatever the log's length).
    #[test]
    fn the_only_unstable_entry_is_replaced_by_a_conflicting_one() {
        let mut u = Unstable::new(8);
        u.truncate_and_append(ents(8..=8, 1));
        u.truncate_and_append(ents(8..=9, 2));
        assert_eq!((u.offset, u.entries.len()), (8, 2));
        assert_eq!(u.maybe_term(8), Some(2));
        assert_eq!(u.check_invariants(), Ok(()));
    }

    #[test]
    fn a_gap_or_a_falling_term_is_reported() {
        let mut u = Unstable::new(5);
        u.truncate_and_append(ents(5..=7, 2));
        u.entries[1].index = 9;
        let err = u.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("entry 1 has index 9 instead of 6"));
        u.entries[1].index = 6;
        u.entries[2].term = 1;
        assert!(u.check_invariants().is_err(), "term decreases");
    }
}
