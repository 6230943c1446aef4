//! No membership change may cost an active quorum (etcd `server.go`
//! `mayAddMember` / `isConnectedFullySince` and `mayRemoveMember` /
//! `numConnectedSince`, with `--strict-reconfig-check`, etcd's default):
//!
//! * a new voter may be added only while every voter is active: the new
//!   voter raises the quorum before it can vote, so one voter down beside
//!   it may be one too many;
//! * a voter may be removed if it is down (it is not part of the active
//!   quorum), else only if the active voters left still form a quorum.
//!
//! Adding or removing learners and promoting them (see `promotion`) are
//! not checked here. etcd asks its transport which peers it heard from in
//! the last 5 s; keel's leader knows the same from Raft: a peer is active
//! while it answered within the current or the previous check-quorum
//! window (one election timeout each). Without check-quorum no peer is
//! ever marked inactive, and every change passes.
//!
//! The leader checks every proposed change, local or forwarded.

use super::raft::Raft;
use super::storage::Storage;
use super::{ConfChange, ConfChangeType, NodeId, RaftError};

impl<S: Storage> Raft<S> {
    /// Checks that no change of `cc` leaves the voters without an active
    /// quorum (this node must be the leader).
    ///
    /// Errors: [`RaftError::Unhealthy`] naming the first change refused.
    pub(crate) fn check_active_quorum(&self, cc: &ConfChange) -> Result<(), RaftError> {
        for change in &cc.changes {
            let safe = match change.change_type {
                ConfChangeType::AddNode if self.is_new_member(change.node_id) => {
                    self.all_voters_active()
                }
                ConfChangeType::RemoveNode => self.may_remove_voter(change.node_id),
                ConfChangeType::AddNode | ConfChangeType::AddLearnerNode => true,
            };
            if !safe {
                return Err(RaftError::Unhealthy { change: *change });
            }
        }
        Ok(())
    }

    /// Whether the leader heard from `id` lately (itself always).
    fn is_recently_active(&self, id: NodeId) -> bool {
        id == self.id
            || self
                .tracker
                .progress
                .get(&id)
                .is_some_and(|pr| pr.recent_active || pr.active_last_window)
    }

    fn is_new_member(&self, id: NodeId) -> bool {
        !self.tracker.progress.contains_key(&id)
    }

    fn voters(&self) -> Vec<NodeId> {
        let ids = self.tracker.progress.keys().copied();
        ids.filter(|id| self.tracker.is_voter(*id)).collect()
    }

    /// etcd `isConnectedFullySince`.
    fn all_voters_active(&self) -> bool {
        self.voters().iter().all(|id| self.is_recently_active(*id))
    }

    /// etcd `mayRemoveMember`'s active-quorum part: a learner, or a voter
    /// that is down (and not the leader), may go; otherwise the active
    /// voters minus the removed one must be a quorum of the voters left.
    fn may_remove_voter(&self, id: NodeId) -> bool {
        if !self.tracker.is_voter(id) {
            return true;
        }
        if id != self.id && !self.is_recently_active(id) {
            return true;
        }
        let voters = self.voters();
        let active = voters
            .iter()
            .filter(|v| self.is_recently_active(**v))
            .count();
        active.saturating_sub(1) > (voters.len().saturating_sub(1)) / 2
    }
}
