//! The gateway's routes: etcd 3.4's `google.api.http` annotations
//! (`etcdserverpb/rpc.proto`, `v3lockpb/v3lock.proto`), every one `POST`
//! with the whole request as the body, under `/v3/` and, as etcd's
//! `accessController` rewrites it, `/v3beta/`. Each route calls the same
//! service implementation the gRPC server mounts ([`crate::api`]).
//!
//! As etcd: a known path with another method answers 405 `Method Not
//! Allowed`, an unknown path under `/v3/` 404 `Not Found`.
//! `v3electionpb.Election`'s routes (`v3election.proto`) are `/v3/election/
//! campaign|proclaim|leader|observe|resign`, Observe streaming.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;

use super::call::{bidi_stream, server_stream, unary};
use super::errors::{grpc_code, plain_error};
use super::grpc_metrics::GrpcMetrics;
use crate::api::ApiLimits;
use crate::api::auth::AuthService;
use crate::api::cluster::ClusterService;
use crate::api::election::ElectionService;
use crate::api::kv::KvService;
use crate::api::lease::{LeaseIds, LeaseService};
use crate::api::lock::LockService;
use crate::api::maintenance::MaintenanceService;
use crate::api::watch::WatchService;
use crate::proto::etcdserverpb::auth_server::Auth;
use crate::proto::etcdserverpb::cluster_server::Cluster;
use crate::proto::etcdserverpb::kv_server::Kv;
use crate::proto::etcdserverpb::lease_server::Lease;
use crate::proto::etcdserverpb::maintenance_server::Maintenance;
use crate::proto::etcdserverpb::watch_server::Watch;
use crate::proto::v3electionpb::election_server::Election;
use crate::proto::v3lockpb::lock_server::Lock;
use crate::replica::Replica;

/// The service implementations the routes call, one set per member.
pub struct Services<B> {
    replica: B,
    pub(super) kv: KvService<B>,
    watch: WatchService<B>,
    lease: LeaseService<B>,
    cluster: ClusterService<B>,
    maintenance: MaintenanceService<B>,
    auth: AuthService<B>,
    lock: LockService<B>,
    election: ElectionService<B>,
    /// Largest request body accepted, in bytes.
    pub(super) body_limit_bytes: usize,
    /// Where gateway calls are counted, as etcd counts them (gRPC calls).
    grpc_metrics: GrpcMetrics,
}

impl<B: Replica> Services<B> {
    /// The services over `replica` within `limits`; `lease_ids` must be the
    /// generator the gRPC services use, so granted ids never collide;
    /// calls are counted in `grpc_metrics`.
    pub fn new(
        replica: B,
        limits: ApiLimits,
        lease_ids: LeaseIds,
        grpc_metrics: GrpcMetrics,
    ) -> Services<B> {
        Services {
            replica: replica.clone(),
            kv: KvService::new(replica.clone(), limits),
            watch: WatchService::new(replica.clone(), limits),
            lease: LeaseService::new(replica.clone(), limits, lease_ids.clone()),
            cluster: ClusterService::new(replica.clone()),
            maintenance: MaintenanceService::new(replica.clone(), limits),
            auth: AuthService::new(replica.clone()),
            lock: LockService::new(replica.clone(), lease_ids.clone()),
            election: ElectionService::new(replica, lease_ids),
            body_limit_bytes: body_limit_bytes(&limits),
            grpc_metrics,
        }
    }
}

impl<B: Replica> Services<B> {
    /// The member's status (leader, indexes, sizes).
    pub fn replica_status(&self) -> crate::replica::NodeStatus {
        self.replica.status()
    }

    /// The alarms applied through Raft, as this member knows them.
    pub fn applied_alarms(&self) -> Vec<keel_kernel::apply::AlarmMember> {
        self.replica.with_state(|state| state.alarms().list())
    }

    /// The member's proposal waiters (pending, failed so far).
    pub fn proposal_counts(&self) -> crate::replica::ProposalCounts {
        self.replica.proposal_counts()
    }

    /// The member's open watch streams and watchers.
    pub fn watch_gauges(&self) -> Arc<crate::api::watch_gauges::WatchGauges> {
        self.replica.watch_gauges()
    }

    /// Number of keys in the store.
    pub fn key_count(&self) -> usize {
        self.replica.with_state(|state| state.store().key_count())
    }

    /// The store's current revision.
    pub fn current_revision(&self) -> i64 {
        self.replica
            .with_state(|state| state.store().current_revision())
    }
}

/// Largest JSON body: the gRPC message limit, grown by a third for base64
/// and by 64 KiB for field names and punctuation.
pub fn body_limit_bytes(limits: &ApiLimits) -> usize {
    let grpc = limits.max_decoding_message_size();
    grpc.saturating_add(grpc / 3).saturating_add(64 * 1024)
}

