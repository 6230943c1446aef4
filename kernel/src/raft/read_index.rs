//! The leader's side of ReadIndex (Raft thesis §6.4): record the commit
//! index, confirm leadership by a heartbeat round (or the lease), release
//! the read to the local application or the asking follower.

use super::config::ReadOnlyOption;
use super::message::{Message, MessageType};
use super::raft::{Raft, StateRole};
use super::read_only::ReadState;
use super::storage::Storage;
use super::{NO_NODE, NodeId, RaftError};
use bytes::Bytes;

impl<S: Storage> Raft<S> {
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

    pub(crate) fn handle_read_index(&mut self, from: NodeId, ctx: Bytes) {
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

    pub(crate) fn release_pending_read_index(&mut self) {
        if !self.log.match_term(self.log.committed, self.term) {
            return;
        }
        let pending = std::mem::take(&mut self.pending_read_index);
        for (from, ctx) in pending {
            self.handle_read_index(from, ctx);
        }
    }

    pub(crate) fn respond_read_index(&mut self, from: NodeId, index: u64, ctx: Bytes) {
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
}
