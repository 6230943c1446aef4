//! A single-member [`Replica`] for the API layer's own tests: requests are
//! applied at once to a real kernel [`StateMachine`] as if this member were
//! the leader of a one-member cluster (no Raft, no disk). The node driver
//! has its own tests; these exercise the gRPC services end to end through a
//! loopback tonic server.
//!
//! As the node driver does, it broadcasts an entry's applied events after
//! releasing the state lock, so watchers see the same window in which the
//! state is ahead of the events offered to them. A replica made with
//! [`TestReplica::with_deferred_events`] keeps that window open until the
//! test calls [`TestReplica::release_events`].

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use keel_kernel::apply::{
    ApplyError, ApplyResult, LocalState, Request, RequestEnvelope, StateMachine, StateMachineConfig,
};
use keel_kernel::auth::{AuthError, AuthInfo};
use keel_kernel::lease::{LeaseId, LeaseRenewal, LeaseStatus};
use keel_kernel::membership::{Cluster, Member};
use keel_kernel::raft::{Entry, EntryType};
use tokio::sync::broadcast;

use crate::api::watch_gauges::WatchGauges;
use crate::replica::{
    AppliedEvents, MemberChange, NodeStatus, ProposalCounts, Replica, ServerError,
};

/// The test member's clock, in ms: it stands still, so no lease or token
/// expires during a test.
const NOW_MS: u64 = 1;

struct Inner {
    state: StateMachine,
    /// Lease clocks and tokens beside the state, as the node keeps them.
    local: LocalState,
    next_request_id: u64,
}

/// The test replica; clones share one state machine.
#[derive(Clone)]
pub struct TestReplica {
    inner: Arc<Mutex<Inner>>,
    events: broadcast::Sender<AppliedEvents>,
    /// Applied events not yet broadcast, in apply order.
    unsent: Arc<Mutex<VecDeque<AppliedEvents>>>,
    /// Broadcast only when the test says so.
    defer_events: bool,
    member_id: u64,
    watch_gauges: Arc<WatchGauges>,
}

impl TestReplica {
    /// A fresh single-member cluster whose event channel holds
    /// `event_capacity` applied entries.
    pub fn new(event_capacity: usize) -> TestReplica {
        let member = Member::new(
            "default",
            &["http://127.0.0.1:2380".to_string()],
            "keel-test",
            None,
            false,
        );
        let member_id = member.id;
        let cluster = Cluster::bootstrap(vec![member]).unwrap();
        let state = StateMachine::new(StateMachineConfig::new(1000), cluster);
        let mut local = LocalState::new(state.config());
        local.lease_promote(&state, NOW_MS, 0);
        let (events, _) = broadcast::channel(event_capacity);
        TestReplica {
            inner: Arc::new(Mutex::new(Inner {
                state,
                local,
                next_request_id: 1,
            })),
            events,
            unsent: Arc::default(),
            defer_events: false,
            member_id,
            watch_gauges: WatchGauges::new(),
        }
    }

    /// As [`TestReplica::new`], but applied events are broadcast only by
    /// [`TestReplica::release_events`].
    pub fn with_deferred_events(event_capacity: usize) -> TestReplica {
        TestReplica {
            defer_events: true,
            ..TestReplica::new(event_capacity)
        }
    }

