//! The requests of the matrix: KV, txn (nested included), watch (key,
//! prefix, from-key), lease, lock, election, maintenance, cluster and
//! auth administration. Each is sent as one principal and reduced to an
//! [`Outcome`].

use bytes::Bytes;
use keel_server::proto::etcdserverpb::{self as pb, compare, request_op};
use keel_server::proto::{v3electionpb, v3lockpb};
use tonic::transport::Channel;

use super::call::{Outcome, authed, bounded, must};
use super::world::LEASE_B;

/// One request of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    GetA,
    GetAPrefix,
    GetAFromKey,
    GetB,
    GetShared,
    GetW,
    PutA,
    PutAPrevKv,
    PutB,
    PutShared,
    PutW,
    PutWithLeaseB,
    DeleteAPrefix,
    DeleteB,
    TxnCompareAPutA,
    TxnCompareBPutA,
    TxnNestedPutB,
    TxnNestedPutA,
    TxnPutWPrevKv,
    TxnPutWithLeaseB,
    WatchA,
    WatchAPrefix,
    WatchAFromKey,
    WatchB,
    Compact,
    LeaseGrantRevokeOwn,
    LeaseRevokeOthers,
    LeaseTtlKeys,
    LeaseTtlNoKeys,
    LeaseLeases,
    LeaseKeepAliveB,
    LockA,
    LockB,
    ElectionLeaderA,
    Status,
    Hash,
    HashKv,
    AlarmList,
    AlarmDisarm,
    Defragment,
    Snapshot,
    MemberList,
    MemberRemoveUnknown,
    MemberPromoteUnknown,
    AuthStatus,
    UserList,
    RoleList,
    UserGetSelf,
    UserGetRoot,
    RoleGetARw,
    UserAdd,
    UserPasswdSelf,
}

/// Every step, in the order they run for each principal (a password
/// change last: it ends the principal's token).
pub const STEPS: &[Step] = &[
    Step::GetA,
    Step::GetAPrefix,
    Step::GetAFromKey,
    Step::GetB,
    Step::GetShared,
    Step::GetW,
    Step::PutA,
    Step::PutAPrevKv,
    Step::PutB,
    Step::PutShared,
    Step::PutW,
    Step::PutWithLeaseB,
    Step::DeleteAPrefix,
    Step::DeleteB,
    Step::TxnCompareAPutA,
    Step::TxnCompareBPutA,
    Step::TxnNestedPutB,
    Step::TxnNestedPutA,
    Step::TxnPutWPrevKv,
    Step::TxnPutWithLeaseB,
    Step::WatchA,
    Step::WatchAPrefix,
    Step::WatchAFromKey,
    Step::WatchB,
    Step::Compact,
    Step::LeaseGrantRevokeOwn,
    Step::LeaseRevokeOthers,
    Step::LeaseTtlKeys,
    Step::LeaseTtlNoKeys,
    Step::LeaseLeases,
    Step::LeaseKeepAliveB,
    Step::LockA,
    Step::LockB,
    Step::ElectionLeaderA,
    Step::Status,
    Step::Hash,
    Step::HashKv,
    Step::AlarmList,
    Step::AlarmDisarm,
    Step::Defragment,
    Step::Snapshot,
    Step::MemberList,
    Step::MemberRemoveUnknown,
    Step::MemberPromoteUnknown,
    Step::AuthStatus,
    Step::UserList,
    Step::RoleList,
    Step::UserGetSelf,
    Step::UserGetRoot,
    Step::RoleGetARw,
    Step::UserAdd,
    Step::UserPasswdSelf,
];

/// What a step needs besides the principal's token.
pub struct Context<'a> {
    /// The server.
    pub channel: &'a Channel,
    /// Root's token, for preparing a step (a lease to revoke).
    pub root: &'a str,
    /// The principal's user name (`""` for none).
    pub user: &'a str,
    /// The principal's position, for names that must not repeat.
    pub index: usize,
}

fn b(text: &str) -> Bytes {
    Bytes::from(text.as_bytes().to_vec())
}

fn range(key: &str, range_end: &str) -> pb::RangeRequest {
    pb::RangeRequest {
        key: b(key),
        range_end: b(range_end),
        ..pb::RangeRequest::default()
    }
}

fn put(key: &str, prev_kv: bool, lease: i64) -> pb::PutRequest {
    pb::PutRequest {
        key: b(key),
        value: b("x"),
        prev_kv,
        lease,
        ..pb::PutRequest::default()
    }
}

fn op_put(put: pb::PutRequest) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(request_op::Request::RequestPut(put)),
    }
}

