//! The application-facing API (etcd-io/raft `RawNode`): feed the node
//! ticks, messages and proposals; take a [`Ready`], perform its I/O, then
//! call [`RawNode::advance`].
//!
//! Handling a `Ready`, in order:
//! 1. send `messages` (they do not depend on this Ready's persistence; a
//!    leader's appends go out in parallel with its own fsync, thesis §10.2.1);
//! 2. persist `snapshot` (storage `apply_snapshot`), `entries` (storage
//!    `append`) and `hard_state`, durably if `must_sync`;
//! 3. send `persisted_messages` (votes and responses that promise what was
//!    just persisted);
//! 4. apply the snapshot and `committed_entries` to the state machine (after
//!    step 2: they may include entries of this same Ready), calling
//!    [`RawNode::apply_conf_change`] for `EntryType::ConfChange` entries;
//! 5. serve `read_states` once applied up to their index;
//! 6. call [`RawNode::advance`]. Only one Ready is outstanding at a time.

use super::config::Config;
use super::message::{Message, MessageType};
use super::raft::{Raft, SoftState, StateRole};
use super::read_only::ReadState;
use super::storage::Storage;
use super::{
    ConfChange, ConfState, Entry, EntryType, HardState, NO_NODE, NodeId, RaftError, Snapshot,
};
use crate::invariant::InvariantViolation;
use bytes::Bytes;

/// Everything the application must do after the node changed state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// New leader id and role, if they changed.
    pub soft_state: Option<SoftState>,
    /// Hard state to persist, if it changed.
    pub hard_state: Option<HardState>,
    /// Released ReadIndex reads.
    pub read_states: Vec<ReadState>,
    /// Entries to append to stable storage.
    pub entries: Vec<Entry>,
    /// Snapshot to persist and apply (follower catch-up).
    pub snapshot: Option<Snapshot>,
    /// Committed entries to apply, in order, bounded by
    /// `max_committed_size_per_ready_bytes`.
    pub committed_entries: Vec<Entry>,
    /// Messages that may be sent immediately.
    pub messages: Vec<Message>,
    /// Messages to send only after `entries`, `hard_state` and `snapshot`
    /// are persisted.
    pub persisted_messages: Vec<Message>,
    /// Whether the persist step must be durable (fsync) before
    /// `persisted_messages` go out.
    pub must_sync: bool,
}

/// What `advance` must acknowledge for the Ready last returned.
#[derive(Clone, Copy, Debug, Default)]
struct InFlightReady {
    last_entry: Option<(u64, u64)>,
    snapshot_index: Option<u64>,
    applied_to: Option<u64>,
}

/// A Raft node driven by the application.
pub struct RawNode<S: Storage> {
    raft: Raft<S>,
    prev_soft_state: SoftState,
    prev_hard_state: HardState,
    in_flight: Option<InFlightReady>,
}

/// Asserts that committed entries `[first, last]` are the next ones to
/// apply after `applying` and are committed: entries apply once, in order.
fn assert_in_order(applying: u64, first: u64, last: u64, committed: u64) {
    assert!(
        first == applying + 1 && last <= committed,
        "raw node: entries {first}..={last} handed to apply after {applying} (commit {committed})"
    );
}

/// Asserts the hard state rules between two Readys: the term and the
/// commit index never decrease, and a vote once cast is not changed
/// within its term.
fn assert_hard_state_follows(prev: &HardState, next: &HardState) {
    assert!(
        next.term >= prev.term,
        "hard state: term went back {} -> {}",
        prev.term,
        next.term
    );
    assert!(
        next.commit >= prev.commit,
        "hard state: commit went back {} -> {}",
        prev.commit,
        next.commit
    );
    let revoted = next.term == prev.term && prev.vote != NO_NODE && next.vote != prev.vote;
    assert!(
        !revoted,
        "hard state: second vote in term {}: {} then {}",
        next.term, prev.vote, next.vote
    );
}

/// Whether a message promises state that must be durable before it is sent.
fn needs_persistence(m: &Message) -> bool {
    matches!(
        m.msg_type,
        MessageType::AppendResponse
            | MessageType::RequestVote
            | MessageType::RequestVoteResponse
            | MessageType::HeartbeatResponse
    )
}

impl<S: Storage> RawNode<S> {
    /// A node over `storage` (which holds the persisted hard state,
    /// configuration, snapshot and entries).
    /// Errors: see [`Raft::new`].
    pub fn new(config: &Config, storage: S) -> Result<RawNode<S>, RaftError> {
        let raft = Raft::new(config, storage)?;
        let prev_hard_state = raft.hard_state();
        Ok(RawNode {
            raft,
            prev_soft_state: SoftState::default(),
            prev_hard_state,
            in_flight: None,
        })
    }

