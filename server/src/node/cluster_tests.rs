//! One member at a time: on keel-wal's simulated disk (no sockets), a
//! failed fsync fails the request while the member stays up with everything
//! acknowledged before, a full disk raises NOSPACE until space is freed, the
//! WAL's next segment is kept prepared across a cut, and a slow removal of a
//! purged segment or a slow snapshot file does not hold up proposals; on a
//! real data directory, a finished snapshot is kept as its mapped file.
//!
//! The multi-member scenarios that ran here on loopback sockets and wall
//! clocks (leader loss, catching up by snapshot, member add, refused
//! membership changes) run in the simulator: `sim/tests/cluster_recovery.rs`
//! and `sim/tests/cluster_membership.rs` (issue 16). Real sockets between
//! real processes stay covered by `server/tests/` (durability.rs,
//! etcdctl_member.rs, graceful_shutdown.rs, peer_transport_tcp.rs).

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use keel_kernel::apply::{
    AlarmAction, AlarmMember, AlarmRequest, AlarmType, ApplyError, Request, Response,
};
use keel_kernel::mvcc::{PutRequest, RangeRequest};
use keel_wal::Storage as _;
use keel_wal::next_segment::NEXT_TEMP_NAME;

use super::gated_disk::GatedDisk;
use super::serve::{Listeners, Member};
use super::{NodeHandle, NodeSettings, NodeStorage};
use crate::api::ApiLimits;
use crate::api::maintenance::MaintenanceService;
use crate::proto::etcdserverpb as pb;
use crate::replica::{Replica, ServerError};
use crate::transport::TransportLimits;

struct Spec {
    settings: NodeSettings,
    dir: tempfile::TempDir,
    client: SocketAddr,
    peer: SocketAddr,
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A single member on loopback in a temporary data directory, taking a
/// snapshot every `snapshot_count` entries.
fn single_spec(snapshot_count: u64) -> Spec {
    let (client, peer) = (free_addr(), free_addr());
    let mut settings = NodeSettings::single("m0", &format!("http://{peer}"));
    settings.client_urls = vec![format!("http://{client}")];
    // Half etcd's defaults, as before: one voter elects itself sooner.
    settings.heartbeat_interval_ms = 50;
    settings.election_timeout_ms = 500;
    settings.snapshot_count = snapshot_count;
    settings.snapshot_catchup_entries = 5;
    Spec {
        settings,
        dir: tempfile::tempdir().unwrap(),
        client,
        peer,
    }
}

async fn start(spec: &Spec) -> Member {
    let storage = NodeStorage::on_disk(spec.dir.path()).unwrap();
    let listeners = Listeners {
        client_addrs: vec![spec.client],
        peer_addrs: vec![spec.peer],
        api_limits: ApiLimits::default(),
        transport_limits: TransportLimits::default(),
    };
    Member::start(spec.settings.clone(), storage, listeners)
        .await
        .unwrap()
}

/// Waits (10 s at most) until every handle agrees on one leader; returns
/// its index.
async fn leader(handles: &[NodeHandle]) -> usize {
    let mut found = None;
    let agreed = || {
        found = agreed_leader(handles);
        found.is_some()
    };
    wait_until(Duration::from_secs(10), agreed, || {
        let leaders: Vec<u64> = handles.iter().map(|h| h.status().leader_id).collect();
        format!("no leader agreed on within 10 s: {leaders:x?}")
    })
    .await;
    found.unwrap()
}

/// The index of the leader every handle names, if they agree on one among them.
fn agreed_leader(handles: &[NodeHandle]) -> Option<usize> {
    let leaders: Vec<u64> = handles.iter().map(|h| h.status().leader_id).collect();
    let first = *leaders.first()?;
    if first == 0 || leaders.iter().any(|&l| l != first) {
        return None;
    }
    handles.iter().position(|h| h.member_id() == first)
}

/// Waits until `done` holds, checking it every 10 ms for `timeout` at
/// most; panics then with what `describe` returns (called only then, so
/// it can report the state at the time).
async fn wait_until(
    timeout: Duration,
    mut done: impl FnMut() -> bool,
    describe: impl FnOnce() -> String,
) {
    const POLL: Duration = Duration::from_millis(10);
    for _ in 0..timeout.as_millis().div_ceil(POLL.as_millis()) {
        if done() {
            return;
        }
        tokio::time::sleep(POLL).await;
    }
    panic!("{}", describe());
}

/// How long [`put`] retries a write that a leader change turned away.
const PUT_RETRY: Duration = Duration::from_secs(10);
/// Pause between two tries of [`put`].
const PUT_RETRY_PAUSE: Duration = Duration::from_millis(50);

/// Writes `key = value` through `handle`, retrying (bounded) when no
/// leader is known or a leader change dropped the proposal, as a client
/// would; returns the write's revision.
async fn put(handle: &NodeHandle, key: &str, value: &str) -> i64 {
    let request = Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..PutRequest::default()
    });
    let deadline = tokio::time::Instant::now() + PUT_RETRY;
    let applied = loop {
        match handle.propose(request.clone(), None).await {
            Ok(applied) => break applied,
            Err(ServerError::NoLeader | ServerError::ProposalDropped)
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(PUT_RETRY_PAUSE).await;
            }
            Err(err) => panic!("put {key}: {err:?}"),
        }
    };
    match applied.result.unwrap() {
        Response::Put(put) => put.revision,
        other => panic!("unexpected {other:?}"),
    }
}

