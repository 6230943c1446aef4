//! Scripted membership changes that once left a member unable to rejoin,
//! each run on real keel members under madsim (the same hosts, disks and
//! Cluster API as the `membership` scenario):
//! - a member that slept through the replacement of every other member it
//!   knew restarts knowing only removed members; the new leader's appends
//!   reach it, and it must answer a sender it does not know yet at the
//!   peer URL the sender announced (etcd's rafthttp `AddRemote` from the
//!   `X-PeerURLs` header), or it never catches up;
//! - a member re-added at a removed member's peer URL (etcd's runbook for
//!   replacing a member) asks a peer that has not applied the removal for
//!   the member list: the answer must be linearizable, or the new process
//!   finds the removed member at its URL, boots under the removed id on
//!   an empty disk, and the stores diverge.
//!
//! Run: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p keel-sim --test membership_catch_up`
//! In a normal build this file is empty.
#![cfg(madsim)]

use std::future::Future;
use std::time::Duration;

use keel_sim::cluster::Cluster;
use keel_sim::member_api::{MemberInfo, member_add, member_list, member_promote, member_remove};
use keel_sim::sim_log::SharedLog;
use keel_sim::{NodeAddr, Scenario};
use madsim::net::NetSim;
use madsim::runtime::Runtime;

/// How long (simulated) a member may take to catch up once restarted.
const CATCH_UP_MS: u64 = 10_000;
/// Pause between retries of a Cluster API call.
const RETRY_MS: u64 = 200;
/// Attempts at one Cluster API call before the test fails.
const ATTEMPTS_MAX: u32 = 50;

/// Runs `call` on the control host until it succeeds; panics with the
/// last error after [`ATTEMPTS_MAX`] attempts.
async fn retried<T, F, Fut>(cluster: &Cluster, what: &str, call: F) -> T
where
    T: Send + 'static,
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T, String>> + Send + 'static,
{
    let mut last = String::new();
    for _ in 0..ATTEMPTS_MAX {
        match cluster.control.spawn(call()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(error)) => last = error,
            Err(_) => last = "the control task ended abnormally".into(),
        }
        madsim::time::sleep(Duration::from_millis(RETRY_MS)).await;
    }
    panic!("{what}: no success in {ATTEMPTS_MAX} attempts; last error: {last}");
}

/// Member `index`'s id, as the linearizable member list through `through`
/// names it by its peer URL.
async fn id_of(cluster: &Cluster, through: u8, index: u8) -> u64 {
    let url = NodeAddr::member(index).peer_url();
    let list = retried(cluster, "member list", move || member_list(through, true)).await;
    list.iter()
        .find(|m| m.peer_urls.contains(&url))
        .map(|m| m.id)
        .unwrap_or_else(|| panic!("m{index} is not in the member list {list:?}"))
}

/// Replaces voter `old` by a new voter on host `new`, through `through`:
/// add as a learner, start it, promote it once in sync, remove `old`.
async fn replace(cluster: &mut Cluster, through: u8, old: u8, new: u8, current: &[u8]) {
    let url = NodeAddr::member(new).peer_url();
    let id = retried(cluster, "member add", move || {
        member_add(through, url.clone(), true)
    })
    .await;
    cluster.join(new, current);
    retried(cluster, "member promote", move || {
        member_promote(through, id)
    })
    .await;
    let old_id = id_of(cluster, through, old).await;
    retried(cluster, "member remove", move || {
        member_remove(through, old_id)
    })
    .await;
    cluster.retire(old);
}

/// The member list `index` itself has applied (serializable), if it
/// answers.
async fn list_at(cluster: &Cluster, index: u8) -> Option<Vec<MemberInfo>> {
    cluster
        .control
        .spawn(member_list(index, false))
        .await
        .ok()?
        .ok()
}

