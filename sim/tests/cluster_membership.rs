//! Membership changes through the etcd Cluster API on real keel members
//! under madsim, each scripted test on its own fixed seed (moved here from
//! the wall-clock cluster tests of `server/src/node/cluster_tests.rs`,
//! issue 16):
//! - a member added with MemberAdd and started with
//!   `initial-cluster-state existing` joins under the id the add gave it
//!   and serves what was written before and after it joined;
//! - a learner that never started is not promoted (etcd's "can only
//!   promote a learner member which is in sync with leader"), and the
//!   cluster keeps serving (issue 28 item 9);
//! - with one of three members down, removing a live member or adding a
//!   voter would cost the active quorum: refused with etcd's "unhealthy
//!   cluster" whether asked of the leader or of a follower, while the
//!   member that is down may be removed (etcd `mayRemoveMember`,
//!   `mayAddMember` with `--strict-reconfig-check`);
//! - a one-member cluster may add a voter that has not started, but not a
//!   second one beside it (etcd `IsReadyToAddVotingMember`: "re-configuration
//!   failed due to not enough started members", as etcd 3.4.23 answers).
//!
//! Run: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p keel-sim --test cluster_membership`
//! In a normal build this file is empty.
#![cfg(madsim)]

use std::time::Duration;

use keel_server::config::ClusterState;
use keel_sim::NodeAddr;
use keel_sim::cluster::member_status;
use keel_sim::scripted::{
    ScriptedCluster, agreed_leader, get, member_add, member_list, member_promote, member_remove,
    put, run_seed, settings_among,
};
use tonic::{Code, Status};

/// The seed every test here runs on.
const SEED: u64 = 1;
/// The members of the three-member cluster.
const ALL: [u8; 3] = [0, 1, 2];
/// A host no member ever runs on: the peer URL of members that never start.
const NEVER_STARTED: u8 = 9;
/// Another such host.
const NEVER_STARTED_EITHER: u8 = 10;
/// etcd's refusal to promote a learner that is not in sync.
const NOT_IN_SYNC: &str =
    "etcdserver: can only promote a learner member which is in sync with leader";

/// A status's code and message, to compare with etcd's.
fn refusal(status: &Status) -> (Code, &str) {
    (status.code(), status.message())
}

/// Member `index`'s id, as it reports it in Maintenance.Status.
async fn id_of(index: u8) -> u64 {
    let status = member_status(index).await;
    status.map_or_else(|| panic!("m{index} did not answer Status"), |s| s.member_id)
}

/// Starts member 0 alone, a cluster of one, and waits until it leads.
async fn start_alone(cluster: &ScriptedCluster) {
    cluster.start(0, settings_among(0, &[0]));
    cluster.on_client(agreed_leader(&[0])).await;
}

async fn join_with_state_existing() {
    let cluster = ScriptedCluster::new(2);
    start_alone(&cluster).await;
    let peer_url = NodeAddr::member(1).peer_url();
    let added = cluster
        .on_client(async move {
            put(0, "before", "join").await;
            let (added, members) = member_add(0, &peer_url, false).await.expect("member add");
            assert_eq!(members.len(), 2);
            added.id
        })
        .await;
    let mut settings = settings_among(1, &[0, 1]);
    settings.initial_cluster_state = ClusterState::Existing;
    cluster.start(1, settings);
    assert_eq!(cluster.started(1).await.member_id(), added);
    cluster
        .on_client(async move {
            let leader = agreed_leader(&[0, 1]).await;
            assert_eq!(id_of(1).await, added);
            put(leader, "after", "join").await;
            assert_eq!(get(1, "before", false).await.as_deref(), Some(&b"join"[..]));
            assert_eq!(get(1, "after", false).await.as_deref(), Some(&b"join"[..]));
        })
        .await;
}

#[test]
fn a_member_added_with_member_add_joins_with_state_existing() {
    run_seed(SEED, join_with_state_existing);
}

