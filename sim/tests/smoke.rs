//! Smoke test of a whole keel cluster under madsim: three real members (node
//! driver, etcd API and peer transport, on keel-wal's simulated disk) on
//! simulated hosts; a real gRPC client (the generated `etcdserverpb` KV and
//! Maintenance clients) puts a key through the leader and reads it from every
//! member; the leader's host is killed; the two survivors elect a new leader
//! and still serve the key (and a new write). A second scenario restarts a
//! member after a power loss, behind the others' snapshots, on 4 KiB WAL
//! segments that every member cuts, purges and reuses.
//!
//! Run: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p keel-sim --test smoke`
//! On failure madsim prints the seed; `MADSIM_TEST_SEED=<seed>` replays it,
//! `MADSIM_TEST_NUM=<k>` runs k seeds,
//! `MADSIM_TEST_CHECK_DETERMINISM=1` runs the seed twice and compares.
//! In a normal build this file is empty.
#![cfg(madsim)]
#![allow(clippy::unwrap_used)] // tests may unwrap

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel_server::api::ApiLimits;
use keel_server::node::serve::{Listeners, Member};
use keel_server::node::{NodeHandle, NodeSettings, NodeStorage};
use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use keel_server::proto::etcdserverpb::{PutRequest, RangeRequest, StatusRequest};
use keel_server::replica::Replica;
use keel_server::transport::TransportLimits;
use keel_sim::NodeAddr;
use keel_sim::cluster::member_settings;
use keel_wal::{SimConfig, SimStorage, Storage};
use madsim::runtime::Handle;
use madsim::task::NodeId;

const MEMBERS: u8 = 3;

fn settings(index: u8) -> NodeSettings {
    member_settings(index, MEMBERS)
}

/// Member `index`'s simulated disks (its WAL and its snapshot directory).
fn disks(index: u8) -> NodeStorage<SimStorage> {
    let seed = u64::from(index);
    NodeStorage {
        wal: SimStorage::new(SimConfig {
            seed,
            ..SimConfig::default()
        }),
        snap: SimStorage::new(SimConfig {
            seed: seed + 100,
            ..SimConfig::default()
        }),
    }
}

/// The running process of a simulated member, replaced at each restart, so
/// the test can read what the member itself reports (its `NodeStatus`).
type RunningMember = Arc<Mutex<Option<NodeHandle>>>;

/// Starts member `index` on its own simulated host, serving from `storage`;
/// `Handle::restart` starts it again on the same disks.
fn start_member(
    handle: &Handle,
    index: u8,
    settings: NodeSettings,
    storage: NodeStorage<SimStorage>,
) -> NodeId {
    start_observed_member(handle, index, settings, storage, RunningMember::default())
}

/// As [`start_member`]; each time the member starts, `running` is set to
/// its handle.
fn start_observed_member(
    handle: &Handle,
    index: u8,
    settings: NodeSettings,
    storage: NodeStorage<SimStorage>,
    running: RunningMember,
) -> NodeId {
    let addr = NodeAddr::member(index);
    let node = handle
        .create_node()
        .name(format!("m{index}"))
        .ip(addr.ip)
        .init(move || {
            let (settings, storage) = (settings.clone(), storage.clone());
            let running = running.clone();
            async move {
                let listeners = Listeners {
                    client_addrs: vec![addr.client()],
                    peer_addrs: vec![addr.peer()],
                    api_limits: ApiLimits::default(),
                    transport_limits: TransportLimits::default(),
                };
                let mut member = Member::start(settings, storage, listeners).await.unwrap();
                *running.lock().unwrap() = Some(member.handle());
                let error = member.server_error().await;
                panic!("member m{index} stopped serving: {error}");
            }
        })
        .build();
    node.id()
}

