//! The seam between the etcd API layer ([`crate::api`]: gRPC services) and the
//! node driver ([`crate::node`]: Raft, WAL, apply, peers).
//!
//! The API layer turns etcd requests into kernel requests and answers; the node
//! driver decides how they are ordered and made durable. Everything the API
//! layer needs from a running member goes through [`Replica`], so the services
//! can be read (and tested against a real node) without knowing how the driver
//! works.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use keel_kernel::apply::{ApplyError, ApplyResult, Request, StateMachine};
use keel_kernel::auth::{AuthError, AuthInfo};
use keel_kernel::lease::{LeaseId, LeaseRenewal, LeaseStatus};
use keel_kernel::membership::Member;
use keel_kernel::mvcc::Event;

use crate::api::watch_gauges::WatchGauges;

tokio::task_local! {
    /// When the API layer answers the current call itself (its client's
    /// gRPC deadline, see [`crate::api::deadline`]); unset when the call has
    /// no deadline.
    static CALL_EXPIRES: tokio::time::Instant;
}

/// How much earlier than the API layer's own expiry a wait in the node
/// gives up: a write that is not applied in time is answered as etcd
/// answers it (`etcdserver: request timed out`, gRPC Unavailable; etcd
/// `parseProposeCtxErr`), before the API layer would answer
/// `DEADLINE_EXCEEDED`.
pub const CALL_EXPIRY_MARGIN: Duration = Duration::from_millis(3);

/// Runs `call` knowing that its caller stops waiting at `expires`: waits
/// for apply inside it end by [`bounded_by_call_expiry`].
pub async fn with_call_expiry<F: Future>(expires: tokio::time::Instant, call: F) -> F::Output {
    CALL_EXPIRES.scope(expires, call).await
}

/// `timeout`, shortened so that it ends [`CALL_EXPIRY_MARGIN`] before the
/// current call expires (see [`with_call_expiry`]); `timeout` itself
/// outside such a call. Never negative: zero once the expiry is near.
pub fn bounded_by_call_expiry(timeout: Duration) -> Duration {
    let left = CALL_EXPIRES.try_with(|expires| {
        expires
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(CALL_EXPIRY_MARGIN)
    });
    left.map_or(timeout, |left| left.min(timeout))
}

/// Why the node could not serve a request. The API layer maps each variant
/// to etcd's gRPC status code and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// The request was ordered and applied, and the state machine refused it
    /// (its message is etcd's: "etcdserver: requested lease not found", ...).
    Apply(ApplyError),
    /// No leader is known: "etcdserver: no leader" (gRPC Unavailable).
    NoLeader,
    /// The request was not applied within the request timeout:
    /// "etcdserver: request timed out" (gRPC Unavailable). The write may or
    /// may not happen later.
    Timeout,
    /// The proposal was dropped (leader changed, or the leader is
    /// transferring): "etcdserver: request timed out, possibly due to
    /// previous leader failure" (gRPC Unavailable).
    ProposalDropped,
    /// The encoded request exceeds `--max-request-bytes`:
    /// "etcdserver: request is too large" (gRPC InvalidArgument).
    RequestTooLarge,
    /// Too many requests are waiting: "etcdserver: too many requests"
    /// (gRPC ResourceExhausted).
    TooManyRequests,
    /// The member is shutting down or was removed: "etcdserver: server stopped"
    /// (gRPC Unavailable).
    Stopped,
    /// A membership change refused because it would leave the voters
    /// without an active quorum (etcd `ErrUnhealthy`, strict
    /// reconfiguration check): "etcdserver: unhealthy cluster" (gRPC
    /// Unavailable).
    Unhealthy,
    /// MoveLeader sent to a member that is not the leader: "etcdserver: not
    /// leader" (gRPC FailedPrecondition).
    NotLeader,
    /// MoveLeader to a member that does not exist or is a learner:
    /// "etcdserver: bad leader transferee" (gRPC FailedPrecondition).
    BadLeaderTransferee,
    /// The transferee did not become leader in time: "etcdserver: request
    /// timed out, leader transfer took too long" (gRPC Unknown, as etcd's
    /// `togRPCError` answers it).
    LeaderTransferTimeout,
    /// A local storage failure (a failed write or fsync) that stopped this
    /// member; the message names the cause (gRPC Internal, "etcdserver: ...").
    /// A full disk is answered with `Apply(ApplyError::NoSpace)` instead.
    Storage(String),
}

