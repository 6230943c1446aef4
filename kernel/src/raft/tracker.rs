//! The leader's bookkeeping of the cluster: the configuration in force
//! (voters, learners), each peer's [`Progress`], and votes in an election
//! (etcd-io/raft `tracker.ProgressTracker`).

use super::inflights::Inflights;
use super::progress::Progress;
use super::quorum::{JointConfig, VoteResult};
use super::{ConfState, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// A membership configuration (Raft thesis §4.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Voters (one or two majority configurations).
    pub voters: JointConfig,
    /// Non-voting members; disjoint from both voter halves.
    pub learners: BTreeSet<NodeId>,
    /// Outgoing voters that become learners when the joint config is left.
    pub learners_next: BTreeSet<NodeId>,
    /// Leave the joint configuration automatically once it is committed.
    pub auto_leave: bool,
}

impl TrackerConfig {
    /// The persisted form of this configuration.
    pub fn to_conf_state(&self) -> ConfState {
        ConfState {
            voters: self.voters.incoming.iter().copied().collect(),
            learners: self.learners.iter().copied().collect(),
            voters_outgoing: self.voters.outgoing.iter().copied().collect(),
            learners_next: self.learners_next.iter().copied().collect(),
            auto_leave: self.auto_leave,
        }
    }

    /// Every member (voter or learner) of the configuration, ascending.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut ids = self.voters.ids();
        ids.extend(self.learners.iter().copied());
        ids.extend(self.learners_next.iter().copied());
        ids
    }
}

/// Configuration, per-peer progress and the votes of the current election.
#[derive(Clone, Debug)]
pub struct ProgressTracker {
    /// Configuration in force.
    pub config: TrackerConfig,
    /// Progress of every member, including this node.
    pub progress: BTreeMap<NodeId, Progress>,
    /// Votes received in the current election (true = granted).
    pub votes: BTreeMap<NodeId, bool>,
    /// Inflight window bound: messages.
    pub max_inflight_msgs: usize,
    /// Inflight window bound: bytes.
    pub max_inflight_bytes: u64,
}

impl ProgressTracker {
    /// An empty tracker whose peers get inflight windows of the given bounds.
    pub fn new(max_inflight_msgs: usize, max_inflight_bytes: u64) -> ProgressTracker {
        ProgressTracker {
            config: TrackerConfig::default(),
            progress: BTreeMap::new(),
            votes: BTreeMap::new(),
            max_inflight_msgs,
            max_inflight_bytes,
        }
    }

    /// A fresh progress for a new member, probing from `next_idx`.
    pub fn new_progress(&self, next_idx: u64, is_learner: bool) -> Progress {
        let inflights = Inflights::new(self.max_inflight_msgs, self.max_inflight_bytes);
        let mut pr = Progress::new(next_idx, inflights);
        pr.is_learner = is_learner;
        pr.recent_active = true;
        pr.active_last_window = true;
        pr
    }

    /// Installs `config`, creating progress for new members (next index
    /// `next_idx`) and dropping it for members that left.
    pub fn apply_config(&mut self, config: TrackerConfig, next_idx: u64) {
        let members = config.members();
        self.progress.retain(|id, _| members.contains(id));
        for id in &members {
            let learner = config.learners.contains(id) || config.learners_next.contains(id);
            let fresh = self.new_progress(next_idx, learner);
            self.progress.entry(*id).or_insert(fresh).is_learner = learner;
        }
        self.config = config;
    }

    /// Whether `id` is a voter (in either half).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.config.voters.contains(id)
    }

    /// Highest index replicated on a quorum (joint-aware).
    pub fn committed_index(&self) -> u64 {
        let progress = &self.progress;
        self.config
            .voters
            .committed_index(|id| progress.get(&id).map_or(0, |p| p.matched))
    }

    /// Clears the votes of the last election.
    pub fn reset_votes(&mut self) {
        self.votes.clear();
    }

    /// Records `id`'s vote (the first vote from a peer counts).
    pub fn record_vote(&mut self, id: NodeId, granted: bool) {
        self.votes.entry(id).or_insert(granted);
    }

    /// The election outcome so far.
    pub fn tally_votes(&self) -> VoteResult {
        self.config.voters.vote_result(&self.votes)
    }

    /// Whether the voters recently heard from (and `self_id`) form a quorum
    /// (check-quorum, thesis §6.2).
    pub fn quorum_active(&self, self_id: NodeId) -> bool {
        let votes: BTreeMap<NodeId, bool> = self
            .progress
            .iter()
            .filter(|(id, _)| self.is_voter(**id))
            .map(|(id, p)| (*id, p.recent_active || *id == self_id))
            .collect();
        self.config.voters.vote_result(&votes) == VoteResult::Won
    }
}
