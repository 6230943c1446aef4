//! The leader's view of one follower's log (Raft paper Figure 2 `nextIndex`
//! and `matchIndex`), with etcd-io/raft's three replication states:
//! Probe (one append per heartbeat until the match point is found),
//! Replicate (pipelined appends within the inflight window) and Snapshot
//! (waiting for a snapshot to be installed).

use super::inflights::Inflights;
use crate::invariant::{InvariantViolation, ensure};

const STRUCTURE: &str = "progress";

/// How the leader currently replicates to a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    /// Searching for the match point; at most one append in flight.
    Probe,
    /// Optimistically streaming appends, bounded by [`Inflights`].
    Replicate,
    /// A snapshot was sent; appends pause until it is applied.
    Snapshot,
}

/// Replication progress of one peer, as tracked by the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Highest index known to be replicated on the peer.
    pub matched: u64,
    /// Next index to send.
    pub next_idx: u64,
    /// Replication state.
    pub state: ProgressState,
    /// Index of the snapshot being sent (state Snapshot).
    pub pending_snapshot: u64,
    /// Whether the peer was heard from in the current election timeout
    /// (used by check-quorum).
    pub recent_active: bool,
    /// Whether the peer was heard from in the previous election timeout:
    /// with `recent_active`, whether it is active now (a peer that
    /// answers every heartbeat is never seen as down when a window
    /// starts). Read by the strict reconfiguration check.
    pub active_last_window: bool,
    /// In Probe: an append was sent and its answer is awaited.
    pub probe_sent: bool,
    /// Unacknowledged appends (Replicate).
    pub inflights: Inflights,
    /// Whether the peer is a learner.
    pub is_learner: bool,
}

impl Progress {
    /// A peer in Probe state whose next index is `next_idx`.
    pub fn new(next_idx: u64, inflights: Inflights) -> Progress {
        Progress {
            matched: 0,
            next_idx,
            state: ProgressState::Probe,
            pending_snapshot: 0,
            recent_active: false,
            active_last_window: false,
            probe_sent: false,
            inflights,
            is_learner: false,
        }
    }

    fn reset_state(&mut self, state: ProgressState) {
        self.probe_sent = false;
        self.pending_snapshot = 0;
        self.state = state;
        self.inflights.reset();
    }

    /// Asserts the O(1) rule that holds after every change: the next index
    /// to send is past the match (`matched < next_idx`). Panics otherwise.
    fn assert_match_below_next(&self) {
        assert!(
            self.matched < self.next_idx,
            "progress: matched {} must stay below next {}",
            self.matched,
            self.next_idx
        );
    }

