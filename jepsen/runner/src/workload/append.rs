//! The `append` workload (Jepsen's list-append, as its etcd test runs it):
//! each transaction reads some keys and appends unique elements to others;
//! a key's value is its list, comma-separated decimal elements. A
//! transaction is one read Txn of its keys (values and mod_revisions), then,
//! when it appends, one write Txn that puts the new lists only if every key
//! it touched still has the mod_revision it read (etcd's optimistic
//! read-modify-write). keel-jepsen's [`check_append`] then checks the
//! history for strict serializability, Elle-style.
//!
//! Outcomes: the read Txn failing, or the write Txn's compare failing, is
//! `fail` (nothing was written); a failed or timed-out write Txn is
//! `unknown` (unless its connection could not be opened).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, Txn as EtcdTxn, TxnOp, TxnOpResponse};
use keel_jepsen::append::{Element, Mop, Txn, TxnOutcome};
use serde_json::{Value as Json, json};

use crate::client::connect;
use crate::recorder::Recorder;

/// Micro-operations per transaction: 1 to this many.
const MOPS_MAX: u64 = 4;
/// Keys one final read Txn reads (etcd's `--max-txn-ops` is 128).
const FINAL_READ_KEYS_MAX: usize = 64;
/// The error tonic reports when the TCP connection could not be opened.
const CONNECT_FAILED: &str = "tcp connect error";
/// Pause after a failed connect or transaction, in milliseconds.
const RETRY_PAUSE_MS: u64 = 100;
/// Process ids of the final reads start here.
const FINAL_READ_PROCESS_BASE: u64 = 1 << 40;

/// The workload's settings.
#[derive(Debug, Clone)]
pub struct AppendConfig {
    /// Client URL of every member; client `c` uses `urls[c % len]`.
    pub urls: Vec<String>,
    /// Concurrent clients.
    pub concurrency: usize,
    /// Prefix of every key (unique per run).
    pub key_prefix: String,
    /// Keys in use at the same time.
    pub keys: usize,
    /// Transactions per key before the key set is retired for fresh keys
    /// (keeps the lists short).
    pub txns_per_key: usize,
    /// Per-request timeout, in milliseconds.
    pub op_timeout_ms: u64,
}

/// One recorded transaction and what the history file adds to it.
#[derive(Debug, Clone)]
pub struct TxnRecord {
    /// The transaction as the checker sees it.
    pub txn: Txn,
    /// Index of the member it went to.
    pub member: usize,
    /// The error that ended it, if any.
    pub error: Option<String>,
    /// When the client stopped waiting for it (its completion, or when
    /// its outcome became unknown), nanoseconds since the run started.
    pub ended_ns: u64,
}

/// The bounded, shared list of transactions.
#[derive(Debug)]
pub struct TxnLog {
    records: Mutex<Vec<TxnRecord>>,
    records_max: usize,
}

