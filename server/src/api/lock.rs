//! The Lock service (etcd `v3lockpb.Lock`, served by etcd's
//! `etcdserver/api/v3lock` with the `concurrency.Mutex` recipe).
//!
//! Lock(name, lease) creates the key `name/<lease id in hex>` attached to
//! the lease (or finds it, if this lease already queued), then waits until
//! no key under `name/` has a lower create revision: the holder is the
//! oldest key. Waiting watches for the deletion of the next older key (a
//! release, or the expiry of its lease). Unlock(key) deletes the key. A
//! lease of 0 gets a fresh 60-second lease, as etcd's session does.
//!
//! After waiting, the key must still exist: if its lease expired while the
//! request waited, the lock is not granted (etcd 3.4.4+ `Mutex.Lock`, the
//! fix for the bug Jepsen found in etcd 3.4.3: "mutex: session is
//! expired").

use keel_kernel::apply::{Request, Response};
use keel_kernel::auth::AuthInfo;
use keel_kernel::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, KeyValue, PutRequest,
    RangeRequest, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
    prefix_range_end,
};
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::header::header;
use super::lease::LeaseIds;
use super::status::{EMPTY_KEY, apply_error};
use super::{propose, request_auth, unexpected};
use crate::proto::v3lockpb as pb;
use crate::replica::{AppliedEvents, Replica, ServerError};

/// TTL of the lease granted for a Lock request without one (etcd's
/// default session TTL).
pub const SESSION_TTL_SECS: i64 = 60;

/// etcd's `concurrency.ErrSessionExpired`: the waiter's key was deleted
/// (its lease expired) before it became the oldest.
pub const SESSION_EXPIRED: &str = "mutex: session is expired";

/// The Lock service over a replica.
#[derive(Clone, Debug)]
pub struct LockService<B> {
    replica: B,
    ids: LeaseIds,
}

/// A range over `prefix` returning the one key with the lowest
/// (`Ascend`) or highest (`Descend`) create revision.
pub(super) fn first_created(
    prefix: &[u8],
    order: SortOrder,
    max_create_revision: i64,
) -> RangeRequest {
    RangeRequest {
        key: prefix.to_vec(),
        range_end: prefix_range_end(prefix),
        limit: 1,
        sort_order: order,
        sort_target: SortTarget::Create,
        max_create_revision,
        ..RangeRequest::default()
    }
}

/// The txn that queues `key` for the lock (etcd `Mutex.tryAcquire`):
/// create it if absent, and read the oldest key under `prefix`.
pub(super) fn acquire_txn(prefix: &[u8], key: &[u8], lease: i64, value: &[u8]) -> TxnRequest {
    let owner = RequestOp::Range(first_created(prefix, SortOrder::Ascend, 0));
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::Create(0),
            key: key.to_vec(),
            range_end: Vec::new(),
        }],
        success: vec![
            RequestOp::Put(PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                lease,
                ..PutRequest::default()
            }),
            owner.clone(),
        ],
        failure: vec![
            RequestOp::Range(RangeRequest {
                key: key.to_vec(),
                ..RangeRequest::default()
            }),
            owner,
        ],
    }
}

/// The first key-value of the `n`th response of a txn, if it is a range
/// that found one.
pub(super) fn range_kv(resp: &TxnResponse, n: usize) -> Option<&KeyValue> {
    match resp.responses.get(n) {
        Some(ResponseOp::Range(range)) => range.kvs.first(),
        _ => None,
    }
}

/// Waits for the deletion of `key` at a revision above `revision`.
/// Returns at once after missed events (the caller reads again).
///
/// Errors: the node stopped.
async fn wait_delete(
    events: &mut Receiver<AppliedEvents>,
    key: &[u8],
    revision: i64,
) -> Result<(), Status> {
    loop {
        match events.recv().await {
            // The state was replaced: read again.
            Ok(applied) if applied.restored => return Ok(()),
            Ok(applied) => {
                let deleted = applied.events.iter().any(|e| {
                    e.event_type == EventType::Delete
                        && e.kv.key == key
                        && e.kv.mod_revision > revision
                });
                if deleted {
                    return Ok(());
                }
            }
            Err(RecvError::Lagged(_)) => return Ok(()),
            Err(RecvError::Closed) => return Err(ServerError::Stopped.into()),
        }
    }
}

impl<B: Replica> LockService<B> {
    /// A Lock service over `replica`, granting session leases with ids
    /// from `ids`.
    pub fn new(replica: B, ids: LeaseIds) -> LockService<B> {
        LockService { replica, ids }
    }
}

/// `lease`, or a fresh [`SESSION_TTL_SECS`] lease with an id from `ids`
/// when it is 0 (etcd `concurrency.NewSession`).
///
/// Errors: the grant's refusal.
pub async fn session_lease<B: Replica>(
    replica: &B,
    ids: &LeaseIds,
    lease: i64,
    auth: &AuthInfo,
) -> Result<i64, Status> {
    if lease != 0 {
        return Ok(lease);
    }
    let ttl_secs = replica.with_state(|state| state.lessor().ttl_to_grant_secs(SESSION_TTL_SECS));
    let grant = Request::LeaseGrant {
        id: ids.next(),
        ttl_secs,
    };
    match propose(replica, grant, auth.clone()).await? {
        (Response::LeaseGrant { id, .. }, _) => Ok(id),
        (other, _) => Err(unexpected(&other)),
    }
}

