//! Durability of acknowledged writes under `kill -9`: of a single member, of
//! a whole 3-member cluster (restarted from the same data directories), and a
//! 3-member cluster that keeps serving when its leader is killed, and
//! restarts that recover from a state-machine snapshot plus the WAL (a member
//! that was down catches up). Each
//! scenario also runs against real etcd, which proves the test itself.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use support::client::connect;
use support::cluster::{Cluster, Flavor};

/// Writes per phase (each one acknowledged before the next is sent).
const WRITES: usize = 60;
/// How long a write may keep failing (e.g. during an election) before the
/// test gives up.
const WRITE_RETRY_TIMEOUT: Duration = Duration::from_secs(20);

/// Puts `count` keys `<prefix><i>` and returns each key's value and the
/// revision its put was acknowledged at. Retries a failed put (bounded):
/// only acknowledged writes are recorded.
async fn write_keys(
    client: &mut Client,
    prefix: &str,
    count: usize,
) -> BTreeMap<String, (String, i64)> {
    let mut acked = BTreeMap::new();
    for i in 0..count {
        let (key, value) = (format!("{prefix}{i:04}"), format!("value-{prefix}-{i}"));
        let deadline = Instant::now() + WRITE_RETRY_TIMEOUT;
        loop {
            match client.put(key.as_str(), value.as_str(), None).await {
                Ok(r) => {
                    let revision = r.header().map_or(0, |h| h.revision());
                    acked.insert(key.clone(), (value.clone(), revision));
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    eprintln!("put {key} failed, retrying: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("put {key} kept failing for {WRITE_RETRY_TIMEOUT:?}: {e}"),
            }
        }
    }
    acked
}

/// Reads every key under `prefix` from the member at `url`, serializably when
/// `serializable` (its local state) or linearizably.
async fn read_keys(url: &str, prefix: &str, serializable: bool) -> BTreeMap<String, (String, i64)> {
    let mut client = connect(vec![url.to_owned()]).await;
    let mut options = GetOptions::new().with_prefix();
    if serializable {
        options = options.with_serializable();
    }
    let got = client.get(prefix, Some(options)).await.unwrap();
    got.kvs()
        .iter()
        .map(|kv| {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let value = String::from_utf8_lossy(kv.value()).into_owned();
            (key, (value, kv.mod_revision()))
        })
        .collect()
}

fn assert_all_present(
    cluster: &Cluster,
    what: &str,
    acked: &BTreeMap<String, (String, i64)>,
    read: &BTreeMap<String, (String, i64)>,
) {
    for (key, expected) in acked {
        assert_eq!(
            read.get(key),
            Some(expected),
            "{} lost an acknowledged write ({what}): key {key}\n{}",
            cluster.flavor().name(),
            cluster.logs()
        );
    }
}

async fn single_member_survives_kill_9(flavor: Flavor) {
    let mut cluster = Cluster::start(flavor, 1).unwrap();
    let mut client = connect(cluster.client_urls()).await;
    let acked = write_keys(&mut client, "k", WRITES).await;
    cluster.kill(0);
    cluster.restart(0).unwrap();
    let read = read_keys(&cluster.members()[0].client_url, "k", false).await;
    assert_all_present(&cluster, "single member after kill -9", &acked, &read);
    assert_eq!(read.len(), acked.len());
    // The restarted member accepts writes that continue the revision sequence.
    let mut client = connect(cluster.client_urls()).await;
    let put = client.put("after", "restart", None).await.unwrap();
    let last = acked.values().map(|(_, rev)| *rev).max().unwrap();
    assert_eq!(put.header().unwrap().revision(), last + 1);
}

async fn whole_cluster_survives_kill_9(flavor: Flavor) {
    let mut cluster = Cluster::start(flavor, 3).unwrap();
    let mut client = connect(cluster.client_urls()).await;
    let acked = write_keys(&mut client, "k", WRITES).await;
    drop(client);
    cluster.kill_all();
    cluster.restart_all().unwrap();
    for (i, member) in cluster.members().iter().enumerate() {
        let read = read_keys(&member.client_url, "k", false).await;
        assert_all_present(
            &cluster,
            &format!("member {i} after kill -9 of all"),
            &acked,
            &read,
        );
    }
}

async fn cluster_serves_when_leader_killed(flavor: Flavor) {
    let mut cluster = Cluster::start(flavor, 3).unwrap();
    let mut client = connect(cluster.client_urls()).await;
    let mut acked = write_keys(&mut client, "before", WRITES / 2).await;
    let leader = support::client::leader(&cluster).await;
    cluster.kill(leader);
    let survivors: Vec<String> = (0..3)
        .filter(|&i| i != leader)
        .map(|i| cluster.members()[i].client_url.clone())
        .collect();
    let mut client = connect(survivors.clone()).await;
    acked.extend(write_keys(&mut client, "during", WRITES / 2).await);
    for url in &survivors {
        let read = read_keys(url, "", false).await;
        assert_all_present(
            &cluster,
            "survivor after the leader was killed",
            &acked,
            &read,
        );
    }
    // The old leader comes back and catches up (read from its local state).
    cluster.restart(leader).unwrap();
    let url = cluster.members()[leader].client_url.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = read_keys(&url, "", true).await;
        if acked.iter().all(|(k, v)| read.get(k) == Some(v)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted old leader did not catch up\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Few entries per snapshot, so restarts recover from a snapshot plus the
/// WAL after it, and a member that was down may catch up by snapshot.
const SNAPSHOT_EVERY: &str = "--snapshot-count=25";

/// Snapshot files (`member/snap/*.snap`, etcd's layout and keel's) in
/// member `i`'s data directory.
fn snapshot_files(cluster: &Cluster, i: usize) -> usize {
    let dir = cluster.members()[i].data_dir.join("member").join("snap");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".snap"))
        .count()
}

/// Waits (10 s at most: files are written in the background) until member
/// `i` has a snapshot file, so that its restart recovers from a snapshot
/// plus the WAL after it rather than from the WAL alone.
async fn wait_for_snapshot_file(cluster: &Cluster, i: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshot_files(cluster, i) == 0 {
        assert!(
            Instant::now() < deadline,
            "{} member {i} wrote no snapshot file\n{}",
            cluster.flavor().name(),
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn restart_recovers_from_snapshot_and_wal(flavor: Flavor) {
    let mut cluster = Cluster::start_with(flavor, 3, &[SNAPSHOT_EVERY]).unwrap();
    let mut client = connect(cluster.client_urls()).await;
    let mut acked = write_keys(&mut client, "a", WRITES).await;
    let down = (support::client::leader(&cluster).await + 1) % 3;
    cluster.kill(down);
    let survivors: Vec<String> = (0..3)
        .filter(|&i| i != down)
        .map(|i| cluster.members()[i].client_url.clone())
        .collect();
    let mut client = connect(survivors).await;
    acked.extend(write_keys(&mut client, "b", WRITES * 2).await);
    // The member that was down restarts from its own snapshot + WAL and
    // catches up on what it missed (by log or by snapshot).
    cluster.restart(down).unwrap();
    let url = cluster.members()[down].client_url.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let read = read_keys(&url, "", true).await;
        if acked.iter().all(|(k, v)| read.get(k) == Some(v)) {
            break;
        }
        let missing = acked.keys().filter(|k| !read.contains_key(*k)).count();
        assert!(
            Instant::now() < deadline,
            "member {down} did not catch up ({missing} keys missing)\n{}",
            cluster.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Then the whole cluster dies and recovers from snapshots + WAL: each
    // member has a snapshot file to recover from.
    for i in 0..3 {
        wait_for_snapshot_file(&cluster, i).await;
    }
    cluster.kill_all();
    cluster.restart_all().unwrap();
    for (i, member) in cluster.members().iter().enumerate() {
        let read = read_keys(&member.client_url, "", false).await;
        assert_all_present(
            &cluster,
            &format!("member {i} after snapshots"),
            &acked,
            &read,
        );
    }
}

#[tokio::test]
async fn keel_restart_recovers_from_snapshot_and_wal() {
    restart_recovers_from_snapshot_and_wal(Flavor::Keel).await;
}

#[tokio::test]
async fn etcd_restart_recovers_from_snapshot_and_wal() {
    if support::require_etcd("etcd_restart_recovers_from_snapshot_and_wal") {
        restart_recovers_from_snapshot_and_wal(Flavor::Etcd).await;
    }
}

#[tokio::test]
async fn keel_single_member_survives_kill_9() {
    single_member_survives_kill_9(Flavor::Keel).await;
}

#[tokio::test]
async fn keel_whole_cluster_survives_kill_9() {
    whole_cluster_survives_kill_9(Flavor::Keel).await;
}

#[tokio::test]
async fn keel_cluster_serves_when_leader_killed() {
    cluster_serves_when_leader_killed(Flavor::Keel).await;
}

#[tokio::test]
async fn etcd_single_member_survives_kill_9() {
    if support::require_etcd("etcd_single_member_survives_kill_9") {
        single_member_survives_kill_9(Flavor::Etcd).await;
    }
}

#[tokio::test]
async fn etcd_whole_cluster_survives_kill_9() {
    if support::require_etcd("etcd_whole_cluster_survives_kill_9") {
        whole_cluster_survives_kill_9(Flavor::Etcd).await;
    }
}

#[tokio::test]
async fn etcd_cluster_serves_when_leader_killed() {
    if support::require_etcd("etcd_cluster_serves_when_leader_killed") {
        cluster_serves_when_leader_killed(Flavor::Etcd).await;
    }
}
