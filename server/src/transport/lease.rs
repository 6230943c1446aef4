//! Lease requests a follower forwards to the leader over the peer transport
//! (`keelpeerpb.Peer/LeaseRenew`, `LeaseTimeToLive`): only the leader's
//! lessor renews leases and knows their exact remaining TTL (etcd forwards
//! keep-alives to the leader over its peer HTTP API the same way). The same
//! [`LeaseAuthority`] lists the members for a joining member (`Members`)
//! and proposes membership changes followers forward (`ConfChange`).

use std::time::Duration;

use futures_util::future::BoxFuture;

use keel_kernel::apply::ApplyError;
use keel_kernel::lease::{LeaseError, LeaseId, LeaseRenewal, LeaseStatus};
use keel_kernel::membership::Member;
use keel_kernel::raft::ConfChange;
use tonic::transport::Channel;

use super::conf_change::ConfChangeReceiver;
use crate::proto::keelpeerpb::peer_client::PeerClient;
use crate::proto::keelpeerpb::{
    LeaseFailure, LeaseRenewReply, LeaseRenewRequest, LeaseTimeToLiveReply, LeaseTimeToLiveRequest,
};
use crate::replica::ServerError;

/// The leader's side: answers forwarded lease requests from its own lessor.
pub trait LeaseAuthority: Send + Sync + 'static {
    /// Renews lease `id` if this member is the leader, once a ReadIndex
    /// round (Raft thesis §6.4) confirmed that it still is: a leader cut
    /// off from its quorum that has not stepped down yet must not renew a
    /// lease the new leader will expire (etcd's `ensureLeadership`, 3.5).
    /// Errors: `Apply(Lease(NotFound))`; `Apply(Lease(NotPrimary))` or
    /// `NoLeader` when this member is not the leader; the barrier's
    /// `Timeout` or `Stopped` when leadership could not be confirmed.
    fn renew_here(&self, id: LeaseId) -> BoxFuture<'static, Result<LeaseRenewal, ServerError>>;

    /// Remaining TTL of lease `id` (with its keys when `keys`) if this
    /// member is the leader. Errors: as [`LeaseAuthority::renew_here`].
    fn time_to_live_here(&self, id: LeaseId, keys: bool) -> Result<LeaseStatus, ServerError>;

    /// The members, for a member joining the cluster, read after a
    /// ReadIndex barrier (Raft thesis §6.4) that may take up to `barrier`:
    /// such a list reflects every membership change committed before the
    /// request, so a member started after its `member add` finds itself,
    /// never a removed member at its address. When the barrier cannot
    /// complete (no leader reachable, or a quorum that needs the joiner
    /// itself) the answer is the applied list, marked not linearizable.
    fn members_for_joiner(&self, barrier: Duration) -> BoxFuture<'static, MembersRead>;

    /// Proposes a membership change a follower forwarded, if this member
    /// is the leader (see [`super::conf_change`]); the receiver answers
    /// once the change is applied here, or with the leader's refusal.
    ///
    /// Errors: `NoLeader` or `Apply(Lease(NotPrimary))` when this member is
    /// not the leader; `TooManyRequests`, `Stopped`.
    fn propose_conf_change_here(
        &self,
        change: ConfChange,
    ) -> Result<ConfChangeReceiver, ServerError>;

    /// How long a forwarded request may take (`--request-timeout`).
    fn request_timeout(&self) -> Duration;

    /// Whether member `id` was removed from the cluster, as far as this
    /// member has applied (its messages are then refused).
    fn is_removed_here(&self, id: u64) -> bool {
        let _ = id;
        false
    }
}

/// A member list read for a joining member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembersRead {
    /// The members, as applied by the answering member.
    pub members: Vec<Member>,
    /// Whether the read followed a completed ReadIndex barrier.
    pub linearizable: bool,
    /// The Raft index applied when the list was read.
    pub applied_index: u64,
}

fn failure_of(error: &ServerError) -> Option<LeaseFailure> {
    match error {
        ServerError::Apply(ApplyError::Lease(LeaseError::NotFound)) => {
            Some(LeaseFailure::LeaseNotFound)
        }
        ServerError::Apply(ApplyError::Lease(LeaseError::NotPrimary)) | ServerError::NoLeader => {
            Some(LeaseFailure::LeaseNotLeader)
        }
        _ => None,
    }
}

fn error_of(failure: i32) -> Option<ServerError> {
    match LeaseFailure::try_from(failure) {
        Ok(LeaseFailure::LeaseOk) => None,
        Ok(LeaseFailure::LeaseNotFound) => {
            Some(ServerError::Apply(ApplyError::Lease(LeaseError::NotFound)))
        }
        Ok(LeaseFailure::LeaseNotLeader) | Err(_) => Some(ServerError::ProposalDropped),
    }
}

/// Answers a forwarded renew (leader side). Errors other than the lease
/// failures the protocol names become a gRPC `UNAVAILABLE` status.
pub async fn answer_renew(
    authority: &dyn LeaseAuthority,
    request: &LeaseRenewRequest,
) -> Result<LeaseRenewReply, tonic::Status> {
    match authority.renew_here(request.id).await {
        Ok(renewal) => Ok(LeaseRenewReply {
            ttl_secs: renewal.ttl_secs,
            failure: LeaseFailure::LeaseOk as i32,
        }),
        Err(err) => match failure_of(&err) {
            Some(failure) => Ok(LeaseRenewReply {
                ttl_secs: 0,
                failure: failure as i32,
            }),
            None => Err(tonic::Status::unavailable(format!("{err:?}"))),
        },
    }
}