/// Waits until no key under `prefix` was created at or below
/// `max_create_revision` (etcd `waitDeletes`); returns the revision of the
/// linearizable read that found none. Each turn waits for one deletion; a
/// client that gives up cancels the call.
///
/// Errors: the read's refusal (permission), the node stopped.
pub async fn wait_deletes<B: Replica>(
    replica: &B,
    prefix: &[u8],
    max_create_revision: i64,
    auth: &AuthInfo,
) -> Result<i64, Status> {
    let older = first_created(prefix, SortOrder::Descend, max_create_revision);
    loop {
        // Subscribe before reading so no deletion after the read is missed.
        let mut events = replica.subscribe_events();
        replica.linearizable_barrier().await?;
        let found = replica
            .with_state(|state| state.range(Some(auth), &older))
            .map_err(|err| apply_error(&err))?;
        let Some(last) = found.kvs.first() else {
            return Ok(found.revision);
        };
        wait_delete(&mut events, &last.key, found.revision).await?;
    }
}

/// Whether `key` exists now: a linearizable read (etcd's `Mutex.Lock`
/// reads its key again with a `Get` after `waitDeletes`). The state
/// [`wait_deletes`] read cannot answer it: its ReadIndex round may have
/// started long before (a member cut off from the quorum, or far behind,
/// confirms it only later), so the key it saw may have been deleted since
/// by its lease's expiry and the lock already granted to the next waiter
/// (keel-sim's lock workload: `split-brain` seed 26 with two lock clients
/// granted one lock to two clients).
///
/// Errors: the barrier's failure, the read's refusal (permission).
async fn key_exists<B: Replica>(replica: &B, key: &[u8], auth: &AuthInfo) -> Result<bool, Status> {
    replica.linearizable_barrier().await?;
    let read = RangeRequest {
        key: key.to_vec(),
        count_only: true,
        ..RangeRequest::default()
    };
    let found = replica
        .with_state(|state| state.range(Some(auth), &read))
        .map_err(|err| apply_error(&err))?;
    Ok(found.count > 0)
}

/// etcd's lock server runs the recipe through an in-process client and
/// returns that client's error as is, so the gRPC code is lost: clients
/// see code Unknown with etcd's message (`etcdserver: permission denied`,
/// `etcdserver: invalid auth token`, ...), in 3.4, 3.5 and 3.6 alike.
pub(super) fn as_client_error(status: Status) -> Status {
    Status::unknown(status.message())
}

#[tonic::async_trait]
impl<B: Replica> pb::lock_server::Lock for LockService<B> {
    async fn lock(
        &self,
        request: GrpcRequest<pb::LockRequest>,
    ) -> Result<GrpcResponse<pb::LockResponse>, Status> {
        self.lock_inner(request).await.map_err(as_client_error)
    }

    async fn unlock(
        &self,
        request: GrpcRequest<pb::UnlockRequest>,
    ) -> Result<GrpcResponse<pb::UnlockResponse>, Status> {
        self.unlock_inner(request).await.map_err(as_client_error)
    }
}

impl<B: Replica> LockService<B> {
    async fn lock_inner(
        &self,
        request: GrpcRequest<pb::LockRequest>,
    ) -> Result<GrpcResponse<pb::LockResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        if req.name.is_empty() {
            return Err(Status::invalid_argument(EMPTY_KEY));
        }
        let lease = session_lease(&self.replica, &self.ids, req.lease, &auth).await?;
        let mut prefix = req.name.to_vec();
        prefix.push(b'/');
        let key = [prefix.as_slice(), format!("{lease:x}").as_bytes()].concat();
        let txn = Request::Txn(acquire_txn(&prefix, &key, lease, b""));
        let resp = match propose(&self.replica, txn, auth.clone()).await? {
            (Response::Txn(resp), _) => resp,
            (other, _) => return Err(unexpected(&other)),
        };
        let my_revision = if resp.succeeded {
            resp.revision
        } else {
            range_kv(&resp, 0).map_or(resp.revision, |kv| kv.create_revision)
        };
        let owner = range_kv(&resp, 1).map(|kv| kv.create_revision);
        let revision = match owner {
            None => resp.revision,
            Some(owner) if owner == my_revision => resp.revision,
            Some(_) => {
                let revision = wait_deletes(&self.replica, &prefix, my_revision - 1, &auth).await?;
                if !key_exists(&self.replica, &key, &auth).await? {
                    return Err(Status::unknown(SESSION_EXPIRED));
                }
                revision
            }
        };
        Ok(GrpcResponse::new(pb::LockResponse {
            header: header(&self.replica, revision),
            key: key.into(),
        }))
    }

    async fn unlock_inner(
        &self,
        request: GrpcRequest<pb::UnlockRequest>,
    ) -> Result<GrpcResponse<pb::UnlockResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let key = request.into_inner().key;
        if key.is_empty() {
            return Err(Status::invalid_argument(EMPTY_KEY));
        }
        let delete = Request::DeleteRange(DeleteRangeRequest {
            key: key.to_vec(),
            ..DeleteRangeRequest::default()
        });
        let (_, revision) = propose(&self.replica, delete, auth).await?;
        Ok(GrpcResponse::new(pb::UnlockResponse {
            header: header(&self.replica, revision),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acquire_txn_creates_or_reads_and_finds_the_owner() {
        let txn = acquire_txn(b"l/", b"l/7", 7, b"");
        assert_eq!(txn.compare[0].target, CompareTarget::Create(0));
        assert!(matches!(&txn.success[0], RequestOp::Put(p) if p.lease == 7 && p.key == b"l/7"));
        let RequestOp::Range(owner) = &txn.failure[1] else {
            panic!("the owner read is a range");
        };
        assert_eq!(owner.sort_target, SortTarget::Create);
        assert_eq!(owner.sort_order, SortOrder::Ascend);
        assert_eq!((owner.limit, owner.range_end.as_slice()), (1, &b"l0"[..]));
    }
}
