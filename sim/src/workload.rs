//! The register workload: client processes doing reads, writes,
//! compare-and-sets (by Txn on the value) and deletes on a few keys through
//! random members, recording every operation in a shared history.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use keel_jepsen::{History, Op, Outcome, Ret, Value};
use madsim::rand::Rng;

use crate::kv_ops::MemberClient;
use crate::sim_log::SharedLog;

/// The history as the clients share it.
pub type SharedHistory = Arc<Mutex<History>>;

/// Most operations a run's history holds; clients stop at the bound.
pub const HISTORY_OPERATIONS_MAX: usize = 20_000;

/// The workload's shape.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Concurrent client processes.
    pub processes: u64,
    /// Keys `r0..r{keys}`.
    pub keys: u8,
    /// Members the clients pick from.
    pub members: u8,
    /// Per-request timeout: past it the outcome is unknown.
    pub timeout_ms: u64,
}

/// Everything a client task shares with the run.
#[derive(Clone)]
pub struct ClientContext {
    /// The recorded history.
    pub history: SharedHistory,
    /// The run's clock (and log).
    pub log: SharedLog,
    /// Set when the clients must stop.
    pub stop: Arc<AtomicBool>,
}

impl ClientContext {
    /// Runs `op` as `process` through member `index`, recording it.
    /// Returns `None` when the history is full.
    pub async fn record(
        &self,
        client: &mut MemberClient,
        process: u64,
        index: u8,
        op: Op,
        timeout_ms: u64,
    ) -> Option<Outcome> {
        let invoke_ns = self.log.now_ns();
        let id = lock(&self.history)
            .invoke(process, op.clone(), invoke_ns)
            .ok()?;
        let outcome = client.execute(index, &op, timeout_ms).await;
        let complete_ns = self.log.now_ns();
        lock(&self.history)
            .complete(id, outcome.clone(), complete_ns)
            .ok()?;
        Some(outcome)
    }
}

/// Locks the history, whatever a panicking holder left.
pub fn lock(history: &SharedHistory) -> std::sync::MutexGuard<'_, History> {
    history.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How long a client avoids a member after an error through it (as
/// etcd's client balancer fails over to another endpoint).
pub const AVOID_MEMBER_MS: u64 = 2_000;

/// A random member not avoided at `now_ms` (any member if all are).
fn pick_member(avoid_until_ms: &[u64], now_ms: u64) -> u8 {
    let mut rng = madsim::rand::thread_rng();
    let usable: Vec<u8> = (0..avoid_until_ms.len() as u8)
        .filter(|&i| avoid_until_ms[usize::from(i)] <= now_ms)
        .collect();
    if usable.is_empty() {
        rng.gen_range(0..avoid_until_ms.len() as u8)
    } else {
        usable[rng.gen_range(0..usable.len())]
    }
}

/// Client process `process`: random operations until `stop`.
pub async fn client(process: u64, workload: Workload, context: ClientContext) {
    let members = usize::from(workload.members);
    let mut clients: Vec<MemberClient> = (0..members).map(|_| MemberClient::default()).collect();
    let mut avoid_until_ms = vec![0; members];
    let mut seen: Vec<Option<Value>> = vec![None; usize::from(workload.keys)];
    let mut counter: Value = 0;
    while !context.stop.load(Ordering::Relaxed) {
        let index = pick_member(&avoid_until_ms, context.log.now_ms());
        let (key_index, dice) = {
            let mut rng = madsim::rand::thread_rng();
            (rng.gen_range(0..workload.keys), rng.gen_range(0..100u32))
        };
        counter += 1;
        let value = process * 1_000_000 + counter;
        let key = format!("r{key_index}");
        let last = &mut seen[usize::from(key_index)];
        let op = match dice {
            0..40 => Op::read(&key),
            40..70 => Op::write(&key, value),
            70..90 => Op::cas(&key, last.unwrap_or(0), value),
            _ => Op::delete(&key),
        };
        let client = &mut clients[usize::from(index)];
        let Some(outcome) = context
            .record(client, process, index, op, workload.timeout_ms)
            .await
        else {
            return;
        };
        if let Outcome::Ok(Ret::Read(value)) = outcome {
            *last = value;
        }
        if !matches!(outcome, Outcome::Ok(_)) {
            // Fail over to other members for a while, and back off a
            // little, as a client would.
            avoid_until_ms[usize::from(index)] = context.log.now_ms() + AVOID_MEMBER_MS;
            madsim::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// After the faults healed: a read of every key through each of
/// `members` (host indexes), recorded as process `process`; each member is
/// given `attempts` tries.
pub async fn final_reads(
    process: u64,
    workload: Workload,
    context: ClientContext,
    members: Vec<u8>,
    attempts: u32,
) {
    for index in members {
        let mut client = MemberClient::default();
        for key_index in 0..workload.keys {
            let key = format!("r{key_index}");
            for _ in 0..attempts {
                let op = Op::read(&key);
                let outcome = context
                    .record(&mut client, process, index, op, workload.timeout_ms)
                    .await;
                if matches!(outcome, Some(Outcome::Ok(_)) | None) {
                    break;
                }
                madsim::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        }
    }
}
