//! A follower far behind the leader's compacted log catches up from a
//! snapshot streamed into its snapshot directory; when it "crashes" in the
//! middle of the transfer (the connection cut, the member stopped after some
//! chunks were written) the partial file is discarded, the member restarts
//! from its previous durable state, the temporary file a crash leaves is
//! removed at start, and the retried transfer installs the snapshot: the
//! follower then serves the leader's data.
//!
//! Three in-process members on loopback with real data directories; each
//! member's peer URL is a small TCP proxy in front of it, so the test can
//! hold a transfer in the middle (stop forwarding a connection after some
//! bytes) and cut it.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::wait_until;

use keel_kernel::apply::{Request, Response};
use keel_kernel::mvcc::{PutRequest, RangeRequest};
use keel_server::api::ApiLimits;
use keel_server::node::serve::{Listeners, Member};
use keel_server::node::{NodeHandle, NodeSettings, NodeStorage};
use keel_server::replica::{Replica, ServerError};
use keel_server::transport::TransportLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;

/// How long a test waits for anything before it fails.
const PATIENCE: Duration = Duration::from_secs(20);
const CHUNK_BYTES: usize = 64 * 1024;
/// Bytes a connection to the proxied member may carry before the proxy
/// holds it (when holding): about 16 chunks of a multi-MiB snapshot, far
/// more than the Raft stream carries while the member is behind.
const HOLD_AFTER_BYTES: u64 = 1024 * 1024;
/// Value size: 200 keys make a snapshot of about 3 MiB.
const VALUE_BYTES: usize = 16 * 1024;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A TCP proxy in front of one member's peer address. It forwards every
/// connection; when `hold_after` is set, a connection that has carried that
/// many bytes towards the member is held (nothing more forwarded) until
/// [`Proxy::cut_all`] closes every connection.
struct Proxy {
    addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    hold_after: Arc<AtomicU64>,
    held: Arc<AtomicUsize>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(backend: SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Proxy {
            addr: listener.local_addr().unwrap(),
            backend: Arc::new(Mutex::new(backend)),
            hold_after: Arc::new(AtomicU64::new(u64::MAX)),
            held: Arc::new(AtomicUsize::new(0)),
            connections: Arc::new(Mutex::new(Vec::new())),
        };
        let (backend, hold_after, held) = (
            proxy.backend.clone(),
            proxy.hold_after.clone(),
            proxy.held.clone(),
        );
        let connections = proxy.connections.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let to = *backend.lock().unwrap();
                let (hold_after, held) = (hold_after.clone(), held.clone());
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = tokio::net::TcpStream::connect(to).await {
                        forward(inbound, outbound, hold_after, held).await;
                    }
                });
                connections.lock().unwrap().push(task);
            }
        });
        proxy
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn hold_after(&self, bytes: u64) {
        self.hold_after.store(bytes, Ordering::SeqCst);
    }

    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn set_backend(&self, backend: SocketAddr) {
        *self.backend.lock().unwrap() = backend;
    }

    /// Closes every connection (both sockets dropped).
    fn cut_all(&self) {
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
        self.held.store(0, Ordering::SeqCst);
    }
}

