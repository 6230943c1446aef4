//! Membership changes in the driver: proposing a conf change for a handle,
//! applying an accepted one to Raft's configuration, answering its waiter,
//! pointing the peer senders at the members, and noticing this member's
//! own removal. Whether a change is accepted is the kernel's rule
//! (`keel_kernel::membership`, applied with the entry).

use std::collections::BTreeMap;

use keel_kernel::apply::{ApplyError, ApplyResult, ConfChangeApplied};
use keel_kernel::membership::MembershipError;
use keel_kernel::raft::{ConfChange, ConfChangeType, RaftError};
use keel_wal::Storage;

use super::Driver;
use crate::node::conf_waiters::ConfReply;
use crate::replica::ServerError;

impl<S: Storage> Driver<S> {
    /// Proposes `change`; `reply` is answered once it is applied, or now
    /// when Raft refuses it (a learner not in sync, a change that would
    /// cost the active quorum, no leader) or too many changes wait.
    pub(super) fn propose_conf_change(&mut self, change: ConfChange, reply: ConfReply) {
        if self.conf_waiters.is_full() {
            let _ = reply.send(Err(ServerError::TooManyRequests));
            return;
        }
        match self.raw.propose_conf_change(&change) {
            Ok(()) => self.conf_waiters.push(change, reply),
            Err(RaftError::LearnerNotReady { id }) => {
                tracing::info!(learner = %format!("{id:x}"), "promotion refused: learner not in sync");
                let refusal = ApplyError::Membership(MembershipError::LearnerNotReady);
                let _ = reply.send(Err(ServerError::Apply(refusal)));
            }
            Err(err @ RaftError::Unhealthy { .. }) => {
                tracing::warn!(%err, "membership change refused: it would cost the active quorum");
                let _ = reply.send(Err(ServerError::Unhealthy));
            }
            Err(err) => {
                tracing::info!(%err, "membership change refused by raft");
                let _ = reply.send(Err(self.no_leader_error()));
            }
        }
    }

    /// A conf change entry was applied: an accepted change reconfigures
    /// Raft and the peer senders; its waiter (if this member proposed it)
    /// learns the outcome.
    pub(super) fn on_conf_change_applied(
        &mut self,
        applied: ConfChangeApplied,
        result: &ApplyResult,
    ) {
        if applied.accepted {
            self.reconfigure(&applied.change, result.index);
        }
        let outcome = match &result.result {
            Ok(_) => Ok(()),
            Err(err) => Err(ServerError::Apply(err.clone())),
        };
        self.conf_waiters.complete(&applied.change, outcome);
    }

    fn reconfigure(&mut self, change: &ConfChange, index: u64) {
        match self.raw.apply_conf_change(change) {
            Ok(conf_state) => self.raw.storage_mut().set_conf_state(conf_state),
            Err(err) => tracing::warn!(%err, "raft refused an accepted conf change"),
        }
        self.refresh_peers();
        tracing::info!(index, changes = ?change.changes, "applied membership change");
        let member_id = self.shared.member_id;
        let removes_self = change
            .changes
            .iter()
            .any(|c| c.change_type == ConfChangeType::RemoveNode && c.node_id == member_id);
        if removes_self {
            self.learn_removed("applied its own removal");
        }
    }

    /// This member was removed from the cluster: it stops one election
    /// timeout later (etcd `stopWithDelay`: ten ticks), leaving time to
    /// answer the client that removed it.
    pub(super) fn learn_removed(&mut self, how: &str) {
        let now_ms = self.shared.now_ms();
        let delay_ms = self.settings.election_timeout_ms;
        self.removal
            .removed(self.shared.member_id, how, now_ms, delay_ms);
    }

    /// Points the peer senders at the current members' first peer URLs.
    pub(super) fn refresh_peers(&mut self) {
        let members: BTreeMap<u64, String> = {
            let state = self.shared.read_state();
            state
                .cluster()
                .members()
                .into_iter()
                .filter(|m| m.id != self.shared.member_id)
                .filter_map(|m| m.peer_urls.first().map(|url| (m.id, url.clone())))
                .collect()
        };
        if members.is_empty() && !self.known_peers.is_empty() {
            self.peers.set_members(&self.known_peers);
        } else {
            self.peers.set_members(&members);
        }
    }
}