fn txn(compare_key: Option<&str>, success: Vec<pb::RequestOp>) -> pb::TxnRequest {
    let compare = compare_key.map(|key| pb::Compare {
        result: compare::CompareResult::Greater as i32,
        target: compare::CompareTarget::Version as i32,
        key: b(key),
        target_union: Some(compare::TargetUnion::Version(0)),
        ..pb::Compare::default()
    });
    pb::TxnRequest {
        compare: compare.into_iter().collect(),
        success,
        failure: vec![],
    }
}

fn nested(put: pb::PutRequest) -> pb::TxnRequest {
    let inner = txn(None, vec![op_put(put)]);
    let op = pb::RequestOp {
        request: Some(request_op::Request::RequestTxn(inner)),
    };
    txn(None, vec![op])
}

impl Step {
    /// Sends the step as `token`; bounded in time.
    pub async fn run(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        bounded(self.send(ctx, token)).await
    }

    async fn send(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        match self {
            Step::GetA => kv_range(ctx, token, range("/a/1", "")).await,
            Step::GetAPrefix => kv_range(ctx, token, range("/a/", "/a0")).await,
            Step::GetAFromKey => kv_range(ctx, token, range("/a/", "\0")).await,
            Step::GetB => kv_range(ctx, token, range("/b/1", "")).await,
            Step::GetShared => kv_range(ctx, token, range("/shared", "")).await,
            Step::GetW => kv_range(ctx, token, range("/w/1", "")).await,
            Step::PutA => kv_put(ctx, token, put("/a/x", false, 0)).await,
            Step::PutAPrevKv => kv_put(ctx, token, put("/a/x", true, 0)).await,
            Step::PutB => kv_put(ctx, token, put("/b/x", false, 0)).await,
            Step::PutShared => kv_put(ctx, token, put("/shared", false, 0)).await,
            Step::PutW => kv_put(ctx, token, put("/w/x", false, 0)).await,
            Step::PutWithLeaseB => kv_put(ctx, token, put("/a/y", false, LEASE_B)).await,
            Step::DeleteAPrefix => kv_delete(ctx, token, "/a/d/", "/a/d0").await,
            Step::DeleteB => kv_delete(ctx, token, "/b/x", "").await,
            _ => self.send_txn_or_watch(ctx, token).await,
        }
    }

    async fn send_txn_or_watch(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        let txn = match self {
            Step::TxnCompareAPutA => txn(Some("/a/1"), vec![op_put(put("/a/t", false, 0))]),
            Step::TxnCompareBPutA => txn(Some("/b/1"), vec![op_put(put("/a/t", false, 0))]),
            Step::TxnNestedPutB => nested(put("/b/n", false, 0)),
            Step::TxnNestedPutA => nested(put("/a/n", false, 0)),
            Step::TxnPutWPrevKv => txn(None, vec![op_put(put("/w/t", true, 0))]),
            Step::TxnPutWithLeaseB => txn(None, vec![op_put(put("/a/l", false, LEASE_B))]),
            Step::WatchA => return watch(ctx, token, "/a/1", "").await,
            Step::WatchAPrefix => return watch(ctx, token, "/a/", "/a0").await,
            Step::WatchAFromKey => return watch(ctx, token, "/a/", "\0").await,
            Step::WatchB => return watch(ctx, token, "/b/1", "").await,
            _ => return self.send_lease(ctx, token).await,
        };
        let mut kv = pb::kv_client::KvClient::new(ctx.channel.clone());
        Outcome::of(kv.txn(authed(txn, token)).await)
    }

    async fn send_lease(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        let mut lease = pb::lease_client::LeaseClient::new(ctx.channel.clone());
        match self {
            Step::Compact => {
                let compact = pb::CompactionRequest {
                    revision: 1_000_000,
                    physical: false,
                };
                let mut kv = pb::kv_client::KvClient::new(ctx.channel.clone());
                Outcome::of(kv.compact(authed(compact, token)).await)
            }
            Step::LeaseGrantRevokeOwn => grant_and_revoke(&mut lease, token).await,
            Step::LeaseRevokeOthers => {
                let id = others_lease(ctx).await;
                let revoke = pb::LeaseRevokeRequest { id };
                Outcome::of(lease.lease_revoke(authed(revoke, token)).await)
            }
            Step::LeaseTtlKeys | Step::LeaseTtlNoKeys => {
                let ttl = pb::LeaseTimeToLiveRequest {
                    id: LEASE_B,
                    keys: self == Step::LeaseTtlKeys,
                };
                Outcome::of(lease.lease_time_to_live(authed(ttl, token)).await)
            }
            Step::LeaseLeases => Outcome::of(
                lease
                    .lease_leases(authed(pb::LeaseLeasesRequest {}, token))
                    .await,
            ),
            Step::LeaseKeepAliveB => keep_alive(&mut lease, token, LEASE_B).await,
            Step::LockA => lock(ctx, token, "/a/lock").await,
            Step::LockB => lock(ctx, token, "/b/lock").await,
            Step::ElectionLeaderA => {
                let mut election =
                    v3electionpb::election_client::ElectionClient::new(ctx.channel.clone());
                let leader = v3electionpb::LeaderRequest { name: b("/a/e") };
                Outcome::of(election.leader(authed(leader, token)).await)
            }
            _ => self.send_maintenance(ctx, token).await,
        }
    }