async fn get(handle: &NodeHandle, key: &str) -> Option<Vec<u8>> {
    handle.linearizable_barrier().await.unwrap();
    get_serializable(handle, key)
}

async fn sim_member(quota_backend_bytes: Option<u64>) -> (super::Node, keel_wal::SimStorage) {
    let disk = keel_wal::SimStorage::new(keel_wal::SimConfig::default());
    let storage = NodeStorage {
        wal: disk.clone(),
        snap: keel_wal::SimStorage::new(keel_wal::SimConfig::default()),
    };
    (sim_member_on(storage, quota_backend_bytes).await, disk)
}

/// A single member on the given simulated disks (new or restarted).
async fn sim_member_on(
    storage: NodeStorage<keel_wal::SimStorage>,
    quota_backend_bytes: Option<u64>,
) -> super::Node {
    let mut settings = sim_settings();
    settings.quota_backend_bytes = quota_backend_bytes;
    start_sim_member(settings, storage).await
}

/// Settings of a single member serving no sockets, with fast elections.
fn sim_settings() -> NodeSettings {
    let mut settings = NodeSettings::single("m0", "http://127.0.0.1:1");
    settings.heartbeat_interval_ms = 20;
    settings.election_timeout_ms = 200;
    settings
}

/// Starts a single member on `storage` and waits until it leads.
async fn start_sim_member<S: keel_wal::Storage>(
    settings: NodeSettings,
    storage: NodeStorage<S>,
) -> super::Node {
    let (node, _peer_service) =
        super::Node::start(settings, storage, TransportLimits::default()).unwrap();
    leader(&[node.handle()]).await;
    node
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_fsync_fails_the_request_and_keeps_what_was_acknowledged() {
    let (node, disk) = sim_member(None).await;
    let handle = node.handle();
    put(&handle, "acked", "yes").await;
    // Every fsync fails from now on, as on a failing device: the one the
    // WAL needs cannot slip past while the background job preparing the
    // next segment takes the failure instead.
    disk.fail_next_syncs(u32::MAX);
    let request = Request::Put(PutRequest {
        key: b"lost".to_vec(),
        value: b"maybe".to_vec(),
        ..PutRequest::default()
    });
    let err = handle.propose(request.clone(), None).await.unwrap_err();
    assert!(matches!(err, ServerError::Storage(_)), "{err:?}");
    // The member stays up: reads of acknowledged data work, writes are refused.
    let read = RangeRequest {
        key: b"acked".to_vec(),
        ..RangeRequest::default()
    };
    let kvs = handle.with_state(|sm| sm.range(None, &read)).unwrap().kvs;
    assert_eq!(kvs[0].value, b"yes"[..]);
    assert!(matches!(
        handle.propose(request, None).await,
        Err(ServerError::Storage(_))
    ));
    node.stop().await;
}

/// Waits (10 s at most) until the WAL disk holds a prepared next segment.
async fn wait_for_prepared_segment(disk: &keel_wal::SimStorage) {
    let prepared = || {
        let names = disk.list().unwrap();
        names.iter().any(|n| n == NEXT_TEMP_NAME)
    };
    wait_until(Duration::from_secs(10), prepared, || {
        format!("no next segment prepared: {:?}", disk.list().unwrap())
    })
    .await;
}

/// The driver keeps the WAL's next segment prepared in the background; a
/// cut takes it, and the driver prepares the one after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_keeps_the_next_wal_segment_prepared() {
    let (node, disk) = sim_member(None).await;
    let handle = node.handle();
    put(&handle, "k", "v").await;
    wait_for_prepared_segment(&disk).await;
    assert_eq!(wal_segments(&disk), 1);
    let value = "v".repeat(1 << 20);
    let mut i = 0;
    while wal_segments(&disk) < 2 {
        assert!(i < 100, "no cut after {i} MiB");
        let applied = handle
            .propose(put_request(&format!("big{i}"), &value), None)
            .await
            .unwrap();
        assert!(applied.result.is_ok());
        i += 1;
    }
    put(&handle, "after", "cut").await;
    wait_for_prepared_segment(&disk).await;
    node.stop().await;
}