async fn sleeper_catches_up() {
    let log = SharedLog::new();
    let mut cluster = Cluster::start(Scenario::Membership, 1, &log);
    madsim::time::sleep(Duration::from_secs(2)).await;
    // m2 sleeps while m0 and m1, every other member it knows, are replaced
    // by m3 and m4.
    cluster.crash(2);
    replace(&mut cluster, 1, 0, 3, &[0, 1, 2]).await;
    replace(&mut cluster, 3, 1, 4, &[1, 2, 3]).await;
    let expected = retried(&cluster, "member list", || member_list(3, true)).await;
    cluster.restart(2);
    let deadline = madsim::time::Instant::now() + Duration::from_millis(CATCH_UP_MS);
    let mut seen = None;
    while madsim::time::Instant::now() < deadline {
        seen = list_at(&cluster, 2).await;
        if seen.as_ref() == Some(&expected) {
            return;
        }
        madsim::time::sleep(Duration::from_millis(RETRY_MS)).await;
    }
    panic!(
        "m2 did not catch up within {CATCH_UP_MS} ms of its restart: it lists {seen:?}, \
         the cluster {expected:?}\nevent log:\n{}",
        log.snapshot()
    );
}

/// Cuts (`cut`) or restores the links between host `a` and each of `others`.
fn set_links(cluster: &Cluster, a: u8, others: &[u8], cut: bool) {
    let net = NetSim::current();
    for &b in others {
        let (a, b) = (
            cluster.hosts[usize::from(a)].node,
            cluster.hosts[usize::from(b)].node,
        );
        for (from, to) in [(a, b), (b, a)] {
            match cut {
                true => net.clog_link(from, to),
                false => net.unclog_link(from, to),
            }
        }
    }
}

/// Moves leadership to member `to` (retrying until it leads).
async fn lead_with(cluster: &mut Cluster, to: u8) {
    for _ in 0..ATTEMPTS_MAX {
        match cluster.leader().await {
            Some((leader, _)) if leader == to => return,
            Some((leader, _)) => {
                let _ = cluster.move_leader(leader, to).await;
            }
            None => {}
        }
        madsim::time::sleep(Duration::from_millis(RETRY_MS)).await;
    }
    panic!("m{to} did not become the leader");
}

async fn readded_member_takes_its_new_id() {
    let log = SharedLog::new();
    let mut cluster = Cluster::start(Scenario::Membership, 1, &log);
    madsim::time::sleep(Duration::from_secs(2)).await;
    // Four voters, so that three commit without m2.
    let url = NodeAddr::member(3).peer_url();
    let id3 = retried(&cluster, "member add", move || {
        member_add(0, url.clone(), true)
    })
    .await;
    cluster.join(3, &[0, 1, 2]);
    retried(&cluster, "member promote", move || member_promote(0, id3)).await;
    lead_with(&mut cluster, 0).await;
    // m2 stops hearing from the leader's side: it keeps the old list.
    set_links(&cluster, 2, &[0, 3], true);
    let old_id = id_of(&cluster, 0, 1).await;
    retried(&cluster, "member remove", move || member_remove(0, old_id)).await;
    cluster.retire(1);
    let url = NodeAddr::member(1).peer_url();
    let new_id = retried(&cluster, "member add", move || {
        member_add(0, url.clone(), true)
    })
    .await;
    assert_ne!(new_id, old_id);
    // The new process at m1's old URL asks only m2, which still lists the
    // removed member there.
    cluster.join(1, &[2]);
    madsim::time::sleep(Duration::from_secs(3)).await;
    set_links(&cluster, 2, &[0, 3], false);
    let deadline = madsim::time::Instant::now() + Duration::from_millis(CATCH_UP_MS);
    let mut seen = None;
    while madsim::time::Instant::now() < deadline {
        seen = cluster.status(1).await.map(|s| s.member_id);
        if seen == Some(new_id) {
            return;
        }
        assert_ne!(
            seen,
            Some(old_id),
            "the re-added member booted under the removed id {old_id:x}\nevent log:\n{}",
            log.snapshot()
        );
        madsim::time::sleep(Duration::from_millis(RETRY_MS)).await;
    }
    panic!(
        "m1 is not serving as {new_id:x} within {CATCH_UP_MS} ms of healing: {seen:?}\nevent log:\n{}",
        log.snapshot()
    );
}

/// A fresh runtime with a fixed seed and a time limit, running `test`.
fn run<F: Future<Output = ()> + 'static>(test: impl FnOnce() -> F) {
    let mut runtime = Runtime::with_seed_and_config(1, madsim::Config::default());
    runtime.set_time_limit(Duration::from_secs(120));
    runtime.block_on(test());
}

#[test]
fn a_member_readded_at_a_removed_members_url_takes_its_new_id() {
    run(readded_member_takes_its_new_id);
}

#[test]
fn a_member_that_slept_through_the_replacement_of_its_peers_catches_up() {
    run(sleeper_catches_up);
}
