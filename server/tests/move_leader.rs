//! Maintenance.MoveLeader against real etcd 3.4 and keel, compared: the
//! leader hands leadership to a follower, which then leads on every
//! member; a follower asked to move leadership refuses ("etcdserver: not
//! leader"), and so does the leader for an unknown member ("etcdserver:
//! bad leader transferee"); then `etcdctl move-leader` moves it back.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use etcd_client::Client;
use support::client::{connect, leader};
use support::cluster::{Cluster, Flavor};

fn outcome<T>(result: Result<T, etcd_client::Error>) -> String {
    match result {
        Ok(_) => "ok".to_owned(),
        Err(etcd_client::Error::GRpcStatus(status)) => {
            format!("{:?} {}", status.code(), status.message())
        }
        Err(other) => format!("client error {other}"),
    }
}

async fn member_id(client: &mut Client) -> u64 {
    client.status().await.unwrap().header().unwrap().member_id()
}

/// What each step answered, and whether the transferee then led.
async fn session(flavor: Flavor) -> Vec<String> {
    let cluster = Cluster::start(flavor, 3).unwrap();
    let old = leader(&cluster).await;
    let target = (old + 1) % 3;
    let urls = cluster.client_urls();
    let mut at_leader = connect(vec![urls[old].clone()]).await;
    let mut at_target = connect(vec![urls[target].clone()]).await;
    let target_id = member_id(&mut at_target).await;
    let mut seen = vec![
        outcome(at_target.move_leader(target_id).await),
        outcome(at_leader.move_leader(0x1234).await),
        outcome(at_leader.move_leader(target_id).await),
    ];
    seen.push(format!(
        "transferee leads: {}",
        leader(&cluster).await == target
    ));
    // etcdctl move-leader: finds the leader among its endpoints and moves
    // leadership back; member ids are named by role.
    let old_id = member_id(&mut at_leader).await;
    let hide_ids = |text: String| {
        text.replace(&format!("{target_id:x}"), "<transferee>")
            .replace(&format!("{old_id:x}"), "<old leader>")
    };
    let back = cluster
        .etcdctl()
        .run(&["move-leader", &format!("{old_id:x}")])
        .unwrap();
    seen.push(hide_ids(format!("{}{}", back.stdout, back.stderr)));
    seen.push(format!(
        "old leader leads: {}",
        leader(&cluster).await == old
    ));
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leadership_moves_as_in_etcd() {
    if !support::require_etcd("move_leader") {
        return;
    }
    let etcd = session(Flavor::Etcd).await;
    let keel = session(Flavor::Keel).await;
    assert_eq!(
        etcd,
        [
            "FailedPrecondition etcdserver: not leader",
            "FailedPrecondition etcdserver: bad leader transferee",
            "ok",
            "transferee leads: true",
            "Leadership transferred from <transferee> to <old leader>\n",
            "old leader leads: true",
        ]
    );
    assert_eq!(keel, etcd);
}
