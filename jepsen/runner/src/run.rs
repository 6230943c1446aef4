//! One test run, start to verdict: set up the cluster (or take
//! `--endpoints`), wait until it is healthy, run the workload and the
//! nemesis side by side for `--time-limit`, heal, wait for recovery, read
//! every key once more, write the history and check it. The whole run is
//! bounded in time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use keel_jepsen::Op;
use serde_json::json;

use crate::check::{self, Validity, WorkloadVerdict};
use crate::cli::{Args, NetworkChoice, ServerKind, WorkloadKind};
use crate::client;
use crate::cluster::{Cluster, ServerProgram};
use crate::member_network::MemberNetwork;
use crate::nemesis::{self, FaultEvent, NemesisPlan};
use crate::network::{self, Network};
use crate::proxy_network::ProxyNetwork;
use crate::recorder::Recorder;
use crate::report::{self, Kind, OpPoint};
use crate::workload::append::{self, AppendConfig, AppendOutput};
use crate::workload::lock::{self, Hold, LockConfig};
use crate::workload::register::{self, RegisterConfig};
use crate::workload::watch::{self, WatchConfig, WatchOutput};

/// Seconds a started cluster may take to become healthy.
const START_TIMEOUT_S: u64 = 60;
/// Seconds the checker may take.
const CHECK_TIMEOUT_S: u64 = 300;
/// Bound on the operations a run records.
const OPERATIONS_MAX: usize = 2_000_000;
/// What a workload leaves to check.
enum WorkloadOutput {
    /// The register workload: every key it used (the history is in the
    /// recorder).
    Register(Vec<String>),
    /// The append workload: its transactions and keys.
    Append(AppendOutput),
    /// The lock workload: every hold.
    Lock(Vec<Hold>),
    /// The watch workload: the watchers' logs and acknowledged writes
    /// (an error when it could not start).
    Watch(Result<WatchOutput, String>),
}

/// Process ids of the final reads start here (clients use small ids).
const FINAL_READ_PROCESS_BASE: u64 = 1 << 40;

/// Runs the test described by `args`. Returns the verdict; errors describe
/// why the run could not produce one (bad arguments, a cluster that never
/// started, the time bound).
pub async fn run(args: Args) -> Result<Validity, String> {
    let plan = NemesisPlan::parse(&args.nemesis)?;
    validate(&args, &plan)?;
    let dir = create_run_dir(&args)?;
    println!("results: {}", dir.display());
    let bound_s = args.time_limit + args.recovery_timeout + START_TIMEOUT_S + CHECK_TIMEOUT_S;
    match tokio::time::timeout(Duration::from_secs(bound_s), run_in(&args, &plan, &dir)).await {
        Ok(result) => result,
        Err(_) => Err(format!("the run exceeded its bound of {bound_s} s")),
    }
}

fn validate(args: &Args, plan: &NemesisPlan) -> Result<(), String> {
    if !args.endpoints.is_empty() && !plan.faults.is_empty() {
        return Err("--endpoints tests a cluster this run did not start: process and network faults are refused (use --nemesis none)".into());
    }
    if args.endpoints.is_empty() && !(1..=9).contains(&args.nodes) {
        return Err(format!("--nodes {} is out of range 1..=9", args.nodes));
    }
    if args.concurrency == 0 || args.time_limit == 0 {
        return Err("--concurrency and --time-limit must be positive".into());
    }
    Ok(())
}

fn create_run_dir(args: &Args) -> Result<PathBuf, String> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let server = match args.endpoints.is_empty() {
        true => args.server.name(),
        false => "endpoints",
    };
    let workload = args.workload.name();
    let name = format!("{server}-{workload}-{seconds}-{}", std::process::id());
    let dir = args.results.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The keel binary: `--keel-bin`, else `keel` next to this executable.
fn keel_binary(args: &Args) -> Result<PathBuf, String> {
    if let Some(path) = &args.keel_bin {
        return Ok(path.clone());
    }
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
    let path = exe.with_file_name("keel");
    match path.exists() {
        true => Ok(path),
        false => Err(format!(
            "no keel binary at {} (build it with `cargo build -p keel-server --bin keel`, or pass --keel-bin)",
            path.display()
        )),
    }
}

