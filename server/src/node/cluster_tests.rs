//! In-process clusters on loopback (real sockets, temporary data
//! directories): three members elect a leader, replicate writes, survive the
//! leader being stopped, a member that fell behind the leader's compacted
//! log catches up through a snapshot, a member added with `member add` joins
//! with `--initial-cluster-state existing`, a learner that never started is
//! not promoted, a change that would cost the active quorum or leave too
//! few started voters is refused;
//! and on keel-wal's simulated disk
//! a failed fsync fails the request while the member stays up with everything
//! acknowledged before, a full disk raises NOSPACE until space is freed, the
//! WAL's next segment is kept prepared across a cut, and a slow removal of a
//! purged segment does not hold up proposals.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use keel_kernel::apply::{
    AlarmAction, AlarmMember, AlarmRequest, AlarmType, ApplyError, Request, Response,
};
use keel_kernel::lease::LeaseError;
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

fn specs(count: usize, snapshot_count: u64) -> Vec<Spec> {
    let addrs: Vec<(SocketAddr, SocketAddr)> =
        (0..count).map(|_| (free_addr(), free_addr())).collect();
    let initial_cluster: BTreeMap<String, Vec<String>> = addrs
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| (format!("m{i}"), vec![format!("http://{peer}")]))
        .collect();
    addrs
        .into_iter()
        .enumerate()
        .map(|(i, (client, peer))| {
            let mut settings = NodeSettings::single(&format!("m{i}"), &format!("http://{peer}"));
            settings.initial_cluster = initial_cluster.clone();
            settings.client_urls = vec![format!("http://{client}")];
            // Ten heartbeats per election timeout, as etcd's defaults, at
            // half their length: elections stay quick, and a busy 2-core
            // machine does not miss heartbeats for 500 ms.
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
        })
        .collect()
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

