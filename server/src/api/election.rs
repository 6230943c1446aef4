//! The Election service (etcd `v3electionpb.Election`, served by etcd's
//! `etcdserver/api/v3election` with the `concurrency.Election` recipe).
//!
//! A candidate's key is `name/<lease id in hex>`, attached to its lease;
//! the leader is the key under `name/` with the lowest create revision.
//! Campaign creates the key (or finds it, and proclaims the new value if it
//! differs) and waits until every older key is deleted; Proclaim updates
//! the value while the caller still holds the key it was elected with
//! (same create revision); Resign deletes that key; Leader reads the
//! current leader; Observe streams the leader and every change of it (see
//! [`super::election_observe`]). As etcd runs the recipe through an
//! in-process client, every refusal reaches clients with code Unknown and
//! the recipe's message (`election: not leader`, `election: no leader`).

use keel_kernel::apply::{Request, Response};
use keel_kernel::auth::AuthInfo;
use keel_kernel::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RequestOp, SortOrder,
    TxnRequest, TxnResponse,
};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::convert::key_value;
use super::election_observe::observe;
use super::header::header;
use super::lease::LeaseIds;
use super::lock::{
    acquire_txn, as_client_error, first_created, range_kv, session_lease, wait_deletes,
};
use super::status::apply_error;
use super::{ResponseStream, propose, request_auth, unexpected};
use crate::proto::v3electionpb as pb;
use crate::replica::Replica;

/// etcd's `concurrency.ErrElectionNotLeader`.
pub const NOT_LEADER: &str = "election: not leader";
/// etcd's `concurrency.ErrElectionNoLeader`.
pub const NO_LEADER: &str = "election: no leader";
/// etcd's `v3election.ErrMissingLeaderKey`.
pub const MISSING_LEADER_KEY: &str = "\"leader\" field must be provided";

/// The Election service over a replica.
#[derive(Clone, Debug)]
pub struct ElectionService<B> {
    replica: B,
    ids: LeaseIds,
}

/// The key prefix of election `name`: `name/`.
pub fn election_prefix(name: &[u8]) -> Vec<u8> {
    [name, b"/"].concat()
}

/// A txn that runs `op` while `key` still has create revision `revision`
/// (the caller still holds the leadership it won).
fn while_leader(key: &[u8], revision: i64, op: RequestOp) -> TxnRequest {
    TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::Create(revision),
            key: key.to_vec(),
            range_end: Vec::new(),
        }],
        success: vec![op],
        failure: Vec::new(),
    }
}

impl<B: Replica> ElectionService<B> {
    /// An Election service over `replica`, granting session leases with
    /// ids from `ids`.
    pub fn new(replica: B, ids: LeaseIds) -> ElectionService<B> {
        ElectionService { replica, ids }
    }

    async fn txn(&self, txn: TxnRequest, auth: &AuthInfo) -> Result<TxnResponse, Status> {
        match propose(&self.replica, Request::Txn(txn), auth.clone()).await? {
            (Response::Txn(resp), _) => Ok(resp),
            (other, _) => Err(unexpected(&other)),
        }
    }

    /// Sets `leader`'s value while it holds the key (etcd `Proclaim`).
    ///
    /// Errors: [`NOT_LEADER`] when the key is gone or was re-created.
    async fn proclaim_as(
        &self,
        leader: &pb::LeaderKey,
        value: &[u8],
        auth: &AuthInfo,
    ) -> Result<i64, Status> {
        let put = RequestOp::Put(PutRequest {
            key: leader.key.to_vec(),
            value: value.to_vec(),
            lease: leader.lease,
            ..PutRequest::default()
        });
        let resp = self
            .txn(while_leader(&leader.key, leader.rev, put), auth)
            .await?;
        match resp.succeeded {
            true => Ok(resp.revision),
            false => Err(Status::unknown(NOT_LEADER)),
        }
    }

    /// Deletes `leader`'s key while it holds it (etcd `Resign`; not an
    /// error when it no longer does).
    async fn resign_as(&self, leader: &pb::LeaderKey, auth: &AuthInfo) -> Result<i64, Status> {
        let delete = RequestOp::DeleteRange(DeleteRangeRequest {
            key: leader.key.to_vec(),
            ..DeleteRangeRequest::default()
        });
        let resp = self
            .txn(while_leader(&leader.key, leader.rev, delete), auth)
            .await?;
        Ok(resp.revision)
    }