    /// The Raft state machine (read-only inspection: term, role, log, progress).
    pub fn raft(&self) -> &Raft<S> {
        &self.raft
    }

    /// The storage, for reading.
    pub fn storage(&self) -> &S {
        &self.raft.log.store
    }

    /// The storage, for the application's persist step (append entries,
    /// set hard state, apply snapshot, compact).
    pub fn storage_mut(&mut self) -> &mut S {
        &mut self.raft.log.store
    }

    /// Advances logical time by one tick (elections, heartbeats, check-quorum).
    pub fn tick(&mut self) {
        self.raft.tick();
    }

    /// Campaigns to become leader now (no pre-vote skip; etcd `Campaign`).
    pub fn campaign(&mut self) {
        self.raft.hup(false);
    }

    /// Processes a message received from a peer.
    /// Errors: see [`Raft::step`].
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        self.raft.step(m)
    }

    /// Proposes `data` for the log. On a follower it is forwarded to the
    /// leader (its fate is learnt by watching applied entries).
    /// Errors: `ProposalDropped` (no leader known, candidate, transfer in
    /// progress, uncommitted-size limit).
    pub fn propose(&mut self, data: Bytes) -> Result<(), RaftError> {
        self.raft.propose_entries(vec![Entry {
            data,
            ..Entry::default()
        }])
    }

    /// Proposes several entries at once (one message, one append).
    /// Errors: as [`RawNode::propose`].
    pub fn propose_batch(
        &mut self,
        data: impl IntoIterator<Item = Bytes>,
    ) -> Result<(), RaftError> {
        let entries = data
            .into_iter()
            .map(|data| Entry {
                data,
                ..Entry::default()
            })
            .collect();
        self.raft.propose_entries(entries)
    }

    /// Proposes a membership change (see the `confchange` module doc).
    /// Errors: `ConfChangeRejected` if another change is not yet applied or
    /// the change is invalid; otherwise as [`RawNode::propose`].
    pub fn propose_conf_change(&mut self, cc: &ConfChange) -> Result<(), RaftError> {
        let entry = Entry {
            entry_type: EntryType::ConfChange,
            data: cc.encode(),
            ..Entry::default()
        };
        self.raft.propose_entries(vec![entry])
    }

    /// Applies a committed conf change; returns the configuration in force,
    /// which the application persists (e.g. `MemoryStorage::set_conf_state`).
    /// Errors: `ConfChangeRejected` (configuration unchanged).
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, RaftError> {
        self.raft.apply_conf_change(cc)
    }

    /// Requests a linearizable read point; see [`Raft::read_index`].
    /// Errors: `NotLeader` when no leader is known.
    pub fn read_index(&mut self, ctx: Bytes) -> Result<(), RaftError> {
        self.raft.read_index(ctx)
    }

    /// Transfers leadership to `transferee`; see [`Raft::transfer_leader`].
    pub fn transfer_leader(&mut self, transferee: NodeId) {
        self.raft.transfer_leader(transferee);
    }

    /// Reports that the snapshot sent to `id` was delivered (`success`) or
    /// failed. The transport must call this for every `Snapshot` message it
    /// handles: until then the leader keeps `id` paused in Snapshot state.
    /// Either way the leader resumes probing `id` (etcd `ReportSnapshot`).
    pub fn report_snapshot(&mut self, id: NodeId, success: bool) {
        self.raft.report_snapshot(id, success);
    }

    /// Reports that `id` could not be reached.
    pub fn report_unreachable(&mut self, id: NodeId) {
        self.raft.report_unreachable(id);
    }

    /// Whether there is anything for the application to do.
    pub fn has_ready(&self) -> bool {
        let r = &self.raft;
        !r.msgs.is_empty()
            || !r.log.unstable.entries.is_empty()
            || r.log.unstable.snapshot.is_some()
            || r.log.has_next_committed_entries()
            || !r.read_states.is_empty()
            || r.soft_state() != self.prev_soft_state
            || r.hard_state() != self.prev_hard_state
    }

    /// Collects the pending work. The caller must call [`RawNode::advance`]
    /// before asking for the next Ready.
    pub fn ready(&mut self) -> Ready {
        assert!(
            self.in_flight.is_none(),
            "raw node: ready() called twice without advance()"
        );
        let raft = &mut self.raft;
        let log = &raft.log;
        let (applied, committed, last) = (log.applied(), log.committed(), log.last_index());
        assert!(
            applied <= committed,
            "raw node: applied {applied} beyond commit {committed}"
        );
        assert!(
            committed <= last,
            "raw node: commit {committed} beyond last index {last}"
        );
        let entries = raft.log.unstable.entries.clone();
        let snapshot = raft.log.unstable.snapshot.clone();
        let committed_entries = raft
            .log
            .next_committed_entries(raft.config().max_committed_size_per_ready_bytes);
        if let (Some(first), Some(last)) = (committed_entries.first(), committed_entries.last()) {
            assert_in_order(
                raft.log.applying,
                first.index,
                last.index,
                raft.log.committed,
            );
            raft.log.applying = last.index;
            raft.reduce_uncommitted_size(&committed_entries);
        }
        let (mut messages, mut persisted_messages) = (Vec::new(), Vec::new());
        for m in raft.msgs.drain(..) {
            if needs_persistence(&m) {
                persisted_messages.push(m);
            } else {
                messages.push(m);
            }
        }
        let hard_state = raft.hard_state();
        assert_hard_state_follows(&self.prev_hard_state, &hard_state);
        let hs_changed = hard_state != self.prev_hard_state;
        let vote_changed = hard_state.term != self.prev_hard_state.term
            || hard_state.vote != self.prev_hard_state.vote;
        let soft_state = raft.soft_state();
        let ready = Ready {
            soft_state: (soft_state != self.prev_soft_state).then_some(soft_state),
            hard_state: hs_changed.then_some(hard_state),
            read_states: std::mem::take(&mut raft.read_states),
            must_sync: vote_changed || !entries.is_empty() || snapshot.is_some(),
            entries,
            snapshot,
            committed_entries,
            messages,
            persisted_messages,
        };
        self.prev_hard_state = hard_state;
        self.prev_soft_state = soft_state;
        self.in_flight = Some(InFlightReady {
            last_entry: ready.entries.last().map(|e| (e.index, e.term)),
            snapshot_index: ready.snapshot.as_ref().map(|s| s.metadata.index),
            applied_to: ready.committed_entries.last().map(|e| e.index),
        });
        ready
    }

    /// Acknowledges the last Ready: its entries, hard state and snapshot are
    /// in storage and its committed entries are applied. A leader may commit
    /// (its own copy now counts) and, in an auto-leave joint configuration,
    /// propose leaving it.
    pub fn advance(&mut self) {
        let Some(done) = self.in_flight.take() else {
            return;
        };
        let log = &mut self.raft.log;
        if let Some(index) = done.snapshot_index {
            log.stable_snap_to(index);
        }
        if let Some((index, term)) = done.last_entry {
            log.stable_to(index, term);
        }
        self.raft.on_persisted();
        if let Some(index) = done.applied_to {
            self.raft.log.applied_to(index);
            self.raft.maybe_auto_leave();
        }
    }

    /// Checks every invariant of the node (see [`Raft::check_invariants`]).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.raft.check_invariants()
    }

    /// Whether this node is the leader.
    pub fn is_leader(&self) -> bool {
        self.raft.role == StateRole::Leader
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(term: u64, vote: NodeId, commit: u64) -> HardState {
        HardState { term, vote, commit }
    }

    #[test]
    fn a_new_term_may_vote_anew() {
        assert_hard_state_follows(&hs(2, 1, 5), &hs(3, 2, 5));
        assert_hard_state_follows(&hs(2, NO_NODE, 5), &hs(2, 3, 6));
        assert_in_order(4, 5, 7, 7);
    }

    #[test]
    #[should_panic(expected = "hard state: second vote in term 2: 1 then 3")]
    fn a_second_vote_in_a_term_stops_the_member() {
        assert_hard_state_follows(&hs(2, 1, 5), &hs(2, 3, 5));
    }

    #[test]
    #[should_panic(expected = "hard state: term went back 3 -> 2")]
    fn a_falling_term_stops_the_member() {
        assert_hard_state_follows(&hs(3, 1, 5), &hs(2, 1, 5));
    }

    #[test]
    #[should_panic(expected = "hard state: commit went back 5 -> 4")]
    fn a_falling_commit_stops_the_member() {
        assert_hard_state_follows(&hs(3, 1, 5), &hs(3, 1, 4));
    }

    #[test]
    #[should_panic(expected = "raw node: entries 6..=7 handed to apply after 4")]
    fn skipping_an_entry_stops_the_member() {
        assert_in_order(4, 6, 7, 7);
    }
}