/// Answers a forwarded time-to-live query (leader side).
pub fn answer_time_to_live(
    authority: &dyn LeaseAuthority,
    request: &LeaseTimeToLiveRequest,
) -> Result<LeaseTimeToLiveReply, tonic::Status> {
    match authority.time_to_live_here(request.id, request.keys) {
        Ok(status) => Ok(LeaseTimeToLiveReply {
            ttl_secs: status.ttl_secs,
            granted_ttl_secs: status.granted_ttl_secs,
            keys: status.keys.into_iter().map(Into::into).collect(),
            failure: LeaseFailure::LeaseOk as i32,
        }),
        Err(err) => match failure_of(&err) {
            Some(failure) => Ok(LeaseTimeToLiveReply {
                failure: failure as i32,
                ..LeaseTimeToLiveReply::default()
            }),
            None => Err(tonic::Status::unavailable(format!("{err:?}"))),
        },
    }
}

/// Forwards a renew of lease `id` to the leader behind `client`.
/// Errors: `Apply(Lease(NotFound))`; `ProposalDropped` when the peer is no
/// longer the leader or cannot be reached.
pub async fn forward_renew(
    client: &mut PeerClient<Channel>,
    cluster_id: u64,
    id: LeaseId,
) -> Result<i64, ServerError> {
    let reply = client
        .lease_renew(LeaseRenewRequest { cluster_id, id })
        .await
        .map_err(|_| ServerError::ProposalDropped)?
        .into_inner();
    match error_of(reply.failure) {
        Some(err) => Err(err),
        None => Ok(reply.ttl_secs),
    }
}

/// Forwards a time-to-live query for lease `id` to the leader behind `client`.
/// Errors: as [`forward_renew`].
pub async fn forward_time_to_live(
    client: &mut PeerClient<Channel>,
    cluster_id: u64,
    id: LeaseId,
    keys: bool,
) -> Result<LeaseStatus, ServerError> {
    let reply = client
        .lease_time_to_live(LeaseTimeToLiveRequest {
            cluster_id,
            id,
            keys,
        })
        .await
        .map_err(|_| ServerError::ProposalDropped)?
        .into_inner();
    match error_of(reply.failure) {
        Some(err) => Err(err),
        None => Ok(LeaseStatus {
            id,
            ttl_secs: reply.ttl_secs,
            granted_ttl_secs: reply.granted_ttl_secs,
            keys: reply.keys.into_iter().map(|k| k.to_vec()).collect(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    struct Fixed(Result<LeaseRenewal, ServerError>);

    impl LeaseAuthority for Fixed {
        fn renew_here(
            &self,
            _id: LeaseId,
        ) -> BoxFuture<'static, Result<LeaseRenewal, ServerError>> {
            let renewal = self.0.clone();
            Box::pin(async move { renewal })
        }
        fn members_for_joiner(&self, _barrier: Duration) -> BoxFuture<'static, MembersRead> {
            Box::pin(async {
                MembersRead {
                    members: Vec::new(),
                    linearizable: false,
                    applied_index: 0,
                }
            })
        }

        fn propose_conf_change_here(
            &self,
            _change: ConfChange,
        ) -> Result<ConfChangeReceiver, ServerError> {
            Err(ServerError::NoLeader)
        }

        fn request_timeout(&self) -> Duration {
            Duration::from_secs(1)
        }

        fn time_to_live_here(&self, id: LeaseId, _keys: bool) -> Result<LeaseStatus, ServerError> {
            self.0.clone().map(|r| LeaseStatus {
                id,
                ttl_secs: r.ttl_secs - 1,
                granted_ttl_secs: r.ttl_secs,
                keys: vec![b"k".to_vec()],
            })
        }
    }

    #[tokio::test]
    async fn answers_carry_ttls_and_name_lease_failures() {
        let ok = Fixed(Ok(LeaseRenewal {
            ttl_secs: 10,
            checkpoint: None,
        }));
        let reply = answer_renew(
            &ok,
            &LeaseRenewRequest {
                cluster_id: 1,
                id: 5,
            },
        )
        .await
        .unwrap();
        assert_eq!((reply.ttl_secs, error_of(reply.failure)), (10, None));
        let ttl = answer_time_to_live(
            &ok,
            &LeaseTimeToLiveRequest {
                cluster_id: 1,
                id: 5,
                keys: true,
            },
        )
        .unwrap();
        assert_eq!(
            (ttl.ttl_secs, ttl.granted_ttl_secs, ttl.keys.len()),
            (9, 10, 1)
        );

        let missing = Fixed(Err(ServerError::Apply(ApplyError::Lease(
            LeaseError::NotFound,
        ))));
        let reply = answer_renew(
            &missing,
            &LeaseRenewRequest {
                cluster_id: 1,
                id: 5,
            },
        )
        .await
        .unwrap();
        assert_eq!(
            error_of(reply.failure),
            Some(ServerError::Apply(ApplyError::Lease(LeaseError::NotFound)))
        );
        let follower = Fixed(Err(ServerError::NoLeader));
        let reply = answer_renew(
            &follower,
            &LeaseRenewRequest {
                cluster_id: 1,
                id: 5,
            },
        )
        .await
        .unwrap();
        assert_eq!(error_of(reply.failure), Some(ServerError::ProposalDropped));
        let broken = Fixed(Err(ServerError::Stopped));
        assert!(
            answer_renew(
                &broken,
                &LeaseRenewRequest {
                    cluster_id: 1,
                    id: 5
                }
            )
            .await
            .is_err()
        );
    }
}
