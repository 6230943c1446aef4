//! The `register` workload: clients read, write and compare-and-set single
//! keys (values 0..5, as Jepsen's etcd register test), a few keys at a
//! time; after `ops_per_key` operations a key is retired for a fresh one,
//! which keeps each key's linearizability search small. Reads are
//! linearizable Ranges; CAS is a Txn comparing the value.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use keel_jepsen::{Op, Outcome, Ret, Value};

use crate::client::connect;
use crate::recorder::Recorder;

/// Values are drawn from 0..VALUES_MAX (few values: CAS often succeeds).
const VALUES_MAX: u64 = 5;
/// The error tonic reports when the TCP connection to the member could not
/// be opened: the request was never sent.
const CONNECT_FAILED: &str = "tcp connect error";
/// Pause after a failed connect or operation, in milliseconds.
const RECONNECT_PAUSE_MS: u64 = 100;

/// The workload's settings.
#[derive(Debug, Clone)]
pub struct RegisterConfig {
    /// Client URL of every member; client `c` uses `urls[c % len]`.
    pub urls: Vec<String>,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Prefix of every key (unique per run: the checker's keys start
    /// absent, also on a cluster that earlier runs wrote to).
    pub key_prefix: String,
    /// Keys in use at the same time.
    pub keys: usize,
    /// Operations per key before it is retired.
    pub ops_per_key: usize,
    /// Per-operation timeout, in milliseconds.
    pub op_timeout_ms: u64,
}

/// Shared by the clients: the operation counter that picks keys.
struct Shared {
    config: RegisterConfig,
    recorder: Arc<Recorder>,
    operations: AtomicU64,
    deadline: Instant,
}

/// Runs the clients until `deadline`; returns every key used.
pub async fn run(
    config: RegisterConfig,
    recorder: Arc<Recorder>,
    deadline: Instant,
) -> Vec<String> {
    let clients = config.concurrency;
    let shared = Arc::new(Shared {
        config,
        recorder,
        operations: AtomicU64::new(0),
        deadline,
    });
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        tasks.push(tokio::spawn(client_loop(shared.clone(), c)));
    }
    for task in tasks {
        let _ = task.await;
    }
    let total = shared.operations.load(Ordering::Relaxed);
    keys_used(&shared.config, total)
}

/// The key of operation number `n`.
fn key_of(config: &RegisterConfig, n: u64) -> String {
    let keys = config.keys.max(1) as u64;
    let per_generation = keys * config.ops_per_key.max(1) as u64;
    let generation = n / per_generation;
    let slot = fastrand::u64(0..keys);
    format!("{}{}", config.key_prefix, generation * keys + slot)
}

fn keys_used(config: &RegisterConfig, operations: u64) -> Vec<String> {
    let keys = config.keys.max(1) as u64;
    let per_generation = keys * config.ops_per_key.max(1) as u64;
    let generations = operations / per_generation + 1;
    (0..generations * keys)
        .map(|k| format!("{}{k}", config.key_prefix))
        .collect()
}

fn random_op(key: &str) -> Op {
    match fastrand::u8(0..3) {
        0 => Op::read(key),
        1 => Op::write(key, fastrand::u64(0..VALUES_MAX)),
        _ => Op::cas(
            key,
            fastrand::u64(0..VALUES_MAX),
            fastrand::u64(0..VALUES_MAX),
        ),
    }
}

async fn client_loop(shared: Arc<Shared>, c: usize) {
    let member = c % shared.config.urls.len();
    let url = shared.config.urls[member].clone();
    let timeout_ms = shared.config.op_timeout_ms;
    // A client whose operation ended unknown continues as a new process
    // (Jepsen's rule: a process has at most one operation in flight).
    let mut process = c as u64;
    let mut client: Option<Client> = None;
    while Instant::now() < shared.deadline {
        if client.is_none() {
            match connect(&url, timeout_ms).await {
                Ok(connected) => client = Some(connected),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
                    continue;
                }
            }
        }
        let Some(connected) = client.as_mut() else {
            continue;
        };
        let n = shared.operations.fetch_add(1, Ordering::Relaxed);
        let op = random_op(&key_of(&shared.config, n));
        let Some(id) = shared.recorder.invoke(process, member, op.clone()) else {
            return; // history full
        };
        let (outcome, error) = execute(connected, &op, timeout_ms).await;
        let failed = !matches!(outcome, Outcome::Ok(_));
        if outcome == Outcome::Unknown {
            process += shared.config.concurrency as u64;
            client = None;
        }
        shared.recorder.complete(id, outcome, error);
        if failed {
            tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
        }
    }
}

/// Executes `op` on `client`, bounded by `timeout_ms`. A read that fails
/// certainly changed nothing (`Fail`), and so did a request whose TCP
/// connection could not even be opened; any other failed or timed-out
/// mutation may have taken effect (`Unknown`).
pub async fn execute(client: &mut Client, op: &Op, timeout_ms: u64) -> (Outcome, Option<String>) {
    let bounded = tokio::time::timeout(Duration::from_millis(timeout_ms), request(client, op));
    let (error, never_sent) = match bounded.await {
        Ok(Ok(ret)) => return (Outcome::Ok(ret), None),
        Ok(Err(e)) => {
            let text = e.to_string();
            let never_sent = text.contains(CONNECT_FAILED);
            (text, never_sent)
        }
        Err(_) => (format!("timed out after {timeout_ms} ms"), false),
    };
    match op.is_mutation() && !never_sent {
        true => (Outcome::Unknown, Some(error)),
        false => (Outcome::Fail, Some(error)),
    }
}

fn parse_value(bytes: &[u8]) -> Result<Value, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("value {bytes:?} is not a decimal number"))
}

async fn request(client: &mut Client, op: &Op) -> Result<Ret, String> {
    match op {
        Op::Read { key } => {
            let response = client
                .get(key.as_str(), None)
                .await
                .map_err(|e| e.to_string())?;
            match response.kvs().first() {
                Some(kv) => Ok(Ret::Read(Some(parse_value(kv.value())?))),
                None => Ok(Ret::Read(None)),
            }
        }
        Op::Write { key, value } => {
            let response = client
                .put(key.as_str(), value.to_string(), None)
                .await
                .map_err(|e| e.to_string())?;
            let revision = response.header().map(|h| h.revision());
            Ok(Ret::Write { revision })
        }
        Op::Cas { key, expected, new } => {
            let txn = Txn::new()
                .when([Compare::value(
                    key.as_str(),
                    CompareOp::Equal,
                    expected.to_string(),
                )])
                .and_then([TxnOp::put(key.as_str(), new.to_string(), None)]);
            let response = client.txn(txn).await.map_err(|e| e.to_string())?;
            Ok(Ret::Cas {
                succeeded: response.succeeded(),
            })
        }
        Op::Delete { key } => {
            let response = client
                .delete(key.as_str(), None)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Ret::Delete {
                deleted: u64::try_from(response.deleted()).unwrap_or(0),
            })
        }
    }
}