/// The member network `--network` asks for, made. Errors: namespaces
/// asked for but not available, a network that cannot be made, or a
/// partition over proxies for etcd (it dials peers from 127.0.0.1 whatever
/// it listens on, so a proxy cannot tell which member a connection is from).
fn member_network(args: &Args, plan: &NemesisPlan) -> Result<MemberNetwork, String> {
    let partitions = plan.needs_network();
    let use_namespaces = match args.network {
        NetworkChoice::Namespaces => true,
        NetworkChoice::Proxy => false,
        NetworkChoice::Auto if !partitions => return Ok(MemberNetwork::Loopback),
        NetworkChoice::Auto => network::namespaces_available(),
    };
    if use_namespaces {
        if !network::namespaces_available() {
            return Err(
                "--network namespaces needs root and iproute2's `ip` (use --network proxy)".into(),
            );
        }
        return Ok(MemberNetwork::Namespaces(Network::create(args.nodes)?));
    }
    if partitions && args.server == ServerKind::Etcd {
        return Err("the partition fault over TCP proxies needs members that dial peers from their own loopback address (keel does, etcd does not): run etcd as root for network namespaces (--network namespaces), or drop partition".into());
    }
    Ok(MemberNetwork::Proxy(ProxyNetwork::create(args.nodes)?))
}

/// Starts the cluster the run tests; `None` with `--endpoints`.
fn start_cluster(args: &Args, plan: &NemesisPlan, dir: &Path) -> Result<Option<Cluster>, String> {
    if !args.endpoints.is_empty() {
        println!("network: external endpoints {}", args.endpoints.join(","));
        return Ok(None);
    }
    let program = match args.server {
        ServerKind::Keel => ServerProgram {
            path: keel_binary(args)?,
            name: "keel",
        },
        ServerKind::Etcd => ServerProgram {
            path: args.etcd_bin.clone(),
            name: "etcd",
        },
    };
    let network = member_network(args, plan)?;
    println!("network: {} ({})", network.name(), network.description());
    let cluster = Cluster::start(program, args.nodes, dir, network)
        .map_err(|e| format!("cannot start {}: {e}", args.server.name()))?;
    Ok(Some(cluster))
}

async fn run_in(args: &Args, plan: &NemesisPlan, dir: &Path) -> Result<Validity, String> {
    let mut cluster = start_cluster(args, plan, dir)?;
    let urls = match &cluster {
        Some(c) => c.client_urls(),
        None => args.endpoints.clone(),
    };
    client::wait_healthy(&urls, Duration::from_secs(START_TIMEOUT_S))
        .await
        .map_err(|e| format!("the cluster never became healthy: {e}"))?;
    println!(
        "cluster healthy: {}; running for {} s",
        urls.join(","),
        args.time_limit
    );
    let recorder = Arc::new(Recorder::new(OPERATIONS_MAX));
    let (output, events) =
        workload_and_nemesis(args, dir, plan, cluster.as_mut(), &urls, &recorder).await;
    let recovery = client::wait_healthy(&urls, Duration::from_secs(args.recovery_timeout)).await;
    if let Err(e) = &recovery {
        println!("recovery: FAILED: {e}");
    }
    match (&recovery, &output) {
        (Ok(()), WorkloadOutput::Register(keys)) => {
            final_reads(&urls, keys, &recorder, args.op_timeout_ms).await;
        }
        (Ok(()), WorkloadOutput::Append(output)) => {
            append::final_reads(&urls, output, &recorder, args.op_timeout_ms).await;
        }
        _ => {}
    }
    let verdict = match &output {
        WorkloadOutput::Register(_) => register_verdict(args, dir, &recorder).await?,
        WorkloadOutput::Append(output) => append_verdict(dir, output).await?,
        WorkloadOutput::Lock(holds) => lock_verdict(dir, holds)?,
        WorkloadOutput::Watch(Ok(output)) => watch_verdict(dir, &recorder, output)?,
        WorkloadOutput::Watch(Err(e)) => {
            return Err(format!("the watch workload could not start: {e}"));
        }
    };
    let network = cluster
        .as_ref()
        .map_or("external endpoints", |c| c.network().name());
    let validity = judge(args, dir, &events, (recovery.is_ok(), network), &verdict)?;
    let title = format!(
        "{} on {} (network: {network}): {} ({})",
        args.workload.name(),
        run_tag(dir),
        validity.word(),
        verdict.summary
    );
    let points = report_points(args, &output, &recorder);
    if let Err(e) = report::write(dir, &title, &points, &events) {
        println!("report: {e}");
    }
    drop(cluster);
    if validity == Validity::Valid && !args.keep_data {
        remove_data_dirs(dir);
    }
    Ok(validity)
}

/// The report's lane of `process`: its client, or one lane after the
/// clients for the final reads.
fn lane(args: &Args, process: u64) -> usize {
    let clients = args.concurrency.max(1) as u64;
    match process >= FINAL_READ_PROCESS_BASE {
        true => clients as usize,
        false => (process % clients) as usize,
    }
}