    /// Checks `matched < next_idx`, that only Probe has a probe in flight,
    /// that only Replicate holds inflight appends, all below `next_idx`,
    /// and the inflight window's own rules.
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let (matched, next, state) = (self.matched, self.next_idx, self.state);
        ensure(matched < next, STRUCTURE, || {
            format!("matched {matched} >= next {next}")
        })?;
        ensure(
            !self.probe_sent || state == ProgressState::Probe,
            STRUCTURE,
            || format!("probe_sent in state {state:?}"),
        )?;
        let inflight = self.inflights.count();
        ensure(
            inflight == 0 || state == ProgressState::Replicate,
            STRUCTURE,
            || format!("{inflight} inflight appends in state {state:?}"),
        )?;
        let last = self.inflights.last_index();
        ensure(last.is_none_or(|i| i < next), STRUCTURE, || {
            format!("inflight index {last:?} not below next {next}")
        })?;
        self.inflights.check_invariants()
    }

    /// Switches to Probe, restarting after the match (or after the snapshot).
    pub fn become_probe(&mut self) {
        if self.state == ProgressState::Snapshot {
            let pending = self.pending_snapshot;
            self.reset_state(ProgressState::Probe);
            self.next_idx = (self.matched + 1).max(pending + 1);
        } else {
            self.reset_state(ProgressState::Probe);
            self.next_idx = self.matched + 1;
        }
        self.assert_match_below_next();
    }

    /// Switches to Replicate, streaming from after the match.
    pub fn become_replicate(&mut self) {
        self.reset_state(ProgressState::Replicate);
        self.next_idx = self.matched + 1;
    }

    /// Switches to Snapshot, waiting for the snapshot at `snapshot_index`.
    pub fn become_snapshot(&mut self, snapshot_index: u64) {
        self.reset_state(ProgressState::Snapshot);
        self.pending_snapshot = snapshot_index;
    }

    /// Records an acknowledgement up to `index`; returns whether the match
    /// advanced.
    pub fn maybe_update(&mut self, index: u64) -> bool {
        let updated = self.matched < index;
        if updated {
            self.matched = index;
            self.probe_sent = false;
        }
        self.next_idx = self.next_idx.max(index + 1);
        self.assert_match_below_next();
        updated
    }

    /// Records that entries up to `last_index` were sent (Replicate).
    pub fn optimistic_update(&mut self, last_index: u64) {
        self.next_idx = last_index + 1;
        self.assert_match_below_next();
    }

    /// Handles a rejected append for `rejected` (the append's previous
    /// index) with the follower's hint `match_hint`; returns whether the
    /// rejection was fresh (not stale) and next was lowered.
    pub fn maybe_decr_to(&mut self, rejected: u64, match_hint: u64) -> bool {
        if self.state == ProgressState::Replicate {
            if rejected <= self.matched {
                return false;
            }
            self.next_idx = self.matched + 1;
            return true;
        }
        if self.next_idx == 0 || self.next_idx - 1 != rejected {
            return false;
        }
        self.next_idx = (rejected.min(match_hint.saturating_add(1)))
            .max(self.matched + 1)
            .max(1);
        self.assert_match_below_next();
        self.probe_sent = false;
        true
    }

    /// Whether sending appends to this peer is paused.
    pub fn is_paused(&self) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflights.full(),
            ProgressState::Snapshot => true,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn pr(next: u64) -> Progress {
        Progress::new(next, Inflights::new(4, 1 << 20))
    }

    #[test]
    fn probe_backs_off_to_the_hint() {
        let mut p = pr(10);
        p.probe_sent = true;
        assert!(!p.maybe_decr_to(5, 2), "stale rejection ignored");
        assert!(p.maybe_decr_to(9, 4));
        assert_eq!(p.next_idx, 5);
        assert!(!p.is_paused());
    }

    #[test]
    fn replicate_falls_back_to_match() {
        let mut p = pr(1);
        p.maybe_update(5);
        p.become_replicate();
        p.optimistic_update(9);
        assert!(!p.maybe_decr_to(4, 0));
        assert!(p.maybe_decr_to(7, 0));
        assert_eq!(p.next_idx, 6);
    }

    #[test]
    fn snapshot_state_pauses_and_probe_resumes_after_it() {
        let mut p = pr(1);
        p.become_snapshot(20);
        assert!(p.is_paused());
        p.become_probe();
        assert_eq!(p.next_idx, 21);
        assert_eq!(p.check_invariants(), Ok(()));
    }

    #[test]
    fn a_match_at_next_or_stray_inflights_are_reported() {
        let mut p = pr(5);
        p.matched = 5;
        let err = p.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("matched 5 >= next 5"));
        p.matched = 4;
        p.inflights.add(4, 1);
        let err = p.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("1 inflight appends in state Probe"));
        p.state = ProgressState::Replicate;
        p.inflights.reset();
        p.probe_sent = true;
        assert!(p.check_invariants().is_err(), "probe_sent outside Probe");
    }

    #[test]
    #[should_panic(expected = "progress: matched 7 must stay below next 6")]
    fn sending_below_the_match_stops_the_member() {
        let mut p = pr(1);
        p.maybe_update(7);
        p.become_replicate();
        p.optimistic_update(5);
    }
}
