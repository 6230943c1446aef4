//! One run of a scenario inside the current madsim runtime: start the
//! cluster, run the workload under the nemesis (safety phase), heal and
//! require progress (liveness phase), then check the history and the
//! members' stores.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keel_jepsen::{
    CommittedWrite, History, Op, Outcome, Ret, Verdict, WatchEventKind, WatchLog, check_leases,
    check_linearizable, check_watches,
};
use madsim::runtime::{Handle, NodeHandle};

use crate::bank::{SharedBankLog, bank_client, check_bank};
use crate::checks::{commit_within, hashes_agree};
use crate::cluster::Cluster;
use crate::compaction::{SharedCompactionLog, compaction_client};
use crate::lease_client::{SharedLeaseLogs, lease_client};
use crate::lock_client::{SharedHolds, check_holds, lock_client};
use crate::membership::Membership;
use crate::monitor::watch_leaders;
use crate::nemesis::Nemesis;
use crate::options::RunOptions;
use crate::report::{Fnv, RunReport};
use crate::scenario::Scenario;
use crate::sim_log::SharedLog;
use crate::watcher::{SharedWatchLog, WatcherLog, new_log, watch};
use crate::workload::{ClientContext, HISTORY_OPERATIONS_MAX, Workload, client, final_reads, lock};

/// Process id of the liveness write's client.
const LIVENESS_PROCESS: u64 = 1_000;
/// Process id of the final reads.
const FINAL_READS_PROCESS: u64 = 1_001;
/// How long the first election may take.
const FIRST_LEADER_BOUND_MS: u64 = 10_000;

/// Runs `scenario` with `options` in the current madsim runtime (its seed
/// drives every choice) and reports what the checks found.
pub async fn run_scenario(scenario: Scenario, options: RunOptions) -> RunReport {
    let seed = Handle::current().seed();
    // No message faults left over from an earlier run on this thread.
    keel_server::transport::sim_faults::set_message_faults(Default::default(), 0);
    let log = SharedLog::new();
    let mut failures = Vec::new();
    let mut cluster = Cluster::start(scenario, seed, &log);
    log.push(match scenario.spare_hosts() {
        0 => format!("{} members started; scenario {scenario}", cluster.size()),
        spare => format!(
            "{} members started, {spare} spare hosts; scenario {scenario}",
            scenario.members()
        ),
    });
    let stop_monitor = Arc::new(AtomicBool::new(false));
    let monitor = cluster.control.spawn(watch_leaders(
        cluster.size(),
        log.clone(),
        stop_monitor.clone(),
    ));
    if !first_leader(&mut cluster).await {
        failures.push(format!(
            "no leader within {FIRST_LEADER_BOUND_MS} ms of start"
        ));
    }
    // Clients pick among every host: spare and removed ones refuse
    // connections, as a departed etcd member's endpoint would.
    let workload = Workload {
        processes: options.processes,
        keys: options.keys,
        members: cluster.size(),
        timeout_ms: options.request_timeout_ms,
    };
    let context = ClientContext {
        history: Arc::new(Mutex::new(History::new(HISTORY_OPERATIONS_MAX))),
        log: log.clone(),
        stop: Arc::new(AtomicBool::new(false)),
    };
    let clients = client_host();
    let tasks: Vec<_> = (0..workload.processes)
        .map(|p| clients.spawn(client(p, workload, context.clone())))
        .collect();
    let watch_logs: Vec<SharedWatchLog> = (0..u64::from(workload.keys) * WATCHERS_PER_KEY)
        .map(|w| new_log(w, &format!("r{}", w / WATCHERS_PER_KEY)))
        .collect();
    let watchers: Vec<_> = watch_logs
        .iter()
        .map(|log| clients.spawn(watch(workload.members, log.clone(), context.stop.clone())))
        .collect();
    let lease_logs = SharedLeaseLogs::default();
    let leases: Vec<_> = (0..LEASE_CLIENTS)
        .map(|client| {
            let (logs, stop) = (lease_logs.clone(), context.stop.clone());
            clients.spawn(lease_client(
                client,
                workload.members,
                log.clone(),
                logs,
                stop,
            ))
        })
        .collect();
    let side = SideWorkloads::default();
    let side_tasks = side.spawn(
        &clients,
        workload.members,
        options.side_workloads,
        options.lock_clients,
        &log,
        &context.stop,
    );
    log.push(format!(
        "safety phase: {} ms of faults",
        options.safety_phase_ms
    ));
    let mut membership = scenario.changes_membership().then(|| {
        let reuse = options.reuse_member_addresses;
        Membership::new(scenario.members(), reuse, log.clone())
    });
    Nemesis::new(scenario.faults(), log.clone())
        .run(&mut cluster, options.safety_phase_ms, membership.as_mut())
        .await;
    context.stop.store(true, Ordering::Relaxed);
    for task in tasks
        .into_iter()
        .chain(watchers)
        .chain(leases)
        .chain(side_tasks)
    {
        let _ = task.await;
    }
    let watched: usize = watch_logs
        .iter()
        .map(|log| log.lock().unwrap_or_else(PoisonError::into_inner).events())
        .sum();
    log.push(format!(
        "{} watchers recorded {watched} events",
        watch_logs.len()
    ));
    log.push("liveness phase: every fault healed, clients stopped");
    let liveness = clients
        .spawn(commit_within(
            context.clone(),
            LIVENESS_PROCESS,
            cluster.size(),
            options.liveness_bound_ms,
        ))
        .await;
    match liveness {
        Ok(Ok((elapsed_ms, revision))) => {
            log.push(format!(
                "liveness: write committed at revision {revision} after {elapsed_ms} ms"
            ));
            let members = match membership.as_mut() {
                Some(membership) => {
                    let settled = membership
                        .settle(&mut cluster, options.liveness_bound_ms)
                        .await;
                    log.push(format!(
                        "membership: {} changes acknowledged; settled: {settled:?}",
                        membership.acknowledged()
                    ));
                    settled.unwrap_or_else(|failure| {
                        failures.push(failure);
                        cluster.members()
                    })
                }
                None => cluster.members(),
            };
            clients
                .spawn(final_reads(
                    FINAL_READS_PROCESS,
                    workload,
                    context.clone(),
                    members.clone(),
                    20,
                ))
                .await
                .ok();
            let hashes = hashes_agree(members, revision, options.liveness_bound_ms);
            match cluster.control.spawn(hashes).await {
                Ok(found) => failures.extend(found),
                Err(_) => failures.push("hash: the checking task ended abnormally".into()),
            }
        }
        Ok(Err(failure)) => {
            failures.push(failure);
            for (index, status) in cluster.statuses().await {
                log.push(format!("after the liveness bound: m{index} {status:?}"));
            }
        }
        Err(_) => failures.push("liveness: the writer task ended abnormally".into()),
    }
    stop_monitor.store(true, Ordering::Relaxed);
    let _ = monitor.await;
    let history = lock(&context.history).clone();
    failures.extend(check_watch_logs(&watch_logs, &history, &side.compactions));
    failures.extend(side.check(&log));
    failures.extend(check_lease_logs(&lease_logs, &log));
    finish(scenario, seed, options, &history, failures, &log)
}

