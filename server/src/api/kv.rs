//! The KV service (etcd `etcdserverpb.KV`): Range, Put, DeleteRange, Txn,
//! Compact.
//!
//! Linearizable ranges wait on a ReadIndex barrier (Raft thesis §6.4) and
//! are then served from the applied state; serializable ranges are served
//! at once. Writes are proposed through Raft. Requests are checked first as
//! etcd's gRPC layer does (`v3rpc/key.go`): empty keys, txn size, request
//! size.

use keel_kernel::apply::{Request, Response};
use keel_kernel::mvcc::CompactionRequest;
use prost::Message;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::header::header;
use super::status::{EMPTY_KEY, REQUEST_TOO_LARGE};
use super::{ApiLimits, convert, propose, request_auth, unexpected};
use crate::proto::etcdserverpb as pb;
use crate::replica::Replica;

/// The KV service over a replica.
#[derive(Clone, Debug)]
pub struct KvService<B> {
    replica: B,
    limits: ApiLimits,
}

impl<B: Replica> KvService<B> {
    /// A KV service answering from `replica` within `limits`.
    pub fn new(replica: B, limits: ApiLimits) -> KvService<B> {
        KvService { replica, limits }
    }

    fn check_size(&self, message: &impl Message) -> Result<(), Status> {
        if self.limits.request.is_too_large(message.encoded_len()) {
            return Err(Status::invalid_argument(REQUEST_TOO_LARGE));
        }
        Ok(())
    }
}

/// etcd's `checkRangeRequest`/`checkPutRequest`/`checkDeleteRequest`: the
/// key must not be empty.
fn check_key(key: &[u8]) -> Result<(), Status> {
    if key.is_empty() {
        return Err(Status::invalid_argument(EMPTY_KEY));
    }
    Ok(())
}

/// etcd's `checkTxnRequest` and `checkIntervals`, run before proposing:
/// the state machine's own shape check ([`keel_kernel::mvcc::check_txn`]),
/// so a txn is refused early exactly when apply would refuse it.
///
/// Errors: InvalidArgument "etcdserver: too many operations in txn
/// request", "etcdserver: key is not provided", "etcdserver: duplicate key
/// given in txn request", and the put flag errors.
fn check_txn(txn: &keel_kernel::mvcc::TxnRequest, max_ops: usize) -> Result<(), Status> {
    keel_kernel::mvcc::check_txn(txn, max_ops).map_err(|err| super::status::mvcc_error(&err))
}

#[tonic::async_trait]
impl<B: Replica> pb::kv_server::Kv for KvService<B> {
    async fn range(
        &self,
        request: GrpcRequest<pb::RangeRequest>,
    ) -> Result<GrpcResponse<pb::RangeResponse>, Status> {
        let auth = super::caller::request_auth_on_learner(&self.replica, &request)?;
        let req = request.into_inner();
        if !req.serializable {
            super::learner::refuse_on_learner(&self.replica)?;
        }
        check_key(&req.key)?;
        // Planted bug (off by default, for the simulator to find): a
        // linearizable read is served from local state without ReadIndex.
        if !req.serializable && !cfg!(feature = "planted-bug-read-without-readindex") {
            self.replica.linearizable_barrier().await?;
        }
        let range = convert::range_request(&req);
        let resp = self
            .replica
            .with_state(|state| state.range(Some(&auth), &range))
            .map_err(|err| super::status::apply_error(&err))?;
        let header = header(&self.replica, resp.revision);
        Ok(GrpcResponse::new(convert::range_response(resp, header)))
    }

