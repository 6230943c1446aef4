//! The Raft state machine of one node (Raft paper Figure 2; Ongaro's thesis
//! for pre-vote §9.6, check-quorum §6.2, leader transfer §3.10, ReadIndex
//! §6.4, membership §4). It consumes messages and ticks and produces
//! outgoing messages into `msgs`; [`RawNode`](super::RawNode) wraps it into
//! the `Ready`/`advance` API.

use super::confchange;
use super::config::{Config, ReadOnlyOption};
use super::log::RaftLog;
use super::message::{Message, MessageType};
use super::progress::ProgressState;
use super::quorum::VoteResult;
use super::read_only::{ReadOnly, ReadState};
use super::rng::SplitMix64;
use super::storage::Storage;
use super::tracker::ProgressTracker;
use super::{ConfChange, ConfState, Entry, EntryType, HardState, NO_NODE, NodeId, RaftError};
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
enum CampaignKind {
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
    read_only: ReadOnly,
    /// ReadIndex requests waiting for the first commit of this leader's term.
    pending_read_index: VecDeque<(NodeId, Bytes)>,
    uncommitted_size_bytes: u64,
    election_elapsed: u64,
    heartbeat_elapsed: u64,
    randomized_election_timeout: u64,
    config: Config,
    rng: SplitMix64,
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

