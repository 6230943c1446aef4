//! Helpers shared by the raft module's unit tests.

use super::Entry;

/// Entries with the given indexes, all of `term`, empty data.
pub(crate) fn ents(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range
        .map(|index| Entry {
            term,
            index,
            ..Entry::default()
        })
        .collect()
}