/// How many WAL segment files `disk` holds.
fn wal_segments<S: keel_wal::Storage>(disk: &S) -> usize {
    let names = disk.list().unwrap();
    names.iter().filter(|n| n.ends_with(".wal")).count()
}

/// A segment removal that takes long (an unlink of a large file) happens
/// off the driver: proposals keep committing while it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_segment_removal_does_not_hold_up_proposals() {
    let disk = GatedDisk::new(".wal");
    let snap = GatedDisk::new(".wal");
    snap.open_gate();
    let storage = NodeStorage {
        wal: disk.clone(),
        snap,
    };
    let mut settings = sim_settings();
    settings.snapshot_count = 100;
    let node = start_sim_member(settings, storage).await;
    let handle = node.handle();
    // One key rewritten with 1 MiB values until the WAL cuts a segment,
    // then compacted, so the snapshot that purges it stays small.
    let value = "v".repeat(1 << 20);
    let mut revision = 0;
    for i in 0.. {
        assert!(i < 100, "no cut after {i} MiB");
        if wal_segments(&disk) == 2 {
            break;
        }
        revision = put(&handle, "big", &value).await;
    }
    let compaction = Request::Compaction(keel_kernel::mvcc::CompactionRequest {
        revision,
        physical: true,
    });
    assert!(
        handle
            .propose(compaction, None)
            .await
            .unwrap()
            .result
            .is_ok()
    );
    // Small writes until the snapshot purges the first segment, whose
    // removal then waits at the gate.
    for i in 0.. {
        assert!(i < 200, "no purge after {i} small writes");
        if disk.waiting() > 0 {
            break;
        }
        put(&handle, &format!("k{i}"), "v").await;
    }
    let during = tokio::time::timeout(Duration::from_secs(5), put(&handle, "during", "purge"));
    assert!(during.await.is_ok(), "a proposal waited for the purge");
    assert_eq!(wal_segments(&disk), 2);
    disk.open_gate();
    wait_until(
        Duration::from_secs(5),
        || wal_segments(&disk) == 1,
        || format!("the purge did not finish: {:?}", disk.list().unwrap()),
    )
    .await;
    node.stop().await;
}

/// Writing a large snapshot file happens off the driver: proposals keep
/// committing while the file waits to be renamed into place, and the
/// snapshot is finished (marker logged, file loaded on restart) after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_snapshot_file_does_not_hold_up_proposals() {
    let wal = GatedDisk::new(".wal");
    wal.open_gate();
    let snap = GatedDisk::new(".snap.tmp");
    let storage = || NodeStorage {
        wal: wal.clone(),
        snap: snap.clone(),
    };
    let mut settings = sim_settings();
    settings.snapshot_count = 20;
    let node = start_sim_member(settings.clone(), storage()).await;
    let handle = node.handle();
    for i in 0.. {
        assert!(i < 100, "no snapshot file after {i} writes");
        if snap.waiting() > 0 {
            break;
        }
        put(&handle, &format!("k{i}"), "v").await;
    }
    for i in 0..30 {
        let key = format!("during{i}");
        let during = tokio::time::timeout(Duration::from_secs(5), put(&handle, &key, "v"));
        assert!(
            during.await.is_ok(),
            "a proposal waited for the snapshot file"
        );
    }
    snap.open_gate();
    let snapshot_files = || {
        let names = snap.list().unwrap();
        names.iter().filter(|n| n.ends_with(".snap")).count()
    };
    wait_until(
        Duration::from_secs(5),
        || snapshot_files() > 0,
        || {
            format!(
                "the snapshot file never appeared: {:?}",
                snap.list().unwrap()
            )
        },
    )
    .await;
    // The next write finishes the snapshot: its marker goes into the WAL.
    put(&handle, "after", "snapshot").await;
    node.stop().await;
    let marked = keel_wal::recover(&wal).unwrap().snapshot.index;
    assert!(marked >= 20, "no snapshot marker in the WAL");
    let node = start_sim_member(settings, storage()).await;
    let handle = node.handle();
    assert_eq!(get(&handle, "during29").await.as_deref(), Some(&b"v"[..]));
    node.stop().await;
}

