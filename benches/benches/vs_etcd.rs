//! keel against etcd over the v3 API, both measured in one run on this
//! machine: a single-member keel and a single-member etcd (Debian's
//! `etcd-server`) started with the same flags on loopback, data in a
//! temporary directory on the same disk, driven by the same client code
//! (the `etcd-client` crate, as applications use it).
//!
//! Workloads, each with 1 and with 64 concurrent clients (tasks sharing 8
//! connections, as `etcd benchmark --clients 64 --conns 8`), every client
//! sending its next request when the previous one is answered:
//!
//! - `put`: a 256-byte value to a random key among 10,000 (16-byte keys);
//! - `get`: a linearizable single-key range of a random key (etcd's
//!   default `get`: a ReadIndex round before the read);
//! - `get-serializable`: the same, served from the member's local state.
//!
//! Drift of a shared disk and CPU is spread over both servers: each
//! configuration runs in [`SLICES`] slices of [`SLICE`] per server,
//! alternating keel and etcd (keel first in even slices, etcd first in odd
//! ones). Printed per configuration: requests/s, the median and 99th
//! percentile latency of each server, and keel's requests/s as a ratio of
//! etcd's. Both servers start with the caller's `ETCD_*` variables removed.
//!
//! Run: `cargo build --release --bin keel && cargo bench -p keel-bench
//! --bench vs_etcd` (about 2 minutes). `KEEL_BIN` picks another keel
//! binary (default: `target/release/keel` of this workspace).

#![allow(missing_docs, clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions, GetOptions};
use keel_bench::mix;
use support::remove_etcd_environment;

mod support;

/// Slices per server and configuration.
const SLICES: usize = 3;
/// Length of one slice.
const SLICE: Duration = Duration::from_secs(3);
/// Keys the workloads choose from.
const KEYS: u64 = 10_000;
/// Bytes of each put's value.
const VALUE_BYTES: usize = 256;
/// Connections the clients of one configuration share.
const CONNECTIONS_MAX: usize = 8;
/// How long a started server may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Put,
    Get,
    GetSerializable,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::Get => "get",
            Workload::GetSerializable => "get-serializable",
        }
    }
}

/// A server process with its data in a temporary directory, killed on drop.
struct Server {
    name: &'static str,
    child: Child,
    client_url: String,
    dir: tempfile::TempDir,
}

impl Server {
    /// Starts `program` with etcd's flags for a single member on free
    /// loopback ports.
    fn start(name: &'static str, program: &PathBuf) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let client_url = format!("http://127.0.0.1:{}", port());
        let peer_url = format!("http://127.0.0.1:{}", port());
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let mut command = Command::new(program);
        remove_etcd_environment(&mut command);
        let child = command
            .args(["--name", "bench", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peer_url])
            .args(["--initial-advertise-peer-urls", &peer_url])
            .args(["--initial-cluster", &format!("bench={peer_url}")])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Server {
            name,
            child,
            client_url,
            dir,
        }
    }

    /// Waits until the server answers a put (it has a leader); panics,
    /// with the server's log, if it exits first or takes longer than
    /// [`START_TIMEOUT`].
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{} exited with {status}:\n{}", self.name, self.log());
            }
            if let Ok(mut client) = connect(&self.client_url).await
                && client.put("ready", "1", None).await.is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{} did not answer within {START_TIMEOUT:?}:\n{}",
            self.name,
            self.log()
        );
    }

    /// The server's output so far (for failure messages).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn connect(url: &str) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(10));
    Client::connect([url], Some(options)).await
}

/// The key of a client's `n`-th request: one of [`KEYS`], pseudo-random.
fn key(n: u64) -> String {
    format!("bench/{:010}", mix(n) % KEYS)
}

/// Writes every key once, so reads find a value.
async fn load(url: &str) {
    let mut client = connect(url).await.unwrap();
    let value = vec![b'v'; VALUE_BYTES];
    for k in 0..KEYS {
        client
            .put(format!("bench/{k:010}"), value.clone(), None)
            .await
            .unwrap();
    }
}