    /// Broadcasts up to `max` applied entries' events, oldest first;
    /// returns how many were sent.
    pub fn release_events(&self, max: usize) -> usize {
        // Held while sending, so concurrent releases keep apply order.
        let mut unsent = self.unsent.lock().unwrap();
        let mut sent = 0;
        while sent < max {
            let Some(applied) = unsent.pop_front() else {
                break;
            };
            // No receiver is fine: nobody watches.
            let _ = self.events.send(applied);
            sent += 1;
        }
        sent
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Replaces the state with `other`'s, as a follower installs its
    /// leader's snapshot (the node driver's `install_snapshot`), and
    /// queues the restore notice for the watch streams.
    pub fn install_snapshot_of(&self, other: &TestReplica) {
        let data = other.lock().state.snapshot();
        let mut inner = self.lock();
        let restored = StateMachine::restore(StateMachineConfig::new(1000), &data).unwrap();
        let revision = restored.store().current_revision();
        inner.local.reset();
        inner.local.lease_promote(&restored, NOW_MS, 0);
        inner.state = restored;
        self.unsent.lock().unwrap().push_back(AppliedEvents {
            revision,
            events: Vec::new(),
            restored: true,
        });
        drop(inner);
        if !self.defer_events {
            self.release_events(usize::MAX);
        }
    }

    fn apply(&self, request: Request, auth: Option<AuthInfo>) -> Result<ApplyResult, ServerError> {
        let mut inner = self.lock();
        let id = inner.next_request_id;
        inner.next_request_id += 1;
        let data = RequestEnvelope { id, auth, request }
            .encode()
            .map_err(|_| ServerError::RequestTooLarge)?;
        let entry = Entry {
            term: 1,
            index: inner.state.applied_index() + 1,
            entry_type: EntryType::Normal,
            data,
        };
        let result = inner.state.apply(&entry);
        let Inner { state, local, .. } = &mut *inner;
        local.follow(state, &result, NOW_MS);
        if !result.events.is_empty() {
            // Queued under the state lock, so the queue is in apply order.
            self.unsent.lock().unwrap().push_back(AppliedEvents {
                revision: result.header.revision,
                events: result.events.clone(),
                restored: false,
            });
        }
        drop(inner);
        if !self.defer_events {
            self.release_events(usize::MAX);
        }
        Ok(result)
    }
}

impl Replica for TestReplica {
    async fn propose(
        &self,
        request: Request,
        auth: Option<AuthInfo>,
    ) -> Result<ApplyResult, ServerError> {
        self.apply(request, auth)
    }

    async fn linearizable_barrier(&self) -> Result<(), ServerError> {
        Ok(())
    }

    fn with_state<R>(&self, read: impl FnOnce(&StateMachine) -> R) -> R {
        read(&self.lock().state)
    }

    fn authenticate_token(&self, token: &str) -> Result<AuthInfo, AuthError> {
        let Inner { state, local, .. } = &mut *self.lock();
        match state.auth().is_enabled() {
            true => local.authenticate_token(state, token, NOW_MS),
            false => Ok(AuthInfo::default()),
        }
    }

    fn status(&self) -> NodeStatus {
        let inner = self.lock();
        NodeStatus {
            member_id: self.member_id,
            cluster_id: inner.state.cluster().cluster_id(),
            leader_id: self.member_id,
            raft_term: 1,
            raft_index: inner.state.applied_index(),
            raft_applied_index: inner.state.applied_index(),
            raft_commit_index: inner.state.applied_index(),
            is_learner: false,
            db_size_bytes: 4096,
            disk_full: false,
            db_size_quota_bytes: 0,
            snapshots_installed: 0,
            alarm_checks: 0,
            leader_changes_seen: 1,
        }
    }

    fn proposal_counts(&self) -> ProposalCounts {
        ProposalCounts::default()
    }

    fn watch_gauges(&self) -> Arc<WatchGauges> {
        Arc::clone(&self.watch_gauges)
    }

    fn subscribe_events(&self) -> broadcast::Receiver<AppliedEvents> {
        self.events.subscribe()
    }

    async fn lease_renew(&self, id: LeaseId) -> Result<LeaseRenewal, ServerError> {
        let Inner { state, local, .. } = &mut *self.lock();
        local
            .lease_renew(state, id, NOW_MS)
            .map_err(ServerError::Apply)
    }

    async fn lease_time_to_live(
        &self,
        auth: Option<AuthInfo>,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseStatus, ServerError> {
        let inner = self.lock();
        inner
            .local
            .lease_time_to_live(&inner.state, auth.as_ref(), id, keys, NOW_MS)
            .map_err(ServerError::Apply)
    }

    async fn change_membership(
        &self,
        _change: MemberChange,
    ) -> Result<(Member, Vec<Member>), ServerError> {
        Err(ServerError::Apply(ApplyError::Membership(
            keel_kernel::membership::MembershipError::NotFound,
        )))
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(self.lock().state.snapshot())
    }

    /// The only member leads already: moving leadership to it is done,
    /// to anyone else refused.
    async fn move_leader(&self, transferee: u64) -> Result<(), ServerError> {
        match transferee == self.member_id {
            true => Ok(()),
            false => Err(ServerError::BadLeaderTransferee),
        }
    }
}