    async fn send_maintenance(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        let mut m = pb::maintenance_client::MaintenanceClient::new(ctx.channel.clone());
        let alarm = |action: pb::alarm_request::AlarmAction| pb::AlarmRequest {
            action: action as i32,
            member_id: 0,
            alarm: pb::AlarmType::Nospace as i32,
        };
        match self {
            Step::Status => Outcome::of(m.status(authed(pb::StatusRequest {}, token)).await),
            Step::Hash => Outcome::of(m.hash(authed(pb::HashRequest {}, token)).await),
            Step::HashKv => Outcome::of(
                m.hash_kv(authed(pb::HashKvRequest { revision: 0 }, token))
                    .await,
            ),
            Step::AlarmList => {
                let list = alarm(pb::alarm_request::AlarmAction::Get);
                Outcome::of(m.alarm(authed(list, token)).await)
            }
            Step::AlarmDisarm => {
                let disarm = alarm(pb::alarm_request::AlarmAction::Deactivate);
                Outcome::of(m.alarm(authed(disarm, token)).await)
            }
            Step::Defragment => {
                Outcome::of(m.defragment(authed(pb::DefragmentRequest {}, token)).await)
            }
            Step::Snapshot => match m.snapshot(authed(pb::SnapshotRequest {}, token)).await {
                Ok(stream) => Outcome::of(stream.into_inner().message().await),
                Err(status) => Outcome::of::<()>(Err(status)),
            },
            _ => self.send_cluster_or_auth(ctx, token).await,
        }
    }

    async fn send_cluster_or_auth(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        let mut cluster = pb::cluster_client::ClusterClient::new(ctx.channel.clone());
        let mut auth = pb::auth_client::AuthClient::new(ctx.channel.clone());
        let unknown_member = 0x1234_5678;
        let outcome = match self {
            Step::MemberList => {
                let list = pb::MemberListRequest::default();
                cluster.member_list(authed(list, token)).await.map(drop)
            }
            Step::MemberRemoveUnknown => {
                let remove = pb::MemberRemoveRequest { id: unknown_member };
                cluster.member_remove(authed(remove, token)).await.map(drop)
            }
            Step::MemberPromoteUnknown => {
                let promote = pb::MemberPromoteRequest { id: unknown_member };
                cluster
                    .member_promote(authed(promote, token))
                    .await
                    .map(drop)
            }
            Step::AuthStatus => auth
                .auth_status(authed(pb::AuthStatusRequest {}, token))
                .await
                .map(drop),
            Step::UserList => auth
                .user_list(authed(pb::AuthUserListRequest {}, token))
                .await
                .map(drop),
            Step::RoleList => auth
                .role_list(authed(pb::AuthRoleListRequest {}, token))
                .await
                .map(drop),
            _ => return self.send_user(ctx, token).await,
        };
        Outcome::of(outcome)
    }

    async fn send_user(self, ctx: &Context<'_>, token: Option<&str>) -> Outcome {
        let mut auth = pb::auth_client::AuthClient::new(ctx.channel.clone());
        let user_get = |name: &str| pb::AuthUserGetRequest {
            name: name.to_string(),
        };
        let outcome = match self {
            Step::UserGetSelf => auth
                .user_get(authed(user_get(ctx.user), token))
                .await
                .map(drop),
            Step::UserGetRoot => auth
                .user_get(authed(user_get("root"), token))
                .await
                .map(drop),
            Step::RoleGetARw => {
                let get = pb::AuthRoleGetRequest {
                    role: "a-rw".into(),
                };
                auth.role_get(authed(get, token)).await.map(drop)
            }
            Step::UserAdd => {
                let add = pb::AuthUserAddRequest {
                    name: format!("new{}", ctx.index),
                    password: "pw".into(),
                    ..pb::AuthUserAddRequest::default()
                };
                auth.user_add(authed(add, token)).await.map(drop)
            }
            Step::UserPasswdSelf => {
                let change = pb::AuthUserChangePasswordRequest {
                    name: ctx.user.to_string(),
                    password: format!("{}pw", ctx.user),
                    ..pb::AuthUserChangePasswordRequest::default()
                };
                auth.user_change_password(authed(change, token))
                    .await
                    .map(drop)
            }
            other => panic!("step {other:?} has no sender"),
        };
        Outcome::of(outcome)
    }
}

