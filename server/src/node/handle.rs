//! [`NodeHandle`]: what the API layer holds to reach a running member. It
//! implements [`Replica`] by registering waiters, sending commands to the
//! node driver's bounded queue and reading the shared applied state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLockReadGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use keel_kernel::apply::{ApplyError, ApplyResult, Request, RequestEnvelope, StateMachine};
use keel_kernel::auth::{AuthError, AuthInfo};
use keel_kernel::lease::{LeaseId, LeaseRenewal, LeaseStatus};
use keel_kernel::membership::{Member, MembershipRequest};
use keel_kernel::raft::ConfChange;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;
use tonic::transport::Channel;

use super::driver::AppliedState;
use super::proposals::{Proposals, RequestIds};
use super::read_index::ReadOutcome;
use super::settings::NodeSettings;
use crate::api::watch_gauges::WatchGauges;
use crate::proto::keelpeerpb::peer_client::PeerClient;
use crate::replica::{
    AppliedEvents, MemberChange, NodeStatus, ProposalCounts, Replica, ServerError,
    bounded_by_call_expiry,
};
use crate::transport::conf_change::{ConfChangeReceiver, forward_conf_change, wait_conf_change};
use crate::transport::lease::{LeaseAuthority, MembersRead, forward_renew, forward_time_to_live};

/// Proposals waiting for apply at once, per member.
pub const PROPOSALS_MAX: usize = 16 * 1024;
/// Applied-event batches buffered for slow watch streams.
pub const EVENTS_BUFFER: usize = 4096;
/// Longest wait between two attempts to publish this member's attributes
/// while the leader stays the same.
pub const PUBLISH_RETRY_MS: u64 = 500;

/// What the handle asks of the driver.
#[derive(Debug)]
pub enum Command {
    /// Propose an encoded request; a waiter is registered under `id` (0: none).
    Propose {
        /// Request id (0 when nobody waits).
        id: u64,
        /// Encoded [`RequestEnvelope`].
        data: Bytes,
    },
    /// A linearizable read waiting for a ReadIndex round.
    Read(oneshot::Sender<ReadOutcome>),
    /// Hand leadership to a member (answered by watching the leader).
    TransferLeader {
        /// The member to lead next.
        transferee: u64,
    },
    /// A leader that is shutting down hands leadership to its most
    /// up-to-date voter; answered with that voter (`None`: not the leader,
    /// or no other voter). See `shutdown.rs`.
    TransferOnShutdown(oneshot::Sender<Option<u64>>),
    /// A membership change, answered once applied.
    ConfChange {
        /// The change.
        change: ConfChange,
        /// Told the outcome once the entry is applied.
        reply: oneshot::Sender<Result<(), ServerError>>,
    },
}

/// State shared by the driver and every handle.
pub struct Shared {
    /// This member's id.
    pub member_id: u64,
    /// The cluster id.
    pub cluster_id: u64,
    /// Settings the member runs with.
    pub settings: NodeSettings,
    /// The applied state and the member-local state beside it; only the
    /// driver can write the former.
    pub state: AppliedState,
    /// Raft view for Status and headers (the driver refreshes it).
    pub status: Mutex<NodeStatus>,
    /// Waiting proposals.
    pub proposals: Mutex<Proposals>,
    /// Request id generator.
    pub ids: Mutex<RequestIds>,
    /// The driver's command queue.
    pub commands: mpsc::Sender<Command>,
    /// Applied events for watchers.
    pub events: broadcast::Sender<AppliedEvents>,
    /// When the member started (its monotonic clock's origin).
    pub started: Instant,
    /// Peer clients to leaders, by peer URL, for forwarded lease requests.
    pub lease_clients: Mutex<BTreeMap<String, PeerClient<Channel>>>,
    /// The leader this member knows (0: none); the driver sends every
    /// change, so a task can wait for a leader instead of polling.
    pub leader: watch::Sender<u64>,
    /// Turns `true` when the member stops because it was removed from the
    /// cluster (see `removal.rs`).
    pub removed: watch::Sender<bool>,
    /// Holds why, once the member stopped taking part in Raft for good
    /// because its log lost entries it had acknowledged (see
    /// `RaftError::LogLost`); the binary then exits, as etcd does.
    pub failed: watch::Sender<Option<String>>,
    /// Open watch streams and watchers (counted by the watch streams).
    pub watch_gauges: Arc<WatchGauges>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Read access to the applied state.
    pub fn read_state(&self) -> RwLockReadGuard<'_, StateMachine> {
        self.state.read()
    }

    /// The status record.
    pub fn status(&self) -> MutexGuard<'_, NodeStatus> {
        lock(&self.status)
    }

    /// The proposal waiters.
    pub fn proposals(&self) -> MutexGuard<'_, Proposals> {
        lock(&self.proposals)
    }

    /// Milliseconds since the member started.
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }
}

