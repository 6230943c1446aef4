//! A learner may become a voter only once it has caught up with the
//! leader (etcd `server.go` `isLearnerReady`, `readyPercent`): promoting
//! one that is far behind, or that never started, adds a voter that cannot
//! vote, and a one-voter cluster that promotes it loses its quorum.
//!
//! The leader checks every proposed change, local or forwarded, so no
//! member can bypass it.

use super::raft::Raft;
use super::storage::Storage;
use super::{ConfChange, ConfChangeType, NodeId, RaftError};

/// A learner is in sync when its match index is at least this many tenths
/// of the leader's (etcd `readyPercent = 0.9`).
pub const LEARNER_READY_TENTHS: u64 = 9;

impl<S: Storage> Raft<S> {
    /// Checks that every learner `cc` promotes (an `AddNode` of a current
    /// learner) is in sync with this leader.
    ///
    /// Errors: [`RaftError::LearnerNotReady`] naming the first learner
    /// that is not.
    pub(crate) fn check_promotions(&self, cc: &ConfChange) -> Result<(), RaftError> {
        cc.changes
            .iter()
            .filter(|change| change.change_type == ConfChangeType::AddNode)
            .filter(|change| self.is_learner(change.node_id))
            .try_for_each(|change| self.check_learner_ready(change.node_id))
    }

    fn is_learner(&self, id: NodeId) -> bool {
        self.tracker
            .progress
            .get(&id)
            .is_some_and(|progress| progress.is_learner)
    }

    fn check_learner_ready(&self, id: NodeId) -> Result<(), RaftError> {
        let matched = |node| self.tracker.progress.get(&node).map_or(0, |p| p.matched);
        let (learner, leader) = (matched(id), matched(self.id));
        if learner.saturating_mul(10) >= leader.saturating_mul(LEARNER_READY_TENTHS) {
            Ok(())
        } else {
            Err(RaftError::LearnerNotReady { id })
        }
    }
}