/// Watchers per register key (two, so that their agreement is checked).
const WATCHERS_PER_KEY: u64 = 2;
/// Most watch violations a report lists.
const WATCH_VIOLATIONS_SHOWN: usize = 5;

/// Checks the watchers' logs against the acknowledged writes of `history`
/// (each write's response carried its revision), segment by segment (a
/// compacted cancel starts a new one), and their compacted cancels
/// against the compactions asked for; returns the failures.
fn check_watch_logs(
    logs: &[SharedWatchLog],
    history: &History,
    compactions: &SharedCompactionLog,
) -> Vec<String> {
    let compacted_max = compactions
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .requested_max;
    let committed: Vec<CommittedWrite> = history
        .operations()
        .iter()
        .filter_map(
            |operation| match (&operation.op, operation.effective_outcome()) {
                (
                    Op::Write { key, value },
                    Outcome::Ok(Ret::Write {
                        revision: Some(revision),
                    }),
                ) => Some(CommittedWrite {
                    revision: *revision,
                    key: key.clone(),
                    kind: WatchEventKind::Put(*value),
                }),
                _ => None,
            },
        )
        .collect();
    let watchers: Vec<WatcherLog> = logs
        .iter()
        .map(|log| log.lock().unwrap_or_else(PoisonError::into_inner).clone())
        .collect();
    let segments: Vec<WatchLog> = watchers
        .iter()
        .flat_map(|w| w.segments.iter().cloned())
        .collect();
    let mut violations: Vec<String> = check_watches(&segments, &committed)
        .iter()
        .map(|v| v.to_string())
        .collect();
    violations.extend(
        watchers
            .iter()
            .flat_map(|w| w.compaction_violations(compacted_max)),
    );
    let shown = violations.iter().take(WATCH_VIOLATIONS_SHOWN);
    let mut failures: Vec<String> = shown.map(|v| format!("watch: {v}")).collect();
    if violations.len() > WATCH_VIOLATIONS_SHOWN {
        failures.push(format!("watch: {} violations in all", violations.len()));
    }
    failures
}

/// Bank clients (multi-key transactions).
const BANK_CLIENTS: u64 = 2;
/// Most lock overlaps a report lists.
const LOCK_VIOLATIONS_SHOWN: usize = 5;

/// The workloads beside the registers: bank transfers in multi-key txns,
/// compactions with their boundary checks, and the lease-based lock.
#[derive(Clone, Default)]
struct SideWorkloads {
    bank: SharedBankLog,
    compactions: SharedCompactionLog,
    holds: SharedHolds,
}

