//! How soon a restarted member serves again, keel against etcd in one run:
//! for each server a 3-member cluster on loopback (etcd's default flags:
//! heartbeat 100 ms, election 1000 ms) is loaded with `KEYS` keys, then
//! [`ROUNDS`] times a follower is killed with SIGKILL while a client keeps
//! writing through the leader, started again, and timed from the moment its
//! process is spawned to its first answered linearizable read (WAL replay,
//! snapshot load, catching up, publishing its attributes, a ReadIndex
//! round). Printed: each server's median, minimum and maximum, and keel's
//! median as a ratio of etcd's.
//!
//! Run: `cargo build --release --bin keel && cargo bench -p keel-bench
//! --bench restart` (about 2 minutes). `KEEL_RESTART_KEYS` sets the keys
//! loaded (default 100,000); `KEEL_BIN` picks another keel binary.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};
use support::{Cluster, Flavor};

/// Restarts measured per server.
const ROUNDS: usize = 10;
/// Keys loaded before the first restart, unless `KEEL_RESTART_KEYS` says.
const KEYS_DEFAULT: u64 = 100_000;
/// Concurrent clients loading the keys.
const LOAD_CLIENTS: u64 = 32;
/// Bytes of each value.
const VALUE_BYTES: usize = 256;
/// How long a member may take to serve after it is spawned.
const SERVE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long the killed follower stays down while writes go on.
const DOWN: Duration = Duration::from_millis(500);

fn main() {
    let keys = std::env::var("KEEL_RESTART_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(KEYS_DEFAULT);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let etcd = measure(Flavor::Etcd, keys).await;
        let keel = measure(Flavor::Keel, keys).await;
        report(keys, &etcd, &keel);
    });
}

fn key(k: u64) -> String {
    format!("bench/{k:010}")
}

async fn connect(url: &str, timeout: Duration) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_millis(500))
        .with_timeout(timeout);
    Client::connect([url], Some(options)).await
}

/// Spawn-to-first-linearizable-read times of [`ROUNDS`] follower restarts.
async fn measure(flavor: Flavor, keys: u64) -> Vec<Duration> {
    let mut cluster = Cluster::start(flavor, 3);
    for member in &cluster.members {
        let url = member.client_url.clone();
        let started = Instant::now();
        first_linearizable_read(&url, started, &cluster).await;
    }
    load(&cluster, keys).await;
    let mut times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let (leader, follower) = leader_and_follower(&cluster, round).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writer = tokio::spawn(write_until(
            cluster.members[leader].client_url.clone(),
            stop.clone(),
        ));
        cluster.kill(follower);
        tokio::time::sleep(DOWN).await;
        let spawned = Instant::now();
        cluster.spawn(follower);
        let url = cluster.members[follower].client_url.clone();
        times.push(first_linearizable_read(&url, spawned, &cluster).await);
        stop.store(true, Ordering::SeqCst);
        writer.await.unwrap();
    }
    times
}

/// Waits until `url` answers a linearizable read; returns the time since
/// `since`. Panics with the cluster's logs after [`SERVE_TIMEOUT`].
async fn first_linearizable_read(url: &str, since: Instant, cluster: &Cluster) -> Duration {
    while since.elapsed() < SERVE_TIMEOUT {
        if let Ok(mut client) = connect(url, Duration::from_secs(5)).await
            && client.get(key(0), None).await.is_ok()
        {
            return since.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!(
        "{} at {url} did not serve within {SERVE_TIMEOUT:?}:\n{}",
        cluster.flavor.name(),
        cluster.logs()
    );
}

/// Writes keys `0..keys` with [`LOAD_CLIENTS`] concurrent clients.
async fn load(cluster: &Cluster, keys: u64) {
    let urls: Vec<String> = cluster
        .members
        .iter()
        .map(|m| m.client_url.clone())
        .collect();
    let mut tasks = Vec::new();
    for c in 0..LOAD_CLIENTS {
        let url = urls[(c as usize) % urls.len()].clone();
        tasks.push(tokio::spawn(async move {
            let mut client = connect(&url, Duration::from_secs(10)).await.unwrap();
            let value = vec![b'v'; VALUE_BYTES];
            for k in (c..keys).step_by(LOAD_CLIENTS as usize) {
                client.put(key(k), value.clone(), None).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// The leader's index and a follower's (a different one each round).
async fn leader_and_follower(cluster: &Cluster, round: usize) -> (usize, usize) {
    let url = &cluster.members[0].client_url;
    let mut client = connect(url, Duration::from_secs(5)).await.unwrap();
    let leader_id = client.status().await.unwrap().leader();
    let members = client.member_list().await.unwrap();
    let leader_name = members
        .members()
        .iter()
        .find(|m| m.id() == leader_id)
        .map(|m| m.name().to_owned())
        .unwrap();
    let leader = cluster
        .members
        .iter()
        .position(|m| m.name == leader_name)
        .unwrap();
    let followers: Vec<usize> = (0..cluster.members.len())
        .filter(|&i| i != leader)
        .collect();
    (leader, followers[round % followers.len()])
}

/// Puts through `url` until `stop`, ignoring failures (the load only keeps
/// the log growing while a follower is down).
async fn write_until(url: String, stop: Arc<AtomicBool>) {
    let Ok(mut client) = connect(&url, Duration::from_secs(2)).await else {
        return;
    };
    let value = vec![b'w'; VALUE_BYTES];
    let mut k = 0;
    while !stop.load(Ordering::SeqCst) {
        let _ = client.put(key(k % 1000), value.clone(), None).await;
        k += 1;
    }
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn report(keys: u64, etcd: &[Duration], keel: &[Duration]) {
    println!(
        "restart of a follower to its first linearizable read, 3 members, {keys} keys, {ROUNDS} restarts"
    );
    println!(
        "{:<6} {:>10} {:>10} {:>10}",
        "server", "median", "min", "max"
    );
    for (name, times) in [("etcd", etcd), ("keel", keel)] {
        let (min, max) = (times.iter().min().unwrap(), times.iter().max().unwrap());
        println!(
            "{name:<6} {:>8.0}ms {:>8.0}ms {:>8.0}ms",
            median(times).as_secs_f64() * 1e3,
            min.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    let ratio = median(keel).as_secs_f64() / median(etcd).as_secs_f64();
    println!("keel median / etcd median: {ratio:.2}");
}