/// A running member, as the API layer sees it. Cheap to clone.
#[derive(Clone)]
pub struct NodeHandle {
    shared: Arc<Shared>,
}

/// Milliseconds since the Unix epoch (wall clock), 0 if the clock is before it.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl NodeHandle {
    /// A handle over `shared`.
    pub fn new(shared: Arc<Shared>) -> NodeHandle {
        NodeHandle { shared }
    }

    /// The shared state (for the driver and tests).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// This member's id.
    pub fn member_id(&self) -> u64 {
        self.shared.member_id
    }

    /// Encodes `request`, checks `--max-request-bytes`, registers a waiter,
    /// queues the proposal and waits for its apply result or the timeout.
    async fn propose_request(
        &self,
        request: Request,
        auth: Option<AuthInfo>,
    ) -> Result<ApplyResult, ServerError> {
        let id = lock(&self.shared.ids).next_id();
        let envelope = RequestEnvelope { id, auth, request };
        let data = envelope
            .encode()
            .map_err(|_| ServerError::RequestTooLarge)?;
        if self.shared.settings.limits.is_too_large(data.len()) {
            return Err(ServerError::RequestTooLarge);
        }
        let rx = self.shared.proposals().register(id)?;
        if let Err(err) = self.send_command(Command::Propose { id, data }) {
            self.shared.proposals().cancel(id);
            return Err(err);
        }
        let wait = bounded_by_call_expiry(self.shared.settings.request_timeout());
        match tokio::time::timeout(wait, rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => {
                self.shared.proposals().cancel(id);
                Err(ServerError::Timeout)
            }
        }
    }

    /// Queues a request nobody waits for (lease checkpoints).
    fn propose_detached(&self, request: Request) {
        let envelope = RequestEnvelope {
            id: 0,
            auth: None,
            request,
        };
        if let Ok(data) = envelope.encode() {
            let _ = self
                .shared
                .commands
                .try_send(Command::Propose { id: 0, data });
        }
    }

    /// Publishes this member's name and client URLs through Raft once a
    /// leader exists (etcd `publishV3`, on every start): proposes as soon as
    /// a leader is known and again at each leader change or failed attempt,
    /// until it is applied or the member stops.
    ///
    /// Returns a receiver that turns `true` once the attributes are applied
    /// (etcd's `ReadyNotify`: clients are served only from then on); its
    /// sender is dropped without turning `true` if the member stops first.
    pub fn publish_attributes_in_background(&self) -> watch::Receiver<bool> {
        let handle = self.clone();
        let (published_tx, published_rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut leader = handle.shared.leader.subscribe();
            loop {
                if leader.wait_for(|id| *id != 0).await.is_err() {
                    return;
                }
                match handle.propose_request(handle.attributes(), None).await {
                    Ok(_) => {
                        let name = &handle.shared.settings.name;
                        tracing::info!(%name, "published member attributes; ready to serve client requests");
                        let _ = published_tx.send(true);
                        return;
                    }
                    Err(ServerError::Stopped) => return,
                    Err(err) => handle.before_publishing_again(&err, &mut leader).await,
                }
            }
        });
        published_rx
    }

    /// This member's attributes as a `MemberAttrSet` request.
    fn attributes(&self) -> Request {
        Request::MemberAttrSet {
            member_id: self.member_id(),
            name: self.shared.settings.name.clone(),
            client_urls: self.shared.settings.client_urls.clone(),
        }
    }

    /// Waits after a failed attempt to publish: until the leader changes
    /// (at once if it changed during the attempt), at most
    /// [`PUBLISH_RETRY_MS`] (the leader may be known yet unreachable).
    async fn before_publishing_again(&self, err: &ServerError, leader: &mut watch::Receiver<u64>) {
        tracing::debug!(?err, "publishing member attributes failed; retrying");
        let _ =
            tokio::time::timeout(Duration::from_millis(PUBLISH_RETRY_MS), leader.changed()).await;
    }

    fn is_leader(&self) -> bool {
        let status = self.shared.status();
        status.leader_id == self.shared.member_id
    }

    /// The conf change for a client's membership change, checked against
    /// the applied cluster (`keel_kernel::membership`'s rules).
    fn conf_change_for(&self, change: &MemberChange) -> Result<(ConfChange, u64), ServerError> {
        let request = match change {
            MemberChange::Add {
                peer_urls,
                is_learner,
            } => MembershipRequest::Add {
                peer_urls: peer_urls.clone(),
                is_learner: *is_learner,
            },
            MemberChange::Remove { member_id } => MembershipRequest::Remove {
                member_id: *member_id,
            },
            MemberChange::Promote { member_id } => MembershipRequest::Promote {
                member_id: *member_id,
            },
            MemberChange::Update { .. } => {
                return Err(ServerError::Apply(ApplyError::BadEntry(
                    "member update is not a conf change".to_owned(),
                )));
            }
        };
        let token = &self.shared.settings.initial_cluster_token;
        self.with_state(|sm| {
            sm.cluster()
                .conf_change_for(&request, token, unix_ms() / 1000)
        })
        .map_err(|e| ServerError::Apply(ApplyError::Membership(e)))
    }

    fn members_after(&self, id: u64, removed: Option<Member>) -> (Member, Vec<Member>) {
        self.with_state(|sm| {
            let members: Vec<Member> = sm.cluster().members().into_iter().cloned().collect();
            let member = sm
                .cluster()
                .member(id)
                .cloned()
                .or(removed)
                .unwrap_or_else(|| Member {
                    id,
                    name: String::new(),
                    peer_urls: Vec::new(),
                    client_urls: Vec::new(),
                    is_learner: false,
                });
            (member, members)
        })
    }
}

