//! How a member added with `member add` learns its id and its peers when
//! it starts with `--initial-cluster-state existing` (etcd
//! `GetClusterFromRemotePeers` and `ValidateClusterAndAssignIDs`): it asks
//! the peers of `--initial-cluster` for the member list and takes the
//! member with its own peer URLs.
//!
//! etcd trusts the first answer; keel asks for a linearizable one. A peer
//! cut off from the leader lists the members it has applied, which may be
//! stale: after a member was removed and re-added at the same peer URL
//! (etcd's runbook for replacing a member) it still lists the removed
//! member there, and a joiner that took that id would boot under it with an
//! empty log, a member with amnesia whose vote can elect a stale leader
//! (keel-sim's `membership` scenario found this). So a peer answers after a
//! ReadIndex barrier when it can, and says whether it did; the joiner asks
//! every peer, in rounds, until one answers linearizably. When none can for
//! [`CONFIRM_ELECTION_TIMEOUTS`] election timeouts (the joiner itself may
//! be needed for a quorum: a voter added to a one-member cluster), it takes
//! the freshest answer (the highest applied index), as etcd would, and
//! logs a warning.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::bootstrap::{BootError, JoinInfo};
use super::settings::NodeSettings;
use crate::proto::keelpeerpb::MembersReply;
use crate::transport::dial::PeerDialer;

/// Election timeouts the joiner waits for a linearizable member list
/// before it takes the freshest answer.
pub const CONFIRM_ELECTION_TIMEOUTS: u64 = 5;
/// Longest wait for one peer's answer (connection included).
const ASK_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two rounds of questions.
const ROUND_PAUSE: Duration = Duration::from_millis(200);

/// Finds this member (added beforehand with `member add`) by its peer URLs
/// in the member list of a peer from `--initial-cluster` (see the module
/// doc for which answer counts).
///
/// Errors: [`BootError::Config`] when no peer answered during the whole
/// confirmation window, or the list has no member with this member's peer
/// URLs.
pub async fn discover(settings: &NodeSettings) -> Result<JoinInfo, BootError> {
    let own_urls = sorted(settings.peer_urls.clone());
    let window_ms = settings
        .election_timeout_ms
        .saturating_mul(CONFIRM_ELECTION_TIMEOUTS);
    let deadline = Instant::now() + Duration::from_millis(window_ms);
    let mut freshest: Option<MembersReply> = None;
    loop {
        for url in urls_to_ask(settings) {
            let Some(reply) = ask_members(&settings.peer_dialer, url).await else {
                continue;
            };
            if reply.linearizable {
                return join_info(reply, &own_urls);
            }
            if freshest
                .as_ref()
                .is_none_or(|f| reply.applied_index > f.applied_index)
            {
                freshest = Some(reply);
            }
        }
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(ROUND_PAUSE).await;
    }
    let Some(reply) = freshest else {
        return Err(BootError::Config(
            "cannot fetch the cluster's members from any peer in --initial-cluster".to_owned(),
        ));
    };
    tracing::warn!(
        window_ms,
        applied_index = reply.applied_index,
        "no peer could confirm the member list with a leader; joining with the freshest list a peer applied"
    );
    join_info(reply, &own_urls)
}

/// The peer URLs of `--initial-cluster`, this member's excepted.
fn urls_to_ask(settings: &NodeSettings) -> impl Iterator<Item = &str> {
    settings
        .initial_cluster
        .iter()
        .filter(|(name, _)| **name != settings.name)
        .flat_map(|(_, urls)| urls.iter().map(String::as_str))
}

fn sorted(mut urls: Vec<String>) -> Vec<String> {
    urls.sort();
    urls
}

/// This member's id and its peers from `reply`. Errors: no member has
/// `own_urls` (sorted) as its peer URLs.
fn join_info(reply: MembersReply, own_urls: &[String]) -> Result<JoinInfo, BootError> {
    let own = reply
        .members
        .iter()
        .find(|m| sorted(m.peer_urls.clone()) == own_urls);
    let Some(own) = own else {
        return Err(BootError::Config(format!(
            "the cluster has no member with peer URLs {}; add it with `member add` first",
            own_urls.join(",")
        )));
    };
    let peers: BTreeMap<u64, String> = reply
        .members
        .iter()
        .filter(|m| m.id != own.id)
        .filter_map(|m| m.peer_urls.first().map(|u| (m.id, u.clone())))
        .collect();
    Ok(JoinInfo {
        cluster_id: reply.cluster_id,
        member_id: own.id,
        peers,
    })
}

/// The member list from the peer at `url`, or `None` (logged) if it cannot
/// be reached or does not answer within [`ASK_TIMEOUT`].
async fn ask_members(dialer: &PeerDialer, url: &str) -> Option<MembersReply> {
    use crate::proto::keelpeerpb::MembersRequest;
    use crate::proto::keelpeerpb::peer_client::PeerClient;
    let ask = async {
        let channel = match dialer.connect(url).await {
            Ok(channel) => channel,
            Err(err) => {
                tracing::warn!(%url, %err, "cannot ask peer for the cluster's members");
                return None;
            }
        };
        let reply = PeerClient::new(channel)
            .members(MembersRequest {})
            .await
            .ok()?;
        Some(reply.into_inner())
    };
    tokio::time::timeout(ASK_TIMEOUT, ask).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::keelpeerpb::PeerMember;

    fn member(id: u64, url: &str) -> PeerMember {
        PeerMember {
            id,
            peer_urls: vec![url.to_owned()],
            ..PeerMember::default()
        }
    }

    #[test]
    fn the_member_with_its_own_peer_urls_is_this_member() {
        let reply = MembersReply {
            cluster_id: 7,
            members: vec![member(1, "http://a:2380"), member(2, "http://b:2380")],
            linearizable: true,
            applied_index: 9,
        };
        let info = join_info(reply, &["http://b:2380".to_owned()]);
        let info = info.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((info.cluster_id, info.member_id), (7, 2));
        assert_eq!(
            info.peers,
            BTreeMap::from([(1, "http://a:2380".to_owned())])
        );
    }

    #[test]
    fn a_list_without_this_member_is_refused() {
        let reply = MembersReply {
            members: vec![member(1, "http://a:2380")],
            ..MembersReply::default()
        };
        let refused = join_info(reply, &["http://b:2380".to_owned()]);
        assert!(matches!(refused, Err(BootError::Config(m)) if m.contains("member add")));
    }
}
