//! What a client sees while a member starts, while its leader stalls and
//! when its leader dies, each run against real etcd 3.4 and keel with the
//! same flags and the same client, and required to be the same:
//!
//! - a client that connects to a member before the member can serve (it was
//!   restarted while its peers are down, so it has no leader) is held, not
//!   refused, and served once the member is ready (etcd binds its listeners
//!   before replaying the WAL and serves after `ReadyNotify`);
//! - a request whose gRPC deadline passes while the leader is paused is
//!   answered `DEADLINE_EXCEEDED` by the server;
//! - a request waiting on a leader that is killed is answered `UNAVAILABLE`
//!   with one of etcd's `etcdserver: ...` messages.
#![cfg(not(madsim))]
#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use keel_server::proto::etcdserverpb::kv_client::KvClient;
use keel_server::proto::etcdserverpb::{PutRequest, RangeRequest};
use support::client::leader;
use support::cluster::{Cluster, Flavor};
use tonic::Code;

/// How long a member may take to bind its client port after its process
/// starts.
const BIND_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a held client may wait for the member to become ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The gRPC deadline of the requests stalled behind a paused leader: well
/// within the 1 s election timeout, so no new leader is elected meanwhile.
const SHORT_DEADLINE: Duration = Duration::from_millis(400);

fn socket_addr(url: &str) -> SocketAddr {
    url.trim_start_matches("http://").parse().unwrap()
}

/// Waits until `addr` accepts a TCP connection (bounded).
fn wait_accepting(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + BIND_TIMEOUT;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what}: {addr} refused connections for {BIND_TIMEOUT:?} after the process started"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Connects to `addr` every 20 ms until `stop`; returns how many attempts
/// were refused.
fn count_refusals(addr: SocketAddr, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    let refused = Arc::new(AtomicUsize::new(0));
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
                refused.fetch_add(1, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        refused.load(Ordering::SeqCst)
    })
}

fn put_request(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
        ..PutRequest::default()
    }
}

async fn put(url: &str, key: &str, value: &str) -> Result<(), tonic::Status> {
    let mut client = KvClient::connect(url.to_owned())
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    client.put(put_request(key, value)).await.map(drop)
}

/// A KV client whose requests carry a `grpc-timeout` of `deadline` over a
/// plain HTTP/2 client: tonic's own channel would also enforce the deadline
/// on the client side and answer `CANCELLED` itself, hiding the server's
/// code.
fn deadline_only_client(
    url: &str,
) -> KvClient<
    hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        tonic::body::Body,
    >,
> {
    let http2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http();
    KvClient::with_origin(http2, url.parse().unwrap())
}

/// A put and a linearizable get sent at once, each with a server-side
/// `deadline`; returns both outcomes' status (code and message).
async fn calls_with_deadline(url: &str, deadline: Duration) -> [(Code, String); 2] {
    let (mut writer, mut reader) = (deadline_only_client(url), deadline_only_client(url));
    let mut put = tonic::Request::new(put_request("k", "v"));
    put.set_timeout(deadline);
    let mut get = tonic::Request::new(RangeRequest {
        key: b"k".to_vec().into(),
        ..RangeRequest::default()
    });
    get.set_timeout(deadline);
    let (put, get) = tokio::join!(writer.put(put), reader.range(get));
    [put.map(drop), get.map(drop)].map(|outcome| match outcome {
        Ok(()) => (Code::Ok, String::new()),
        Err(status) => (status.code(), status.message().to_owned()),
    })
}

async fn get(url: &str, key: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut client = KvClient::connect(url.to_owned())
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    let response = client
        .range(RangeRequest {
            key: key.as_bytes().to_vec().into(),
            ..RangeRequest::default()
        })
        .await?
        .into_inner();
    Ok(response
        .kvs
        .first()
        .map(|kv| kv.value.to_vec())
        .unwrap_or_default())
}