/// A crash after a snapshot file was written but before its WAL marker was
/// logged leaves a newer file the log cannot follow: the member restarts
/// from the newest file that has a marker (etcd's `LoadNewestAvailable`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_file_without_its_wal_marker_is_passed_over() {
    let (wal, snap) = (
        keel_wal::SimStorage::new(keel_wal::SimConfig::default()),
        keel_wal::SimStorage::new(keel_wal::SimConfig::default()),
    );
    let storage = || NodeStorage {
        wal: wal.clone(),
        snap: snap.clone(),
    };
    let mut settings = sim_settings();
    settings.snapshot_count = 10;
    let node = start_sim_member(settings.clone(), storage()).await;
    let handle = node.handle();
    for i in 0..30 {
        put(&handle, &format!("k{i}"), "v").await;
    }
    node.stop().await;
    let files = keel_wal::SnapshotFiles::new(snap.clone(), 5);
    let mut orphan = files.load().unwrap().expect("a snapshot was taken");
    orphan.metadata.index += 1000;
    files.save(&orphan).unwrap();
    let node = start_sim_member(settings, storage()).await;
    let handle = node.handle();
    assert_eq!(get(&handle, "k29").await.as_deref(), Some(&b"v"[..]));
    put(&handle, "after", "restart").await;
    node.stop().await;
}

fn put_request(key: &str, value: &str) -> Request {
    Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..PutRequest::default()
    })
}

/// Writes 1 MiB values until the WAL needs a new segment on the full disk;
/// returns how many were acknowledged and the failing write's error.
async fn fill_until_full(handle: &NodeHandle) -> (usize, ServerError) {
    let value = "v".repeat(1 << 20);
    for i in 0..1000 {
        match handle
            .propose(put_request(&format!("fill{i}"), &value), None)
            .await
        {
            Ok(applied) => assert!(applied.result.is_ok()),
            Err(err) => return (i, err),
        }
    }
    panic!("the disk never filled up");
}

fn nospace_alarm(handle: &NodeHandle) -> AlarmMember {
    AlarmMember {
        member_id: handle.member_id(),
        alarm: AlarmType::NoSpace,
    }
}

/// Waits (10 s at most) until the member has recovered from a full disk:
/// Raft runs again and its NOSPACE alarm is applied.
async fn wait_for_applied_nospace_alarm(handle: &NodeHandle) {
    let recovered = || !handle.status().disk_full && nospace_alarm_applied(handle);
    wait_until(Duration::from_secs(10), recovered, || {
        "the member did not recover from the full disk within 10 s".to_owned()
    })
    .await;
}

/// True if the member's NOSPACE alarm is in its applied state.
fn nospace_alarm_applied(handle: &NodeHandle) -> bool {
    let applied = handle.with_state(|sm| sm.alarms().list());
    applied.contains(&nospace_alarm(handle))
}

/// What Maintenance.AlarmList and Maintenance.Status report.
async fn reported_alarms(handle: &NodeHandle) -> (Vec<pb::AlarmMember>, Vec<String>) {
    use pb::maintenance_server::Maintenance;
    let service = MaintenanceService::new(handle.clone(), ApiLimits::default());
    let list = pb::AlarmRequest {
        action: pb::alarm_request::AlarmAction::Get as i32,
        member_id: 0,
        alarm: pb::AlarmType::None as i32,
    };
    let alarms = service.alarm(tonic::Request::new(list)).await.unwrap();
    let status = service
        .status(tonic::Request::new(pb::StatusRequest {}))
        .await
        .unwrap();
    (alarms.into_inner().alarms, status.into_inner().errors)
}