async fn unstarted_learner_not_promoted() {
    let cluster = ScriptedCluster::new(1);
    start_alone(&cluster).await;
    cluster
        .on_client(async move {
            put(0, "before", "promote").await;
            let url = NodeAddr::member(NEVER_STARTED).peer_url();
            let (learner, _) = member_add(0, &url, true).await.expect("learner add");
            let refused = member_promote(0, learner.id).await.expect_err("promotion");
            assert_eq!(refusal(&refused), (Code::FailedPrecondition, NOT_IN_SYNC));
            put(0, "after", "promote").await;
            let members = member_list(0, true).await.expect("member list");
            let listed = members.iter().find(|m| m.id == learner.id);
            assert_eq!(listed.map(|m| m.is_learner), Some(true), "{members:?}");
        })
        .await;
}

#[test]
fn a_learner_that_never_started_is_not_promoted() {
    run_seed(SEED, unstarted_learner_not_promoted);
}

/// What `down`'s death leaves refused: removing a live member (through the
/// leader or through a follower) or adding a voter.
async fn changes_refused_without_down(first: u8, live: u8) {
    let unhealthy = (Code::Unavailable, "etcdserver: unhealthy cluster");
    let (live_id, leader_id) = (id_of(live).await, id_of(first).await);
    for (via, id) in [(first, live_id), (first, leader_id), (live, live_id)] {
        let refused = member_remove(via, id).await.expect_err("removal");
        assert_eq!(refusal(&refused), unhealthy, "via m{via}, removing {id:x}");
    }
    let url = NodeAddr::member(NEVER_STARTED_EITHER).peer_url();
    let refused = member_add(first, &url, false).await.expect_err("voter add");
    assert_eq!(refusal(&refused), unhealthy);
}

async fn quorum_costing_change_refused() {
    let cluster = ScriptedCluster::new(3);
    cluster.start_together(&ALL, |_| {});
    let first = cluster.on_client(agreed_leader(&ALL)).await;
    let (live, down) = ((first + 1) % 3, (first + 2) % 3);
    let down_id = cluster
        .on_client(async move {
            let url = NodeAddr::member(NEVER_STARTED).peer_url();
            let (learner, listed) = member_add(live, &url, true).await.expect("learner add");
            assert!(listed.iter().any(|m| m.id == learner.id && m.is_learner));
            let refused = member_promote(live, learner.id)
                .await
                .expect_err("promotion");
            assert_eq!(refusal(&refused), (Code::FailedPrecondition, NOT_IN_SYNC));
            id_of(down).await
        })
        .await;
    cluster.kill(down);
    // The leader counts a peer active while it answered within the last
    // election timeout (1 s); `down` is dead, so after five of them it is
    // inactive for certain (simulated time: no scheduling delay).
    madsim::time::sleep(Duration::from_secs(5)).await;
    cluster
        .on_client(async move {
            changes_refused_without_down(first, live).await;
            put(first, "after", "refusals").await;
            let read = get(live, "after", false).await;
            assert_eq!(read.as_deref(), Some(&b"refusals"[..]));
            let members = member_list(first, true).await.expect("member list");
            assert_eq!(members.len(), 4, "three voters and the learner");
            let left = member_remove(first, down_id)
                .await
                .unwrap_or_else(|e| panic!("removal of m{down}: {e:?}"));
            assert_eq!(left.len(), 3, "two voters and the learner");
            put(first, "after", "removal").await;
        })
        .await;
}

#[test]
fn a_change_that_would_cost_the_active_quorum_is_refused() {
    run_seed(SEED, quorum_costing_change_refused);
}

async fn voter_not_added_beside_unstarted() {
    let cluster = ScriptedCluster::new(1);
    start_alone(&cluster).await;
    cluster
        .on_client(async move {
            let url = NodeAddr::member(NEVER_STARTED).peer_url();
            let (unstarted, members) = member_add(0, &url, false).await.expect("voter add");
            assert_eq!((unstarted.name.as_str(), members.len()), ("", 2));
            let url = NodeAddr::member(NEVER_STARTED_EITHER).peer_url();
            let refused = member_add(0, &url, false)
                .await
                .expect_err("second voter add");
            let not_started =
                "etcdserver: re-configuration failed due to not enough started members";
            assert_eq!(refusal(&refused), (Code::FailedPrecondition, not_started));
            // Two voters, one never started: no quorum, so the member
            // answers from what it applied.
            let members = member_list(0, false).await.expect("member list");
            assert_eq!(members.len(), 2, "{members:?}");
        })
        .await;
}

#[test]
fn a_voter_is_not_added_beside_one_that_never_started() {
    run_seed(SEED, voter_not_added_beside_unstarted);
}