/// Every operation (append: transaction) as the report draws it.
fn report_points(args: &Args, output: &WorkloadOutput, recorder: &Recorder) -> Vec<OpPoint> {
    if let WorkloadOutput::Append(output) = output {
        return output
            .log
            .records()
            .iter()
            .map(|r| OpPoint {
                lane: lane(args, r.txn.process),
                invoke_ns: r.txn.invoke_ns,
                end_ns: r.ended_ns,
                kind: match r.txn.outcome {
                    keel_jepsen::append::TxnOutcome::Ok => Kind::Ok,
                    keel_jepsen::append::TxnOutcome::Fail => Kind::Fail,
                    keel_jepsen::append::TxnOutcome::Unknown => Kind::Unknown,
                },
                label: r.txn.to_string(),
            })
            .collect();
    }
    let now_ns = recorder.now_ns();
    recorder
        .history()
        .operations()
        .iter()
        .map(|o| OpPoint {
            lane: lane(args, o.process),
            invoke_ns: o.invoke_ns,
            end_ns: o.complete_ns.unwrap_or(now_ns),
            kind: match o.effective_outcome() {
                keel_jepsen::Outcome::Ok(_) => Kind::Ok,
                keel_jepsen::Outcome::Fail => Kind::Fail,
                keel_jepsen::Outcome::Unknown => Kind::Unknown,
            },
            label: o.to_string(),
        })
        .collect()
}

/// The run directory's name: unique per run, it tags the run's keys.
fn run_tag(dir: &Path) -> String {
    dir.file_name()
        .map_or_else(|| "run".into(), |n| n.to_string_lossy().into_owned())
}

async fn workload_and_nemesis(
    args: &Args,
    dir: &Path,
    plan: &NemesisPlan,
    cluster: Option<&mut Cluster>,
    urls: &[String],
    recorder: &Arc<Recorder>,
) -> (WorkloadOutput, Vec<FaultEvent>) {
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let workload = async {
        match args.workload {
            WorkloadKind::Register => {
                let config = RegisterConfig {
                    urls: urls.to_vec(),
                    concurrency: args.concurrency,
                    key_prefix: format!("jepsen/register/{}/", run_tag(dir)),
                    keys: args.keys,
                    ops_per_key: args.ops_per_key,
                    op_timeout_ms: args.op_timeout_ms,
                };
                WorkloadOutput::Register(register::run(config, recorder.clone(), deadline).await)
            }
            WorkloadKind::Append => {
                let config = AppendConfig {
                    urls: urls.to_vec(),
                    concurrency: args.concurrency,
                    key_prefix: format!("jepsen/append/{}/", run_tag(dir)),
                    keys: args.keys,
                    txns_per_key: args.ops_per_key,
                    op_timeout_ms: args.op_timeout_ms,
                };
                let output = append::run(config, recorder.clone(), deadline, OPERATIONS_MAX).await;
                WorkloadOutput::Append(output)
            }
            WorkloadKind::Lock => {
                let config = LockConfig {
                    urls: urls.to_vec(),
                    concurrency: args.concurrency,
                    name: format!("jepsen/lock/{}", run_tag(dir)),
                    op_timeout_ms: args.op_timeout_ms,
                };
                WorkloadOutput::Lock(lock::run(config, recorder.clone(), deadline).await)
            }
            WorkloadKind::Watch => {
                let config = WatchConfig {
                    urls: urls.to_vec(),
                    concurrency: args.concurrency,
                    prefix: format!("jepsen/watch/{}/k/", run_tag(dir)),
                    op_timeout_ms: args.op_timeout_ms,
                };
                WorkloadOutput::Watch(watch::run(config, recorder.clone(), deadline).await)
            }
        }
    };
    let interval = Duration::from_secs(args.nemesis_interval.max(1));
    let faults = async {
        match cluster {
            Some(cluster) => nemesis::run(cluster, plan, recorder, interval, deadline).await,
            None => Vec::new(),
        }
    };
    tokio::join!(workload, faults)
}

/// Reads every key once after recovery (a lost write shows up here).
async fn final_reads(urls: &[String], keys: &[String], recorder: &Recorder, timeout_ms: u64) {
    for (k, key) in keys.iter().enumerate() {
        let member = k % urls.len();
        let Ok(mut connected) = client::connect(&urls[member], timeout_ms).await else {
            continue;
        };
        let op = Op::read(key);
        let process = FINAL_READ_PROCESS_BASE + k as u64;
        let Some(id) = recorder.invoke(process, member, op.clone()) else {
            return;
        };
        let (outcome, error) = register::execute(&mut connected, &op, timeout_ms * 2).await;
        recorder.complete(id, outcome, error);
    }
}