impl Replica for NodeHandle {
    async fn propose(
        &self,
        request: Request,
        auth: Option<AuthInfo>,
    ) -> Result<ApplyResult, ServerError> {
        self.propose_request(request, auth).await
    }

    async fn linearizable_barrier(&self) -> Result<(), ServerError> {
        let (tx, rx) = oneshot::channel();
        self.send_command(Command::Read(tx))?;
        match tokio::time::timeout(self.shared.settings.request_timeout(), rx).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::Timeout),
        }
    }

    fn with_state<R>(&self, read: impl FnOnce(&StateMachine) -> R) -> R {
        read(&self.shared.read_state())
    }

    fn authenticate_token(&self, token: &str) -> Result<AuthInfo, AuthError> {
        let now_ms = self.shared.now_ms();
        self.shared.state.with_local(|state, local| {
            if !state.auth().is_enabled() {
                return Ok(AuthInfo::default());
            }
            local.authenticate_token(state, token, now_ms)
        })
    }

    fn status(&self) -> NodeStatus {
        let mut status = self.shared.status().clone();
        status.raft_applied_index = self.shared.read_state().applied_index();
        status
    }

    fn proposal_counts(&self) -> ProposalCounts {
        let proposals = self.shared.proposals();
        ProposalCounts {
            pending: proposals.len() as u64,
            failed_total: proposals.failed_total(),
        }
    }

    fn watch_gauges(&self) -> Arc<WatchGauges> {
        Arc::clone(&self.shared.watch_gauges)
    }

    fn subscribe_events(&self) -> broadcast::Receiver<AppliedEvents> {
        self.shared.events.subscribe()
    }

    async fn lease_renew(&self, id: LeaseId) -> Result<LeaseRenewal, ServerError> {
        if self.is_leader() {
            return self.renew_as_confirmed_leader(id).await;
        }
        let mut client = self.leader_client().await?;
        let cluster_id = self.shared.cluster_id;
        let ttl_secs = self
            .with_timeout(forward_renew(&mut client, cluster_id, id))
            .await?;
        Ok(LeaseRenewal {
            ttl_secs,
            checkpoint: None,
        })
    }

    async fn lease_time_to_live(
        &self,
        auth: Option<AuthInfo>,
        id: LeaseId,
        keys: bool,
    ) -> Result<LeaseStatus, ServerError> {
        // Permissions (and existence) are checked against the local state.
        let now_ms = self.shared.now_ms();
        let local = self
            .shared
            .state
            .with_local(|sm, local| local.lease_time_to_live(sm, auth.as_ref(), id, keys, now_ms))
            .map_err(ServerError::Apply)?;
        if self.is_leader() {
            return Ok(local);
        }
        let mut client = self.leader_client().await?;
        let cluster_id = self.shared.cluster_id;
        self.with_timeout(forward_time_to_live(&mut client, cluster_id, id, keys))
            .await
    }

    async fn change_membership(
        &self,
        change: MemberChange,
    ) -> Result<(Member, Vec<Member>), ServerError> {
        if let MemberChange::Update {
            member_id,
            peer_urls,
        } = &change
        {
            let request = Request::MemberUpdate {
                member_id: *member_id,
                peer_urls: peer_urls.clone(),
            };
            let applied = self.propose_request(request, None).await?;
            applied.result.map_err(ServerError::Apply)?;
            return Ok(self.members_after(*member_id, None));
        }
        let (conf_change, id) = self.conf_change_for(&change)?;
        let removed = self.with_state(|sm| sm.cluster().member(id).cloned());
        if self.is_leader() {
            let rx = self.send_conf_change(conf_change)?;
            wait_conf_change(rx, bounded_by_call_expiry(self.request_timeout())).await?;
        } else {
            self.change_at_leader(&conf_change).await?;
        }
        Ok(self.members_after(id, removed))
    }

    fn snapshot(&self) -> Bytes {
        Bytes::from(self.with_state(StateMachine::snapshot))
    }

    fn is_learner(&self) -> bool {
        self.shared.status().is_learner
    }

    fn jwt(&self) -> Option<Arc<crate::api::jwt::JwtTokens>> {
        self.shared.settings.jwt.clone()
    }

    fn bcrypt_cost(&self) -> u32 {
        self.shared.settings.operations.bcrypt_cost
    }

    async fn move_leader(&self, transferee: u64) -> Result<(), ServerError> {
        if !self.is_leader() {
            return Err(ServerError::NotLeader);
        }
        let voter = self.with_state(|state| {
            let member = state.cluster().member(transferee);
            member.is_some_and(|member| !member.is_learner)
        });
        if !voter {
            return Err(ServerError::BadLeaderTransferee);
        }
        let mut leader = self.shared.leader.subscribe();
        let command = Command::TransferLeader { transferee };
        self.send_command(command)?;
        let wait = bounded_by_call_expiry(self.request_timeout());
        match tokio::time::timeout(wait, leader.wait_for(|id| *id == transferee)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(ServerError::Stopped),
            Err(_) => Err(ServerError::LeaderTransferTimeout),
        }
    }
}

