//! The Lease service (etcd `etcdserverpb.Lease`): LeaseGrant, LeaseRevoke,
//! LeaseKeepAlive (bidirectional stream), LeaseTimeToLive, LeaseLeases.
//!
//! Grants and revokes go through Raft; keep-alives and TTL queries are
//! answered by the leader's lessor (the replica forwards them there).

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use keel_kernel::apply::{ApplyError, Request, Response};
use keel_kernel::auth::AuthError;
use keel_kernel::lease::{IdGenerator, LeaseError, NO_LEASE};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

use super::caller::{Credentials, credentials_caller, request_credentials};
use super::header::{current, header};
use super::status::{apply_error, auth_error};
use super::{ApiLimits, ResponseStream, propose, request_auth, response_stream, unexpected};
use crate::proto::etcdserverpb as pb;
use crate::replica::{Replica, ServerError};

/// Server-assigned lease ids (etcd's `idutil` generator), shared by every
/// service of a member that grants leases so they never collide.
#[derive(Clone, Debug)]
pub struct LeaseIds(Arc<Mutex<IdGenerator>>);

impl LeaseIds {
    /// Ids for `member_id`, starting from the wall clock as etcd's do.
    pub fn new(member_id: u64) -> LeaseIds {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(0));
        LeaseIds(Arc::new(Mutex::new(IdGenerator::new(member_id, unix_ms))))
    }

    /// The next lease id (positive, never 0).
    pub fn next(&self) -> i64 {
        // A poisoned lock still holds a valid generator (next_id cannot panic).
        let mut ids = self.0.lock().unwrap_or_else(|poison| poison.into_inner());
        ids.next_lease_id()
    }
}

/// The Lease service over a replica.
#[derive(Debug)]
pub struct LeaseService<B> {
    replica: B,
    limits: ApiLimits,
    ids: LeaseIds,
}

impl<B: Replica> LeaseService<B> {
    /// A Lease service over `replica` assigning ids from `ids`.
    pub fn new(replica: B, limits: ApiLimits, ids: LeaseIds) -> LeaseService<B> {
        LeaseService {
            replica,
            limits,
            ids,
        }
    }
}

/// The token (or client certificate user) a keep-alive stream was opened
/// with: read once from the stream's metadata, resolved to a caller for
/// every keep-alive.
type StreamToken = Result<Credentials, AuthError>;

/// One keep-alive answer: the granted TTL, or TTL 0 for an unknown lease
/// (etcd answers rather than failing the stream). The caller `token`
/// stands for must be allowed to renew lease `id` (etcd 3.6.9+
/// `checkLeaseRenew`, on the member the client talks to, before the
/// renewal is forwarded to the leader).
///
/// Errors (they end the stream, as in etcd): a bad token →
/// Unauthenticated "etcdserver: invalid auth token"; no user →
/// InvalidArgument "etcdserver: user name is empty"; a key of the lease
/// the caller may not write → PermissionDenied "etcdserver: permission
/// denied"; anything else the replica reports (no leader, timeout...).
async fn keep_alive_once<B: Replica>(
    replica: &B,
    token: &StreamToken,
    id: i64,
) -> Result<pb::LeaseKeepAliveResponse, Status> {
    let token = token.as_ref().map_err(|err| auth_error(*err))?;
    let caller = credentials_caller(replica, token).map_err(auth_error)?;
    replica
        .with_state(|state| state.check_lease_renew(&caller, id))
        .map_err(|err| apply_error(&err))?;
    let ttl = match replica.lease_renew(id).await {
        Ok(renewal) => renewal.ttl_secs,
        Err(ServerError::Apply(ApplyError::Lease(LeaseError::NotFound))) => 0,
        Err(err) => return Err(err.into()),
    };
    Ok(pb::LeaseKeepAliveResponse {
        header: current(replica),
        id,
        ttl,
    })
}