async fn early_client_is_held_until_ready(flavor: Flavor) {
    let name = flavor.name();
    let mut cluster = Cluster::start(flavor, 3).unwrap();
    let url = cluster.members()[0].client_url.clone();
    put(&url, "k", "v").await.unwrap();
    cluster.kill_all();
    // Alone, member 0 replays its log but cannot elect a leader: not ready.
    cluster.launch(0).unwrap();
    let addr = socket_addr(&url);
    wait_accepting(addr, name);
    let stop = Arc::new(AtomicBool::new(false));
    let refusals = count_refusals(addr, stop.clone());
    let held = tokio::spawn({
        let url = url.clone();
        async move { tokio::time::timeout(READY_TIMEOUT, get(&url, "k")).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !held.is_finished(),
        "{name}: a member without a leader answered a read"
    );
    cluster.launch(1).unwrap();
    cluster.launch(2).unwrap();
    let answer = held.await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let refused = refusals.join().unwrap();
    let value = match answer {
        Ok(Ok(value)) => value,
        other => panic!(
            "{name}: the held read failed: {other:?}\n{}",
            cluster.logs()
        ),
    };
    assert_eq!(value, b"v", "{name}");
    assert_eq!(
        refused, 0,
        "{name}: connections refused while the member was starting"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_connects_before_the_member_is_ready_is_served_once_it_is() {
    if !support::require_etcd("member_ready") {
        return;
    }
    early_client_is_held_until_ready(Flavor::Etcd).await;
    early_client_is_held_until_ready(Flavor::Keel).await;
}

/// Pauses the leader and sends a put to a follower; returns the cluster
/// (leader still paused), the leader's index and the follower's URL.
async fn stall_behind_a_paused_leader(flavor: Flavor) -> (Cluster, usize, String) {
    let cluster = Cluster::start(flavor, 3).unwrap();
    let leader = leader(&cluster).await;
    let follower = (leader + 1) % 3;
    let url = cluster.members()[follower].client_url.clone();
    put(&url, "warm", "up").await.unwrap();
    cluster.pause(leader).unwrap();
    (cluster, leader, url)
}

/// The member id `url`'s member reports for itself (0: no answer).
async fn own_id(url: &str) -> u64 {
    let mut client = support::client::connect(vec![url.to_owned()]).await;
    let status = client.status().await;
    status.map_or(0, |status| status.header().map_or(0, |h| h.member_id()))
}

/// The leader member `url` names in Maintenance.Status (0: none, or no
/// answer).
async fn named_leader(url: &str) -> u64 {
    let mut client = support::client::connect(vec![url.to_owned()]).await;
    client.status().await.map_or(0, |status| status.leader())
}

/// Attempts at [`stalled_request_codes`] before the test gives up.
const STALL_ATTEMPTS: usize = 3;

/// The outcomes of a put and a read sent to a follower while the leader is
/// paused. The calls count only if the follower named the paused member
/// as leader before and after them: a busy machine may move leadership
/// before the pause (the calls then succeed), and that run is repeated.
async fn stalled_request_codes(flavor: Flavor) -> [(Code, String); 2] {
    for attempt in 1..=STALL_ATTEMPTS {
        let (cluster, leader, url) = stall_behind_a_paused_leader(flavor).await;
        let before = named_leader(&url).await;
        let outcomes = calls_with_deadline(&url, SHORT_DEADLINE).await;
        let after = named_leader(&url).await;
        cluster.resume(leader).unwrap();
        let paused = own_id(&cluster.members()[leader].client_url).await;
        if paused != 0 && before == paused && after == paused {
            return outcomes;
        }
        eprintln!(
            "{}: the follower named {before:x} then {after:x}, the paused member is {paused:x} (attempt {attempt})",
            flavor.name()
        );
    }
    panic!(
        "{}: leadership moved in each of {STALL_ATTEMPTS} attempts",
        flavor.name()
    );
}

/// etcd answers a write whose deadline passes while it waits for apply
/// with `etcdserver: request timed out` (`parseProposeCtxErr`), and a
/// linearizable read with "context deadline exceeded": code `UNKNOWN` from
/// etcd 3.4 (grpc-go 1.26 turns a handler's context error into Unknown),
/// `DEADLINE_EXCEEDED` from etcd 3.5 on (grpc-go's `FromContextError`).
/// keel answers as etcd 3.5 does: clients map that code to a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_that_passes_behind_a_paused_leader_is_answered_as_etcd_answers_it() {
    if !support::require_etcd("member_ready") {
        return;
    }
    let etcd = stalled_request_codes(Flavor::Etcd).await;
    let keel = stalled_request_codes(Flavor::Keel).await;
    let write = (
        Code::Unavailable,
        "etcdserver: request timed out".to_owned(),
    );
    let read = (
        Code::DeadlineExceeded,
        "context deadline exceeded".to_owned(),
    );
    assert_eq!(etcd[0], write, "etcd's write");
    assert!(
        matches!(etcd[1].0, Code::Unknown | Code::DeadlineExceeded) && etcd[1].1 == read.1,
        "etcd's read: {:?}",
        etcd[1]
    );
    assert_eq!(keel, [write, read], "keel");
}

async fn killed_leader_status(flavor: Flavor) -> tonic::Status {
    let (mut cluster, leader, url) = stall_behind_a_paused_leader(flavor).await;
    let pending = tokio::spawn(async move { put(&url, "k", "v").await });
    // The put reaches the follower and waits on the paused leader; the
    // election that replaces the leader takes at least an election timeout.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.kill(leader);
    let outcome = tokio::time::timeout(READY_TIMEOUT, pending).await;
    match outcome {
        Ok(Ok(Err(status))) => status,
        other => panic!("{}: expected an error, got {other:?}", flavor.name()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waiting_on_a_killed_leader_is_unavailable() {
    if !support::require_etcd("member_ready") {
        return;
    }
    for flavor in [Flavor::Etcd, Flavor::Keel] {
        let status = killed_leader_status(flavor).await;
        let name = flavor.name();
        assert_eq!(status.code(), Code::Unavailable, "{name}: {status:?}");
        assert!(
            status.message().starts_with("etcdserver: "),
            "{name}: {status:?}"
        );
    }
}
