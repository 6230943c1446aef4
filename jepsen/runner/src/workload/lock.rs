//! The `lock` workload: clients take etcd's lease-based lock
//! (`v3lockpb.Lock` with a lease kept alive by the client), hold it for a
//! random time, and unlock. A lease can expire while its holder still
//! believes it holds the lock (its member paused or cut off), and then a
//! second client gets the lock: mutual exclusion fails. Jepsen measured this
//! for etcd; this workload measures it the same way and reports it, it does
//! not hide it.
//!
//! A hold is timed conservatively: from the moment the Lock response
//! arrived to the moment the Unlock was sent, so two holds that overlap in
//! these bounds certainly overlapped.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, LockOptions};
use serde::Serialize;

use crate::client::connect;
use crate::recorder::Recorder;

/// Lease TTL of a lock holder, in seconds.
pub const LEASE_TTL_S: i64 = 2;
/// Longest hold, in milliseconds (longer than the TTL: a holder cut off
/// from its lease outlives it).
const HOLD_MS_MAX: u64 = 3000;
/// How long a Lock call may wait for the lock, in milliseconds.
const LOCK_WAIT_MS: u64 = 5000;
/// Interval between keep-alives, in milliseconds.
const KEEP_ALIVE_INTERVAL_MS: u64 = 500;
/// Bound on the holds recorded.
const HOLDS_MAX: usize = 100_000;
/// Pause after a failed attempt, in milliseconds.
const RETRY_PAUSE_MS: u64 = 100;

/// The workload's settings.
#[derive(Debug, Clone)]
pub struct LockConfig {
    /// Client URL of every member; client `c` uses `urls[c % len]`.
    pub urls: Vec<String>,
    /// Concurrent clients.
    pub concurrency: usize,
    /// The lock's name (unique per run).
    pub name: String,
    /// Timeout of lease and unlock requests, in milliseconds.
    pub op_timeout_ms: u64,
}

/// One time a client held the lock.
#[derive(Debug, Clone, Serialize)]
pub struct Hold {
    /// The client.
    pub client: usize,
    /// The member it talked to.
    pub member: usize,
    /// When the Lock response arrived, nanoseconds since the run started.
    pub acquired_ns: u64,
    /// When the client sent Unlock.
    pub released_ns: u64,
    /// The lease it held the lock with.
    pub lease: i64,
}

/// Runs the clients until `deadline`; returns every hold.
pub async fn run(config: LockConfig, recorder: Arc<Recorder>, deadline: Instant) -> Vec<Hold> {
    let holds = Arc::new(Mutex::new(Vec::new()));
    let config = Arc::new(config);
    let mut tasks = Vec::with_capacity(config.concurrency);
    for c in 0..config.concurrency {
        let task = client_loop(config.clone(), recorder.clone(), holds.clone(), c, deadline);
        tasks.push(tokio::spawn(task));
    }
    for task in tasks {
        let _ = task.await;
    }
    let holds = holds.lock().unwrap_or_else(|e| e.into_inner());
    holds.clone()
}

async fn client_loop(
    config: Arc<LockConfig>,
    recorder: Arc<Recorder>,
    holds: Arc<Mutex<Vec<Hold>>>,
    c: usize,
    deadline: Instant,
) {
    let member = c % config.urls.len();
    while Instant::now() < deadline {
        let Ok(mut client) = connect(&config.urls[member], config.op_timeout_ms).await else {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            continue;
        };
        let Some(hold) = hold_once(&mut client, &config, &recorder, c, member).await else {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            continue;
        };
        let mut holds = holds.lock().unwrap_or_else(|e| e.into_inner());
        if holds.len() >= HOLDS_MAX {
            return;
        }
        holds.push(hold);
    }
}