/// A `POST` route calling `$method` of service `$field` (a unary call
/// unless a call helper from [`super::call`] is named).
macro_rules! route {
    ($services:expr, $field:ident, $method:ident, $grpc:literal) => {
        route!($services, $field, $method, $grpc, unary)
    };
    ($services:expr, $field:ident, $method:ident, $grpc:literal, $helper:ident) => {{
        let services = Arc::clone(&$services);
        post(move |headers: HeaderMap, body: Body| async move {
            let limit = services.body_limit_bytes;
            let grpc = services.grpc_metrics.clone();
            grpc.started($grpc);
            let response = $helper(headers, body, limit, |request| async move {
                services.$field.$method(request).await
            })
            .await;
            grpc.handled($grpc, grpc_code(&response));
            response
        })
        .fallback(method_not_allowed)
    }};
}

/// The routes under one version prefix (`/v3`), relative to it.
pub fn v3_routes<B: Replica>(services: Arc<Services<B>>) -> Router {
    let s = services;
    Router::new()
        .route("/kv/range", route!(s, kv, range, "/etcdserverpb.KV/Range"))
        .route("/kv/put", route!(s, kv, put, "/etcdserverpb.KV/Put"))
        .route(
            "/kv/deleterange",
            route!(s, kv, delete_range, "/etcdserverpb.KV/DeleteRange"),
        )
        .route("/kv/txn", route!(s, kv, txn, "/etcdserverpb.KV/Txn"))
        .route(
            "/kv/compaction",
            route!(s, kv, compact, "/etcdserverpb.KV/Compact"),
        )
        .route(
            "/watch",
            route!(s, watch, watch, "/etcdserverpb.Watch/Watch", bidi_stream),
        )
        .route(
            "/lease/grant",
            route!(s, lease, lease_grant, "/etcdserverpb.Lease/LeaseGrant"),
        )
        .route(
            "/lease/revoke",
            route!(s, lease, lease_revoke, "/etcdserverpb.Lease/LeaseRevoke"),
        )
        .route(
            "/kv/lease/revoke",
            route!(s, lease, lease_revoke, "/etcdserverpb.Lease/LeaseRevoke"),
        )
        .route(
            "/lease/keepalive",
            route!(
                s,
                lease,
                lease_keep_alive,
                "/etcdserverpb.Lease/LeaseKeepAlive",
                bidi_stream
            ),
        )
        .route(
            "/lease/timetolive",
            route!(
                s,
                lease,
                lease_time_to_live,
                "/etcdserverpb.Lease/LeaseTimeToLive"
            ),
        )
        .route(
            "/kv/lease/timetolive",
            route!(
                s,
                lease,
                lease_time_to_live,
                "/etcdserverpb.Lease/LeaseTimeToLive"
            ),
        )
        .route(
            "/lease/leases",
            route!(s, lease, lease_leases, "/etcdserverpb.Lease/LeaseLeases"),
        )
        .route(
            "/kv/lease/leases",
            route!(s, lease, lease_leases, "/etcdserverpb.Lease/LeaseLeases"),
        )
        .route(
            "/cluster/member/add",
            route!(s, cluster, member_add, "/etcdserverpb.Cluster/MemberAdd"),
        )
        .route(
            "/cluster/member/remove",
            route!(
                s,
                cluster,
                member_remove,
                "/etcdserverpb.Cluster/MemberRemove"
            ),
        )
        .route(
            "/cluster/member/update",
            route!(
                s,
                cluster,
                member_update,
                "/etcdserverpb.Cluster/MemberUpdate"
            ),
        )
        .route(
            "/cluster/member/list",
            route!(s, cluster, member_list, "/etcdserverpb.Cluster/MemberList"),
        )
        .route(
            "/cluster/member/promote",
            route!(
                s,
                cluster,
                member_promote,
                "/etcdserverpb.Cluster/MemberPromote"
            ),
        )
        .merge(maintenance_routes(&s))
        .merge(auth_routes(&s))
        .route("/lock/lock", route!(s, lock, lock, "/v3lockpb.Lock/Lock"))
        .route(
            "/lock/unlock",
            route!(s, lock, unlock, "/v3lockpb.Lock/Unlock"),
        )
        .merge(election_routes(&s))
        .fallback(not_found)
}