async fn kv_range(ctx: &Context<'_>, token: Option<&str>, range: pb::RangeRequest) -> Outcome {
    let mut kv = pb::kv_client::KvClient::new(ctx.channel.clone());
    Outcome::of(kv.range(authed(range, token)).await)
}

async fn kv_put(ctx: &Context<'_>, token: Option<&str>, put: pb::PutRequest) -> Outcome {
    let mut kv = pb::kv_client::KvClient::new(ctx.channel.clone());
    Outcome::of(kv.put(authed(put, token)).await)
}

async fn kv_delete(ctx: &Context<'_>, token: Option<&str>, key: &str, end: &str) -> Outcome {
    let mut kv = pb::kv_client::KvClient::new(ctx.channel.clone());
    let delete = pb::DeleteRangeRequest {
        key: b(key),
        range_end: b(end),
        ..pb::DeleteRangeRequest::default()
    };
    Outcome::of(kv.delete_range(authed(delete, token)).await)
}

/// Opens a watch stream as `token`, creates one watcher and reads the
/// first answer.
async fn watch(ctx: &Context<'_>, token: Option<&str>, key: &str, end: &str) -> Outcome {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    let create = pb::WatchCreateRequest {
        key: b(key),
        range_end: b(end),
        ..pb::WatchCreateRequest::default()
    };
    let request = pb::WatchRequest {
        request_union: Some(pb::watch_request::RequestUnion::CreateRequest(create)),
    };
    sender.send(request).await.expect("the receiver is alive");
    let requests = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let mut client = pb::watch_client::WatchClient::new(ctx.channel.clone());
    let mut responses = match client.watch(authed(requests, token)).await {
        Ok(stream) => stream.into_inner(),
        Err(status) => return Outcome::of::<()>(Err(status)),
    };
    let first = responses.message().await;
    drop(sender);
    match first {
        Ok(Some(r)) if r.canceled => Outcome::WatchCanceled(r.cancel_reason),
        Ok(Some(_)) => Outcome::Ok,
        Ok(None) => Outcome::Refused(tonic::Code::Unknown, "stream ended".into()),
        Err(status) => Outcome::of::<()>(Err(status)),
    }
}

/// One keep-alive of lease `id` on a stream opened with `token`: served
/// when its first answer arrives, refused when the stream ends with a
/// status.
async fn keep_alive(
    lease: &mut pb::lease_client::LeaseClient<Channel>,
    token: Option<&str>,
    id: i64,
) -> Outcome {
    let requests = tokio_stream::iter(vec![pb::LeaseKeepAliveRequest { id }]);
    let mut answers = match lease.lease_keep_alive(authed(requests, token)).await {
        Ok(answers) => answers.into_inner(),
        Err(status) => return Outcome::of::<()>(Err(status)),
    };
    match answers.message().await {
        Ok(Some(_)) => Outcome::Ok,
        Ok(None) => Outcome::Refused(tonic::Code::Ok, "stream ended without answer".into()),
        Err(status) => Outcome::of::<()>(Err(status)),
    }
}

async fn grant_and_revoke(
    lease: &mut pb::lease_client::LeaseClient<Channel>,
    token: Option<&str>,
) -> Outcome {
    let grant = pb::LeaseGrantRequest { ttl: 60, id: 0 };
    let id = match lease.lease_grant(authed(grant, token)).await {
        Ok(granted) => granted.into_inner().id,
        Err(status) => return Outcome::of::<()>(Err(status)),
    };
    let revoke = pb::LeaseRevokeRequest { id };
    Outcome::of(lease.lease_revoke(authed(revoke, token)).await)
}

/// A lease of root's attached to a fresh key under `/a/`: revoking it
/// needs WRITE there.
async fn others_lease(ctx: &Context<'_>) -> i64 {
    let id = 9000 + ctx.index as i64;
    let mut lease = pb::lease_client::LeaseClient::new(ctx.channel.clone());
    let grant = pb::LeaseGrantRequest { ttl: 600, id };
    must(lease.lease_grant(authed(grant, Some(ctx.root))).await);
    let mut kv = pb::kv_client::KvClient::new(ctx.channel.clone());
    let key = format!("/a/leased{}", ctx.index);
    must(kv.put(authed(put(&key, false, id), Some(ctx.root))).await);
    id
}

/// Takes lock `name` and releases it at once.
async fn lock(ctx: &Context<'_>, token: Option<&str>, name: &str) -> Outcome {
    let mut locks = v3lockpb::lock_client::LockClient::new(ctx.channel.clone());
    let request = v3lockpb::LockRequest {
        name: b(name),
        lease: 0,
    };
    let key = match locks.lock(authed(request, token)).await {
        Ok(locked) => locked.into_inner().key,
        Err(status) => return Outcome::of::<()>(Err(status)),
    };
    let unlock = v3lockpb::UnlockRequest { key };
    Outcome::of(locks.unlock(authed(unlock, token)).await)
}