impl NodeHandle {
    /// Renews lease `id` in this member's lessor once a ReadIndex round
    /// (Raft thesis §6.4) confirmed, after the request arrived, that this
    /// member still leads: then any newer leader was elected after that
    /// confirmation and its lessor, promoted, lets every lease live at least
    /// its TTL from then. Without it a leader cut off from its quorum, not
    /// stepped down yet (it waits an election timeout on its own clock),
    /// renewed leases the new leader then expired: a lock holder lost its
    /// lock while its keep-alives were acknowledged (keel-sim's lock
    /// workload, `clock-skew`). etcd 3.5 checks the same way
    /// (`ensureLeadership`), skipping the round while its ticks are on time.
    /// Errors: as [`LeaseAuthority::renew_here`].
    async fn renew_as_confirmed_leader(&self, id: LeaseId) -> Result<LeaseRenewal, ServerError> {
        if !self.is_leader() {
            return Err(self.not_leader_error());
        }
        self.linearizable_barrier().await?;
        self.renew_in_lessor(id)
    }

    /// Renews lease `id` in this member's lessor if it is the leader (see
    /// [`NodeHandle::renew_as_confirmed_leader`] for why that is not enough).
    fn renew_in_lessor(&self, id: LeaseId) -> Result<LeaseRenewal, ServerError> {
        if !self.is_leader() {
            return Err(self.not_leader_error());
        }
        let now_ms = self.shared.now_ms();
        let renewal = self
            .shared
            .state
            .with_local(|sm, local| local.lease_renew(sm, id, now_ms))
            .map_err(ServerError::Apply)?;
        if let Some(checkpoint) = renewal.checkpoint {
            self.propose_detached(Request::LeaseCheckpoint(vec![checkpoint]));
        }
        Ok(renewal)
    }
}

