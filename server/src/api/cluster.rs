//! The Cluster service (etcd `etcdserverpb.Cluster`): MemberList, and
//! MemberAdd/Remove/Update/Promote through Raft configuration changes
//! (`Replica::change_membership`). Changes need the `root` role while auth
//! is enabled, as in etcd. Response headers carry no revision: etcd's
//! cluster server fills only the cluster id, member id and term.

use keel_kernel::auth::MemberCall;
use keel_kernel::membership::Member;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

use super::header::header;
use super::status::apply_error;
use super::{convert, request_auth};
use crate::proto::etcdserverpb as pb;
use crate::replica::{MemberChange, Replica};

/// The Cluster service over a replica.
#[derive(Clone, Debug)]
pub struct ClusterService<B> {
    replica: B,
}

impl<B: Replica> ClusterService<B> {
    /// A Cluster service over `replica`.
    pub fn new(replica: B) -> ClusterService<B> {
        ClusterService { replica }
    }

    /// Checks the caller is an administrator, then applies `change`.
    ///
    /// Errors: permission errors; the replica's (`member not found`, ...).
    async fn change<T>(
        &self,
        request: &GrpcRequest<T>,
        change: MemberChange,
    ) -> Result<(Member, Vec<pb::Member>), Status> {
        let auth = request_auth(&self.replica, request)?;
        self.replica
            .with_state(|state| state.authorize_call(&auth, MemberCall::MemberChange))
            .map_err(|err| apply_error(&err))?;
        let (member, members) = self.replica.change_membership(change).await?;
        Ok((member, members.iter().map(convert::member).collect()))
    }
}

#[tonic::async_trait]
impl<B: Replica> pb::cluster_server::Cluster for ClusterService<B> {
    async fn member_add(
        &self,
        request: GrpcRequest<pb::MemberAddRequest>,
    ) -> Result<GrpcResponse<pb::MemberAddResponse>, Status> {
        let change = MemberChange::Add {
            peer_urls: request.get_ref().peer_ur_ls.clone(),
            is_learner: request.get_ref().is_learner,
        };
        let (member, members) = self.change(&request, change).await?;
        Ok(GrpcResponse::new(pb::MemberAddResponse {
            header: header(&self.replica, 0),
            member: Some(convert::member(&member)),
            members,
        }))
    }

    async fn member_remove(
        &self,
        request: GrpcRequest<pb::MemberRemoveRequest>,
    ) -> Result<GrpcResponse<pb::MemberRemoveResponse>, Status> {
        let member_id = request.get_ref().id;
        let (_, members) = self
            .change(&request, MemberChange::Remove { member_id })
            .await?;
        Ok(GrpcResponse::new(pb::MemberRemoveResponse {
            header: header(&self.replica, 0),
            members,
        }))
    }

    async fn member_update(
        &self,
        request: GrpcRequest<pb::MemberUpdateRequest>,
    ) -> Result<GrpcResponse<pb::MemberUpdateResponse>, Status> {
        let change = MemberChange::Update {
            member_id: request.get_ref().id,
            peer_urls: request.get_ref().peer_ur_ls.clone(),
        };
        let (_, members) = self.change(&request, change).await?;
        Ok(GrpcResponse::new(pb::MemberUpdateResponse {
            header: header(&self.replica, 0),
            members,
        }))
    }

    async fn member_list(
        &self,
        request: GrpcRequest<pb::MemberListRequest>,
    ) -> Result<GrpcResponse<pb::MemberListResponse>, Status> {
        if request.get_ref().linearizable {
            self.replica.linearizable_barrier().await?;
        }
        // Any user, but a user, while auth is enabled (etcd 3.6.9+).
        let auth = request_auth(&self.replica, &request)?;
        self.replica
            .with_state(|state| state.authorize_call(&auth, MemberCall::MemberList))
            .map_err(|err| apply_error(&err))?;
        let members = self.replica.with_state(|state| {
            let members = state.cluster().members();
            members.into_iter().map(convert::member).collect()
        });
        Ok(GrpcResponse::new(pb::MemberListResponse {
            header: header(&self.replica, 0),
            members,
        }))
    }

    async fn member_promote(
        &self,
        request: GrpcRequest<pb::MemberPromoteRequest>,
    ) -> Result<GrpcResponse<pb::MemberPromoteResponse>, Status> {
        let member_id = request.get_ref().id;
        let (_, members) = self
            .change(&request, MemberChange::Promote { member_id })
            .await?;
        Ok(GrpcResponse::new(pb::MemberPromoteResponse {
            header: header(&self.replica, 0),
            members,
        }))
    }
}