impl TxnLog {
    /// An empty log holding at most `records_max` transactions.
    pub fn new(records_max: usize) -> TxnLog {
        TxnLog {
            records: Mutex::new(Vec::new()),
            records_max,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<TxnRecord>> {
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `record` (its id becomes its index); `false` when full.
    fn push(&self, mut record: TxnRecord) -> bool {
        let mut records = self.lock();
        if records.len() >= self.records_max {
            return false;
        }
        record.txn.id = records.len();
        records.push(record);
        true
    }

    /// A copy of every record.
    pub fn records(&self) -> Vec<TxnRecord> {
        self.lock().clone()
    }
}

/// What the run leaves to check: the log and every key used.
#[derive(Debug)]
pub struct AppendOutput {
    /// Every transaction.
    pub log: Arc<TxnLog>,
    /// Every key the workload may have touched.
    pub keys: Vec<String>,
}

struct Shared {
    config: AppendConfig,
    recorder: Arc<Recorder>,
    log: Arc<TxnLog>,
    txns: AtomicU64,
    elements: AtomicU64,
    deadline: Instant,
}

/// Runs the clients until `deadline`; at most `records_max` transactions.
pub async fn run(
    config: AppendConfig,
    recorder: Arc<Recorder>,
    deadline: Instant,
    records_max: usize,
) -> AppendOutput {
    let clients = config.concurrency;
    let shared = Arc::new(Shared {
        config,
        recorder,
        log: Arc::new(TxnLog::new(records_max)),
        txns: AtomicU64::new(0),
        elements: AtomicU64::new(1),
        deadline,
    });
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(client_loop(shared.clone(), c)))
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let generations = shared.txns.load(Ordering::Relaxed) / per_generation(&shared.config) + 1;
    let keys = (0..generations * shared.config.keys.max(1) as u64)
        .map(|k| format!("{}{k}", shared.config.key_prefix))
        .collect();
    AppendOutput {
        log: shared.log.clone(),
        keys,
    }
}

fn per_generation(config: &AppendConfig) -> u64 {
    (config.keys.max(1) * config.txns_per_key.max(1)) as u64
}

/// A random transaction (transaction number `n` picks the key set).
fn random_mops(shared: &Shared, n: u64) -> Vec<Mop> {
    let keys = shared.config.keys.max(1) as u64;
    let base = n / per_generation(&shared.config) * keys;
    (0..fastrand::u64(1..=MOPS_MAX))
        .map(|_| {
            let key = format!(
                "{}{}",
                shared.config.key_prefix,
                base + fastrand::u64(0..keys)
            );
            match fastrand::bool() {
                true => Mop::append(&key, shared.elements.fetch_add(1, Ordering::Relaxed)),
                false => Mop::read(&key, None),
            }
        })
        .collect()
}

async fn client_loop(shared: Arc<Shared>, c: usize) {
    let member = c % shared.config.urls.len();
    let url = shared.config.urls[member].clone();
    let mut process = c as u64;
    let mut client: Option<Client> = None;
    while Instant::now() < shared.deadline {
        if client.is_none() {
            client = connect(&url, shared.config.op_timeout_ms).await.ok();
        }
        let Some(connected) = client.as_mut() else {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            continue;
        };
        let n = shared.txns.fetch_add(1, Ordering::Relaxed);
        let mops = random_mops(&shared, n);
        let invoke_ns = shared.recorder.now_ns();
        let (outcome, mops, error) = execute(connected, mops, shared.config.op_timeout_ms).await;
        let ended_ns = shared.recorder.now_ns();
        let complete_ns = (outcome != TxnOutcome::Unknown).then_some(ended_ns);
        let txn = Txn {
            id: 0,
            process,
            mops,
            invoke_ns,
            complete_ns,
            outcome,
        };
        if !shared.log.push(TxnRecord {
            txn,
            member,
            error,
            ended_ns,
        }) {
            return;
        }
        if outcome == TxnOutcome::Unknown {
            // One transaction in flight per process (Jepsen's rule).
            process += shared.config.concurrency as u64;
            client = None;
        }
        if outcome != TxnOutcome::Ok {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
        }
    }
}

/// A key's list and its mod_revision (0: absent).
type Observed = BTreeMap<String, (Vec<Element>, i64)>;

/// Runs `mops` as one transaction; returns its outcome, the steps with
/// the values read (when ok) and the error.
pub async fn execute(
    client: &mut Client,
    mut mops: Vec<Mop>,
    timeout_ms: u64,
) -> (TxnOutcome, Vec<Mop>, Option<String>) {
    let timeout = Duration::from_millis(timeout_ms);
    let keys: Vec<String> = {
        let mut keys: Vec<String> = mops.iter().map(|m| m.key().to_owned()).collect();
        keys.sort();
        keys.dedup();
        keys
    };
    let observed = match tokio::time::timeout(timeout, read_keys(client, &keys)).await {
        Ok(Ok(observed)) => observed,
        Ok(Err(e)) => return (TxnOutcome::Fail, mops, Some(e)),
        Err(_) => {
            return (
                TxnOutcome::Fail,
                mops,
                Some(format!("read timed out after {timeout_ms} ms")),
            );
        }
    };
    let lists = apply(&mut mops, &observed);
    if lists.is_empty() {
        return (TxnOutcome::Ok, mops, None);
    }
    let outcome = match tokio::time::timeout(timeout, write_lists(client, &observed, &lists)).await
    {
        Ok(Ok(true)) => (TxnOutcome::Ok, None),
        Ok(Ok(false)) => (
            TxnOutcome::Fail,
            Some("conflict: a key changed since it was read".into()),
        ),
        Ok(Err(e)) if e.contains(CONNECT_FAILED) => (TxnOutcome::Fail, Some(e)),
        Ok(Err(e)) => (TxnOutcome::Unknown, Some(e)),
        Err(_) => (
            TxnOutcome::Unknown,
            Some(format!("write timed out after {timeout_ms} ms")),
        ),
    };
    if outcome.0 != TxnOutcome::Ok {
        clear_reads(&mut mops);
    }
    (outcome.0, mops, outcome.1)
}

fn clear_reads(mops: &mut [Mop]) {
    for mop in mops {
        if let Mop::Read { value, .. } = mop {
            *value = None;
        }
    }
}

/// Runs the steps on the lists read: fills the reads, returns the new list
/// of every key appended to.
fn apply(mops: &mut [Mop], observed: &Observed) -> BTreeMap<String, Vec<Element>> {
    let mut current: BTreeMap<String, Vec<Element>> = observed
        .iter()
        .map(|(k, (list, _))| (k.clone(), list.clone()))
        .collect();
    let mut written = BTreeMap::new();
    for mop in mops {
        match mop {
            Mop::Append { key, element } => {
                let list = current.entry(key.clone()).or_default();
                list.push(*element);
                written.insert(key.clone(), list.clone());
            }
            Mop::Read { key, value } => {
                *value = Some(current.get(key).cloned().unwrap_or_default())
            }
        }
    }
    written
}

/// Parses a list value: comma-separated decimal elements, empty for none.
fn parse_list(bytes: &[u8]) -> Result<Vec<Element>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| format!("value {bytes:?} is not UTF-8"))?;
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|e| {
            e.parse()
                .map_err(|_| format!("value {text:?} is not a list of numbers"))
        })
        .collect()
}