#[tonic::async_trait]
impl<B: Replica> pb::lease_server::Lease for LeaseService<B> {
    async fn lease_grant(
        &self,
        request: GrpcRequest<pb::LeaseGrantRequest>,
    ) -> Result<GrpcResponse<pb::LeaseGrantResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        let id = if req.id == NO_LEASE {
            self.ids.next()
        } else {
            req.id
        };
        let ttl_secs = self
            .replica
            .with_state(|state| state.lessor().ttl_to_grant_secs(req.ttl));
        let request = Request::LeaseGrant { id, ttl_secs };
        match propose(&self.replica, request, auth).await? {
            (Response::LeaseGrant { id, ttl_secs }, revision) => {
                Ok(GrpcResponse::new(pb::LeaseGrantResponse {
                    header: header(&self.replica, revision),
                    id,
                    ttl: ttl_secs,
                    error: String::new(),
                }))
            }
            (other, _) => Err(unexpected(&other)),
        }
    }

    async fn lease_revoke(
        &self,
        request: GrpcRequest<pb::LeaseRevokeRequest>,
    ) -> Result<GrpcResponse<pb::LeaseRevokeResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let id = request.into_inner().id;
        let (_, revision) = propose(&self.replica, Request::LeaseRevoke { id }, auth).await?;
        Ok(GrpcResponse::new(pb::LeaseRevokeResponse {
            header: header(&self.replica, revision),
        }))
    }

    type LeaseKeepAliveStream = ResponseStream<pb::LeaseKeepAliveResponse>;

    async fn lease_keep_alive(
        &self,
        request: GrpcRequest<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<GrpcResponse<Self::LeaseKeepAliveStream>, Status> {
        super::learner::refuse_on_learner(&self.replica)?;
        let token: StreamToken = request_credentials(&request);
        let mut requests = request.into_inner();
        let (sender, receiver) = tokio::sync::mpsc::channel(self.limits.stream_buffer_responses);
        let replica = self.replica.clone();
        tokio::spawn(async move {
            while let Ok(Some(req)) = requests.message().await {
                let answer = keep_alive_once(&replica, &token, req.id).await;
                let failed = answer.is_err();
                if sender.send(answer).await.is_err() || failed {
                    break;
                }
            }
        });
        Ok(GrpcResponse::new(response_stream(receiver).await?))
    }

    async fn lease_time_to_live(
        &self,
        request: GrpcRequest<pb::LeaseTimeToLiveRequest>,
    ) -> Result<GrpcResponse<pb::LeaseTimeToLiveResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let req = request.into_inner();
        let answer = self
            .replica
            .lease_time_to_live(Some(auth), req.id, req.keys)
            .await;
        let resp = match answer {
            Ok(status) => pb::LeaseTimeToLiveResponse {
                header: current(&self.replica),
                id: status.id,
                ttl: status.ttl_secs,
                granted_ttl: status.granted_ttl_secs,
                keys: status.keys.into_iter().map(Bytes::from).collect(),
            },
            // etcd answers an unknown lease with TTL -1 ("already expired").
            Err(ServerError::Apply(ApplyError::Lease(LeaseError::NotFound))) => {
                pb::LeaseTimeToLiveResponse {
                    header: current(&self.replica),
                    id: req.id,
                    ttl: -1,
                    granted_ttl: 0,
                    keys: Vec::new(),
                }
            }
            Err(err) => return Err(err.into()),
        };
        Ok(GrpcResponse::new(resp))
    }

    /// Every lease id; while auth is enabled the caller must be a user and,
    /// unless root, may read every key attached to any lease (etcd 3.6.9+
    /// `checkLeaseLeases`): the whole listing is refused otherwise.
    async fn lease_leases(
        &self,
        request: GrpcRequest<pb::LeaseLeasesRequest>,
    ) -> Result<GrpcResponse<pb::LeaseLeasesResponse>, Status> {
        let auth = request_auth(&self.replica, &request)?;
        let ids = self
            .replica
            .with_state(|state| state.lease_leases(&auth))
            .map_err(|err| apply_error(&err))?;
        Ok(GrpcResponse::new(pb::LeaseLeasesResponse {
            header: current(&self.replica),
            leases: ids.into_iter().map(|id| pb::LeaseStatus { id }).collect(),
        }))
    }
}