fn io_error(what: &str, e: std::io::Error) -> String {
    format!("cannot write {what}: {e}")
}

/// Writes `history.jsonl` and checks it for linearizability.
async fn register_verdict(
    args: &Args,
    dir: &Path,
    recorder: &Arc<Recorder>,
) -> Result<WorkloadVerdict, String> {
    recorder
        .write_jsonl(&dir.join("history.jsonl"))
        .map_err(|e| io_error("history.jsonl", e))?;
    let history = recorder.history();
    let states_max = args.check_states_max;
    tokio::task::spawn_blocking(move || check::check_register(&history, states_max))
        .await
        .map_err(|e| format!("the checker panicked: {e}"))
}

/// Writes `history.jsonl` (one transaction per line) and checks it for
/// strict serializability.
async fn append_verdict(dir: &Path, output: &AppendOutput) -> Result<WorkloadVerdict, String> {
    let records = output.log.records();
    let mut lines = String::new();
    for record in &records {
        lines += &append::record_json(record).to_string();
        lines.push('\n');
    }
    std::fs::write(dir.join("history.jsonl"), lines).map_err(|e| io_error("history.jsonl", e))?;
    let txns: Vec<_> = records.into_iter().map(|r| r.txn).collect();
    tokio::task::spawn_blocking(move || check::check_append(&txns))
        .await
        .map_err(|e| format!("the checker panicked: {e}"))
}

/// Writes `holds.jsonl` and counts overlapping holds.
fn lock_verdict(dir: &Path, holds: &[Hold]) -> Result<WorkloadVerdict, String> {
    let mut lines = String::new();
    for hold in holds {
        lines += &serde_json::to_string(hold).map_err(|e| e.to_string())?;
        lines.push('\n');
    }
    std::fs::write(dir.join("holds.jsonl"), lines).map_err(|e| io_error("holds.jsonl", e))?;
    Ok(check::check_lock(holds))
}

/// Writes `history.jsonl` (the writers' operations) and `watches.jsonl`
/// (one line per watcher), and runs the watch checks.
fn watch_verdict(
    dir: &Path,
    recorder: &Recorder,
    output: &WatchOutput,
) -> Result<WorkloadVerdict, String> {
    recorder
        .write_jsonl(&dir.join("history.jsonl"))
        .map_err(|e| io_error("history.jsonl", e))?;
    let mut lines = String::new();
    for log in &output.logs {
        let events: Vec<_> = log
            .events
            .iter()
            .map(
                |e| json!({"revision": e.revision, "key": e.key, "event": format!("{:?}", e.kind)}),
            )
            .collect();
        let line =
            json!({"watcher": log.watcher, "start_revision": log.start_revision, "events": events});
        lines += &line.to_string();
        lines.push('\n');
    }
    std::fs::write(dir.join("watches.jsonl"), lines).map_err(|e| io_error("watches.jsonl", e))?;
    Ok(check::check_watch(output))
}

/// Prints the verdict, writes `faults.json` and `verdict.json` (with the
/// member network used); a valid run whose cluster did not recover is
/// `unknown`.
fn judge(
    args: &Args,
    dir: &Path,
    events: &[FaultEvent],
    (recovered, network): (bool, &str),
    verdict: &WorkloadVerdict,
) -> Result<Validity, String> {
    let faults = serde_json::to_string_pretty(events).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("faults.json"), faults + "\n")
        .map_err(|e| io_error("faults.json", e))?;
    let workload = args.workload.name();
    println!(
        "{workload}: {} ({}; network: {network})",
        verdict.validity.word(),
        verdict.summary
    );
    if let Some(explanation) = verdict.details["explanation"].as_str() {
        println!("{explanation}");
    }
    let run = json!({
        "server": if args.endpoints.is_empty() { args.server.name() } else { "endpoints" },
        "nodes": args.nodes,
        "network": network,
        "time_limit_s": args.time_limit,
        "nemesis": args.nemesis,
        "faults_injected": events.len(),
        "recovered": recovered,
    });
    check::write_verdict(&dir.join("verdict.json"), workload, verdict, run)
        .map_err(|e| io_error("verdict.json", e))?;
    Ok(match (verdict.validity, recovered) {
        (Validity::Valid, false) => Validity::Unknown,
        (validity, _) => validity,
    })
}

fn remove_data_dirs(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().ends_with(".data") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