fn maintenance_routes<B: Replica>(s: &Arc<Services<B>>) -> Router {
    Router::new()
        .route(
            "/maintenance/alarm",
            route!(s, maintenance, alarm, "/etcdserverpb.Maintenance/Alarm"),
        )
        .route(
            "/maintenance/status",
            route!(s, maintenance, status, "/etcdserverpb.Maintenance/Status"),
        )
        .route(
            "/maintenance/defragment",
            route!(
                s,
                maintenance,
                defragment,
                "/etcdserverpb.Maintenance/Defragment"
            ),
        )
        // etcd 3.4 maps both Hash and HashKV to this path; Hash answers it.
        .route(
            "/maintenance/hash",
            route!(s, maintenance, hash, "/etcdserverpb.Maintenance/Hash"),
        )
        // etcd 3.5's path for HashKV.
        .route(
            "/maintenance/hashkv",
            route!(s, maintenance, hash_kv, "/etcdserverpb.Maintenance/HashKV"),
        )
        .route(
            "/maintenance/snapshot",
            route!(
                s,
                maintenance,
                snapshot,
                "/etcdserverpb.Maintenance/Snapshot",
                server_stream
            ),
        )
        .route(
            "/maintenance/transfer-leadership",
            route!(
                s,
                maintenance,
                move_leader,
                "/etcdserverpb.Maintenance/MoveLeader"
            ),
        )
}

fn auth_routes<B: Replica>(s: &Arc<Services<B>>) -> Router {
    Router::new()
        .route(
            "/auth/enable",
            route!(s, auth, auth_enable, "/etcdserverpb.Auth/AuthEnable"),
        )
        .route(
            "/auth/disable",
            route!(s, auth, auth_disable, "/etcdserverpb.Auth/AuthDisable"),
        )
        // etcd 3.5's path for AuthStatus.
        .route(
            "/auth/status",
            route!(s, auth, auth_status, "/etcdserverpb.Auth/AuthStatus"),
        )
        .route(
            "/auth/authenticate",
            route!(s, auth, authenticate, "/etcdserverpb.Auth/Authenticate"),
        )
        .route(
            "/auth/user/add",
            route!(s, auth, user_add, "/etcdserverpb.Auth/UserAdd"),
        )
        .route(
            "/auth/user/get",
            route!(s, auth, user_get, "/etcdserverpb.Auth/UserGet"),
        )
        .route(
            "/auth/user/list",
            route!(s, auth, user_list, "/etcdserverpb.Auth/UserList"),
        )
        .route(
            "/auth/user/delete",
            route!(s, auth, user_delete, "/etcdserverpb.Auth/UserDelete"),
        )
        .route(
            "/auth/user/changepw",
            route!(
                s,
                auth,
                user_change_password,
                "/etcdserverpb.Auth/UserChangePassword"
            ),
        )
        .route(
            "/auth/user/grant",
            route!(s, auth, user_grant_role, "/etcdserverpb.Auth/UserGrantRole"),
        )
        .route(
            "/auth/user/revoke",
            route!(
                s,
                auth,
                user_revoke_role,
                "/etcdserverpb.Auth/UserRevokeRole"
            ),
        )
        .route(
            "/auth/role/add",
            route!(s, auth, role_add, "/etcdserverpb.Auth/RoleAdd"),
        )
        .route(
            "/auth/role/get",
            route!(s, auth, role_get, "/etcdserverpb.Auth/RoleGet"),
        )
        .route(
            "/auth/role/list",
            route!(s, auth, role_list, "/etcdserverpb.Auth/RoleList"),
        )
        .route(
            "/auth/role/delete",
            route!(s, auth, role_delete, "/etcdserverpb.Auth/RoleDelete"),
        )
        .route(
            "/auth/role/grant",
            route!(
                s,
                auth,
                role_grant_permission,
                "/etcdserverpb.Auth/RoleGrantPermission"
            ),
        )
        .route(
            "/auth/role/revoke",
            route!(
                s,
                auth,
                role_revoke_permission,
                "/etcdserverpb.Auth/RoleRevokePermission"
            ),
        )
}

/// `v3electionpb.Election`'s paths.
fn election_routes<B: Replica>(s: &Arc<Services<B>>) -> Router {
    Router::new()
        .route(
            "/election/campaign",
            route!(s, election, campaign, "/v3electionpb.Election/Campaign"),
        )
        .route(
            "/election/proclaim",
            route!(s, election, proclaim, "/v3electionpb.Election/Proclaim"),
        )
        .route(
            "/election/leader",
            route!(s, election, leader, "/v3electionpb.Election/Leader"),
        )
        .route(
            "/election/observe",
            route!(
                s,
                election,
                observe,
                "/v3electionpb.Election/Observe",
                server_stream
            ),
        )
        .route(
            "/election/resign",
            route!(s, election, resign, "/v3electionpb.Election/Resign"),
        )
}

/// etcd's answer to a known path with a method other than `POST`.
pub async fn method_not_allowed() -> Response {
    plain_error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// etcd's answer to an unknown path under `/v3/` (grpc-gateway's).
async fn not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, "Not Found")
}
