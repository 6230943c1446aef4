//! One server at one number of keys: start it fresh, load the keys, read
//! its I/O counters, memory and data directory, kill and restart it,
//! read random keys back.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::disk_usage;
use super::proc_stats;
use super::restart;
use super::results::{PhaseFigures, ServerFigures};
use crate::loadgen::connect::connect_all;
use crate::loadgen::keys::{KeyGen, value};
use crate::loadgen::progress;
use crate::loadgen::request::Workload;
use crate::loadgen::runner::{self, Load, Stop};
use crate::servers::cluster::{Cluster, Flavor};

/// What one server run needs.
#[derive(Clone, Debug)]
pub struct RunPlan {
    /// Distinct keys to load.
    pub keys: u64,
    /// Bytes per key.
    pub key_size_bytes: usize,
    /// Bytes per value.
    pub val_size_bytes: usize,
    /// Concurrent clients of the load and the gets.
    pub clients: usize,
    /// Connections they share.
    pub conns: usize,
    /// Random linearizable gets after the restart.
    pub gets: u64,
    /// Flags given to the server besides the common ones.
    pub server_args: Vec<String>,
    /// Longest the load may take.
    pub load_timeout: Duration,
    /// Longest the restart to serving may take.
    pub restart_timeout: Duration,
    /// Longest the gets may take.
    pub gets_timeout: Duration,
    /// Whether to draw progress bars (stderr, on a terminal).
    pub show_progress: bool,
}

/// Runs `plan` against a fresh one-member `flavor` cluster of `program`;
/// the server is killed and its directory removed when this returns.
/// Errors when the server does not start, exits, cannot be measured, or a
/// phase runs over its timeout.
pub async fn run(flavor: Flavor, program: &Path, plan: &RunPlan) -> Result<ServerFigures> {
    let name = flavor.name();
    let mut cluster = Cluster::start_with_args(flavor, program, 1, &plan.server_args).await?;
    let pid = cluster.pid(0).context("the server has no process")?;
    let keys = KeyGen::new(plan.key_size_bytes, plan.keys, true)?;
    eprintln!("scale: {name}, {} keys: loading", plan.keys);
    let io_before = proc_stats::read_io(pid)?;
    let load = load(&cluster, &keys, plan).await?;
    let io = proc_stats::read_io(pid)?.since(&io_before);
    let memory_after_load = proc_stats::read_memory(pid)?;
    let data_dir = disk_usage::measure(&cluster.data_dir(0))?;
    cluster.check_running()?;
    if load.figures.count + load.figures.errors < plan.keys {
        bail!(
            "{name}: the load of {} keys did not finish within {:?} ({} done)",
            plan.keys,
            plan.load_timeout,
            load.figures.count + load.figures.errors
        );
    }
    eprintln!(
        "scale: {name}, {} keys: loaded at {:.0} puts/s; killing and restarting",
        plan.keys, load.figures.rate_per_sec
    );
    let restart = restart::kill_and_restart(&mut cluster, &keys.key(0), plan.restart_timeout)
        .await
        .with_context(|| format!("{name}: restart"))?;
    eprintln!(
        "scale: {name}, {} keys: serving {:.2} s after the restart; {} random gets",
        plan.keys,
        restart.as_secs_f64(),
        plan.gets
    );
    let gets = gets(&cluster, plan).await?;
    let pid = cluster
        .pid(0)
        .context("the restarted server has no process")?;
    let memory_after_gets = proc_stats::read_memory(pid)?;
    cluster.check_running()?;
    Ok(ServerFigures {
        write_bytes_per_put: per_put(io.write_bytes, plan.keys),
        wchar_bytes_per_put: per_put(io.wchar_bytes, plan.keys),
        load,
        load_io: io,
        memory_after_load,
        data_dir,
        restart_secs: restart.as_secs_f64(),
        gets,
        memory_after_gets,
    })
}

/// `bytes` per one of `puts`.
fn per_put(bytes: u64, puts: u64) -> f64 {
    bytes as f64 / puts.max(1) as f64
}

/// Puts every key of `keys` once (request `n` puts key `n`).
async fn load(cluster: &Cluster, keys: &KeyGen, plan: &RunPlan) -> Result<PhaseFigures> {
    let workload = Workload::Put {
        keys: keys.clone(),
        value: value(plan.val_size_bytes),
    };
    closed_loop(cluster, workload, plan.keys, plan.load_timeout, plan).await
}

/// `plan.gets` linearizable gets of keys picked at random among the
/// loaded ones; a missing key is a failed get.
async fn gets(cluster: &Cluster, plan: &RunPlan) -> Result<PhaseFigures> {
    let workload = Workload::GetExisting {
        keys: KeyGen::new(plan.key_size_bytes, plan.keys, false)?,
        serializable: false,
    };
    let phase = closed_loop(cluster, workload, plan.gets, plan.gets_timeout, plan).await?;
    if phase.figures.count + phase.figures.errors < plan.gets {
        bail!(
            "{}: {} gets did not finish within {:?}",
            cluster.flavor.name(),
            plan.gets,
            plan.gets_timeout
        );
    }
    Ok(phase)
}

/// Runs `total` requests of `workload` by `plan.clients` clients on
/// `plan.conns` connections, stopping early after `timeout`.
async fn closed_loop(
    cluster: &Cluster,
    workload: Workload,
    total: u64,
    timeout: Duration,
    plan: &RunPlan,
) -> Result<PhaseFigures> {
    let connections = connect_all(&cluster.endpoints, plan.conns.min(plan.clients)).await?;
    let load = Load {
        clients: plan.clients,
        stop: Stop::TotalWithin { total, timeout },
        rate_per_sec: None,
    };
    let bar = progress::bar(Some(total), plan.show_progress);
    let report = runner::run("scale", workload, &connections, load, bar).await?;
    let part = report
        .part("Requests")
        .context("no Requests in the report")?;
    Ok(PhaseFigures::of(&part.recorder, part.elapsed))
}
