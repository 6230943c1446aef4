//! `keel-bench scale`: the benchmark of issue 26 ("Scale to etcd's 8 GiB
//! quota"). For each number of keys N, keel and then etcd (one member
//! each, fsync on, the same `--snapshot-count` and `--quota-backend-bytes`,
//! one at a time on the same machine) are started fresh, loaded with N
//! distinct keys, measured (load rate and latency, disk bytes written per
//! put, resident memory, data directory), killed with SIGKILL, restarted
//! and timed to their first linearizable read, then read at random.
//! One table per N (or `--json`) compares them and marks the issue's
//! goals met or NOT MET.
//!
//! - [`server_run`]: one server at one N; [`restart`]: kill and restart;
//! - [`proc_stats`]: `/proc/<pid>/io` and `status`; [`disk_usage`]: the data dir;
//! - [`results`], [`measures`], [`goals`], [`table`]: the outputs.

pub mod disk_usage;
pub mod goals;
pub mod measures;
pub mod proc_stats;
pub mod restart;
pub mod results;
pub mod server_run;
pub mod table;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::Args;

use crate::loadgen::cli::{default_keel_binary, positive};
use crate::servers::cluster::Flavor;
use crate::servers::etcd_version;
use results::{ScaleReport, ScaleRun, ScaleSettings};
use server_run::RunPlan;

/// etcd's recommended largest backend quota, 8 GiB, bytes.
pub const QUOTA_8_GIB: u64 = 8 * 1024 * 1024 * 1024;

/// `scale`'s flags.
#[derive(Args, Debug, Clone)]
pub struct ScaleArgs {
    /// keel binary (default: `$KEEL_BIN`, else this workspace's target/release/keel).
    #[arg(long, default_value_os_t = default_keel_binary())]
    pub keel_bin: PathBuf,
    /// etcd binary (etcd 3.4, as Debian's etcd-server installs it).
    #[arg(long, default_value = "etcd")]
    pub etcd_bin: PathBuf,
    /// Numbers of distinct keys to load, comma separated; each is a fresh run of both servers.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000,3000000,10000000", value_parser = positive_u64)]
    pub keys: Vec<u64>,
    /// Key size, bytes.
    #[arg(long, default_value_t = 16, value_parser = positive)]
    pub key_size: usize,
    /// Value size, bytes.
    #[arg(long, default_value_t = 256, value_parser = positive)]
    pub val_size: usize,
    /// Concurrent clients of the load and the gets.
    #[arg(long, default_value_t = 64, value_parser = positive)]
    pub load_clients: usize,
    /// gRPC connections the clients share.
    #[arg(long, default_value_t = 8, value_parser = positive)]
    pub load_conns: usize,
    /// Random linearizable gets after the restart.
    #[arg(long, default_value_t = 100_000, value_parser = positive_u64)]
    pub gets: u64,
    /// `--snapshot-count` of both servers (etcd's default).
    #[arg(long, default_value_t = 100_000, value_parser = positive_u64)]
    pub snapshot_count: u64,
    /// `--quota-backend-bytes` of both servers (8 GiB, so 10M keys fit in etcd).
    #[arg(long, default_value_t = QUOTA_8_GIB, value_parser = positive_u64)]
    pub quota_backend_bytes: u64,
    /// Longest one server's load may take, seconds.
    #[arg(long, default_value_t = 7200, value_parser = positive_u64)]
    pub load_timeout_secs: u64,
    /// Longest a restart to serving may take, seconds.
    #[arg(long, default_value_t = 600, value_parser = positive_u64)]
    pub restart_timeout_secs: u64,
    /// Longest the gets may take, seconds.
    #[arg(long, default_value_t = 600, value_parser = positive_u64)]
    pub gets_timeout_secs: u64,
}

impl ScaleArgs {
    /// The plan of one server run at `keys` keys.
    fn plan(&self, keys: u64, show_progress: bool) -> RunPlan {
        RunPlan {
            keys,
            key_size_bytes: self.key_size,
            val_size_bytes: self.val_size,
            clients: self.load_clients,
            conns: self.load_conns,
            gets: self.gets,
            server_args: vec![
                format!("--snapshot-count={}", self.snapshot_count),
                format!("--quota-backend-bytes={}", self.quota_backend_bytes),
            ],
            load_timeout: Duration::from_secs(self.load_timeout_secs),
            restart_timeout: Duration::from_secs(self.restart_timeout_secs),
            gets_timeout: Duration::from_secs(self.gets_timeout_secs),
            show_progress,
        }
    }

    fn settings(&self, etcd_version: String) -> ScaleSettings {
        ScaleSettings {
            keel_bin: self.keel_bin.display().to_string(),
            etcd_bin: self.etcd_bin.display().to_string(),
            etcd_version,
            key_size_bytes: self.key_size,
            val_size_bytes: self.val_size,
            clients: self.load_clients,
            conns: self.load_conns,
            gets: self.gets,
            snapshot_count: self.snapshot_count,
            quota_backend_bytes: self.quota_backend_bytes,
        }
    }
}

/// Parses a count that must be at least 1.
fn positive_u64(text: &str) -> Result<u64, String> {
    match text.parse::<u64>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs the benchmark. Progress goes to stderr; unless `json`, each N's
/// table is printed to stdout as soon as both servers are measured.
/// Returns everything measured. Errors: a missing binary, keys that do
/// not fit `--key-size`, a server that fails to start, exits or runs over
/// a phase's timeout (its processes are killed and its directory removed).
pub async fn run(args: &ScaleArgs, json: bool) -> Result<ScaleReport> {
    if !args.keel_bin.exists() {
        bail!(
            "keel binary {} not found: run `cargo build --release --bin keel` or pass --keel-bin",
            args.keel_bin.display()
        );
    }
    for &keys in &args.keys {
        crate::loadgen::keys::KeyGen::new(args.key_size, keys, true)?;
    }
    let mut report = ScaleReport {
        settings: args.settings(etcd_version(&args.etcd_bin)?),
        runs: Vec::new(),
        bytes_per_put_growth: None,
    };
    let entry_bytes = args.key_size + args.val_size;
    for &keys in &args.keys {
        let plan = args.plan(keys, !json);
        let keel = server_run::run(Flavor::Keel, &args.keel_bin, &plan).await?;
        let etcd = server_run::run(Flavor::Etcd, &args.etcd_bin, &plan).await?;
        let run = ScaleRun {
            keys,
            measures: measures::measures(&keel, &etcd, entry_bytes),
            keel,
            etcd,
        };
        if !json {
            println!("{}", table::render(&run));
        }
        report.runs.push(run);
    }
    let per_keys: Vec<(u64, f64)> = report
        .runs
        .iter()
        .map(|r| (r.keys, r.keel.write_bytes_per_put))
        .collect();
    report.bytes_per_put_growth = goals::bytes_per_put_growth(&per_keys);
    if !json && let Some(growth) = &report.bytes_per_put_growth {
        println!("{}", growth.text());
    }
    Ok(report)
}