    fn load_hard_state(&mut self, hs: HardState) -> Result<(), RaftError> {
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

    fn reset(&mut self, term: u64) {
        if self.term != term {
            debug_assert!(
                term > self.term,
                "term must not decrease: {} -> {term}",
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

    fn become_pre_candidate(&mut self) {
        debug_assert_ne!(
            self.role,
            StateRole::Leader,
            "leader cannot become pre-candidate"
        );
        self.tracker.reset_votes();
        self.leader_id = NO_NODE;
        self.role = StateRole::PreCandidate;
    }

    fn become_candidate(&mut self) {
        debug_assert_ne!(
            self.role,
            StateRole::Leader,
            "leader cannot become candidate"
        );
        self.reset(self.term + 1);
        self.vote = self.id;
        self.role = StateRole::Candidate;
    }

    fn become_leader(&mut self) {
        debug_assert_ne!(
            self.role,
            StateRole::Follower,
            "follower cannot become leader"
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

    fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.promotable() && self.election_elapsed >= self.randomized_election_timeout {
            self.election_elapsed = 0;
            self.hup(false);
        }
    }

    fn tick_heartbeat(&mut self) {
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

    // ---- elections ----------------------------------------------------

    /// Starts an election now if this node may (etcd `MsgHup`).
    pub fn hup(&mut self, transfer: bool) {
        if self.role == StateRole::Leader || !self.promotable() {
            return;
        }
        if self.has_unapplied_conf_change() {
            return;
        }
        let kind = match (transfer, self.config.pre_vote) {
            (true, _) => CampaignKind::Transfer,
            (false, true) => CampaignKind::PreElection,
            (false, false) => CampaignKind::Election,
        };
        self.campaign(kind);
    }

    /// Whether a committed conf change waits to be applied (a node must
    /// not campaign then: its configuration may be stale).
    fn has_unapplied_conf_change(&self) -> bool {
        const CHUNK_BYTES: u64 = 1 << 20;
        let (mut low, high) = (self.log.applied + 1, self.log.committed + 1);
        // Bounded: every chunk holds at least one entry, so `low` advances.
        while low < high {
            let Ok(chunk) = self.log.slice(low, high, CHUNK_BYTES) else {
                return true;
            };
            if chunk.iter().any(|e| e.entry_type == EntryType::ConfChange) {
                return true;
            }
            match chunk.last() {
                Some(last) => low = last.index + 1,
                None => return false,
            }
        }
        false
    }

    fn campaign(&mut self, kind: CampaignKind) {
        let (msg_type, term) = if kind == CampaignKind::PreElection {
            self.become_pre_candidate();
            (MessageType::RequestPreVote, self.term + 1)
        } else {
            self.become_candidate();
            (MessageType::RequestVote, self.term)
        };
        if self.poll(self.id, true) == VoteResult::Won {
            self.on_election_won();
            return;
        }
        let context = if kind == CampaignKind::Transfer {
            Bytes::from_static(CAMPAIGN_TRANSFER)
        } else {
            Bytes::new()
        };
        let (index, log_term) = (self.log.last_index(), self.log.last_term());
        for id in self.tracker.config.voters.ids() {
            if id == self.id {
                continue;
            }
            let mut m = Message::new(msg_type, self.id, id, term);
            m.index = index;
            m.log_term = log_term;
            m.context = context.clone();
            self.msgs.push(m);
        }
    }

    fn poll(&mut self, from: NodeId, granted: bool) -> VoteResult {
        self.tracker.record_vote(from, granted);
        self.tracker.tally_votes()
    }

    fn on_election_won(&mut self) {
        if self.role == StateRole::PreCandidate {
            self.campaign(CampaignKind::Election);
        } else {
            self.become_leader();
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
    fn step_higher_term(&mut self, m: &Message) -> bool {
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
    fn step_lower_term(&mut self, m: &Message) {
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

    fn handle_vote_request(&mut self, m: &Message) {
        let pre = m.msg_type == MessageType::RequestPreVote;
        let resp_type = if pre {
            MessageType::RequestPreVoteResponse
        } else {
            MessageType::RequestVoteResponse
        };
        let can_vote = self.vote == m.from
            || (self.vote == NO_NODE && self.leader_id == NO_NODE)
            || (pre && m.term > self.term);
        if can_vote && self.log.is_up_to_date(m.index, m.log_term) {
            self.msgs
                .push(Message::new(resp_type, self.id, m.from, m.term));
            if !pre {
                self.election_elapsed = 0;
                self.vote = m.from;
            }
        } else {
            let mut resp = Message::new(resp_type, self.id, m.from, self.term);
            resp.reject = true;
            self.msgs.push(resp);
        }
    }

    fn step_leader(&mut self, m: Message) -> Result<(), RaftError> {
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

    fn step_candidate(&mut self, m: Message) -> Result<(), RaftError> {
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

    fn step_follower(&mut self, m: Message) -> Result<(), RaftError> {
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
                self.handle_heartbeat(&m);
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

    fn forward_to_leader(&mut self, mut m: Message) -> Result<(), RaftError> {
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

    // ---- follower side of replication -----------------------------------

    fn handle_append(&mut self, m: Message) -> Result<(), RaftError> {
        let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from, self.term);
        if m.index < self.log.committed {
            resp.index = self.log.committed;
            self.msgs.push(resp);
            return Ok(());
        }
        if self
            .log
            .conflicts_with_committed(m.index, m.log_term, &m.entries)
        {
            // Only a faulty peer sends this (etcd panics); refuse it.
            return Err(RaftError::StepRejected(
                "append conflicts with committed entries",
            ));
        }
        match self
            .log
            .maybe_append(m.index, m.log_term, m.commit, m.entries)
        {
            Some(last_new) => resp.index = last_new,
            None => {
                let hint = m.index.min(self.log.last_index());
                let hint = self.log.find_conflict_by_term(hint, m.log_term);
                resp.reject = true;
                resp.index = m.index;
                resp.reject_hint = hint;
                resp.log_term = self.log.term(hint).unwrap_or(0);
            }
        }
        self.msgs.push(resp);
        Ok(())
    }

    fn handle_heartbeat(&mut self, m: &Message) {
        self.log.commit_to(m.commit.min(self.log.last_index()));
        let mut resp = Message::new(MessageType::HeartbeatResponse, self.id, m.from, self.term);
        resp.context = m.context.clone();
        self.msgs.push(resp);
    }

    fn handle_snapshot(&mut self, m: Message) {
        let mut resp = Message::new(MessageType::AppendResponse, self.id, m.from, self.term);
        let restored = m.snapshot.is_some_and(|snap| self.restore(snap));
        resp.index = if restored {
            self.log.last_index()
        } else {
            self.log.committed
        };
        self.msgs.push(resp);
    }

    /// Installs `snapshot` if it is ahead of the log; returns whether the
    /// log was replaced (the snapshot must then be persisted and applied).
    pub fn restore(&mut self, snapshot: super::Snapshot) -> bool {
        let meta = &snapshot.metadata;
        if meta.index <= self.log.committed {
            return false;
        }
        if self.log.match_term(meta.index, meta.term) {
            self.log.commit_to(meta.index);
            return false;
        }
        let Ok(config) = confchange::restore(&meta.conf_state) else {
            return false;
        };
        let next = meta.index + 1;
        self.log.restore(snapshot);
        self.tracker.apply_config(config, next);
        true
    }

    // ---- leader side of replication -------------------------------------

    /// Appends proposals to the leader's log and replicates them.
    /// Errors: `ProposalDropped` during a leader transfer or beyond the
    /// uncommitted-size limit; `ConfChangeRejected` for a conf change that
    /// cannot be accepted now; `NotLeader`/`ProposalDropped` on a non-leader
    /// that cannot forward.
    pub fn propose_entries(&mut self, mut entries: Vec<Entry>) -> Result<(), RaftError> {
        if self.role != StateRole::Leader {
            let mut m = Message::new(MessageType::Propose, self.id, NO_NODE, 0);
            m.entries = entries;
            return match self.role {
                StateRole::Follower => self.forward_to_leader(m),
                _ => Err(RaftError::ProposalDropped),
            };
        }
        if entries.is_empty() {
            return Ok(());
        }
        if self.lead_transferee != NO_NODE {
            return Err(RaftError::ProposalDropped);
        }
        self.check_conf_changes(&entries)?;
        let payload: u64 = entries.iter().map(|e| e.data.len() as u64).sum();
        if self.uncommitted_size_bytes > 0
            && self.uncommitted_size_bytes + payload
                > self.config.max_uncommitted_entries_size_bytes
        {
            return Err(RaftError::ProposalDropped);
        }
        self.uncommitted_size_bytes += payload;
        let last = self.log.last_index();
        for (i, e) in entries.iter_mut().enumerate() {
            e.term = self.term;
            e.index = last + 1 + i as u64;
            if e.entry_type == EntryType::ConfChange {
                self.pending_conf_index = e.index;
            }
        }
        // A leader only appends: it never overwrites its own log (§5.3).
        debug_assert_eq!(entries[0].index, last + 1);
        self.log.append(entries);
        self.bcast_append();
        Ok(())
    }

    fn check_conf_changes(&self, entries: &[Entry]) -> Result<(), RaftError> {
        let mut seen = false;
        for e in entries
            .iter()
            .filter(|e| e.entry_type == EntryType::ConfChange)
        {
            let cc = ConfChange::decode(&e.data)
                .map_err(|err| RaftError::ConfChangeRejected(err.to_string()))?;
            if seen || self.pending_conf_index > self.log.applied {
                return Err(RaftError::ConfChangeRejected(
                    "possible unapplied conf change".into(),
                ));
            }
            seen = true;
            let joint = self.tracker.config.voters.is_joint();
            if joint && !cc.is_leave_joint() {
                return Err(RaftError::ConfChangeRejected(
                    "must leave joint config first".into(),
                ));
            }
            if !joint && cc.is_leave_joint() {
                return Err(RaftError::ConfChangeRejected("not in joint config".into()));
            }
            confchange::apply(&self.tracker.config, &cc)?;
        }
        Ok(())
    }

    /// Called once entries up to the log's persisted index are durable: the
    /// leader counts its own copy only now (thesis §10.2.1 lets followers
    /// persist in parallel), which may commit.
    pub(crate) fn on_persisted(&mut self) {
        if self.role != StateRole::Leader {
            return;
        }
        let persisted = self.log.persisted;
        let updated = self
            .tracker
            .progress
            .get_mut(&self.id)
            .is_some_and(|pr| pr.maybe_update(persisted));
        if updated && self.maybe_commit() {
            self.bcast_append();
        }
    }

    /// Commits what a quorum has replicated, if it is from this term.
    fn maybe_commit(&mut self) -> bool {
        let index = self.tracker.committed_index();
        if index == u64::MAX || !self.log.maybe_commit(index, self.term) {
            return false;
        }
        self.release_pending_read_index();
        true
    }

    fn bcast_append(&mut self) {
        let ids: Vec<NodeId> = self
            .tracker
            .progress
            .keys()
            .copied()
            .filter(|id| *id != self.id)
            .collect();
        for id in ids {
            self.send_append(id, true);
        }
    }

    /// Sends the next entries to `to` if its progress allows; returns
    /// whether a message was sent.
    fn send_append(&mut self, to: NodeId, send_if_empty: bool) -> bool {
        let Some(pr) = self.tracker.progress.get(&to) else {
            return false;
        };
        if pr.is_paused() {
            return false;
        }
        let prev_index = pr.next_idx - 1;
        let prev_term = self.log.term(prev_index);
        let entries = self
            .log
            .entries(pr.next_idx, self.config.max_size_per_msg_bytes);
        let (Ok(log_term), Ok(entries)) = (prev_term, entries) else {
            return self.send_snapshot(to);
        };
        if entries.is_empty() && !send_if_empty {
            return false;
        }
        let Some(pr) = self.tracker.progress.get_mut(&to) else {
            return false;
        };
        if let Some(last) = entries.last()
            && pr.state == ProgressState::Replicate
        {
            let bytes: u64 = entries.iter().map(Entry::size_bytes).sum();
            pr.optimistic_update(last.index);
            pr.inflights.add(last.index, bytes);
        }
        if pr.state == ProgressState::Probe {
            pr.probe_sent = true;
        }
        let mut m = Message::new(MessageType::Append, self.id, to, self.term);
        m.index = prev_index;
        m.log_term = log_term;
        m.entries = entries;
        m.commit = self.log.committed;
        self.msgs.push(m);
        true
    }

    fn send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(pr) = self.tracker.progress.get(&to) else {
            return false;
        };
        if !pr.recent_active {
            return false;
        }
        let snapshot = match self.log.snapshot() {
            Ok(s) if !s.is_empty() => s,
            _ => return false,
        };
        let index = snapshot.metadata.index;
        if let Some(pr) = self.tracker.progress.get_mut(&to) {
            pr.become_snapshot(index);
        }
        let mut m = Message::new(MessageType::Snapshot, self.id, to, self.term);
        m.snapshot = Some(snapshot);
        self.msgs.push(m);
        true
    }

    fn bcast_heartbeat(&mut self, ctx: Bytes) {
        let committed = self.log.committed;
        for (id, pr) in &self.tracker.progress {
            if *id == self.id {
                continue;
            }
            let mut m = Message::new(MessageType::Heartbeat, self.id, *id, self.term);
            m.commit = pr.matched.min(committed);
            m.context = ctx.clone();
            self.msgs.push(m);
        }
    }

    fn handle_append_response(&mut self, m: &Message) {
        let last_index = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        if m.index > last_index {
            return; // acknowledges entries this leader never sent
        }
        if m.reject {
            let hint = if m.log_term > 0 {
                self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            } else {
                m.reject_hint
            };
            if pr.maybe_decr_to(m.index, hint) {
                if pr.state == ProgressState::Replicate {
                    pr.become_probe();
                }
                self.send_append(m.from, true);
            }
            return;
        }
        let was_paused = pr.is_paused();
        if !pr.maybe_update(m.index) {
            return;
        }
        match pr.state {
            ProgressState::Probe => pr.become_replicate(),
            ProgressState::Snapshot if pr.matched + 1 >= self.log.first_index() => {
                pr.become_probe();
                pr.become_replicate();
            }
            ProgressState::Replicate => pr.inflights.free_le(m.index),
            ProgressState::Snapshot => {}
        }
        let matched = pr.matched;
        if self.maybe_commit() {
            self.bcast_append();
        } else if was_paused {
            self.send_append(m.from, true);
        }
        for _ in 0..=self.config.max_inflight_msgs {
            if !self.send_append(m.from, false) {
                break;
            }
        }
        if m.from == self.lead_transferee && matched == last_index {
            self.send_timeout_now(m.from);
        }
    }

    fn handle_heartbeat_response(&mut self, m: &Message) {
        let last_index = self.log.last_index();
        let Some(pr) = self.tracker.progress.get_mut(&m.from) else {
            return;
        };
        pr.recent_active = true;
        pr.probe_sent = false;
        if pr.state == ProgressState::Replicate && pr.inflights.full() {
            pr.inflights.free_first_one();
        }
        if pr.matched < last_index {
            self.send_append(m.from, true);
        }
        if self.config.read_only_option != ReadOnlyOption::Safe || m.context.is_empty() {
            return;
        }
        let voters = &self.tracker.config.voters;
        let Some(acks) = self.read_only.recv_ack(m.from, &m.context) else {
            return;
        };
        let votes = acks.iter().map(|id| (*id, true)).collect();
        if voters.vote_result(&votes) != VoteResult::Won {
            return;
        }
        for rs in self.read_only.advance(&m.context) {
            self.respond_read_index(rs.from, rs.index, rs.ctx);
        }
    }

    // ---- ReadIndex -----------------------------------------------------

    /// Starts a ReadIndex read (thesis §6.4) identified by `ctx` (unique
    /// across the cluster); its [`ReadState`] appears in a later `Ready`.
    /// Errors: `NotLeader` when no leader is known (nothing to forward to).
    pub fn read_index(&mut self, ctx: Bytes) -> Result<(), RaftError> {
        match self.role {
            StateRole::Leader => {
                self.handle_read_index(self.id, ctx);
                Ok(())
            }
            _ if self.leader_id == NO_NODE => Err(RaftError::NotLeader { leader: NO_NODE }),
            _ => {
                let mut m = Message::new(MessageType::ReadIndex, self.id, NO_NODE, 0);
                m.context = ctx;
                self.forward_to_leader(m)
            }
        }
    }

    fn handle_read_index(&mut self, from: NodeId, ctx: Bytes) {
        let voters = self.tracker.config.voters.ids();
        if voters.len() == 1 && voters.contains(&self.id) {
            self.respond_read_index(from, self.log.committed, ctx);
            return;
        }
        // The leader must know the latest commit index: wait for the first
        // commit of its term (thesis §6.4 step 1).
        if !self.log.match_term(self.log.committed, self.term) {
            if self.pending_read_index.len() < self.config.max_pending_read_index {
                self.pending_read_index.push_back((from, ctx));
            }
            return;
        }
        match self.config.read_only_option {
            ReadOnlyOption::LeaseBased => self.respond_read_index(from, self.log.committed, ctx),
            ReadOnlyOption::Safe => {
                let added = self.read_only.add_request(
                    self.id,
                    from,
                    ctx.clone(),
                    self.log.committed,
                    self.config.max_pending_read_index,
                );
                if added {
                    self.bcast_heartbeat(ctx);
                }
            }
        }
    }

    fn release_pending_read_index(&mut self) {
        if !self.log.match_term(self.log.committed, self.term) {
            return;
        }
        let pending = std::mem::take(&mut self.pending_read_index);
        for (from, ctx) in pending {
            self.handle_read_index(from, ctx);
        }
    }

    fn respond_read_index(&mut self, from: NodeId, index: u64, ctx: Bytes) {
        if from == self.id {
            self.read_states.push(ReadState {
                index,
                request_ctx: ctx,
            });
            return;
        }
        let mut m = Message::new(MessageType::ReadIndexResponse, self.id, from, self.term);
        m.index = index;
        m.context = ctx;
        self.msgs.push(m);
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

    fn send_timeout_now(&mut self, to: NodeId) {
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