impl LeaseAuthority for NodeHandle {
    fn renew_here(&self, id: LeaseId) -> BoxFuture<'static, Result<LeaseRenewal, ServerError>> {
        let handle = self.clone();
        Box::pin(async move { handle.renew_as_confirmed_leader(id).await })
    }

    fn members_for_joiner(&self, barrier: Duration) -> BoxFuture<'static, MembersRead> {
        let handle = self.clone();
        Box::pin(async move {
            let confirmed = tokio::time::timeout(barrier, handle.linearizable_barrier()).await;
            let linearizable = matches!(confirmed, Ok(Ok(())));
            let (members, applied_index) = handle.with_state(|sm| {
                let members = sm.cluster().members().into_iter().cloned().collect();
                (members, sm.applied_index())
            });
            MembersRead {
                members,
                linearizable,
                applied_index,
            }
        })
    }

    fn propose_conf_change_here(
        &self,
        change: ConfChange,
    ) -> Result<ConfChangeReceiver, ServerError> {
        if !self.is_leader() {
            return Err(self.not_leader_error());
        }
        self.send_conf_change(change)
    }

    fn request_timeout(&self) -> Duration {
        self.shared.settings.request_timeout()
    }

    fn is_removed_here(&self, id: u64) -> bool {
        self.with_state(|sm| sm.cluster().is_removed(id))
    }

    fn time_to_live_here(&self, id: LeaseId, keys: bool) -> Result<LeaseStatus, ServerError> {
        if !self.is_leader() {
            return Err(self.not_leader_error());
        }
        let now_ms = self.shared.now_ms();
        self.shared
            .state
            .with_local(|sm, local| local.lease_time_to_live(sm, None, id, keys, now_ms))
            .map_err(ServerError::Apply)
    }
}

impl NodeHandle {
    /// Hands a membership change to this member's driver; the receiver
    /// answers once it is applied, or refused.
    /// Errors: `TooManyRequests` when the driver's queue is full, `Stopped`.
    fn send_conf_change(&self, change: ConfChange) -> Result<ConfChangeReceiver, ServerError> {
        let (tx, rx) = oneshot::channel();
        self.send_command(Command::ConfChange { change, reply: tx })?;
        Ok(rx)
    }

    /// Queues `command` for the driver without waiting.
    /// Errors: `TooManyRequests` when its queue is full, `Stopped` when the
    /// driver is gone.
    pub(super) fn send_command(&self, command: Command) -> Result<(), ServerError> {
        self.shared
            .commands
            .try_send(command)
            .map_err(|err| match err {
                mpsc::error::TrySendError::Full(_) => ServerError::TooManyRequests,
                mpsc::error::TrySendError::Closed(_) => ServerError::Stopped,
            })
    }

    /// A follower's membership change: the leader checks and makes it (see
    /// `transport::conf_change`); then this member catches up with the
    /// leader's commit so the member list it answers includes the change
    /// (best effort: a member that removed itself stops meanwhile).
    /// Errors: the leader's refusal; `NoLeader`, `ProposalDropped`, `Timeout`.
    async fn change_at_leader(&self, change: &ConfChange) -> Result<(), ServerError> {
        let mut client = self.leader_client().await?;
        let cluster_id = self.shared.cluster_id;
        self.with_timeout(forward_conf_change(&mut client, cluster_id, change))
            .await?;
        if let Err(err) = self.linearizable_barrier().await {
            tracing::debug!(?err, "membership change made; local catch-up failed");
        }
        Ok(())
    }

    /// A peer client to the current leader (cached per peer URL).
    /// Errors: `NoLeader` when no leader is known or it cannot be reached.
    async fn leader_client(&self) -> Result<PeerClient<Channel>, ServerError> {
        let leader_id = self.shared.status().leader_id;
        if leader_id == 0 {
            return Err(ServerError::NoLeader);
        }
        let url = self
            .with_state(|sm| {
                sm.cluster()
                    .member(leader_id)
                    .and_then(|m| m.peer_urls.first().cloned())
            })
            .ok_or(ServerError::NoLeader)?;
        if let Some(client) = lock(&self.shared.lease_clients).get(&url) {
            return Ok(client.clone());
        }
        let dialer = &self.shared.settings.peer_dialer;
        let channel = self
            .with_timeout(async {
                dialer
                    .connect(&url)
                    .await
                    .map_err(|_| ServerError::NoLeader)
            })
            .await?;
        let client = PeerClient::new(channel);
        lock(&self.shared.lease_clients).insert(url, client.clone());
        Ok(client)
    }

    /// Runs `work` within the request timeout. Errors: `Timeout`, or `work`'s.
    async fn with_timeout<T>(
        &self,
        work: impl Future<Output = Result<T, ServerError>>,
    ) -> Result<T, ServerError> {
        tokio::time::timeout(self.shared.settings.request_timeout(), work)
            .await
            .unwrap_or(Err(ServerError::Timeout))
    }

    fn not_leader_error(&self) -> ServerError {
        if self.shared.status().leader_id == 0 {
            ServerError::NoLeader
        } else {
            ServerError::Apply(ApplyError::Lease(
                keel_kernel::lease::LeaseError::NotPrimary,
            ))
        }
    }
}
