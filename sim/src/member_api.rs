//! The Cluster API as the membership driver calls it: MemberList,
//! MemberAdd (optionally as a learner), MemberPromote and MemberRemove
//! through one member's etcd gRPC endpoint, each within a timeout
//! (etcd `etcdserverpb.Cluster`, `api/v3rpc/member.go`).

use std::time::Duration;

use keel_server::proto::etcdserverpb::cluster_client::ClusterClient;
use keel_server::proto::etcdserverpb::{
    Member, MemberAddRequest, MemberListRequest, MemberPromoteRequest, MemberRemoveRequest,
};
use tonic::transport::Channel;

use crate::NodeAddr;

/// How long one Cluster API call may take (a configuration change waits
/// for its commit: longer than a read).
pub const MEMBER_CALL_TIMEOUT_MS: u64 = 2_000;

/// A member of the cluster as MemberList reports it, in the fields the
/// simulation compares (all of etcd's `Member`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemberInfo {
    /// The member's id.
    pub id: u64,
    /// Its name (empty until it published itself).
    pub name: String,
    /// Its peer URLs.
    pub peer_urls: Vec<String>,
    /// Its client URLs (empty until it published itself).
    pub client_urls: Vec<String>,
    /// Whether it is a learner (not a voter).
    pub is_learner: bool,
}

impl From<Member> for MemberInfo {
    fn from(member: Member) -> MemberInfo {
        MemberInfo {
            id: member.id,
            name: member.name,
            peer_urls: member.peer_ur_ls,
            client_urls: member.client_ur_ls,
            is_learner: member.is_learner,
        }
    }
}

/// A member list sorted by id, so two lists compare by content.
fn sorted(members: Vec<Member>) -> Vec<MemberInfo> {
    let mut list: Vec<MemberInfo> = members.into_iter().map(MemberInfo::from).collect();
    list.sort();
    list
}

/// Runs `call` on a Cluster client of member `through` within
/// [`MEMBER_CALL_TIMEOUT_MS`]; errors are the gRPC status (`code:
/// message`), a failed connect or `timed out`.
async fn with_client<T, F>(
    through: u8,
    call: impl FnOnce(ClusterClient<Channel>) -> F,
) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let ask = async move {
        let url = NodeAddr::member(through).client_url();
        let client = ClusterClient::connect(url)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        call(client)
            .await
            .map_err(|e| format!("{}: {}", e.code(), e.message()))
    };
    madsim::time::timeout(Duration::from_millis(MEMBER_CALL_TIMEOUT_MS), ask)
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
}

/// MemberList through member `through`; `linearizable` asks it to confirm
/// with the leader first (etcd 3.5's `linearizable` field), otherwise it
/// answers from what it applied.
pub async fn member_list(through: u8, linearizable: bool) -> Result<Vec<MemberInfo>, String> {
    with_client(through, |mut client| async move {
        let request = MemberListRequest { linearizable };
        Ok(sorted(
            client.member_list(request).await?.into_inner().members,
        ))
    })
    .await
}

/// MemberAdd of `peer_url` (a learner if `is_learner`) through member
/// `through`; the new member's id.
pub async fn member_add(through: u8, peer_url: String, is_learner: bool) -> Result<u64, String> {
    with_client(through, |mut client| async move {
        let request = MemberAddRequest {
            peer_ur_ls: vec![peer_url],
            is_learner,
        };
        let response = client.member_add(request).await?.into_inner();
        Ok(response.member.map_or(0, |m| m.id))
    })
    .await
}

/// MemberPromote of learner `id` through member `through`.
pub async fn member_promote(through: u8, id: u64) -> Result<(), String> {
    with_client(through, |mut client| async move {
        client.member_promote(MemberPromoteRequest { id }).await?;
        Ok(())
    })
    .await
}

/// MemberRemove of member `id` through member `through`.
pub async fn member_remove(through: u8, id: u64) -> Result<(), String> {
    with_client(through, |mut client| async move {
        client.member_remove(MemberRemoveRequest { id }).await?;
        Ok(())
    })
    .await
}