async fn start_all(specs: &[Spec]) -> Vec<Option<Member>> {
    let mut members = Vec::new();
    for spec in specs {
        members.push(Some(start(spec).await));
    }
    members
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_survive_losing_the_leader() {
    let specs = specs(3, 10_000);
    let mut members = start_all(&specs).await;
    let handles: Vec<NodeHandle> = members.iter().flatten().map(Member::handle).collect();
    let first = leader(&handles).await;
    let revision = put(&handles[first], "k", "v1").await;
    assert!(revision > 1);
    for handle in &handles {
        assert_eq!(get(handle, "k").await.as_deref(), Some(&b"v1"[..]));
    }
    // A follower's proposal is forwarded to the leader.
    let follower = (first + 1) % 3;
    put(&handles[follower], "f", "from-follower").await;
    // Lease keep-alives and TTL queries on a follower are answered by the leader.
    let grant = Request::LeaseGrant {
        id: 77,
        ttl_secs: 30,
    };
    handles[follower]
        .propose(grant, None)
        .await
        .unwrap()
        .result
        .unwrap();
    let renewal = handles[follower].lease_renew(77).await.unwrap();
    assert_eq!(renewal.ttl_secs, 30);
    let status = handles[follower]
        .lease_time_to_live(None, 77, false)
        .await
        .unwrap();
    assert!(
        status.ttl_secs > 25 && status.granted_ttl_secs == 30,
        "{status:?}"
    );
    assert_eq!(
        handles[follower].lease_renew(78).await,
        Err(ServerError::Apply(ApplyError::Lease(LeaseError::NotFound)))
    );

    if let Some(member) = members[first].take() {
        member.stop().await;
    }
    let rest: Vec<NodeHandle> = (0..3)
        .filter(|&i| i != first)
        .map(|i| handles[i].clone())
        .collect();
    let second = leader(&rest).await;
    assert_ne!(rest[second].member_id(), handles[first].member_id());
    put(&rest[second], "k", "v2").await;
    for handle in &rest {
        assert_eq!(get(handle, "k").await.as_deref(), Some(&b"v2"[..]));
        assert_eq!(
            get(handle, "f").await.as_deref(),
            Some(&b"from-follower"[..])
        );
    }
    for member in members.into_iter().flatten() {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_behind_the_compacted_log_catches_up_by_snapshot() {
    let specs = specs(3, 20);
    let mut members = start_all(&specs).await;
    let handles: Vec<NodeHandle> = members.iter().flatten().map(Member::handle).collect();
    let first = leader(&handles).await;
    let lagging = (first + 1) % 3;
    if let Some(member) = members[lagging].take() {
        member.stop().await;
    }
    for i in 0..100 {
        put(&handles[first], &format!("key{i:03}"), &format!("value{i}")).await;
    }
    let restarted = start(&specs[lagging]).await;
    let handle = restarted.handle();
    members[lagging] = Some(restarted);
    let caught_up = || {
        let value = handle.with_state(|sm| {
            let request = RangeRequest {
                key: b"key099".to_vec(),
                ..RangeRequest::default()
            };
            sm.range(None, &request)
                .ok()
                .and_then(|r| r.kvs.first().map(|kv| kv.value.clone()))
        });
        value.as_deref() == Some(&b"value99"[..])
    };
    wait_until(Duration::from_secs(10), caught_up, || {
        "the restarted member never caught up".to_owned()
    })
    .await;
    let installed = handle.status().snapshots_installed;
    assert!(
        installed > 0,
        "the member caught up without a leader snapshot"
    );
    let snap_files = std::fs::read_dir(specs[lagging].dir.path().join("member/snap"))
        .unwrap()
        .count();
    assert!(snap_files > 0, "catching up wrote a snapshot file");
    // Raft keeps the leader's snapshot as the saved file, mapped (polled:
    // the member may be between taking its own snapshot and saving it).
    #[cfg(target_os = "linux")]
    {
        let snap_dir = specs[lagging].dir.path().join("member/snap");
        wait_until(
            Duration::from_secs(5),
            || snapshot_file_mapped(&snap_dir),
            || "the installed snapshot is not kept as its file".to_owned(),
        )
        .await;
    }
    for member in members.into_iter().flatten() {
        member.stop().await;
    }
    // The whole cluster restarts from its snapshot files and WAL tails.
    let members = start_all(&specs).await;
    let handles: Vec<NodeHandle> = members.iter().flatten().map(Member::handle).collect();
    leader(&handles).await;
    for handle in &handles {
        assert_eq!(
            get(handle, "key099").await.as_deref(),
            Some(&b"value99"[..])
        );
        assert_eq!(get(handle, "key000").await.as_deref(), Some(&b"value0"[..]));
    }
    for member in members.into_iter().flatten() {
        member.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_added_with_member_add_joins_with_state_existing() {
    let mut specs = specs(2, 10_000);
    // m0 starts alone; m1 is added to the running cluster, then started.
    let m0_cluster: BTreeMap<String, Vec<String>> = specs[0]
        .settings
        .initial_cluster
        .iter()
        .filter(|(name, _)| *name == "m0")
        .map(|(n, u)| (n.clone(), u.clone()))
        .collect();
    specs[0].settings.initial_cluster = m0_cluster;
    let first = start(&specs[0]).await;
    let h0 = first.handle();
    leader(std::slice::from_ref(&h0)).await;
    put(&h0, "before", "join").await;
    let change = crate::replica::MemberChange::Add {
        peer_urls: specs[1].settings.peer_urls.clone(),
        is_learner: false,
    };
    let (added, members) = h0.change_membership(change).await.unwrap();
    assert_eq!(members.len(), 2);
    specs[1].settings.initial_cluster_state = crate::config::ClusterState::Existing;
    let second = start(&specs[1]).await;
    let h1 = second.handle();
    assert_eq!(h1.member_id(), added.id);
    let handles = [h0.clone(), h1.clone()];
    let l = leader(&handles).await;
    put(&handles[l], "after", "join").await;
    assert_eq!(get(&h1, "before").await.as_deref(), Some(&b"join"[..]));
    assert_eq!(get(&h1, "after").await.as_deref(), Some(&b"join"[..]));
    second.stop().await;
    first.stop().await;
}

/// Issue 28 item 9: promoting a learner that never started is refused with
/// etcd's error, and the one-member cluster keeps its quorum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_that_never_started_is_not_promoted() {
    let specs = specs(1, 10_000);
    let only = start(&specs[0]).await;
    let handle = only.handle();
    leader(std::slice::from_ref(&handle)).await;
    put(&handle, "before", "promote").await;
    let add = crate::replica::MemberChange::Add {
        peer_urls: vec![format!("http://{}", free_addr())],
        is_learner: true,
    };
    let (learner, _) = handle.change_membership(add).await.unwrap();
    let promote = crate::replica::MemberChange::Promote {
        member_id: learner.id,
    };
    let refused = handle.change_membership(promote).await.unwrap_err();
    let status = crate::api::status::server_error(&refused);
    assert_eq!(
        (status.code(), status.message()),
        (
            tonic::Code::FailedPrecondition,
            "etcdserver: can only promote a learner member which is in sync with leader"
        )
    );
    put(&handle, "after", "promote").await;
    let learners = handle.with_state(|sm| sm.cluster().member(learner.id).map(|m| m.is_learner));
    assert_eq!(learners, Some(true));
    only.stop().await;
}

/// A single member on keel-wal's simulated disk, serving no sockets.
/// The status a refused membership change answers with.
fn change_refusal(err: &ServerError) -> (tonic::Code, String) {
    let status = crate::api::status::server_error(err);
    (status.code(), status.message().to_owned())
}

/// Issue 28 item 9 (etcd `mayRemoveMember`, `mayAddMember` with
/// `--strict-reconfig-check`): with one of three members down, removing a
/// live member or adding a voter would cost the active quorum, so both are
/// refused with etcd's "unhealthy cluster", whether asked of the leader or
/// of a follower (which forwards the change to the leader), and the cluster
/// keeps serving; the member that is down may be removed. Before that, a
/// follower adds a learner and is refused its promotion with etcd's error
/// rather than timing out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_would_cost_the_active_quorum_is_refused() {
    let specs = specs(3, 10_000);
    let mut members = start_all(&specs).await;
    let handles: Vec<NodeHandle> = members.iter().flatten().map(Member::handle).collect();
    let first = leader(&handles).await;
    let (live, down) = ((first + 1) % 3, (first + 2) % 3);
    let add_learner = crate::replica::MemberChange::Add {
        peer_urls: vec![format!("http://{}", free_addr())],
        is_learner: true,
    };
    let (learner, listed) = handles[live].change_membership(add_learner).await.unwrap();
    assert!(listed.iter().any(|m| m.id == learner.id && m.is_learner));
    let promote = crate::replica::MemberChange::Promote {
        member_id: learner.id,
    };
    let refused = handles[live].change_membership(promote).await.unwrap_err();
    let not_ready = (
        tonic::Code::FailedPrecondition,
        "etcdserver: can only promote a learner member which is in sync with leader".to_owned(),
    );
    assert_eq!(change_refusal(&refused), not_ready);

    if let Some(member) = members[down].take() {
        member.stop().await;
    }
    // Ten election timeouts: the leader has long stopped hearing from it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unhealthy = (
        tonic::Code::Unavailable,
        "etcdserver: unhealthy cluster".to_owned(),
    );
    let leader_handle = &handles[first];
    let (live_id, leader_id) = (handles[live].member_id(), leader_handle.member_id());
    for (via, id) in [(first, live_id), (first, leader_id), (live, live_id)] {
        let remove = crate::replica::MemberChange::Remove { member_id: id };
        let refused = handles[via].change_membership(remove).await.unwrap_err();
        assert_eq!(
            change_refusal(&refused),
            unhealthy,
            "via {via}, removing {id:x}"
        );
    }
    let add = crate::replica::MemberChange::Add {
        peer_urls: vec![format!("http://{}", free_addr())],
        is_learner: false,
    };
    let refused = leader_handle.change_membership(add).await.unwrap_err();
    assert_eq!(change_refusal(&refused), unhealthy);
    put(leader_handle, "after", "refusals").await;
    assert_eq!(
        get(&handles[live], "after").await.as_deref(),
        Some(&b"refusals"[..])
    );
    let voters = leader_handle.with_state(|sm| sm.cluster().members().len());
    assert_eq!(voters, 4, "three voters and the learner");

    let remove_down = crate::replica::MemberChange::Remove {
        member_id: handles[down].member_id(),
    };
    let (_, left) = leader_handle.change_membership(remove_down).await.unwrap();
    assert_eq!(left.len(), 3, "two voters and the learner");
    put(leader_handle, "after", "removal").await;
    for member in members.into_iter().flatten() {
        member.stop().await;
    }
}

/// etcd `IsReadyToAddVotingMember`: a one-member cluster may add a voter
/// (etcd's restore procedure) even before it starts, but a second voter
/// added while the first has not started would leave one started voter of
/// three: FailedPrecondition "etcdserver: re-configuration failed due to
/// not enough started members" (what etcd 3.4.23 answers too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voter_is_not_added_beside_one_that_never_started() {
    let specs = specs(1, 10_000);
    let only = start(&specs[0]).await;
    let handle = only.handle();
    leader(std::slice::from_ref(&handle)).await;
    let add = || crate::replica::MemberChange::Add {
        peer_urls: vec![format!("http://{}", free_addr())],
        is_learner: false,
    };
    let (unstarted, members) = handle.change_membership(add()).await.unwrap();
    assert_eq!((unstarted.name.as_str(), members.len()), ("", 2));
    let refused = handle.change_membership(add()).await.unwrap_err();
    let not_started = (
        tonic::Code::FailedPrecondition,
        "etcdserver: re-configuration failed due to not enough started members".to_owned(),
    );
    assert_eq!(change_refusal(&refused), not_started);
    let voters = handle.with_state(|sm| sm.cluster().members().len());
    assert_eq!(voters, 2);
    only.stop().await;
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
    let specs = specs(1, 20);
    let member = start(&specs[0]).await;
    let handle = member.handle();
    leader(std::slice::from_ref(&handle)).await;
    let snap_dir = specs[0].dir.path().join("member").join("snap");
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