/// One client's loop until `deadline`; returns its latencies.
async fn run_client(
    mut client: Client,
    workload: Workload,
    seed: u64,
    deadline: Instant,
) -> Vec<Duration> {
    let value = vec![b'w'; VALUE_BYTES];
    let mut latencies = Vec::new();
    let mut n = seed << 32;
    while Instant::now() < deadline {
        n += 1;
        // Built before the clock starts: only the request is timed.
        let (key, value) = (key(n), value.clone());
        let start = Instant::now();
        let result = match workload {
            Workload::Put => client.put(key, value, None).await.map(|_| ()),
            Workload::Get => client.get(key, None).await.map(|_| ()),
            Workload::GetSerializable => client
                .get(key, Some(GetOptions::new().with_serializable()))
                .await
                .map(|_| ()),
        };
        result.unwrap();
        latencies.push(start.elapsed());
    }
    latencies
}

/// Runs `clients` clients of `workload` against `url` for one slice;
/// returns every request's latency and the slice's length.
async fn slice(url: &str, workload: Workload, clients: usize) -> (Vec<Duration>, Duration) {
    let mut connections = Vec::new();
    for _ in 0..clients.min(CONNECTIONS_MAX) {
        connections.push(connect(url).await.unwrap());
    }
    let start = Instant::now();
    let deadline = start + SLICE;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let client = connections[c % connections.len()].clone();
            tokio::spawn(run_client(client, workload, c as u64, deadline))
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (latencies, start.elapsed())
}

/// Requests/s, median and 99th percentile latency.
struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn figures(mut latencies: Vec<Duration>, elapsed: Duration) -> Figures {
    latencies.sort();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1));
        latencies.get(i).copied().unwrap_or_default()
    };
    Figures {
        rate: latencies.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn keel_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("KEEL_BIN") {
        return PathBuf::from(path);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let path = target.join("release/keel");
    if !path.exists() {
        panic!(
            "{} not found: run `cargo build --release --bin keel` first, or set KEEL_BIN",
            path.display()
        );
    }
    path
}

async fn compare() {
    let mut servers = [
        Server::start("keel", &keel_binary()),
        Server::start("etcd", &PathBuf::from("etcd")),
    ];
    for server in &mut servers {
        server.wait_ready().await;
        load(&server.client_url).await;
    }
    println!(
        "{:<18} {:>7} | {:>10} {:>8} {:>8} | {:>10} {:>8} {:>8} | keel/etcd",
        "workload", "clients", "keel/s", "p50", "p99", "etcd/s", "p50", "p99"
    );
    for workload in [Workload::Put, Workload::Get, Workload::GetSerializable] {
        for clients in [1, 64] {
            let mut all = [(Vec::new(), Duration::ZERO), (Vec::new(), Duration::ZERO)];
            for s in 0..SLICES {
                // keel first on even slices, etcd first on odd ones.
                let order = if s % 2 == 0 { [0, 1] } else { [1, 0] };
                for i in order {
                    let (latencies, elapsed) =
                        slice(&servers[i].client_url, workload, clients).await;
                    all[i].0.extend(latencies);
                    all[i].1 += elapsed;
                }
            }
            let [keel, etcd] = all.map(|(latencies, elapsed)| figures(latencies, elapsed));
            println!(
                "{:<18} {:>7} | {:>10.0} {:>8.2?} {:>8.2?} | {:>10.0} {:>8.2?} {:>8.2?} | {:.2}x",
                workload.name(),
                clients,
                keel.rate,
                keel.p50,
                keel.p99,
                etcd.rate,
                etcd.p50,
                etcd.p99,
                keel.rate / etcd.rate.max(1e-9)
            );
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes
    // nothing that asks for a run: only run under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        println!("vs_etcd: run with `cargo bench -p keel-bench --bench vs_etcd`");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(compare());
}