fn format_list(list: &[Element]) -> String {
    list.iter()
        .map(Element::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads `keys` in one Txn (one revision, linearizable).
async fn read_keys(client: &mut Client, keys: &[String]) -> Result<Observed, String> {
    let gets: Vec<TxnOp> = keys.iter().map(|k| TxnOp::get(k.as_str(), None)).collect();
    let response = client
        .txn(EtcdTxn::new().and_then(gets))
        .await
        .map_err(|e| e.to_string())?;
    let mut observed = Observed::new();
    for (key, op) in keys.iter().zip(response.op_responses()) {
        let TxnOpResponse::Get(get) = op else {
            return Err("a Range in the Txn got another kind of response".into());
        };
        let entry = match get.kvs().first() {
            Some(kv) => (parse_list(kv.value())?, kv.mod_revision()),
            None => (Vec::new(), 0),
        };
        observed.insert(key.clone(), entry);
    }
    match observed.len() == keys.len() {
        true => Ok(observed),
        false => Err(format!(
            "the read Txn answered {} of {} keys",
            observed.len(),
            keys.len()
        )),
    }
}

/// Puts `lists` if every observed key still has its mod_revision; returns
/// the Txn's `succeeded`.
async fn write_lists(
    client: &mut Client,
    observed: &Observed,
    lists: &BTreeMap<String, Vec<Element>>,
) -> Result<bool, String> {
    let compares: Vec<Compare> = observed
        .iter()
        .map(|(k, (_, revision))| Compare::mod_revision(k.as_str(), CompareOp::Equal, *revision))
        .collect();
    let puts: Vec<TxnOp> = lists
        .iter()
        .map(|(k, list)| TxnOp::put(k.as_str(), format_list(list), None))
        .collect();
    let response = client
        .txn(EtcdTxn::new().when(compares).and_then(puts))
        .await
        .map_err(|e| e.to_string())?;
    Ok(response.succeeded())
}

/// Reads every key once after recovery (read-only transactions of at most
/// [`FINAL_READ_KEYS_MAX`] keys), recorded like the clients' transactions.
pub async fn final_reads(
    urls: &[String],
    output: &AppendOutput,
    recorder: &Recorder,
    timeout_ms: u64,
) {
    for (chunk_index, chunk) in output.keys.chunks(FINAL_READ_KEYS_MAX).enumerate() {
        let member = chunk_index % urls.len();
        let Ok(mut client) = connect(&urls[member], timeout_ms).await else {
            continue;
        };
        let mops = chunk.iter().map(|k| Mop::read(k, None)).collect();
        let invoke_ns = recorder.now_ns();
        let (outcome, mops, error) = execute(&mut client, mops, timeout_ms * 2).await;
        let ended_ns = recorder.now_ns();
        let complete_ns = (outcome != TxnOutcome::Unknown).then_some(ended_ns);
        let process = FINAL_READ_PROCESS_BASE + chunk_index as u64;
        let txn = Txn {
            id: 0,
            process,
            mops,
            invoke_ns,
            complete_ns,
            outcome,
        };
        output.log.push(TxnRecord {
            txn,
            member,
            error,
            ended_ns,
        });
    }
}

fn mop_json(mop: &Mop) -> Json {
    match mop {
        Mop::Append { key, element } => json!(["append", key, element]),
        Mop::Read { key, value } => json!(["r", key, value]),
    }
}

/// One line of `history.jsonl`.
pub fn record_json(record: &TxnRecord) -> Json {
    let txn = &record.txn;
    let kind = match txn.outcome {
        TxnOutcome::Ok => "ok",
        TxnOutcome::Fail => "fail",
        TxnOutcome::Unknown => "unknown",
    };
    json!({
        "id": txn.id,
        "process": txn.process,
        "member": record.member,
        "mops": txn.mops.iter().map(mop_json).collect::<Vec<_>>(),
        "type": kind,
        "invoke_ns": txn.invoke_ns,
        "complete_ns": txn.complete_ns,
        "error": record.error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip_and_garbage_is_an_error() {
        assert_eq!(parse_list(b""), Ok(vec![]));
        assert_eq!(
            parse_list(format_list(&[3, 1, 4]).as_bytes()),
            Ok(vec![3, 1, 4])
        );
        assert!(parse_list(b"1,,2").is_err());
        assert!(parse_list(b"\xff").is_err());
    }

    #[test]
    fn steps_see_their_own_appends() {
        let mut observed = Observed::new();
        observed.insert("x".into(), (vec![1], 7));
        let mut mops = vec![
            Mop::read("x", None),
            Mop::append("x", 2),
            Mop::read("x", None),
            Mop::read("y", None),
        ];
        let lists = apply(&mut mops, &observed);
        assert_eq!(mops[0], Mop::read("x", Some(vec![1])));
        assert_eq!(mops[2], Mop::read("x", Some(vec![1, 2])));
        assert_eq!(mops[3], Mop::read("y", Some(vec![])));
        assert_eq!(lists.get("x"), Some(&vec![1, 2]));
        assert_eq!(lists.len(), 1);
    }
}
