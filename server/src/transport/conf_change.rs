//! Membership changes a follower forwards to the leader over the peer
//! transport (`keelpeerpb.Peer/ConfChange`). Only the leader knows whether
//! a learner is in sync and which peers are active, so only it can check a
//! change (`kernel/src/raft/promotion.rs`, `active_quorum.rs`); a change a
//! follower proposed through Raft and the leader refused would never be
//! answered. etcd likewise forwards a promotion from a follower to the
//! leader over its peer HTTP API (`server.go` `PromoteMember`,
//! `promoteMemberHTTP`) and returns the leader's refusal.

use std::time::Duration;

use keel_kernel::apply::ApplyError;
use keel_kernel::membership::MembershipError;
use keel_kernel::raft::ConfChange;
use tokio::sync::oneshot;
use tonic::transport::Channel;

use crate::proto::keelpeerpb::peer_client::PeerClient;
use crate::proto::keelpeerpb::{ConfChangeFailure, ConfChangeForward, ConfChangeReply};
use crate::replica::ServerError;

/// Where a change proposed for a follower is waited for: the leader's
/// driver answers on it once the change is applied, or refused.
pub type ConfChangeReceiver = oneshot::Receiver<Result<(), ServerError>>;

fn failure_of(outcome: &Result<(), ServerError>) -> ConfChangeFailure {
    match outcome {
        Ok(()) => ConfChangeFailure::ConfChangeOk,
        Err(ServerError::Apply(ApplyError::Membership(MembershipError::LearnerNotReady))) => {
            ConfChangeFailure::ConfChangeLearnerNotReady
        }
        Err(ServerError::Unhealthy) => ConfChangeFailure::ConfChangeUnhealthy,
        Err(_) => ConfChangeFailure::ConfChangeNotDone,
    }
}

fn outcome_of(failure: i32) -> Result<(), ServerError> {
    match ConfChangeFailure::try_from(failure) {
        Ok(ConfChangeFailure::ConfChangeOk) => Ok(()),
        Ok(ConfChangeFailure::ConfChangeLearnerNotReady) => Err(ServerError::Apply(
            ApplyError::Membership(MembershipError::LearnerNotReady),
        )),
        Ok(ConfChangeFailure::ConfChangeUnhealthy) => Err(ServerError::Unhealthy),
        Ok(ConfChangeFailure::ConfChangeNotDone) | Err(_) => Err(ServerError::ProposalDropped),
    }
}

/// Waits (`timeout` at most) for what this member's driver answers on
/// `receiver` about a membership change it was handed.
///
/// Errors: the driver's refusal; `Stopped` when the driver went away;
/// `Timeout` (the change may still be applied later).
pub async fn wait_conf_change(
    receiver: ConfChangeReceiver,
    timeout: Duration,
) -> Result<(), ServerError> {
    match tokio::time::timeout(timeout, receiver).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(_)) => Err(ServerError::Stopped),
        Err(_) => Err(ServerError::Timeout),
    }
}

/// Answers a forwarded change (leader side): waits on `pending` (what the
/// leader's driver answers, `timeout` at most).
///
/// Errors: none; every outcome is a [`ConfChangeReply`] (a change not
/// proposed, dropped or not done in time is `CONF_CHANGE_NOT_DONE`).
pub async fn answer_conf_change(
    pending: Result<ConfChangeReceiver, ServerError>,
    timeout: Duration,
) -> ConfChangeReply {
    let outcome = match pending {
        Ok(receiver) => wait_conf_change(receiver, timeout).await,
        Err(err) => Err(err),
    };
    ConfChangeReply {
        failure: failure_of(&outcome) as i32,
    }
}

/// Forwards `change` to the leader behind `client` and returns its answer.
///
/// Errors: the leader's refusal (`Apply(Membership(LearnerNotReady))`,
/// `Unhealthy`); `ProposalDropped` when the peer did not make the change
/// (not the leader any more, unreachable, dropped, timed out).
pub async fn forward_conf_change(
    client: &mut PeerClient<Channel>,
    cluster_id: u64,
    change: &ConfChange,
) -> Result<(), ServerError> {
    let request = ConfChangeForward {
        cluster_id,
        conf_change: change.encode(),
    };
    let reply = client
        .conf_change(request)
        .await
        .map_err(|_| ServerError::ProposalDropped)?
        .into_inner();
    outcome_of(reply.failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_cross_the_wire_unchanged() {
        let learner = ServerError::Apply(ApplyError::Membership(MembershipError::LearnerNotReady));
        for outcome in [Ok(()), Err(learner), Err(ServerError::Unhealthy)] {
            assert_eq!(outcome_of(failure_of(&outcome) as i32), outcome);
        }
        let timeout = failure_of(&Err(ServerError::Timeout)) as i32;
        assert_eq!(outcome_of(timeout), Err(ServerError::ProposalDropped));
    }
}
