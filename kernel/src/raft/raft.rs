//! The Raft state machine of one node (Raft paper Figure 2; Ongaro's thesis
//! for pre-vote §9.6, check-quorum §6.2, leader transfer §3.10, ReadIndex
//! §6.4, membership §4). It consumes messages and ticks and produces
//! outgoing messages into `msgs`; [`RawNode`](super::RawNode) wraps it into
//! the `Ready`/`advance` API.
//!
//! This file holds the state, role changes, ticks, message dispatch, leader
//! transfer and membership; `election`, `replication` and `read_index` hold
//! the rest of the `Raft` methods.

use super::confchange;
use super::config::Config;
use super::log::RaftLog;
use super::message::{Message, MessageType};
use super::progress::ProgressState;
use super::quorum::VoteResult;
use super::read_only::{ReadOnly, ReadState};
use super::rng::SplitMix64;
use super::storage::Storage;
use super::tracker::ProgressTracker;
use super::{ConfChange, ConfState, Entry, EntryType, HardState, NO_NODE, NodeId, RaftError};
use crate::invariant::{InvariantViolation, ensure};
use bytes::Bytes;
use std::collections::VecDeque;

/// Context of a vote request sent because of a leader transfer: such
/// requests ignore the leader lease (thesis §3.10).
pub const CAMPAIGN_TRANSFER: &[u8] = b"CampaignTransfer";

/// The role a node plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum StateRole {
    /// Follows a leader (or waits for one).
    #[default]
    Follower,
    /// Asking for pre-votes before starting an election.
    PreCandidate,
    /// Running an election.
    Candidate,
    /// Leading the cluster.
    Leader,
}

/// Volatile state worth reporting: who leads and what this node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SoftState {
    /// Known leader, or [`NO_NODE`].
    pub leader_id: NodeId,
    /// This node's role.
    pub role: StateRole,
}

/// Why a campaign starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CampaignKind {
    PreElection,
    Election,
    Transfer,
}

/// The core Raft state machine.
pub struct Raft<S: Storage> {
    /// This node's id.
    pub id: NodeId,
    /// Current term.
    pub term: u64,
    /// Vote cast in `term`, or [`NO_NODE`].
    pub vote: NodeId,
    /// The log.
    pub log: RaftLog<S>,
    /// Configuration and peers' progress.
    pub tracker: ProgressTracker,
    /// Current role.
    pub role: StateRole,
    /// Known leader, or [`NO_NODE`].
    pub leader_id: NodeId,
    /// Target of a leader transfer in progress, or [`NO_NODE`].
    pub lead_transferee: NodeId,
    /// Index of the latest conf change proposed by this leader; no new one
    /// is accepted until it is applied.
    pub pending_conf_index: u64,
    /// Outgoing messages.
    pub(crate) msgs: Vec<Message>,
    /// Released ReadIndex reads.
    pub(crate) read_states: Vec<ReadState>,
    pub(crate) read_only: ReadOnly,
    /// ReadIndex requests waiting for the first commit of this leader's term.
    pub(crate) pending_read_index: VecDeque<(NodeId, Bytes)>,
    pub(crate) uncommitted_size_bytes: u64,
    pub(crate) election_elapsed: u64,
    pub(crate) heartbeat_elapsed: u64,
    pub(crate) randomized_election_timeout: u64,
    pub(crate) config: Config,
    pub(crate) rng: SplitMix64,
}