async fn leader_among(indexes: &[u8]) -> u8 {
    for _ in 0..100 {
        let mut seen = BTreeMap::new();
        for &i in indexes {
            let Ok(mut client) = MaintenanceClient::connect(NodeAddr::member(i).client_url()).await
            else {
                continue;
            };
            if let Ok(status) = client.status(StatusRequest {}).await {
                let status = status.into_inner();
                let member_id = status.header.map_or(0, |h| h.member_id);
                seen.insert(i, (member_id, status.leader));
            }
        }
        let leaders: Vec<u64> = seen.values().map(|(_, leader)| *leader).collect();
        let agreed = leaders.len() == indexes.len()
            && leaders[0] != 0
            && leaders.iter().all(|&l| l == leaders[0]);
        if agreed && let Some((&index, _)) = seen.iter().find(|(_, (id, _))| *id == leaders[0]) {
            return index;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("members {indexes:?} never agreed on a leader");
}

async fn put(index: u8, key: &str, value: &str) {
    let mut kv = KvClient::connect(NodeAddr::member(index).client_url())
        .await
        .unwrap();
    let response = kv
        .put(PutRequest {
            key: key.as_bytes().to_vec().into(),
            value: value.as_bytes().to_vec().into(),
            ..PutRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(response.header.unwrap().revision > 1);
}

/// The simulated host the test's client runs on.
fn client_host(handle: &Handle) -> madsim::runtime::NodeHandle {
    handle
        .create_node()
        .name("client")
        .ip("10.0.1.1".parse().unwrap())
        .build()
}

/// Waits for the members' first election; returns the leader's index.
async fn first_leader() -> u8 {
    madsim::time::sleep(Duration::from_secs(1)).await;
    let all: Vec<u8> = (0..MEMBERS).collect();
    leader_among(&all).await
}

/// A linearizable read of `key` through member `index`.
async fn get(index: u8, key: &str) -> Option<Vec<u8>> {
    try_get(index, key).await.unwrap()
}

/// As [`get`], or the error of a member that cannot answer yet.
async fn try_get(index: u8, key: &str) -> Result<Option<Vec<u8>>, String> {
    let mut kv = KvClient::connect(NodeAddr::member(index).client_url())
        .await
        .map_err(|e| e.to_string())?;
    let request = RangeRequest {
        key: key.as_bytes().to_vec().into(),
        ..RangeRequest::default()
    };
    let response = kv.range(request).await.map_err(|e| e.to_string())?;
    Ok(response
        .into_inner()
        .kvs
        .first()
        .map(|kv| kv.value.to_vec()))
}

/// Waits (20 s of simulated time at most) until member `index` serves
/// `key = value`: it caught up, and can answer.
async fn wait_for_value(index: u8, key: &str, value: &str) {
    for _ in 0..100 {
        let got = try_get(index, key).await;
        if got.ok().flatten().as_deref() == Some(value.as_bytes()) {
            return;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("member m{index} never served {key} = {value}");
}

#[madsim::test]
async fn three_members_serve_a_key_after_the_leader_is_killed() {
    let handle = Handle::current();
    let hosts: Vec<NodeId> = (0..MEMBERS)
        .map(|i| start_member(&handle, i, settings(i), disks(i)))
        .collect();
    let client = client_host(&handle);
    let first_leader = client
        .spawn(async move {
            let leader = first_leader().await;
            put(leader, "smoke", "v1").await;
            for i in 0..MEMBERS {
                assert_eq!(
                    get(i, "smoke").await.as_deref(),
                    Some(&b"v1"[..]),
                    "member m{i}"
                );
            }
            leader
        })
        .await
        .unwrap();

    handle.kill(hosts[usize::from(first_leader)]);

    client
        .spawn(async move {
            let survivors: Vec<u8> = (0..MEMBERS).filter(|&i| i != first_leader).collect();
            let leader = leader_among(&survivors).await;
            assert_ne!(leader, first_leader);
            for &i in &survivors {
                assert_eq!(
                    get(i, "smoke").await.as_deref(),
                    Some(&b"v1"[..]),
                    "member m{i}"
                );
            }
            put(leader, "smoke", "v2").await;
            for &i in &survivors {
                assert_eq!(
                    get(i, "smoke").await.as_deref(),
                    Some(&b"v2"[..]),
                    "member m{i}"
                );
            }
        })
        .await
        .unwrap();
}

/// A member that loses power and misses writes while the others take
/// snapshots and compact their logs comes back from its own snapshot files
/// and WAL, and catches up through the leader's snapshot: the snapshot jobs
/// (encode buffer, file, WAL marker, purge), the snapshot's transfer and
/// install, and the restart's choice of snapshot, under simulation. WAL
/// segments are 4 KiB, so the logs cut, purge and write segments over the
/// files their purges kept, before and after the power loss.
#[madsim::test]
async fn a_restarted_member_catches_up_through_a_snapshot() {
    let handle = Handle::current();
    let storages: Vec<NodeStorage<SimStorage>> = (0..MEMBERS).map(disks).collect();
    let running: Vec<RunningMember> = (0..MEMBERS).map(|_| RunningMember::default()).collect();
    let hosts: Vec<NodeId> = (0..MEMBERS)
        .map(|i| {
            let mut settings = settings(i);
            settings.snapshot_count = 10;
            settings.snapshot_catchup_entries = 5;
            settings.wal.segment_size_bytes = 4096;
            let (storage, running) = (&storages[usize::from(i)], &running[usize::from(i)]);
            start_observed_member(&handle, i, settings, storage.clone(), running.clone())
        })
        .collect();
    let client = client_host(&handle);
    let leader = client
        .spawn(async move {
            let leader = first_leader().await;
            for i in 0..30 {
                put(leader, &format!("k{i}"), "before").await;
            }
            leader
        })
        .await
        .unwrap();
    let lagging = (leader + 1) % MEMBERS;
    handle.kill(hosts[usize::from(lagging)]);
    let disk = &storages[usize::from(lagging)];
    disk.wal.crash();
    disk.snap.crash();
    client
        .spawn(async move {
            for i in 0..60 {
                put(leader, &format!("k{i}"), "after").await;
            }
        })
        .await
        .unwrap();
    handle.restart(hosts[usize::from(lagging)]);
    client
        .spawn(async move {
            wait_for_value(lagging, "k59", "after").await;
            assert_eq!(get(lagging, "k0").await.as_deref(), Some(&b"after"[..]));
        })
        .await
        .unwrap();
    // It caught up through the leader's snapshot, not by log replay: the
    // leader's log no longer held what it missed.
    let restarted = running[usize::from(lagging)]
        .lock()
        .unwrap()
        .clone()
        .unwrap();
    let installed = restarted.status().snapshots_installed;
    assert!(
        installed > 0,
        "m{lagging} caught up without installing a snapshot"
    );
    // More writes (150 at most), until every member has cut a segment into
    // a file its purges kept, the restarted one included.
    let wals: Vec<SimStorage> = storages.iter().map(|s| s.wal.clone()).collect();
    client
        .spawn(async move {
            let every_member_reused = || wals.iter().all(|wal| reused_segments(wal) > 0);
            for i in 0..150 {
                if every_member_reused() {
                    break;
                }
                put(leader, &format!("more{i}"), "x").await;
            }
        })
        .await
        .unwrap();
    for (i, disk) in storages.iter().enumerate() {
        assert!(reused_segments(&disk.wal) > 0, "member m{i} reused no file");
    }
}

/// At least how many of the segments a log has had were written over a
/// kept file: the segments (the newest one's sequence + 1) less the files
/// the disk created. Each new segment is one create; a prepared file never
/// used, or a `.broken` copy, is one too, which only lowers the count.
fn reused_segments(disk: &SimStorage) -> u64 {
    let names = disk.list().unwrap();
    let newest = names
        .iter()
        .filter_map(|n| keel_wal::segment::SegmentName::parse(n))
        .map(|s| s.sequence)
        .max()
        .unwrap();
    (newest + 1).saturating_sub(disk.stats().creates)
}

/// Member `index`'s disks as [`disks`] makes them, but persisting unsynced
/// sectors in any order at a crash.
fn reordering_disks(index: u8) -> NodeStorage<SimStorage> {
    let seed = u64::from(index);
    let config = |seed| SimConfig {
        seed,
        reorder_sectors: true,
        ..SimConfig::default()
    };
    NodeStorage {
        wal: SimStorage::new(config(seed)),
        snap: SimStorage::new(config(seed + 100)),
    }
}

/// Disk faults: every member's disks persist unsynced sectors in any
/// order at a crash. A follower's WAL fsync fails: it stops taking part in
/// Raft (what reached its disk is unknown) while the other two serve every
/// acknowledged write. Then it loses power, so its torn and reordered
/// unsynced tail must be repaired, and it restarts on the same disks,
/// fsyncs healthy again, and catches up.
#[madsim::test]
async fn a_member_whose_fsync_fails_stops_and_recovers_after_a_power_loss() {
    let handle = Handle::current();
    let storages: Vec<NodeStorage<SimStorage>> = (0..MEMBERS).map(reordering_disks).collect();
    let hosts: Vec<NodeId> = (0..MEMBERS)
        .map(|i| start_member(&handle, i, settings(i), storages[usize::from(i)].clone()))
        .collect();
    let client = client_host(&handle);
    let leader = client
        .spawn(async move {
            let leader = first_leader().await;
            put(leader, "before", "v").await;
            leader
        })
        .await
        .unwrap();
    let faulty = (leader + 1) % MEMBERS;
    let faulty_disk = storages[usize::from(faulty)].clone();
    let syncs_before = faulty_disk.wal.stats().syncs;
    faulty_disk.wal.fail_next_syncs(1);
    client
        .spawn(async move {
            for i in 0..20 {
                put(leader, &format!("k{i}"), "during").await;
            }
        })
        .await
        .unwrap();
    // Its one failed fsync stopped it: no later fsync succeeded.
    let syncs_after = faulty_disk.wal.stats().syncs;
    assert_eq!(
        syncs_after, syncs_before,
        "m{faulty} went on syncing its WAL"
    );
    client
        .spawn(async move {
            let err = try_get(faulty, "k19").await;
            assert!(
                err.is_err(),
                "m{faulty} served after its fsync failed: {err:?}"
            );
            for i in (0..MEMBERS).filter(|i| *i != faulty) {
                assert_eq!(get(i, "k19").await.as_deref(), Some(&b"during"[..]));
            }
        })
        .await
        .unwrap();
    handle.kill(hosts[usize::from(faulty)]);
    faulty_disk.wal.crash();
    faulty_disk.snap.crash();
    handle.restart(hosts[usize::from(faulty)]);
    client
        .spawn(async move {
            put(leader, "after", "v").await;
            wait_for_value(faulty, "after", "v").await;
            for i in 0..20 {
                let key = format!("k{i}");
                assert_eq!(get(faulty, &key).await.as_deref(), Some(&b"during"[..]));
            }
        })
        .await
        .unwrap();
}
