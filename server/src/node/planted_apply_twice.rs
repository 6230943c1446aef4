//! Planted bug `planted-bug-apply-twice-after-restart` (issue 16; off by
//! default, for the simulator to find): at restart a member replays its
//! committed entries from one entry before the applied index it restored.
//!
//! Its boot applies the first committed entry after its snapshot to the
//! restored state machine but leaves the applied (consistent) index at the
//! snapshot's, as an etcd whose backend and consistent index were not
//! saved together would: Raft then hands that entry to the driver again
//! and it is applied twice (a put makes a second revision on this member
//! alone, so its store and revisions leave the others').

use keel_kernel::apply::StateMachine;
use keel_kernel::raft::{Entry, EntryType};

/// Applies `entries[0]` (the first entry after a snapshot at
/// `snapshot_index`) to `state` if it is a committed normal entry, then
/// rewinds `state`'s applied index to `snapshot_index`. Without a snapshot,
/// or when the rebuild fails, `state` comes back unchanged.
pub(super) fn replay_one_entry_early(
    state: StateMachine,
    snapshot_index: u64,
    commit: u64,
    entries: &[Entry],
) -> StateMachine {
    let Some(entry) = entries.first() else {
        return state;
    };
    let replayable = snapshot_index > 0
        && entry.index == snapshot_index + 1
        && entry.index <= commit
        && entry.entry_type == EntryType::Normal;
    if !replayable {
        return state;
    }
    let (config, applied_term) = (state.config(), state.applied_term());
    let fallback = state.clone();
    let mut replayed = state;
    replayed.apply(entry);
    let mut parts = replayed.into_parts();
    parts.applied_index = snapshot_index;
    parts.applied_term = applied_term;
    StateMachine::from_parts(config, parts).unwrap_or(fallback)
}
