//! Three real keel members under madsim, driven through the etcd gRPC API
//! from a client host, each scripted test on its own fixed seed (moved
//! here from the wall-clock cluster tests of `server/src/node/cluster_tests.rs`,
//! issue 16):
//! - the cluster survives losing its leader: a follower forwards a put and
//!   lease calls (grant, keep-alive, time-to-live) to the leader, the
//!   leader is killed, the survivors elect another and keep every write;
//! - a member that was down while the leader's log was compacted past what
//!   it has catches up through the leader's snapshot: it must report an
//!   installed snapshot (`NodeStatus::snapshots_installed`) and keep it as
//!   a snapshot file, and the whole cluster then restarts from its
//!   snapshot files and WAL tails;
//! - a leader cut off from its followers acknowledges no keep-alive.
//!
//! Run: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p keel-sim --test cluster_recovery`
//! In a normal build this file is empty.
#![cfg(madsim)]

use std::time::Duration;

use bytes::Bytes;
use keel_server::proto::etcdserverpb::lease_client::LeaseClient;
use keel_server::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseKeepAliveResponse, LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
};
use keel_server::replica::Replica as _;
use keel_sim::NodeAddr;
use keel_sim::scripted::{
    POLL_MS, RETRY_BOUND_MS, ScriptedCluster, agreed_leader, connect_failed, get, put, retried,
    run_seed,
};
use keel_wal::Storage as _;
use tonic::Status;

/// The seed every test here runs on.
const SEED: u64 = 1;
const ALL: [u8; 3] = [0, 1, 2];

/// LeaseGrant of lease `id` for `ttl_secs` through member `through`.
async fn lease_grant(through: u8, id: i64, ttl_secs: i64) -> Result<i64, Status> {
    let url = NodeAddr::member(through).client_url();
    retried("lease grant", || {
        let url = url.clone();
        async move {
            let mut client = LeaseClient::connect(url).await.map_err(connect_failed)?;
            let request = LeaseGrantRequest { ttl: ttl_secs, id };
            Ok::<_, Status>(client.lease_grant(request).await?.into_inner().id)
        }
    })
    .await
}

/// One keep-alive of lease `id` sent to the member at `url`: its answer.
async fn send_keep_alive(url: String, id: i64) -> Result<LeaseKeepAliveResponse, Status> {
    let mut client = LeaseClient::connect(url).await.map_err(connect_failed)?;
    let requests = futures_util::stream::iter([LeaseKeepAliveRequest { id }]);
    let mut answers = client.lease_keep_alive(requests).await?.into_inner();
    let answer = answers.message().await?;
    answer.ok_or_else(|| Status::unavailable("the keep-alive stream ended unanswered"))
}

/// One keep-alive of lease `id` through member `through`, retried as
/// [`retried`] does: its answer.
async fn keep_alive(through: u8, id: i64) -> Result<LeaseKeepAliveResponse, Status> {
    let url = NodeAddr::member(through).client_url();
    retried("lease keep-alive", || send_keep_alive(url.clone(), id)).await
}

/// LeaseTimeToLive of lease `id` through member `through`.
async fn time_to_live(through: u8, id: i64) -> Result<LeaseTimeToLiveResponse, Status> {
    let url = NodeAddr::member(through).client_url();
    retried("lease time-to-live", || {
        let url = url.clone();
        async move {
            let mut client = LeaseClient::connect(url).await.map_err(connect_failed)?;
            let request = LeaseTimeToLiveRequest { id, keys: false };
            Ok::<_, Status>(client.lease_time_to_live(request).await?.into_inner())
        }
    })
    .await
}

/// A follower forwards writes and lease calls to the leader.
async fn follower_forwards(follower: u8) {
    put(follower, "f", "from-follower").await;
    let granted = lease_grant(follower, 77, 30).await.expect("lease grant");
    assert_eq!(granted, 77);
    let renewed = keep_alive(follower, 77).await.expect("keep-alive of 77");
    assert_eq!((renewed.id, renewed.ttl), (77, 30));
    let status = time_to_live(follower, 77)
        .await
        .expect("time-to-live of 77");
    assert!(
        status.ttl > 25 && status.granted_ttl == 30,
        "time-to-live through m{follower}: {status:?}"
    );
    // etcd answers a keep-alive of an unknown lease with TTL 0.
    let unknown = keep_alive(follower, 78).await.expect("keep-alive of 78");
    assert_eq!((unknown.id, unknown.ttl), (78, 0));
}

async fn survive_losing_the_leader() {
    let cluster = ScriptedCluster::new(3);
    cluster.start_together(&ALL, |_| {});
    let first = cluster
        .on_client(async move {
            let first = agreed_leader(&ALL).await;
            assert!(put(first, "k", "v1").await > 1);
            for i in ALL {
                assert_eq!(get(i, "k", false).await.as_deref(), Some(&b"v1"[..]));
            }
            follower_forwards((first + 1) % 3).await;
            first
        })
        .await;
    cluster.kill(first);
    let survivors: Vec<u8> = ALL.into_iter().filter(|&i| i != first).collect();
    cluster
        .on_client(async move {
            let second = agreed_leader(&survivors).await;
            assert_ne!(second, first);
            put(second, "k", "v2").await;
            for &i in &survivors {
                assert_eq!(get(i, "k", false).await.as_deref(), Some(&b"v2"[..]));
                let forwarded = get(i, "f", false).await;
                assert_eq!(forwarded.as_deref(), Some(&b"from-follower"[..]));
            }
        })
        .await;
}

#[test]
fn three_members_survive_losing_the_leader() {
    run_seed(SEED, survive_losing_the_leader);
}