    async fn put(
        &self,
        request: GrpcRequest<pb::PutRequest>,
    ) -> Result<GrpcResponse<pb::PutResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        self.check_size(&req)?;
        let request = Request::Put(convert::put_request(&req));
        match propose(&self.replica, request, auth).await?.0 {
            Response::Put(resp) => {
                let header = header(&self.replica, resp.revision);
                Ok(GrpcResponse::new(convert::put_response(resp, header)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_range(
        &self,
        request: GrpcRequest<pb::DeleteRangeRequest>,
    ) -> Result<GrpcResponse<pb::DeleteRangeResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        self.check_size(&req)?;
        let request = Request::DeleteRange(convert::delete_range_request(&req));
        match propose(&self.replica, request, auth).await?.0 {
            Response::DeleteRange(resp) => {
                let header = header(&self.replica, resp.revision);
                Ok(GrpcResponse::new(convert::delete_range_response(
                    resp, header,
                )))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn txn(
        &self,
        request: GrpcRequest<pb::TxnRequest>,
    ) -> Result<GrpcResponse<pb::TxnResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        let txn = convert::txn_request(&req);
        check_txn(&txn, self.limits.request.max_txn_ops)?;
        self.check_size(&req)?;
        let request = Request::Txn(txn);
        match propose(&self.replica, request, auth).await?.0 {
            Response::Txn(resp) => {
                let header = header(&self.replica, resp.revision);
                Ok(GrpcResponse::new(convert::txn_response(resp, header)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn compact(
        &self,
        request: GrpcRequest<pb::CompactionRequest>,
    ) -> Result<GrpcResponse<pb::CompactionResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        let request = Request::Compaction(CompactionRequest {
            revision: req.revision,
            physical: req.physical,
        });
        match propose(&self.replica, request, auth).await?.0 {
            Response::Compaction(resp) => Ok(GrpcResponse::new(pb::CompactionResponse {
                header: header(&self.replica, resp.revision),
            })),
            other => Err(unexpected(&other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::status::TOO_MANY_OPS;
    use super::*;
    use bytes::Bytes;
    use pb::request_op::Request as Op;

    fn put_op(key: &[u8]) -> pb::RequestOp {
        pb::RequestOp {
            request: Some(Op::RequestPut(pb::PutRequest {
                key: Bytes::copy_from_slice(key),
                ..pb::PutRequest::default()
            })),
        }
    }

    fn puts(n: usize) -> Vec<pb::RequestOp> {
        (0..n).map(|i| put_op(format!("k{i}").as_bytes())).collect()
    }

    fn check(txn: &pb::TxnRequest, max_ops: usize) -> Result<(), Status> {
        check_txn(&convert::txn_request(txn), max_ops)
    }

    #[test]
    fn txn_over_max_ops_is_refused_with_etcds_message() {
        let txn = pb::TxnRequest {
            success: puts(129),
            ..pb::TxnRequest::default()
        };
        let err = check(&txn, 128).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), TOO_MANY_OPS);
        let ok = pb::TxnRequest {
            success: puts(128),
            failure: puts(128),
            ..pb::TxnRequest::default()
        };
        assert!(check(&ok, 128).is_ok());
    }

    #[test]
    fn a_nested_txn_gets_what_its_parent_leaves_as_in_etcd() {
        let nested = |ops: usize| pb::RequestOp {
            request: Some(Op::RequestTxn(pb::TxnRequest {
                success: puts(ops),
                ..pb::TxnRequest::default()
            })),
        };
        // The parent uses 2 of 4 operations: a nested txn may use 2 more.
        let fits = pb::TxnRequest {
            success: vec![put_op(b"a"), nested(2)],
            ..pb::TxnRequest::default()
        };
        assert!(check(&fits, 4).is_ok());
        let over = pb::TxnRequest {
            success: vec![put_op(b"a"), nested(3)],
            ..pb::TxnRequest::default()
        };
        assert_eq!(check(&over, 4).unwrap_err().message(), TOO_MANY_OPS);
    }

    #[test]
    fn txn_ops_without_keys_or_with_duplicate_writes_are_refused() {
        let nested = pb::RequestOp {
            request: Some(Op::RequestTxn(pb::TxnRequest {
                failure: vec![put_op(b"")],
                ..pb::TxnRequest::default()
            })),
        };
        let txn = pb::TxnRequest {
            success: vec![put_op(b"a"), nested],
            ..pb::TxnRequest::default()
        };
        let err = check(&txn, 128).unwrap_err();
        assert_eq!(err.message(), EMPTY_KEY);
        assert_eq!(check_key(b"").unwrap_err().message(), EMPTY_KEY);
        assert!(check_key(b"x").is_ok());
        let twice = pb::TxnRequest {
            success: vec![put_op(b"a"), put_op(b"a")],
            ..pb::TxnRequest::default()
        };
        assert_eq!(
            check(&twice, 128).unwrap_err().message(),
            super::super::status::DUPLICATE_KEY
        );
    }
}