    async fn campaign_inner(
        &self,
        request: GrpcRequest<pb::CampaignRequest>,
    ) -> Result<GrpcResponse<pb::CampaignResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        let lease = session_lease(&self.replica, &self.ids, req.lease, &auth).await?;
        let prefix = election_prefix(&req.name);
        let key = [prefix.as_slice(), format!("{lease:x}").as_bytes()].concat();
        let resp = self
            .txn(acquire_txn(&prefix, &key, lease, &req.value), &auth)
            .await?;
        let mut leader = pb::LeaderKey {
            name: req.name,
            key: key.into(),
            rev: resp.revision,
            lease,
        };
        if !resp.succeeded {
            let existing = range_kv(&resp, 0).ok_or_else(|| Status::unknown(NOT_LEADER))?;
            leader.rev = existing.create_revision;
            if existing.value != req.value
                && let Err(refused) = self.proclaim_as(&leader, &req.value, &auth).await
            {
                self.resign_as(&leader, &auth).await?;
                return Err(refused);
            }
        }
        wait_deletes(&self.replica, &prefix, leader.rev - 1, &auth).await?;
        Ok(GrpcResponse::new(pb::CampaignResponse {
            header: header(&self.replica, resp.revision),
            leader: Some(leader),
        }))
    }

    async fn leader_inner(
        &self,
        request: GrpcRequest<pb::LeaderRequest>,
    ) -> Result<GrpcResponse<pb::LeaderResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let prefix = election_prefix(&request.into_inner().name);
        self.replica.linearizable_barrier().await?;
        let first = first_created(&prefix, SortOrder::Ascend, 0);
        let found = self
            .replica
            .with_state(|state| state.range(Some(&auth), &first))
            .map_err(|err| apply_error(&err))?;
        let kv = found.kvs.into_iter().next();
        let kv = kv.ok_or_else(|| Status::unknown(NO_LEADER))?;
        Ok(GrpcResponse::new(pb::LeaderResponse {
            header: header(&self.replica, found.revision),
            kv: Some(key_value(kv)),
        }))
    }
}

#[tonic::async_trait]
impl<B: Replica> pb::election_server::Election for ElectionService<B> {
    async fn campaign(
        &self,
        request: GrpcRequest<pb::CampaignRequest>,
    ) -> Result<GrpcResponse<pb::CampaignResponse>, Status> {
        self.campaign_inner(request).await.map_err(as_client_error)
    }

    async fn proclaim(
        &self,
        request: GrpcRequest<pb::ProclaimRequest>,
    ) -> Result<GrpcResponse<pb::ProclaimResponse>, Status> {
        let run = async {
            let auth = request_auth(&self.replica, &request)?;
            let req = request.into_inner();
            let leader = req
                .leader
                .ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))?;
            let revision = self.proclaim_as(&leader, &req.value, &auth).await?;
            Ok(GrpcResponse::new(pb::ProclaimResponse {
                header: header(&self.replica, revision),
            }))
        };
        run.await.map_err(as_client_error)
    }

    async fn leader(
        &self,
        request: GrpcRequest<pb::LeaderRequest>,
    ) -> Result<GrpcResponse<pb::LeaderResponse>, Status> {
        self.leader_inner(request).await.map_err(as_client_error)
    }

    type ObserveStream = ResponseStream<pb::LeaderResponse>;

    async fn observe(
        &self,
        request: GrpcRequest<pb::LeaderRequest>,
    ) -> Result<GrpcResponse<Self::ObserveStream>, Status> {
        let auth = request_auth(&self.replica, &request).map_err(as_client_error)?;
        let prefix = election_prefix(&request.into_inner().name);
        let stream = observe(self.replica.clone(), prefix, auth).await?;
        Ok(GrpcResponse::new(stream))
    }

    async fn resign(
        &self,
        request: GrpcRequest<pb::ResignRequest>,
    ) -> Result<GrpcResponse<pb::ResignResponse>, Status> {
        let run = async {
            let auth = request_auth(&self.replica, &request)?;
            let leader = request.into_inner().leader;
            let leader = leader.ok_or_else(|| Status::unknown(MISSING_LEADER_KEY))?;
            let revision = self.resign_as(&leader, &auth).await?;
            Ok(GrpcResponse::new(pb::ResignResponse {
                header: header(&self.replica, revision),
            }))
        };
        run.await.map_err(as_client_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_live_under_the_name_and_a_slash() {
        assert_eq!(election_prefix(b"e"), b"e/".to_vec());
        let txn = while_leader(b"e/7", 5, RequestOp::Range(Default::default()));
        assert_eq!(txn.compare[0].target, CompareTarget::Create(5));
        assert!(txn.failure.is_empty());
    }
}
