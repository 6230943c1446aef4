//! A member's own snapshots on keel-wal's simulated disk: writes keep
//! being acknowledged while a snapshot job is held in the middle of its
//! work, the file holds the state frozen when the job started (not the
//! writes made meanwhile), and once a newer snapshot is durable the older
//! files are removed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use keel_kernel::apply::{Request, StateMachine, StateMachineConfig};
use keel_kernel::mvcc::{PutRequest, RangeRequest};
use keel_wal::{SimConfig, SimStorage, SnapshotFiles, Storage as _};

use super::{Node, NodeHandle, NodeSettings, NodeStorage};
use crate::observe::{NodeObserver, Observer};
use crate::replica::Replica;
use crate::transport::TransportLimits;

/// How long a test waits for anything before it fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// Holds the first snapshot job at the start of its encoding until the
/// test releases it (or [`PATIENCE`] runs out).
struct HoldFirstSnapshot {
    /// Index of the held job's snapshot; 0 until one started.
    held_index: AtomicU64,
    release: Mutex<mpsc::Receiver<()>>,
}

impl NodeObserver for HoldFirstSnapshot {
    fn snapshot_encoding(&self, index: u64) {
        let first = self
            .held_index
            .compare_exchange(0, index, Ordering::SeqCst, Ordering::SeqCst);
        if first.is_ok() {
            let release = self.release.lock().unwrap();
            let _ = release.recv_timeout(PATIENCE);
        }
    }
}

fn settings(snapshot_count: u64) -> NodeSettings {
    let mut settings = NodeSettings::single("m0", "http://127.0.0.1:1");
    settings.heartbeat_interval_ms = 20;
    settings.election_timeout_ms = 200;
    settings.snapshot_count = snapshot_count;
    settings.snapshot_catchup_entries = 5;
    settings
}

fn sim_disks() -> (SimStorage, SimStorage) {
    let disk = || SimStorage::new(SimConfig::default());
    (disk(), disk())
}

/// Starts a single member and waits (bounded) until it leads.
async fn start(settings: NodeSettings, (wal, snap): &(SimStorage, SimStorage)) -> Node {
    let storage = NodeStorage {
        wal: wal.clone(),
        snap: snap.clone(),
    };
    let (node, _peers) = Node::start(settings, storage, TransportLimits::default()).unwrap();
    let handle = node.handle();
    for _ in 0..PATIENCE.as_millis() / 10 {
        if handle.status().leader_id == handle.member_id() {
            return node;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the member did not lead within {PATIENCE:?}");
}

/// Writes `key = value`, failing the test if it takes longer than
/// [`PATIENCE`] or is refused.
async fn put(handle: &NodeHandle, key: &str, value: &str) {
    let request = Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..PutRequest::default()
    });
    let applied = tokio::time::timeout(PATIENCE, handle.propose(request, None)).await;
    let applied = applied.unwrap_or_else(|_| panic!("put {key} waited {PATIENCE:?}"));
    assert!(applied.unwrap().result.is_ok(), "put {key} failed");
}

/// Whether `state` holds `key`.
fn holds(state: &StateMachine, key: &str) -> bool {
    let request = RangeRequest {
        key: key.as_bytes().to_vec(),
        ..RangeRequest::default()
    };
    !state.store().range(&request).unwrap().kvs.is_empty()
}

/// Names of the complete snapshot files on `snap`.
fn snapshot_files(snap: &SimStorage) -> Vec<String> {
    let names = snap.list().unwrap();
    names.into_iter().filter(|n| n.ends_with(".snap")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_acknowledged_while_a_snapshot_job_is_held_and_it_keeps_its_frozen_view() {
    let (release, released) = mpsc::channel();
    let hold = Arc::new(HoldFirstSnapshot {
        held_index: AtomicU64::new(0),
        release: Mutex::new(released),
    });
    let mut settings = settings(20);
    settings.observer = Observer::new(hold.clone());
    let disks = sim_disks();
    let node = start(settings.clone(), &disks).await;
    let handle = node.handle();
    for i in 0.. {
        assert!(i < 100, "no snapshot job after {i} writes");
        if hold.held_index.load(Ordering::SeqCst) != 0 {
            break;
        }
        put(&handle, &format!("k{i}"), "v").await;
    }
    let held_index = hold.held_index.load(Ordering::SeqCst);
    // The job is held before it encodes anything: every write now is
    // acknowledged while it is in progress.
    for i in 0..30 {
        put(&handle, &format!("during{i}"), "v").await;
    }
    assert!(snapshot_files(&disks.1).is_empty(), "the held job wrote");
    release.send(()).unwrap();
    for i in 0.. {
        assert!(i < 500, "the held snapshot was never marked in the WAL");
        if keel_wal::recover(&disks.0).unwrap().snapshot.index == held_index {
            break;
        }
        put(&handle, &format!("after{i}"), "v").await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.stop().await;
    // The file holds the state as of the held index, not the writes made
    // while the job waited.
    let files = SnapshotFiles::new(disks.1.clone(), 5);
    let held = files.load_newest_of(|index, _| index == held_index);
    let held = held.unwrap().expect("the held snapshot's file");
    let state = StateMachine::restore(StateMachineConfig::new(200), &held.data).unwrap();
    assert_eq!(state.applied_index(), held_index);
    assert!(
        !holds(&state, "during0"),
        "a later write leaked into the file"
    );
    // A restart has everything: the snapshot, then the WAL after it.
    let node = start(settings, &disks).await;
    let handle = node.handle();
    handle.linearizable_barrier().await.unwrap();
    let restarted = handle.with_state(|state| holds(state, "during29"));
    assert!(
        restarted,
        "a write acknowledged during the snapshot was lost"
    );
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_newest_durable_snapshot_file_is_kept() {
    let disks = sim_disks();
    let node = start(settings(10), &disks).await;
    let handle = node.handle();
    let mut most_files = 0;
    for i in 0..400 {
        put(&handle, &format!("k{i}"), "v").await;
        most_files = most_files.max(snapshot_files(&disks.1).len());
    }
    assert!(most_files <= 2, "{most_files} snapshot files at once");
    // The last snapshot is finished (marked, older files removed) at a
    // later Ready: write until one file is left.
    for i in 0.. {
        assert!(i < 500, "files left: {:?}", snapshot_files(&disks.1));
        if snapshot_files(&disks.1).len() == 1 {
            break;
        }
        put(&handle, &format!("after{i}"), "v").await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.stop().await;
    let marked = keel_wal::recover(&disks.0).unwrap().snapshot.index;
    let file = snapshot_files(&disks.1).remove(0);
    let parsed = keel_wal::snapshot_file::parse_name(&file).map(|(index, _)| index);
    assert_eq!(parsed, Some(marked), "the file kept is the marked one");
    assert!(
        marked > 200,
        "few snapshots were taken (the last at {marked})"
    );
    let node = start(settings(10), &disks).await;
    let handle = node.handle();
    handle.linearizable_barrier().await.unwrap();
    assert!(handle.with_state(|state| holds(state, "k399")));
    node.stop().await;
}
