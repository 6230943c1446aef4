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
use super::status::{EMPTY_KEY, REQUEST_TOO_LARGE, TOO_MANY_OPS};
use super::{ApiLimits, convert, propose, request_auth, unexpected};
use crate::backend::Backend;
use crate::proto::etcdserverpb as pb;

/// Deepest txn nesting accepted (prost itself stops decoding at 100).
const TXN_DEPTH_MAX: usize = 64;

/// The KV service over a backend.
#[derive(Clone, Debug)]
pub struct KvService<B> {
    backend: B,
    limits: ApiLimits,
}

impl<B: Backend> KvService<B> {
    /// A KV service answering from `backend` within `limits`.
    pub fn new(backend: B, limits: ApiLimits) -> KvService<B> {
        KvService { backend, limits }
    }

    fn check_size(&self, message: &impl Message) -> Result<(), Status> {
        if message.encoded_len() > self.limits.max_request_bytes {
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

/// etcd's `checkTxnRequest`: at most `max_ops` compares and operations per
/// branch, every op (and nested txn) with a key.
///
/// Errors: InvalidArgument "etcdserver: too many operations in txn
/// request" or "etcdserver: key is not provided".
pub fn check_txn(txn: &pb::TxnRequest, max_ops: usize, depth: usize) -> Result<(), Status> {
    let too_many = [txn.compare.len(), txn.success.len(), txn.failure.len()]
        .iter()
        .any(|&n| n > max_ops);
    if too_many || depth > TXN_DEPTH_MAX {
        return Err(Status::invalid_argument(TOO_MANY_OPS));
    }
    for cmp in &txn.compare {
        check_key(&cmp.key)?;
    }
    for op in txn.success.iter().chain(&txn.failure) {
        use pb::request_op::Request as Op;
        match &op.request {
            Some(Op::RequestRange(r)) => check_key(&r.key)?,
            Some(Op::RequestPut(r)) => check_key(&r.key)?,
            Some(Op::RequestDeleteRange(r)) => check_key(&r.key)?,
            Some(Op::RequestTxn(r)) => check_txn(r, max_ops, depth + 1)?,
            None => {}
        }
    }
    Ok(())
}

#[tonic::async_trait]
impl<B: Backend> pb::kv_server::Kv for KvService<B> {
    async fn range(
        &self,
        request: GrpcRequest<pb::RangeRequest>,
    ) -> Result<GrpcResponse<pb::RangeResponse>, Status> {
        let auth = super::caller::request_auth_on_learner(&self.backend, &request)?;
        let req = request.into_inner();
        if !req.serializable {
            super::learner::refuse_on_learner(&self.backend)?;
        }
        check_key(&req.key)?;
        // Planted bug (off by default, for the simulator to find): a
        // linearizable read is served from local state without ReadIndex.
        if !req.serializable && !cfg!(feature = "planted-bug-read-without-readindex") {
            self.backend.linearizable_barrier().await?;
        }
        let range = convert::range_request(&req);
        let resp = self
            .backend
            .with_state(|state| state.range(Some(&auth), &range))
            .map_err(|err| super::status::apply_error(&err))?;
        let header = header(&self.backend, resp.revision);
        Ok(GrpcResponse::new(convert::range_response(resp, header)))
    }

    async fn put(
        &self,
        request: GrpcRequest<pb::PutRequest>,
    ) -> Result<GrpcResponse<pb::PutResponse>, Status> {
        let auth = request_auth(&self.backend, &request)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        self.check_size(&req)?;
        let request = Request::Put(convert::put_request(&req));
        match propose(&self.backend, request, auth).await?.0 {
            Response::Put(resp) => {
                let header = header(&self.backend, resp.revision);
                Ok(GrpcResponse::new(convert::put_response(resp, header)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn delete_range(
        &self,
        request: GrpcRequest<pb::DeleteRangeRequest>,
    ) -> Result<GrpcResponse<pb::DeleteRangeResponse>, Status> {
        let auth = request_auth(&self.backend, &request)?;
        let req = request.into_inner();
        check_key(&req.key)?;
        self.check_size(&req)?;
        let request = Request::DeleteRange(convert::delete_range_request(&req));
        match propose(&self.backend, request, auth).await?.0 {
            Response::DeleteRange(resp) => {
                let header = header(&self.backend, resp.revision);
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
        let auth = request_auth(&self.backend, &request)?;
        let req = request.into_inner();
        check_txn(&req, self.limits.max_txn_ops, 0)?;
        self.check_size(&req)?;
        let request = Request::Txn(convert::txn_request(&req));
        match propose(&self.backend, request, auth).await?.0 {
            Response::Txn(resp) => {
                let header = header(&self.backend, resp.revision);
                Ok(GrpcResponse::new(convert::txn_response(resp, header)))
            }
            other => Err(unexpected(&other)),
        }
    }

    async fn compact(
        &self,
        request: GrpcRequest<pb::CompactionRequest>,
    ) -> Result<GrpcResponse<pb::CompactionResponse>, Status> {
        let auth = request_auth(&self.backend, &request)?;
        let req = request.into_inner();
        let request = Request::Compaction(CompactionRequest {
            revision: req.revision,
            physical: req.physical,
        });
        match propose(&self.backend, request, auth).await?.0 {
            Response::Compaction(resp) => Ok(GrpcResponse::new(pb::CompactionResponse {
                header: header(&self.backend, resp.revision),
            })),
            other => Err(unexpected(&other)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use pb::request_op::Request as Op;

    fn put_op(key: &'static [u8]) -> pb::RequestOp {
        pb::RequestOp {
            request: Some(Op::RequestPut(pb::PutRequest {
                key: Bytes::from_static(key),
                ..pb::PutRequest::default()
            })),
        }
    }

    #[test]
    fn txn_over_max_ops_is_refused_with_etcds_message() {
        let txn = pb::TxnRequest {
            success: vec![put_op(b"k"); 129],
            ..pb::TxnRequest::default()
        };
        let err = check_txn(&txn, 128, 0).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), TOO_MANY_OPS);
        let ok = pb::TxnRequest {
            success: vec![put_op(b"k"); 128],
            failure: vec![put_op(b"k"); 128],
            ..pb::TxnRequest::default()
        };
        assert!(check_txn(&ok, 128, 0).is_ok());
    }

    #[test]
    fn txn_ops_without_keys_are_refused() {
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
        let err = check_txn(&txn, 128, 0).unwrap_err();
        assert_eq!(err.message(), EMPTY_KEY);
        assert_eq!(check_key(b"").unwrap_err().message(), EMPTY_KEY);
        assert!(check_key(b"x").is_ok());
    }
}