/// A member's view of the cluster for Maintenance.Status and response headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeStatus {
    /// This member's id.
    pub member_id: u64,
    /// The cluster id.
    pub cluster_id: u64,
    /// Current leader's member id, or 0 when none is known.
    pub leader_id: u64,
    /// Current Raft term.
    pub raft_term: u64,
    /// Last Raft log index (etcd's `raftIndex`).
    pub raft_index: u64,
    /// Highest applied index (etcd's `raftAppliedIndex`).
    pub raft_applied_index: u64,
    /// Highest index this member knows committed (etcd's
    /// `etcd_server_proposals_committed_total`: the hard state's commit).
    pub raft_commit_index: u64,
    /// True when this member is a learner.
    pub is_learner: bool,
    /// Approximate size of the state in bytes (etcd's `dbSize`/`dbSizeInUse`).
    pub db_size_bytes: u64,
    /// True from the moment this member found its disk full until its
    /// NOSPACE alarm is applied through Raft: the alarm is reported locally
    /// (Status, AlarmList) meanwhile.
    pub disk_full: bool,
    /// `--quota-backend-bytes` in force, 0 when the quota is disabled
    /// (etcd's `dbSizeQuota`).
    pub db_size_quota_bytes: u64,
    /// Leader snapshots this member installed since it started (etcd's
    /// `etcd_network_snapshot_receive_success` counts the same event).
    pub snapshots_installed: u64,
    /// Periodic alarm checks (quota and NOSPACE) this member's driver has
    /// run since it started: a test can wait for the next check instead of
    /// sleeping past its period.
    pub alarm_checks: u64,
    /// Times this member saw a new leader since it started, the first one
    /// included (etcd's `etcd_server_leader_changes_seen_total`: a change
    /// to a known leader other than the last one; losing the leader alone
    /// is not counted).
    pub leader_changes_seen: u64,
}

/// The proposal waiters of a member, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProposalCounts {
    /// Proposals waiting for their apply result now (etcd's
    /// `etcd_server_proposals_pending`).
    pub pending: u64,
    /// Proposals that ended without an apply result since the member
    /// started: dropped, refused by Raft, timed out, failed at a leader
    /// change (etcd's `etcd_server_proposals_failed_total`).
    pub failed_total: u64,
}

/// Changes applied at one revision range, in the order they were applied.
/// Broadcast to watch streams after every applied entry that produced
/// events, and after the state was replaced by a leader's snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppliedEvents {
    /// The store's revision after applying (the last event's revision).
    pub revision: i64,
    /// The events with `prev_kv` filled in, in `(revision, sub)` order.
    pub events: Vec<Event>,
    /// True when the state machine was replaced by a leader's snapshot at
    /// `revision` (`events` is empty): the changes up to it were never
    /// offered as events, so a watcher resumes from the store's history, as
    /// after missed events (etcd `watchableStore.Restore` moves every
    /// synced watcher to the unsynced set).
    pub restored: bool,
}

/// A membership change requested through the Cluster service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Add a member (voter, or learner when `is_learner`) with these peer URLs.
    Add {
        /// Peer URLs of the new member.
        peer_urls: Vec<String>,
        /// Add as a non-voting learner.
        is_learner: bool,
    },
    /// Remove a member.
    Remove {
        /// The member to remove.
        member_id: u64,
    },
    /// Replace a member's peer URLs.
    Update {
        /// The member to update.
        member_id: u64,
        /// Its new peer URLs.
        peer_urls: Vec<String>,
    },
    /// Promote a learner to voter.
    Promote {
        /// The learner to promote.
        member_id: u64,
    },
}