/// A full disk: the write that needed space times out (it may still
/// commit), later writes get NOSPACE at once, Status and AlarmList show the
/// member's NOSPACE alarm; once space is freed the waiting write commits,
/// the alarm is applied through Raft and refuses writes until disarmed;
/// nothing acknowledged is lost, also across a crash and restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_writes_raises_nospace_and_recovers() {
    let wal_disk = keel_wal::SimStorage::new(keel_wal::SimConfig::default());
    let snap_disk = keel_wal::SimStorage::new(keel_wal::SimConfig::default());
    let storage = || NodeStorage {
        wal: wal_disk.clone(),
        snap: snap_disk.clone(),
    };
    let node = sim_member_on(storage(), None).await;
    let handle = node.handle();
    put(&handle, "acked", "yes").await;
    wal_disk.set_capacity_bytes(0);

    let (acked, err) = fill_until_full(&handle).await;
    assert_eq!(err, ServerError::Timeout);
    assert!(handle.status().disk_full);
    let nospace = ServerError::Apply(ApplyError::NoSpace);
    let refused = handle.propose(put_request("more", "x"), None).await;
    assert_eq!(refused.unwrap_err(), nospace);
    let id = handle.member_id();
    let want_alarm = pb::AlarmMember {
        member_id: id,
        alarm: pb::AlarmType::Nospace as i32,
    };
    let (alarms, errors) = reported_alarms(&handle).await;
    assert_eq!(alarms, vec![want_alarm]);
    assert_eq!(errors, vec![format!("memberID:{id} alarm:NOSPACE ")]);
    assert_eq!(
        get_serializable(&handle, "acked").as_deref(),
        Some(&b"yes"[..])
    );

    wal_disk.set_capacity_bytes(u64::MAX);
    wait_for_applied_nospace_alarm(&handle).await;
    // The write that timed out was in the log and has now committed.
    assert!(get(&handle, &format!("fill{acked}")).await.is_some());
    assert_eq!(reported_alarms(&handle).await.0, vec![want_alarm]);
    let applied = handle
        .propose(put_request("more", "x"), None)
        .await
        .unwrap();
    assert_eq!(applied.result.unwrap_err(), ApplyError::NoSpace);
    let disarm = Request::Alarm(AlarmRequest {
        action: AlarmAction::Deactivate,
        member_id: id,
        alarm: AlarmType::NoSpace,
    });
    handle.propose(disarm, None).await.unwrap().result.unwrap();
    // A disarmed alarm stays disarmed: two more alarm checks run, and
    // writes are taken.
    let checks = handle.status().alarm_checks;
    let checked = || handle.status().alarm_checks >= checks + 2;
    wait_until(Duration::from_secs(10), checked, || {
        "the driver ran no alarm check in 10 s".to_owned()
    })
    .await;
    assert_eq!(reported_alarms(&handle).await.0, vec![]);
    put(&handle, "after", "disarm").await;
    node.stop().await;

    wal_disk.crash();
    snap_disk.crash();
    let node = sim_member_on(storage(), None).await;
    let handle = node.handle();
    assert!(get(&handle, "after").await.is_some());
    for key in ["acked".to_owned(), format!("fill{acked}")]
        .into_iter()
        .chain((0..acked).map(|i| format!("fill{i}")))
    {
        assert!(get_serializable(&handle, &key).is_some(), "{key} lost");
    }
    node.stop().await;
}

fn get_serializable(handle: &NodeHandle, key: &str) -> Option<Vec<u8>> {
    let request = RangeRequest {
        key: key.as_bytes().to_vec(),
        ..RangeRequest::default()
    };
    let response = handle.with_state(|sm| sm.range(None, &request)).unwrap();
    response.kvs.first().map(|kv| kv.value.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_over_quota_raises_nospace_and_refuses_writes() {
    let (node, _disk) = sim_member(Some(64 * 1024)).await;
    let handle = node.handle();
    put(&handle, "big", &"x".repeat(100 * 1024)).await;
    wait_until(
        Duration::from_secs(5),
        || nospace_alarm_applied(&handle),
        || "the NOSPACE alarm was never raised".to_owned(),
    )
    .await;
    let applied = handle
        .propose(put_request("more", "data"), None)
        .await
        .unwrap();
    assert_eq!(applied.result.unwrap_err(), ApplyError::NoSpace);
    assert!(handle.status().db_size_bytes > 64 * 1024);
    node.stop().await;
}

/// Once a snapshot's file is written, Raft keeps the snapshot (for lagging
/// followers) as that file mapped in memory, so the member does not hold
/// its encoded state on the heap beside the live one.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_snapshot_is_kept_as_its_mapped_file() {
    let spec = single_spec(20);
    let member = start(&spec).await;
    let handle = member.handle();
    leader(std::slice::from_ref(&handle)).await;
    let snap_dir = spec.dir.path().join("member").join("snap");
    let mapped = || snapshot_file_mapped(&snap_dir);
    for i in 0.. {
        assert!(i < 200, "no snapshot mapped after {i} writes");
        if mapped() {
            break;
        }
        put(&handle, &format!("k{i}"), "v").await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // The job mapped the file; the next writes finish the snapshot, after
    // which Raft's copy is what keeps the file mapped.
    for i in 0..3 {
        put(&handle, &format!("after{i}"), "v").await;
    }
    assert!(mapped(), "the snapshot's file is no longer mapped");
    member.stop().await;
}

/// True if this process maps a snapshot file of `snap_dir` (Linux).
#[cfg(target_os = "linux")]
fn snapshot_file_mapped(snap_dir: &std::path::Path) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let dir = snap_dir.to_string_lossy().into_owned();
    maps.lines()
        .any(|l| l.contains(&dir) && l.ends_with(".snap"))
}
