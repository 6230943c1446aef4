//! The leader's bookkeeping of the cluster: the configuration in force
//! (voters, learners), each peer's [`Progress`], and votes in an election
//! (etcd-io/raft `tracker.ProgressTracker`).

use super::inflights::Inflights;
use super::progress::Progress;
use super::quorum::{JointConfig, VoteResult};
use super::{ConfState, NodeId};
use crate::invariant::{InvariantViolation, ensure};
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

    /// The first rule of a configuration that does not hold, if any:
    /// learners and voters are disjoint, `learners_next` holds only
    /// outgoing voters that are not incoming ones, and `auto_leave` is set
    /// only while joint. (A configuration may have no voters: a node that
    /// has not joined yet; a change that removes every voter is refused by
    /// `confchange`.)
    pub fn inconsistency(&self) -> Option<String> {
        if let Some(id) = self.learners.iter().find(|id| self.voters.contains(**id)) {
            return Some(format!("{id} is in learners and voters"));
        }
        let bad_next = self
            .learners_next
            .iter()
            .find(|id| !self.voters.outgoing.contains(id) || self.voters.incoming.contains(id));
        if let Some(id) = bad_next {
            return Some(format!(
                "{id} is in learners_next but not only an outgoing voter"
            ));
        }
        if !self.voters.is_joint() && self.auto_leave {
            return Some("auto_leave set outside a joint config".into());
        }
        None
    }

    /// Checks the configuration's rules (see [`TrackerConfig::inconsistency`]).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        match self.inconsistency() {
            Some(detail) => Err(InvariantViolation {
                structure: "tracker config",
                detail,
            }),
            None => Ok(()),
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
    ///
    /// Panics if `config` breaks a rule of [`TrackerConfig::inconsistency`]
    /// (say, a node both voter and learner): `confchange` never builds one,
    /// so a member holding one must stop rather than count votes by it.
    /// O(members), once per configuration change, so checked in release.
    pub fn apply_config(&mut self, config: TrackerConfig, next_idx: u64) {
        if let Some(why) = config.inconsistency() {
            panic!("progress tracker: installing an inconsistent configuration: {why}");
        }
        let members = config.members();
        self.progress.retain(|id, _| members.contains(id));
        for id in &members {
            let learner = config.learners.contains(id) || config.learners_next.contains(id);
            let fresh = self.new_progress(next_idx, learner);
            self.progress.entry(*id).or_insert(fresh).is_learner = learner;
        }
        self.config = config;
    }

    /// Checks the configuration, that exactly its members have a progress,
    /// that each progress knows whether its peer is a learner, and each
    /// progress's own rules. O(members).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        const STRUCTURE: &str = "progress tracker";
        self.config.check_invariants()?;
        let members = self.config.members();
        let tracked: BTreeSet<NodeId> = self.progress.keys().copied().collect();
        ensure(members == tracked, STRUCTURE, || {
            format!("members {members:?} but progress for {tracked:?}")
        })?;
        for (id, pr) in &self.progress {
            let learner =
                self.config.learners.contains(id) || self.config.learners_next.contains(id);
            ensure(pr.is_learner == learner, STRUCTURE, || {
                format!(
                    "progress of {id} says learner {}, config {learner}",
                    pr.is_learner
                )
            })?;
            pr.check_invariants().map_err(|e| InvariantViolation {
                structure: STRUCTURE,
                detail: format!("peer {id}: {e}"),
            })?;
        }
        Ok(())
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

    /// The voter other than `self_id` whose log is the most up to date: among
    /// the recently active voters (any, if none is), the highest match
    /// index, then the lowest id: where a leader that is shutting down hands leadership
    /// (etcd `TryTransferLeadershipOnShutdown` picks the longest-connected
    /// voter; keel prefers the one that needs the fewest entries to win).
    /// `None` when `self_id` is the only voter.
    pub fn most_up_to_date_voter(&self, self_id: NodeId) -> Option<NodeId> {
        self.progress
            .iter()
            .filter(|(id, _)| **id != self_id && self.is_voter(**id))
            .max_by_key(|(id, p)| (p.recent_active, p.matched, std::cmp::Reverse(**id)))
            .map(|(id, _)| *id)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tracker() -> ProgressTracker {
        let mut t = ProgressTracker::new(4, 1 << 20);
        let config = TrackerConfig {
            voters: JointConfig {
                incoming: [1, 2].into(),
                outgoing: BTreeSet::new(),
            },
            learners: [3].into(),
            ..TrackerConfig::default()
        };
        t.apply_config(config, 1);
        t
    }

    #[test]
    fn the_most_up_to_date_voter_is_chosen_and_never_a_learner() {
        let mut t = tracker();
        assert_eq!(t.most_up_to_date_voter(1), Some(2));
        assert_eq!(t.most_up_to_date_voter(2), Some(1));
        t.progress.get_mut(&3).unwrap().matched = 100;
        t.progress.get_mut(&2).unwrap().matched = 7;
        assert_eq!(t.most_up_to_date_voter(1), Some(2), "3 is a learner");
        let mut alone = ProgressTracker::new(4, 1 << 20);
        let config = TrackerConfig {
            voters: JointConfig {
                incoming: [1].into(),
                outgoing: BTreeSet::new(),
            },
            ..TrackerConfig::default()
        };
        alone.apply_config(config, 1);
        assert_eq!(alone.most_up_to_date_voter(1), None);
    }

    #[test]
    fn a_consistent_tracker_passes() {
        assert_eq!(tracker().check_invariants(), Ok(()));
        assert_eq!(
            ProgressTracker::new(1, 1).check_invariants(),
            Ok(()),
            "a node that has not joined"
        );
    }

    #[test]
    fn overlapping_sets_and_stray_progress_are_reported() {
        let mut t = tracker();
        t.config.learners.insert(2);
        let err = t.check_invariants().err().map(|e| e.detail);
        assert_eq!(err.as_deref(), Some("2 is in learners and voters"));

        let mut t = tracker();
        t.config.auto_leave = true;
        assert!(t.check_invariants().is_err(), "auto_leave outside joint");

        let mut t = tracker();
        let extra = t.new_progress(1, false);
        t.progress.insert(9, extra);
        assert!(t.check_invariants().is_err(), "progress of a non-member");

        let mut t = tracker();
        t.progress.get_mut(&3).unwrap().is_learner = false;
        assert!(t.check_invariants().is_err(), "learner flag out of date");

        let mut t = tracker();
        t.progress.get_mut(&1).unwrap().matched = 1;
        let err = t.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("peer 1: progress invariant violated: matched 1 >= next 1")
        );
    }

    #[test]
    #[should_panic(expected = "inconsistent configuration: 3 is in learners and voters")]
    fn installing_a_voter_that_is_a_learner_stops_the_member() {
        let mut t = tracker();
        let mut config = t.config.clone();
        config.voters.incoming.insert(3);
        t.apply_config(config, 1);
    }
}