impl<S: Storage> Raft<S> {
    /// A node recovering from `store` (hard state, configuration, log).
    /// Errors: `InvalidConfig` for a bad config or inconsistent persisted
    /// state (commit beyond the log, applied beyond commit), `Storage`,
    /// `ConfChangeRejected` for an inconsistent persisted configuration.
    pub fn new(config: &Config, store: S) -> Result<Raft<S>, RaftError> {
        config.validate()?;
        let state = store.initial_state()?;
        let log = RaftLog::new(store)?;
        let mut tracker = ProgressTracker::new(config.max_inflight_msgs, config.max_inflight_bytes);
        tracker.apply_config(
            confchange::restore(&state.conf_state)?,
            log.last_index() + 1,
        );
        let mut raft = Raft {
            id: config.id,
            term: 0,
            vote: NO_NODE,
            log,
            tracker,
            role: StateRole::Follower,
            leader_id: NO_NODE,
            lead_transferee: NO_NODE,
            pending_conf_index: 0,
            msgs: Vec::new(),
            read_states: Vec::new(),
            read_only: ReadOnly::default(),
            pending_read_index: VecDeque::new(),
            uncommitted_size_bytes: 0,
            election_elapsed: 0,
            heartbeat_elapsed: 0,
            randomized_election_timeout: config.election_tick,
            config: config.clone(),
            rng: SplitMix64::new(config.seed ^ config.id.rotate_left(32)),
        };
        raft.load_hard_state(state.hard_state)?;
        if config.applied > 0 {
            if config.applied > raft.log.committed {
                return Err(RaftError::InvalidConfig(format!(
                    "applied {} is beyond commit index {}",
                    config.applied, raft.log.committed
                )));
            }
            raft.log.applied_to(config.applied);
        }
        raft.become_follower(raft.term, NO_NODE);
        Ok(raft)
    }

    pub(crate) fn load_hard_state(&mut self, hs: HardState) -> Result<(), RaftError> {
        if hs.is_empty() {
            return Ok(());
        }
        if hs.commit < self.log.committed || hs.commit > self.log.last_index() {
            return Err(RaftError::InvalidConfig(format!(
                "hard state commit {} out of range [{}, {}]",
                hs.commit,
                self.log.committed,
                self.log.last_index()
            )));
        }
        self.log.committed = hs.commit;
        self.term = hs.term;
        self.vote = hs.vote;
        Ok(())
    }