async fn forward(
    inbound: tokio::net::TcpStream,
    outbound: tokio::net::TcpStream,
    hold_after: Arc<AtomicU64>,
    held: Arc<AtomicUsize>,
) {
    let (mut from_peer, mut to_peer) = inbound.into_split();
    let (mut from_member, mut to_member) = outbound.into_split();
    let back = async move {
        let _ = tokio::io::copy(&mut from_member, &mut to_peer).await;
    };
    let forth = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut carried = 0u64;
        loop {
            let n = match from_peer.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let limit = hold_after.load(Ordering::SeqCst);
            let room = usize::try_from(limit.saturating_sub(carried)).unwrap_or(usize::MAX);
            let n_sent = n.min(room);
            if to_member.write_all(&buf[..n_sent]).await.is_err() {
                return;
            }
            carried += n_sent as u64;
            if n_sent < n {
                held.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::join!(back, forth);
}

struct Spec {
    settings: NodeSettings,
    dir: tempfile::TempDir,
    client: SocketAddr,
}

async fn specs() -> (Vec<Spec>, Vec<Proxy>) {
    let mut proxies = Vec::new();
    for _ in 0..3 {
        proxies.push(Proxy::start(free_addr()).await);
    }
    let initial_cluster: BTreeMap<String, Vec<String>> = proxies
        .iter()
        .enumerate()
        .map(|(i, proxy)| (format!("m{i}"), vec![proxy.url()]))
        .collect();
    let specs = proxies
        .iter()
        .enumerate()
        .map(|(i, proxy)| {
            let mut settings = NodeSettings::single(&format!("m{i}"), &proxy.url());
            let client = free_addr();
            settings.initial_cluster = initial_cluster.clone();
            settings.client_urls = vec![format!("http://{client}")];
            settings.heartbeat_interval_ms = 50;
            settings.election_timeout_ms = 500;
            settings.snapshot_count = 20;
            settings.snapshot_catchup_entries = 5;
            Spec {
                settings,
                dir: tempfile::tempdir().unwrap(),
                client,
            }
        })
        .collect();
    (specs, proxies)
}

/// Starts the member of `spec` behind `proxy`, on a fresh peer address.
async fn start(spec: &Spec, proxy: &Proxy) -> Member {
    let peer = free_addr();
    proxy.set_backend(peer);
    let storage = NodeStorage::on_disk(spec.dir.path()).unwrap();
    let listeners = Listeners {
        client_addrs: vec![spec.client],
        peer_addrs: vec![peer],
        api_limits: ApiLimits::default(),
        transport_limits: TransportLimits {
            snapshot_chunk_size_bytes: CHUNK_BYTES,
            ..TransportLimits::default()
        },
    };
    Member::start(spec.settings.clone(), storage, listeners)
        .await
        .unwrap()
}

/// The index of the leader all `handles` agree on.
async fn leader(handles: &[NodeHandle]) -> usize {
    let agreed = || {
        let first = handles[0].status().leader_id;
        (first != 0 && handles.iter().all(|h| h.status().leader_id == first))
            .then(|| handles.iter().position(|h| h.member_id() == first))
            .flatten()
    };
    wait_until(PATIENCE, "a leader agreed on", || agreed().is_some()).await;
    agreed().unwrap()
}

async fn put(handle: &NodeHandle, key: &str, value: Vec<u8>) {
    let request = Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value,
        ..PutRequest::default()
    });
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match handle.propose(request.clone(), None).await {
            Ok(applied) => {
                assert!(matches!(applied.result, Ok(Response::Put(_))));
                return;
            }
            Err(ServerError::NoLeader | ServerError::ProposalDropped)
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("put {key}: {err:?}"),
        }
    }
}

/// `key`'s value in `handle`'s applied state (a local, serializable read).
fn local_value(handle: &NodeHandle, key: &str) -> Option<Vec<u8>> {
    handle.with_state(|state| {
        let request = RangeRequest {
            key: key.as_bytes().to_vec(),
            ..RangeRequest::default()
        };
        state
            .range(None, &request)
            .ok()
            .and_then(|r| r.kvs.first().map(|kv| kv.value.to_vec()))
    })
}

fn value(i: usize) -> Vec<u8> {
    vec![(i % 251) as u8; VALUE_BYTES]
}

fn snap_dir(spec: &Spec) -> PathBuf {
    spec.dir.path().join("member/snap")
}