/// One keep-alive of lease `id` sent to member `through`, not retried:
/// its answer, or `None` when none came within `wait_ms` (simulated).
async fn one_keep_alive(
    through: u8,
    id: i64,
    wait_ms: u64,
) -> Option<Result<LeaseKeepAliveResponse, Status>> {
    let call = send_keep_alive(NodeAddr::member(through).client_url(), id);
    madsim::time::timeout(Duration::from_millis(wait_ms), call)
        .await
        .ok()
}

/// The election timeout of [`cut_off_leader_renews_no_lease`]: a leader
/// cut off from its followers keeps leading this long before it notices.
const LONG_ELECTION_TIMEOUT_MS: u64 = 4_000;

/// A leader cut off from both followers acknowledges no keep-alive: it
/// cannot confirm it still leads (ReadIndex), and the new leader the
/// followers elect never hears of the renewal, so the lease could expire
/// before the TTL the client was told (a lock holder then loses its lock
/// while its keep-alives succeed; keel-sim's lock workload found it under
/// `clock-skew`). Once healed, the lease, never lost, is renewed again.
async fn cut_off_leader_renews_no_lease() {
    let cluster = ScriptedCluster::new(3);
    cluster.start_together(&ALL, |settings| {
        settings.election_timeout_ms = LONG_ELECTION_TIMEOUT_MS;
        settings.heartbeat_interval_ms = 200;
    });
    let leader = cluster
        .on_client(async move {
            let leader = agreed_leader(&ALL).await;
            assert_eq!(lease_grant(leader, 91, 20).await.expect("grant"), 91);
            leader
        })
        .await;
    cluster.set_isolated(leader, true);
    // Well inside the election timeout: the cut-off member still thinks
    // it leads.
    let answer = cluster
        .on_client(one_keep_alive(leader, 91, LONG_ELECTION_TIMEOUT_MS / 2))
        .await;
    if let Some(Ok(response)) = &answer {
        panic!("m{leader}, cut off from its followers, acknowledged a keep-alive: {response:?}");
    }
    cluster.set_isolated(leader, false);
    cluster
        .on_client(async move {
            let now_leading = agreed_leader(&ALL).await;
            let renewed = keep_alive(now_leading, 91).await.expect("keep-alive");
            assert_eq!((renewed.id, renewed.ttl), (91, 20));
        })
        .await;
}

#[test]
fn a_leader_cut_off_from_its_followers_renews_no_lease() {
    run_seed(SEED, cut_off_leader_renews_no_lease);
}

/// Writes `key000..key<count>` = `value<i>` through member `through`.
async fn write_keys(through: u8, count: u32) {
    for i in 0..count {
        put(through, &format!("key{i:03}"), &format!("value{i}")).await;
    }
}

/// Waits (bounded) until member `index` applied `key = value` (a
/// serializable read: what it holds itself).
async fn wait_until_applied(index: u8, key: &'static str, value: &'static str) {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(RETRY_BOUND_MS);
    let mut seen = None;
    while madsim::time::Instant::now() < deadline {
        seen = get(index, key, true).await;
        if seen.as_deref() == Some(value.as_bytes()) {
            return;
        }
        madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    let seen = seen.map(Bytes::from);
    panic!("m{index} did not apply {key} = {value} within {RETRY_BOUND_MS} ms: it has {seen:?}");
}

/// The snapshot files (`*.snap`) on member `index`'s snapshot disk.
fn snapshot_files(cluster: &ScriptedCluster, index: u8) -> Vec<String> {
    let names = cluster.storage(index).snap.list().unwrap_or_default();
    names.into_iter().filter(|n| n.ends_with(".snap")).collect()
}

async fn catch_up_by_snapshot() {
    let cluster = ScriptedCluster::new(3);
    // A snapshot every 20 entries, keeping 5 behind it: 100 writes compact
    // the leader's log far past anything a member that missed them has.
    cluster.start_together(&ALL, |settings| {
        settings.snapshot_count = 20;
        settings.snapshot_catchup_entries = 5;
    });
    let first = cluster.on_client(agreed_leader(&ALL)).await;
    let lagging = (first + 1) % 3;
    cluster.kill(lagging);
    cluster.on_client(write_keys(first, 100)).await;
    cluster.restart(lagging);
    cluster
        .on_client(wait_until_applied(lagging, "key099", "value99"))
        .await;
    let member = cluster.started(lagging).await;
    let installed = member.status().snapshots_installed;
    assert!(
        installed > 0,
        "m{lagging} caught up without installing the leader's snapshot\nmember log:\n{}",
        cluster.log.snapshot()
    );
    // It keeps the installed snapshot as a file (saved off the driver).
    let deadline = madsim::time::Instant::now() + Duration::from_millis(RETRY_BOUND_MS);
    while snapshot_files(&cluster, lagging).is_empty() {
        assert!(
            madsim::time::Instant::now() < deadline,
            "m{lagging} wrote no snapshot file for the snapshot it installed"
        );
        madsim::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
    // The whole cluster restarts from its snapshot files and WAL tails.
    for i in ALL {
        cluster.kill(i);
    }
    for i in ALL {
        cluster.restart(i);
    }
    cluster
        .on_client(async move {
            agreed_leader(&ALL).await;
            for i in ALL {
                assert_eq!(
                    get(i, "key099", false).await.as_deref(),
                    Some(&b"value99"[..])
                );
                assert_eq!(
                    get(i, "key000", false).await.as_deref(),
                    Some(&b"value0"[..])
                );
            }
        })
        .await;
}

#[test]
fn a_member_behind_the_compacted_log_catches_up_by_snapshot() {
    run_seed(SEED, catch_up_by_snapshot);
}
