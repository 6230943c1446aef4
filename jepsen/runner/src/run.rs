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

use crate::check::{self, Validity};
use crate::cli::{Args, ServerKind};
use crate::client;
use crate::cluster::{Cluster, ServerProgram};
use crate::nemesis::{self, FaultEvent, NemesisPlan};
use crate::network::{self, Network};
use crate::recorder::Recorder;
use crate::workload::register::{self, RegisterConfig};

/// Seconds a started cluster may take to become healthy.
const START_TIMEOUT_S: u64 = 60;
/// Seconds the checker may take.
const CHECK_TIMEOUT_S: u64 = 300;
/// Bound on the operations a run records.
const OPERATIONS_MAX: usize = 2_000_000;
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
    let name = format!("{server}-register-{seconds}-{}", std::process::id());
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

/// Starts the cluster the run tests; `None` with `--endpoints`.
fn start_cluster(args: &Args, plan: &NemesisPlan, dir: &Path) -> Result<Option<Cluster>, String> {
    if !args.endpoints.is_empty() {
        println!("network: external endpoints {}", args.endpoints.join(","));
        return Ok(None);
    }
    let program = match args.server {
        ServerKind::Keel => ServerProgram { path: keel_binary(args)?, name: "keel" },
        ServerKind::Etcd => ServerProgram { path: args.etcd_bin.clone(), name: "etcd" },
    };
    let network = match plan.needs_network() {
        true => {
            if !network::namespaces_available() {
                return Err("the partition fault needs network namespaces (root and iproute2's `ip`)".into());
            }
            println!("network: namespaces (one per member, veth pairs to a bridge; partitions cut by blackhole routes)");
            Some(Network::create(args.nodes)?)
        }
        false => {
            println!("network: loopback (no partition fault)");
            None
        }
    };
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
    println!("cluster healthy: {}; running for {} s", urls.join(","), args.time_limit);
    let recorder = Arc::new(Recorder::new(OPERATIONS_MAX));
    let (keys, events) = workload_and_nemesis(args, plan, cluster.as_mut(), &urls, &recorder).await;
    let recovery = client::wait_healthy(&urls, Duration::from_secs(args.recovery_timeout)).await;
    if let Err(e) = &recovery {
        println!("recovery: FAILED: {e}");
    }
    if recovery.is_ok() {
        final_reads(&urls, &keys, &recorder, args.op_timeout_ms).await;
    }
    let validity = judge(args, dir, &recorder, &events, recovery.is_ok()).await?;
    drop(cluster);
    if validity == Validity::Valid && !args.keep_data {
        remove_data_dirs(dir);
    }
    Ok(validity)
}

async fn workload_and_nemesis(
    args: &Args,
    plan: &NemesisPlan,
    cluster: Option<&mut Cluster>,
    urls: &[String],
    recorder: &Arc<Recorder>,
) -> (Vec<String>, Vec<FaultEvent>) {
    let deadline = Instant::now() + Duration::from_secs(args.time_limit);
    let config = RegisterConfig {
        urls: urls.to_vec(),
        concurrency: args.concurrency,
        keys: args.keys,
        ops_per_key: args.ops_per_key,
        op_timeout_ms: args.op_timeout_ms,
    };
    let workload = register::run(config, recorder.clone(), deadline);
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

async fn judge(
    args: &Args,
    dir: &Path,
    recorder: &Arc<Recorder>,
    events: &[FaultEvent],
    recovered: bool,
) -> Result<Validity, String> {
    let io = |what: &str, e: std::io::Error| format!("cannot write {what}: {e}");
    recorder
        .write_jsonl(&dir.join("history.jsonl"))
        .map_err(|e| io("history.jsonl", e))?;
    let faults = serde_json::to_string_pretty(events).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("faults.json"), faults + "\n").map_err(|e| io("faults.json", e))?;
    let history = recorder.history();
    let states_max = args.check_states_max;
    let verdict = tokio::task::spawn_blocking(move || check::check_register(&history, states_max))
        .await
        .map_err(|e| format!("the checker panicked: {e}"))?;
    println!("register: {} ({})", verdict.validity.word(), verdict.summary);
    if verdict.validity == Validity::Invalid {
        println!("{}", verdict.details["explanation"].as_str().unwrap_or(""));
    }
    let run = json!({
        "server": if args.endpoints.is_empty() { args.server.name() } else { "endpoints" },
        "nodes": args.nodes,
        "time_limit_s": args.time_limit,
        "nemesis": args.nemesis,
        "faults_injected": events.len(),
        "recovered": recovered,
    });
    check::write_verdict(&dir.join("verdict.json"), "register", &verdict, run)
        .map_err(|e| io("verdict.json", e))?;
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