fn files_ending(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The largest temporary file in `dir` and its length, if any.
fn largest_temp(dir: &Path) -> Option<(String, u64)> {
    files_ending(dir, ".tmp")
        .into_iter()
        .filter_map(|name| {
            let len = std::fs::metadata(dir.join(&name)).ok()?.len();
            Some((name, len))
        })
        .max_by_key(|(_, len)| *len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_crashing_mid_transfer_restarts_cleanly_and_installs_on_retry() {
    let (specs, proxies) = specs().await;
    let mut members = Vec::new();
    for (spec, proxy) in specs.iter().zip(&proxies) {
        members.push(Some(start(spec, proxy).await));
    }
    let handles: Vec<NodeHandle> = members.iter().flatten().map(Member::handle).collect();
    let first = leader(&handles).await;
    let lagging = (first + 1) % 3;
    put(&handles[first], "early", b"before the stop".to_vec()).await;
    wait_until(PATIENCE, "the follower applied the early key", || {
        local_value(&handles[lagging], "early").is_some()
    })
    .await;
    members[lagging].take().unwrap().stop().await;
    proxies[lagging].cut_all();
    for i in 0..200 {
        put(&handles[first], &format!("late{i:03}"), value(i)).await;
    }

    // The transfer is held after about 1 MiB; the follower "crashes" then.
    let (spec, proxy) = (&specs[lagging], &proxies[lagging]);
    proxy.hold_after(HOLD_AFTER_BYTES);
    let member = start(spec, proxy).await;
    wait_until(PATIENCE, "a transfer held in the middle", || {
        proxy.held() > 0
    })
    .await;
    wait_until(PATIENCE, "its chunks written to a temporary file", || {
        largest_temp(&snap_dir(spec)).is_some_and(|(_, len)| len > 256 * 1024)
    })
    .await;
    let (temp, _) = largest_temp(&snap_dir(spec)).unwrap();
    let partial = std::fs::read(snap_dir(spec).join(&temp)).unwrap();
    proxy.cut_all();
    member.stop().await;
    // The leader may have retried before the stop, on a connection the
    // proxy holds open, which the stop did not close: cut that one too.
    proxy.cut_all();
    wait_until(PATIENCE, "the abandoned transfer's file removed", || {
        files_ending(&snap_dir(spec), ".tmp").is_empty()
    })
    .await;
    // What a real crash would have left: the partial file, under a name
    // this process's transfers do not use.
    let snapshot_name = &temp[..temp.find(".snap").unwrap() + ".snap".len()];
    let leftover = format!("{snapshot_name}.dead.recv.tmp");
    std::fs::write(snap_dir(spec).join(&leftover), &partial).unwrap();

    // The restart removes the leftover and starts from the durable state:
    // the early key, none of the late ones, no snapshot installed.
    let member = start(spec, proxy).await;
    let handle = member.handle();
    assert!(
        !snap_dir(spec).join(&leftover).exists(),
        "the crash's leftover survived the restart"
    );
    wait_until(PATIENCE, "the early key applied again", || {
        local_value(&handle, "early").as_deref() == Some(&b"before the stop"[..])
    })
    .await;
    assert_eq!(local_value(&handle, "late199"), None);
    assert_eq!(handle.status().snapshots_installed, 0);

    // Once the proxy forwards again, the retried transfer installs.
    wait_until(PATIENCE, "the retried transfer held too", || {
        proxy.held() > 0
    })
    .await;
    proxy.hold_after(u64::MAX);
    proxy.cut_all();
    wait_until(PATIENCE, "the follower serves the leader's data", || {
        local_value(&handle, "late199") == Some(value(199))
    })
    .await;
    assert!(
        handle.status().snapshots_installed >= 1,
        "the follower caught up without installing a snapshot"
    );
    assert_eq!(local_value(&handle, "late000"), Some(value(0)));
    assert!(files_ending(&snap_dir(spec), ".tmp").is_empty());
    assert!(!files_ending(&snap_dir(spec), ".snap").is_empty());
    members[lagging] = Some(member);
    for member in members.into_iter().flatten() {
        member.stop().await;
    }
}
