//! The Election service (`v3electionpb`) and the Lock service's lease
//! check, driven by the `etcd-client` crate's election and lock clients as
//! applications use them, against real etcd 3.4 and keel.
//!
//! The election session runs the same steps against both servers and
//! compares what a client sees (who leads with which value, which calls
//! wait, which are refused and how), revisions left out: no leader yet,
//! a first candidate, a second one waiting, proclaim, proclaim with a
//! stale key, resign and hand-over, and a third contender taking over when
//! the holder's lease expires; an Observe stream started before the first
//! candidate sees every leader value in order.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::time::Duration;

use etcd_client::{Client, ConnectOptions, LeaderKey, LockOptions, ProclaimOptions, ResignOptions};
use support::cluster::{Cluster, Flavor};

/// How long a call that must wait is given before the test checks that it
/// still waits.
const STILL_WAITING: Duration = Duration::from_millis(500);
/// Bound on any wait that must end.
const WAIT_MAX: Duration = Duration::from_secs(20);
/// TTL of a lease left to expire (etcd's minimum with the default 1 s
/// election timeout is 2 s; both servers raise lower TTLs to it).
const SHORT_TTL_SECS: i64 = 2;

/// A client whose calls may wait [`WAIT_MAX`] (campaigns and locks wait
/// for other holders).
async fn connect(urls: Vec<String>) -> Client {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(WAIT_MAX);
    Client::connect(urls, Some(options)).await.unwrap()
}

fn outcome<T>(result: Result<T, etcd_client::Error>, ok: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => ok(value),
        Err(etcd_client::Error::GRpcStatus(status)) => {
            format!("error {:?} {}", status.code(), status.message())
        }
        Err(other) => format!("client error {other}"),
    }
}

async fn leader_value(client: &mut Client) -> String {
    let answer = client.election_client().leader("e").await;
    outcome(answer, |resp| {
        let value = resp.kv().map(|kv| kv.value().to_vec()).unwrap_or_default();
        format!("leader {}", String::from_utf8_lossy(&value))
    })
}

async fn grant(client: &mut Client, ttl_secs: i64) -> i64 {
    client.lease_grant(ttl_secs, None).await.unwrap().id()
}

/// Campaigns in the background; the handle answers the leader key won.
fn campaign(
    client: &Client,
    value: &'static str,
    lease: i64,
) -> tokio::task::JoinHandle<LeaderKey> {
    let mut election = client.election_client();
    tokio::spawn(async move {
        let mut won = election.campaign("e", value, lease).await.unwrap();
        won.take_leader().unwrap()
    })
}

async fn won(task: tokio::task::JoinHandle<LeaderKey>) -> LeaderKey {
    tokio::time::timeout(WAIT_MAX, task).await.unwrap().unwrap()
}

/// Runs the election session; returns what the client saw, one line per
/// step, and the values the Observe stream delivered.
async fn election_session(flavor: Flavor) -> (Vec<String>, Vec<String>) {
    let cluster = Cluster::start(flavor, 1).unwrap();
    let mut client = connect(cluster.client_urls()).await;
    let mut seen = Vec::new();
    // Observe's call returns with its first message (etcd sends the
    // stream's headers with it): here, once a first candidate exists.
    let observed = tokio::spawn(observed_values(client.clone(), 4));
    seen.push(leader_value(&mut client).await);

    let lease_a = grant(&mut client, 60).await;
    let a = won(campaign(&client, "a1", lease_a)).await;
    seen.push(format!(
        "a elected, key is lease a: {}",
        a.lease() == lease_a
    ));
    seen.push(leader_value(&mut client).await);

    let lease_b = grant(&mut client, SHORT_TTL_SECS).await;
    let b = campaign(&client, "b1", lease_b);
    tokio::time::sleep(STILL_WAITING).await;
    seen.push(format!("b waits while a leads: {}", !b.is_finished()));

    let mut election = client.election_client();
    let proclaim = ProclaimOptions::new().with_leader(a.clone());
    let answer = election.proclaim("a2", Some(proclaim)).await;
    seen.push(outcome(answer, |_| "a proclaimed a2".to_owned()));
    seen.push(leader_value(&mut client).await);
    let stale = a.clone().with_rev(a.rev() + 1000);
    let answer = election
        .proclaim("x", Some(ProclaimOptions::new().with_leader(stale)))
        .await;
    seen.push(outcome(answer, |_| "stale key proclaimed".to_owned()));

    let lease_c = grant(&mut client, 60).await;
    let c = campaign(&client, "c1", lease_c);
    let answer = election
        .resign(Some(ResignOptions::new().with_leader(a)))
        .await;
    seen.push(outcome(answer, |_| "a resigned".to_owned()));
    won(b).await;
    seen.push(leader_value(&mut client).await);
    // b's lease is never kept alive: c takes over once it expires.
    won(c).await;
    seen.push(leader_value(&mut client).await);

    let values = tokio::time::timeout(WAIT_MAX, observed).await;
    (seen, values.unwrap().unwrap())
}