impl SideWorkloads {
    /// Starts every side workload's clients on `host`, through `members`
    /// members, until `stop`: bank and compaction clients if
    /// `side_workloads`, and `lock_clients` lock clients.
    fn spawn(
        &self,
        host: &NodeHandle,
        members: u8,
        side_workloads: bool,
        lock_clients: usize,
        log: &SharedLog,
        stop: &Arc<AtomicBool>,
    ) -> Vec<madsim::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        if side_workloads {
            for _ in 0..BANK_CLIENTS {
                tasks.push(host.spawn(bank_client(members, self.bank.clone(), stop.clone())));
            }
            let compactions = self.compactions.clone();
            tasks.push(host.spawn(compaction_client(members, compactions, stop.clone())));
        }
        for client in 0..lock_clients {
            let (holds, stop) = (self.holds.clone(), stop.clone());
            tasks.push(host.spawn(lock_client(client, members, log.clone(), holds, stop)));
        }
        tasks
    }

    /// Checks the bank, the compaction boundaries and the lock holds; logs
    /// their figures; returns the failures.
    fn check(&self, log: &SharedLog) -> Vec<String> {
        let bank = self
            .bank
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        log.push(format!(
            "bank check: {} reads; transfers {} applied, {} refused, {} unknown",
            bank.reads.len(),
            bank.transfers_applied,
            bank.transfers_refused,
            bank.transfers_unknown
        ));
        let mut failures = check_bank(&bank);
        let compactions = self
            .compactions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        log.push(format!(
            "compaction check: {} compactions acknowledged (highest asked {}), {} boundaries checked",
            compactions.acknowledged.len(),
            compactions.requested_max,
            compactions.boundaries_checked
        ));
        failures.extend(compactions.violations.iter().cloned());
        let holds = self
            .holds
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let overlaps = check_holds(&holds);
        log.push(format!(
            "lock check: {} holds; {} overlaps explained by lease expiry, {} not",
            holds.len(),
            overlaps.explained,
            overlaps.unexplained.len()
        ));
        let count = overlaps.unexplained.len();
        failures.extend(overlaps.unexplained.into_iter().take(LOCK_VIOLATIONS_SHOWN));
        if count > LOCK_VIOLATIONS_SHOWN {
            failures.push(format!("lock: {count} unexplained overlaps in all"));
        }
        failures
    }
}

/// Clients running the lease workload.
const LEASE_CLIENTS: usize = 2;
/// Most early lease expiries a report lists.
const LEASE_VIOLATIONS_SHOWN: usize = 5;

/// Checks what the lease client saw (`keel-jepsen`'s lease check); logs
/// how many leases it checked; returns the failures.
fn check_lease_logs(logs: &SharedLeaseLogs, log: &SharedLog) -> Vec<String> {
    let logs = logs.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let reads: usize = logs.iter().map(|lease| lease.reads.len()).sum();
    log.push(format!(
        "lease check: {} leases, {reads} reads of their keys",
        logs.len()
    ));
    let violations = check_leases(&logs);
    let shown = violations.iter().take(LEASE_VIOLATIONS_SHOWN);
    let mut failures: Vec<String> = shown.map(|v| format!("lease: {v}")).collect();
    if violations.len() > LEASE_VIOLATIONS_SHOWN {
        failures.push(format!("lease: {} early expiries in all", violations.len()));
    }
    failures
}

/// Builds the report: runs the linearizability check on `history`.
fn finish(
    scenario: Scenario,
    seed: u64,
    options: RunOptions,
    history: &History,
    mut failures: Vec<String>,
    log: &SharedLog,
) -> RunReport {
    let mut notes = Vec::new();
    let operations_checked = match check_linearizable(history, options.states_max) {
        Verdict::Linearizable { operations, .. } => operations,
        Verdict::NotLinearizable(failure) => {
            failures.push(format!("linearizability: {failure}"));
            0
        }
        Verdict::Unknown { key, states } => {
            notes.push(format!(
                "linearizability of key {key:?} undecided after {states} states"
            ));
            0
        }
    };
    RunReport {
        scenario,
        seed,
        options,
        simulated_ms: log.now_ms(),
        operations_checked,
        outcomes: history.outcome_counts(),
        history_digest: history_digest(history),
        failures,
        notes,
        events: log.snapshot(),
    }
}

/// Waits until some member leads; false if none does within the bound.
async fn first_leader(cluster: &mut Cluster) -> bool {
    let deadline = madsim::time::Instant::now() + Duration::from_millis(FIRST_LEADER_BOUND_MS);
    while madsim::time::Instant::now() < deadline {
        if cluster.leader().await.is_some() {
            return true;
        }
        madsim::time::sleep(Duration::from_millis(200)).await;
    }
    false
}

/// The host the client processes run on (`10.0.1.1`).
fn client_host() -> NodeHandle {
    Handle::current()
        .create_node()
        .name("clients")
        .ip(IpAddr::from([10, 0, 1, 1]))
        .build()
}

/// FNV-1a over the history's operations as `Debug` prints them.
fn history_digest(history: &History) -> u64 {
    use std::hash::Hasher;
    let mut hasher = Fnv::default();
    for operation in history.operations() {
        hasher.write(format!("{operation:?}").as_bytes());
    }
    hasher.finish()
}