/// Grants a lease, keeps it alive, takes the lock, holds it, unlocks.
/// `None` when the lock was not acquired.
async fn hold_once(
    client: &mut Client,
    config: &LockConfig,
    recorder: &Recorder,
    c: usize,
    member: usize,
) -> Option<Hold> {
    let timeout = Duration::from_millis(config.op_timeout_ms);
    let grant = tokio::time::timeout(timeout, client.lease_grant(LEASE_TTL_S, None));
    let lease = grant.await.ok()?.ok()?.id();
    let keeper = tokio::spawn(keep_alive(client.clone(), lease));
    let options = LockOptions::new().with_lease(lease);
    let locking = client.lock(config.name.as_str(), Some(options));
    let locked = tokio::time::timeout(Duration::from_millis(LOCK_WAIT_MS), locking).await;
    let hold = match locked {
        Ok(Ok(response)) => {
            let acquired_ns = recorder.now_ns();
            tokio::time::sleep(Duration::from_millis(fastrand::u64(0..HOLD_MS_MAX))).await;
            let released_ns = recorder.now_ns();
            let key = response.key().to_vec();
            let _ = tokio::time::timeout(timeout, client.unlock(key)).await;
            Some(Hold {
                client: c,
                member,
                acquired_ns,
                released_ns,
                lease,
            })
        }
        _ => None,
    };
    keeper.abort();
    let _ = tokio::time::timeout(timeout, client.lease_revoke(lease)).await;
    hold
}

/// Sends a keep-alive for `lease` every interval until aborted; errors
/// (member paused or cut off) are retried on a fresh stream.
async fn keep_alive(mut client: Client, lease: i64) {
    let interval = Duration::from_millis(KEEP_ALIVE_INTERVAL_MS);
    loop {
        if let Ok(Ok((mut keeper, mut stream))) =
            tokio::time::timeout(interval, client.lease_keep_alive(lease)).await
        {
            loop {
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                let answered = tokio::time::timeout(interval, stream.message()).await;
                if !matches!(answered, Ok(Ok(Some(_)))) {
                    break;
                }
                tokio::time::sleep(interval).await;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

/// How often mutual exclusion failed: pairs of holds that overlap, and
/// holds that overlap any other.
#[derive(Debug, Clone, Serialize)]
pub struct LockReport {
    /// Holds recorded.
    pub holds: usize,
    /// Pairs of holds by different clients that overlap in time.
    pub overlapping_pairs: usize,
    /// Holds that overlap at least one other.
    pub holds_overlapping: usize,
    /// `holds_overlapping / holds`, 0 when there are no holds.
    pub overlap_rate: f64,
}

/// Counts overlapping holds (sweep over holds sorted by acquisition).
pub fn check_holds(holds: &[Hold]) -> LockReport {
    let mut sorted: Vec<&Hold> = holds.iter().collect();
    sorted.sort_by_key(|h| h.acquired_ns);
    let mut overlapping = vec![false; sorted.len()];
    let mut pairs = 0;
    for i in 0..sorted.len() {
        for j in i + 1..sorted.len() {
            if sorted[j].acquired_ns >= sorted[i].released_ns {
                break;
            }
            pairs += 1;
            overlapping[i] = true;
            overlapping[j] = true;
        }
    }
    let holds_overlapping = overlapping.iter().filter(|o| **o).count();
    let overlap_rate = match sorted.len() {
        0 => 0.0,
        n => holds_overlapping as f64 / n as f64,
    };
    LockReport {
        holds: sorted.len(),
        overlapping_pairs: pairs,
        holds_overlapping,
        overlap_rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(client: usize, acquired_ns: u64, released_ns: u64) -> Hold {
        Hold {
            client,
            member: 0,
            acquired_ns,
            released_ns,
            lease: 1,
        }
    }

    #[test]
    fn overlapping_holds_are_counted_and_touching_ones_are_not() {
        let holds = [
            hold(1, 0, 10),
            hold(2, 10, 20),
            hold(3, 15, 30),
            hold(1, 40, 50),
        ];
        let report = check_holds(&holds);
        assert_eq!(report.holds, 4);
        assert_eq!(report.overlapping_pairs, 1);
        assert_eq!(report.holds_overlapping, 2);
        assert!((report.overlap_rate - 0.5).abs() < 1e-9);
        assert_eq!(check_holds(&[]).overlap_rate, 0.0);
    }
}