/// What a running member offers the API layer: this member's replica of
/// the replicated state machine, and the way to change it (proposals
/// through Raft) or read it linearizably (ReadIndex). Implemented by the
/// node driver's handle; cheap to clone (one per gRPC service). (Called
/// `Backend` before; etcd uses that word for its bbolt store, which this
/// is not.)
pub trait Replica: Clone + Send + Sync + 'static {
    /// Proposes `request` through Raft on behalf of `auth` (None only for the
    /// server's own requests) and waits until this member has applied it.
    ///
    /// Returns the apply result (whose `result` may hold the state machine's
    /// refusal). Errors: [`ServerError::NoLeader`], `Timeout`,
    /// `ProposalDropped`, `RequestTooLarge`, `TooManyRequests`, `Stopped`,
    /// `Storage`.
    fn propose(
        &self,
        request: Request,
        auth: Option<AuthInfo>,
    ) -> impl Future<Output = Result<ApplyResult, ServerError>> + Send;

    /// Waits until a linearizable read may be served locally: a ReadIndex
    /// round (Raft thesis §6.4) confirmed the leader's commit index and this
    /// member has applied up to it. Errors: `NoLeader`, `Timeout`, `Stopped`.
    fn linearizable_barrier(&self) -> impl Future<Output = Result<(), ServerError>> + Send;

    /// Runs `read` against the applied state (short, synchronous; callers
    /// never hold it across an await). Serializable reads use this directly.
    /// The API layer has no write access: only apply changes the replicated
    /// state.
    fn with_state<R>(&self, read: impl FnOnce(&StateMachine) -> R) -> R;

    /// Who a simple token stands for, checked against this member's token
    /// table (member-local, as etcd's simple tokens; the token's TTL
    /// restarts), at the current auth revision; "no user"
    /// (`AuthInfo::default()`) while auth is disabled.
    ///
    /// Errors: auth enabled and an unknown or expired token →
    /// [`AuthError::InvalidAuthToken`].
    fn authenticate_token(&self, token: &str) -> Result<AuthInfo, AuthError>;

    /// This member's status as of now.
    fn status(&self) -> NodeStatus;

    /// This member's proposal waiters as of now (for `/metrics`).
    fn proposal_counts(&self) -> ProposalCounts;

    /// The gauges of this member's open watch streams and watchers, which
    /// every watch stream counts itself into.
    fn watch_gauges(&self) -> std::sync::Arc<WatchGauges>;

    /// Subscribes to the events of every entry applied from now on. The
    /// channel is bounded; a receiver that lags gets `RecvError::Lagged` and
    /// must catch up from the store's history (`Store::history`).
    fn subscribe_events(&self) -> tokio::sync::broadcast::Receiver<AppliedEvents>;

    /// Keep-alive for a lease, served by the leader (forwarded to it when this
    /// member is a follower). Errors: `Apply(Lease(NotFound))`, `NoLeader`,
    /// `Timeout`, `Stopped`.
    fn lease_renew(
        &self,
        id: LeaseId,
    ) -> impl Future<Output = Result<LeaseRenewal, ServerError>> + Send;

    /// Remaining TTL of a lease as the leader knows it (forwarded to the leader
    /// when this member is a follower), with its keys when `keys`.
    /// Errors: as [`Replica::lease_renew`], plus `Apply(Auth(..))`.
    fn lease_time_to_live(
        &self,
        auth: Option<AuthInfo>,
        id: LeaseId,
        keys: bool,
    ) -> impl Future<Output = Result<LeaseStatus, ServerError>> + Send;

    /// Changes membership through a Raft configuration change and waits until
    /// it is applied; returns the member concerned and the new member list.
    /// Errors: `Apply(Membership(..))` with etcd's messages, `NoLeader`, `Timeout`.
    fn change_membership(
        &self,
        change: MemberChange,
    ) -> impl Future<Output = Result<(Member, Vec<Member>), ServerError>> + Send;

    /// An encoded state-machine snapshot of the applied state (the kernel's
    /// checksummed encoding), for Maintenance.Snapshot.
    fn snapshot(&self) -> Bytes;

    /// Hands leadership to voting member `transferee` (Raft thesis §3.10,
    /// etcd `MoveLeader`) and waits until it leads. Errors: `NotLeader`
    /// when this member does not lead, `BadLeaderTransferee`,
    /// `LeaderTransferTimeout`, `Stopped`.
    fn move_leader(&self, transferee: u64) -> impl Future<Output = Result<(), ServerError>> + Send;

    /// Whether this member is a learner (it then serves only Status and
    /// serializable Range, see `api/learner.rs`).
    fn is_learner(&self) -> bool {
        self.status().is_learner
    }

    /// The JWT keys when the member runs with `--auth-token jwt,...`
    /// (tokens are then signed and verified there); `None`: simple tokens.
    fn jwt(&self) -> Option<std::sync::Arc<crate::api::jwt::JwtTokens>> {
        None
    }

    /// bcrypt cost of the password hashes this member computes
    /// (`--bcrypt-cost`, etcd's default 10).
    fn bcrypt_cost(&self) -> u32 {
        crate::api::auth::BCRYPT_COST
    }
}