    /// Checks every invariant of the node: the log's and the progress
    /// tracker's, a leader names itself leader, a candidate voted for
    /// itself. O(log entries + members).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.log.check_invariants()?;
        self.tracker.check_invariants()?;
        let (id, role) = (self.id, self.role);
        ensure(
            role != StateRole::Leader || self.leader_id == id,
            "raft",
            || format!("leader {id} names {} as leader", self.leader_id),
        )?;
        ensure(
            role != StateRole::Candidate || self.vote == id,
            "raft",
            || {
                format!(
                    "candidate {id} voted for {} in term {}",
                    self.vote, self.term
                )
            },
        )
    }

    /// The state to persist.
    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.committed,
        }
    }

    /// Leader id and role.
    pub fn soft_state(&self) -> SoftState {
        SoftState {
            leader_id: self.leader_id,
            role: self.role,
        }
    }

    /// The configuration in force.
    pub fn conf_state(&self) -> ConfState {
        self.tracker.config.to_conf_state()
    }

    /// The configuration this node was built with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Whether this node may campaign: it is a voter of the configuration.
    pub fn promotable(&self) -> bool {
        self.tracker.is_voter(self.id)
    }

    // ---- role changes -------------------------------------------------

    pub(crate) fn reset(&mut self, term: u64) {
        if self.term != term {
            assert!(
                term > self.term,
                "raft: term must not decrease: {} -> {term}",
                self.term
            );
            self.term = term;
            self.vote = NO_NODE;
        }
        self.leader_id = NO_NODE;
        self.election_elapsed = 0;
        self.heartbeat_elapsed = 0;
        self.randomized_election_timeout = self
            .rng
            .range(self.config.election_tick, 2 * self.config.election_tick);
        self.lead_transferee = NO_NODE;
        self.tracker.reset_votes();
        let next = self.log.last_index() + 1;
        let ids: Vec<NodeId> = self.tracker.progress.keys().copied().collect();
        for id in ids {
            let learner = self.tracker.progress.get(&id).is_some_and(|p| p.is_learner);
            let mut pr = self.tracker.new_progress(next, learner);
            if id == self.id {
                pr.matched = self.log.persisted;
            }
            self.tracker.progress.insert(id, pr);
        }
        self.pending_conf_index = 0;
        self.uncommitted_size_bytes = 0;
        self.read_only.reset();
        self.pending_read_index.clear();
    }

    /// Becomes a follower of `leader` (or of nobody) at `term`.
    pub fn become_follower(&mut self, term: u64, leader: NodeId) {
        self.reset(term);
        self.leader_id = leader;
        self.role = StateRole::Follower;
    }

    pub(crate) fn become_pre_candidate(&mut self) {
        assert_ne!(
            self.role,
            StateRole::Leader,
            "raft: a leader cannot become pre-candidate"
        );
        self.tracker.reset_votes();
        self.leader_id = NO_NODE;
        self.role = StateRole::PreCandidate;
    }

    pub(crate) fn become_candidate(&mut self) {
        assert_ne!(
            self.role,
            StateRole::Leader,
            "raft: a leader cannot become candidate"
        );
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = StateRole::Candidate;
    }

    pub(crate) fn become_leader(&mut self) {
        assert_ne!(
            self.role,
            StateRole::Follower,
            "raft: a follower cannot become leader"
        );
        self.reset(self.term);
        self.leader_id = self.id;
        self.role = StateRole::Leader;
        if let Some(pr) = self.tracker.progress.get_mut(&self.id) {
            pr.become_replicate();
            pr.next_idx = self.log.last_index() + 1;
        }
        // No conf change until this term's no-op is applied (etcd's rule,
        // avoids the single-server-change bug after a leader change).
        self.pending_conf_index = self.log.last_index();
        let noop = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            ..Entry::default()
        };
        self.log.append(vec![noop]);
        self.bcast_append();
    }

    // ---- ticks --------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        match self.role {
            StateRole::Leader => self.tick_heartbeat(),
            _ => self.tick_election(),
        }
    }

    pub(crate) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    pub(crate) fn tick_heartbeat(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.config.election_tick {
            self.election_elapsed = 0;
            if self.config.check_quorum {
                if !self.tracker.quorum_active(self.id) {
                    self.become_follower(self.term, NO_NODE);
                    return;
                }
                let self_id = self.id;
                for (id, pr) in self.tracker.progress.iter_mut() {
                    pr.active_last_window = pr.recent_active;
                    pr.recent_active = *id == self_id;
                }
            }
            self.lead_transferee = NO_NODE;
        }
        if self.heartbeat_elapsed >= self.config.heartbeat_tick {
            self.heartbeat_elapsed = 0;
            let ctx = self.read_only.last_pending_ctx().unwrap_or_default();
            self.bcast_heartbeat(ctx);
        }
    }

    // ---- stepping messages --------------------------------------------

    /// Processes one message from a peer.
    /// Errors: `StepRejected` for a message from node 0; `ProposalDropped`
    /// or `NotLeader` for a forwarded proposal that cannot be handled.
    pub fn step(&mut self, m: Message) -> Result<(), RaftError> {
        if m.from == NO_NODE {
            return Err(RaftError::StepRejected("message from node 0"));
        }
        m.validate().map_err(RaftError::StepRejected)?;
        let termless = matches!(
            m.msg_type,
            MessageType::Propose | MessageType::ReadIndex | MessageType::TransferLeader
        );
        if termless {
            // Forwarded requests carry no term; they change no term state.
        } else if m.term == 0 {
            return Err(RaftError::StepRejected("message without a term"));
        } else if m.term > self.term {
            if !self.step_higher_term(&m) {
                return Ok(());
            }
        } else if m.term < self.term {
            self.step_lower_term(&m);
            return Ok(());
        }
        match m.msg_type {
            MessageType::RequestVote | MessageType::RequestPreVote => {
                self.handle_vote_request(&m);
                Ok(())
            }
            _ => match self.role {
                StateRole::Leader => self.step_leader(m),
                StateRole::Candidate | StateRole::PreCandidate => self.step_candidate(m),
                StateRole::Follower => self.step_follower(m),
            },
        }
    }

    /// Handles the term of a message from a higher term; false if the
    /// message must be ignored (a vote request while a leader's lease holds).
    pub(crate) fn step_higher_term(&mut self, m: &Message) -> bool {
        let is_vote_request = matches!(
            m.msg_type,
            MessageType::RequestVote | MessageType::RequestPreVote
        );
        if is_vote_request {
            let force = m.context.as_ref() == CAMPAIGN_TRANSFER;
            let in_lease = self.config.check_quorum
                && self.leader_id != NO_NODE
                && self.election_elapsed < self.config.election_tick;
            if !force && in_lease {
                return false;
            }
        }
        match m.msg_type {
            MessageType::RequestPreVote => {}
            MessageType::RequestPreVoteResponse if !m.reject => {}
            MessageType::Append | MessageType::Heartbeat | MessageType::Snapshot => {
                self.become_follower(m.term, m.from);
            }
            _ => self.become_follower(m.term, NO_NODE),
        }
        true
    }

    /// Answers a message from an older term. A stale leader is always told
    /// the newer term so it steps down: with check-quorum or pre-vote the
    /// term would not spread through votes, and a member that cannot
    /// campaign (a learner, or a voter whose configuration says otherwise)
    /// would otherwise never rejoin (etcd only answers when one of those
    /// options is on; a removed node gets no appends, so this does not let
    /// it disrupt the cluster).
    pub(crate) fn step_lower_term(&mut self, m: &Message) {
        let from_leader = matches!(m.msg_type, MessageType::Append | MessageType::Heartbeat);
        if from_leader {
            self.msgs.push(Message::new(
                MessageType::AppendResponse,
                self.id,
                m.from,
                self.term,
            ));
        } else if m.msg_type == MessageType::RequestPreVote {
            let mut resp = Message::new(
                MessageType::RequestPreVoteResponse,
                self.id,
                m.from,
                self.term,
            );
            resp.reject = true;
            self.msgs.push(resp);
        }
    }

    pub(crate) fn step_leader(&mut self, m: Message) -> Result<(), RaftError> {
        match m.msg_type {
            MessageType::Propose => return self.propose_entries(m.entries),
            MessageType::ReadIndex => self.handle_read_index(m.from, m.context),
            MessageType::TransferLeader => self.transfer_leader(m.from),
            MessageType::AppendResponse => self.handle_append_response(&m),
            MessageType::HeartbeatResponse => self.handle_heartbeat_response(&m),
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn step_candidate(&mut self, m: Message) -> Result<(), RaftError> {
        let my_response = if self.role == StateRole::PreCandidate {
            MessageType::RequestPreVoteResponse
        } else {
            MessageType::RequestVoteResponse
        };
        match m.msg_type {
            MessageType::Propose => return Err(RaftError::ProposalDropped),
            MessageType::ReadIndex => return Err(RaftError::NotLeader { leader: NO_NODE }),
            MessageType::Append | MessageType::Heartbeat | MessageType::Snapshot => {
                self.become_follower(m.term, m.from);
                return self.step_follower(m);
            }
            t if t == my_response => match self.poll(m.from, !m.reject) {
                VoteResult::Won => self.on_election_won(),
                VoteResult::Lost => self.become_follower(self.term, NO_NODE),
                VoteResult::Pending => {}
            },
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn step_follower(&mut self, m: Message) -> Result<(), RaftError> {
        match m.msg_type {
            MessageType::Propose | MessageType::ReadIndex | MessageType::TransferLeader => {
                return self.forward_to_leader(m);
            }
            MessageType::Append => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_append(m)?;
            }
            MessageType::Heartbeat => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_heartbeat(&m)?;
            }
            MessageType::Snapshot => {
                self.election_elapsed = 0;
                self.leader_id = m.from;
                self.handle_snapshot(m);
            }
            MessageType::TimeoutNow => self.hup(true),
            MessageType::ReadIndexResponse => {
                self.read_states.push(ReadState {
                    index: m.index,
                    request_ctx: m.context,
                });
            }
            _ => {}
        }
        Ok(())
    }

    pub(crate) fn forward_to_leader(&mut self, mut m: Message) -> Result<(), RaftError> {
        if self.leader_id == NO_NODE {
            return Err(match m.msg_type {
                MessageType::Propose => RaftError::ProposalDropped,
                _ => RaftError::NotLeader { leader: NO_NODE },
            });
        }
        m.to = self.leader_id;
        m.term = 0;
        self.msgs.push(m);
        Ok(())
    }

    // ---- leader transfer -------------------------------------------------

    /// Transfers leadership to `transferee` (thesis §3.10): the leader stops
    /// accepting proposals, brings the transferee up to date and sends it
    /// `TimeoutNow`. A follower forwards the request to the leader. The
    /// transfer is abandoned after an election timeout.
    pub fn transfer_leader(&mut self, transferee: NodeId) {
        if self.role != StateRole::Leader {
            let mut m = Message::new(MessageType::TransferLeader, transferee, NO_NODE, 0);
            m.from = transferee;
            let _ = self.forward_to_leader(m);
            return;
        }
        let Some(pr) = self.tracker.progress.get(&transferee) else {
            return;
        };
        if pr.is_learner || transferee == self.id || self.lead_transferee == transferee {
            return;
        }
        let up_to_date = pr.matched == self.log.last_index();
        self.election_elapsed = 0;
        self.lead_transferee = transferee;
        if up_to_date {
            self.send_timeout_now(transferee);
        } else {
            self.send_append(transferee, true);
        }
    }

    pub(crate) fn send_timeout_now(&mut self, to: NodeId) {
        self.msgs.push(Message::new(
            MessageType::TimeoutNow,
            self.id,
            to,
            self.term,
        ));
    }

    // ---- membership ------------------------------------------------------

    /// Applies a committed conf change (when the application applies its
    /// entry) and returns the configuration now in force. A leader that is
    /// no longer a voter steps down.
    /// Errors: `ConfChangeRejected` if the change is invalid for the
    /// current configuration (the configuration is then unchanged).
    pub fn apply_conf_change(&mut self, cc: &ConfChange) -> Result<ConfState, RaftError> {
        let next = confchange::apply(&self.tracker.config, cc)?;
        self.tracker.apply_config(next, self.log.last_index() + 1);
        if self.role == StateRole::Leader {
            if !self.promotable() {
                self.become_follower(self.term, NO_NODE);
            } else {
                if !self.tracker.progress.contains_key(&self.lead_transferee) {
                    self.lead_transferee = NO_NODE;
                }
                // The quorum changed: commit what it allows, tell new peers.
                self.maybe_commit();
                self.bcast_append();
            }
        }
        Ok(self.conf_state())
    }

    /// After applying: a leader in an auto-leave joint configuration
    /// proposes leaving it once the entering change is applied.
    pub(crate) fn maybe_auto_leave(&mut self) {
        let cfg = &self.tracker.config;
        let ready = self.role == StateRole::Leader
            && cfg.auto_leave
            && cfg.voters.is_joint()
            && self.log.applied >= self.pending_conf_index;
        if ready {
            let data = ConfChange::default().encode();
            let entry = Entry {
                entry_type: EntryType::ConfChange,
                data,
                ..Entry::default()
            };
            let _ = self.propose_entries(vec![entry]);
        }
    }

    /// Releases the uncommitted-size budget of entries now committed.
    pub(crate) fn reduce_uncommitted_size(&mut self, entries: &[Entry]) {
        if self.role != StateRole::Leader {
            return;
        }
        let payload: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        self.uncommitted_size_bytes = self.uncommitted_size_bytes.saturating_sub(payload);
    }

    /// Leader: the peer's snapshot was (not) delivered; resume probing.
    pub fn report_snapshot(&mut self, id: NodeId, success: bool) {
        if self.role != StateRole::Leader {
            return;
        }
        let Some(pr) = self.tracker.progress.get_mut(&id) else {
            return;
        };
        if pr.state == ProgressState::Snapshot {
            if !success {
                pr.pending_snapshot = 0;
            }
            pr.become_probe();
            pr.probe_sent = true;
        }
    }

    /// Leader: the peer could not be reached; stop pipelining to it.
    pub fn report_unreachable(&mut self, id: NodeId) {
        if self.role != StateRole::Leader {
            return;
        }
        if let Some(pr) = self.tracker.progress.get_mut(&id)
            && pr.state == ProgressState::Replicate
        {
            pr.become_probe();
        }
    }
}