/// The first `count` leader values an Observe stream of election "e"
/// delivers.
async fn observed_values(client: Client, count: usize) -> Vec<String> {
    let mut election = client.election_client();
    let mut observe = election.observe("e").await.unwrap();
    let mut values = Vec::new();
    while values.len() < count {
        let response = observe.message().await.unwrap().unwrap();
        let kv = response.kv().unwrap();
        values.push(String::from_utf8_lossy(kv.value()).into_owned());
    }
    values
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_run_as_etcds() {
    if !support::require_etcd("election") {
        return;
    }
    let etcd = election_session(Flavor::Etcd).await;
    let keel = election_session(Flavor::Keel).await;
    let expected_observed = ["a1", "a2", "b1", "c1"].map(String::from).to_vec();
    assert_eq!(etcd.1, expected_observed, "etcd's Observe stream");
    assert_eq!(etcd.0[0], "error Unknown election: no leader", "etcd");
    assert_eq!(keel, etcd);
}

/// A Lock waiter whose lease expires while it waits (its key is deleted)
/// and which then reaches the front: etcd 3.4 grants it a lock it no longer
/// holds (the bug Jepsen found in etcd 3.4.3; etcd 3.5 re-checks), keel
/// refuses it as etcd 3.5 does.
async fn expired_waiter(flavor: Flavor) -> String {
    let cluster = Cluster::start(flavor, 1).unwrap();
    let mut client = connect(cluster.client_urls()).await;
    let holder_lease = grant(&mut client, 60).await;
    let mut locks = client.lock_client();
    let options = LockOptions::new().with_lease(holder_lease);
    let held = locks.lock("m", Some(options)).await.unwrap();
    let waiter_lease = grant(&mut client, SHORT_TTL_SECS).await;
    let mut waiter_locks = client.lock_client();
    let waiter = tokio::spawn(async move {
        let options = LockOptions::new().with_lease(waiter_lease);
        waiter_locks.lock("m", Some(options)).await
    });
    // Until the waiter has queued its key, then until the key is gone (its
    // lease expired) while the waiter still waits.
    let mut kv = client.kv_client();
    let waiter_key = format!("m/{waiter_lease:x}");
    for present in [true, false] {
        let deadline = tokio::time::Instant::now() + WAIT_MAX;
        while (kv.get(waiter_key.as_str(), None).await.unwrap().count() > 0) != present {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the waiter's key never became present={present}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(!waiter.is_finished(), "the waiter stopped waiting");
    locks.unlock(held.key()).await.unwrap();
    let answer = tokio::time::timeout(WAIT_MAX, waiter)
        .await
        .unwrap()
        .unwrap();
    outcome(answer, |_| "granted".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_waiter_whose_lease_expired_is_not_granted() {
    if !support::require_etcd("election") {
        return;
    }
    assert_eq!(expired_waiter(Flavor::Etcd).await, "granted", "etcd 3.4");
    assert_eq!(
        expired_waiter(Flavor::Keel).await,
        "error Unknown mutex: session is expired"
    );
}
