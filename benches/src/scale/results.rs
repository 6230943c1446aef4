//! What `scale` measured: per number of keys, each server's figures, and
//! the run's settings; serialized as `--json`.

use std::time::Duration;

use serde::Serialize;

use super::disk_usage::DirSize;
use super::goals::GoalCheck;
use super::proc_stats::{IoCounters, Memory};
use crate::loadgen::report::Recorder;

/// Latency and rate of one phase (the load's puts, or the gets).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseFigures {
    /// Successful requests per second of the phase's wall time.
    pub rate_per_sec: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Slowest request, milliseconds.
    pub max_ms: f64,
    /// Successful requests.
    pub count: u64,
    /// Failed requests.
    pub errors: u64,
    /// Wall time of the phase, seconds.
    pub elapsed_secs: f64,
}

impl PhaseFigures {
    /// The figures of `recorder` over `elapsed`.
    pub fn of(recorder: &Recorder, elapsed: Duration) -> PhaseFigures {
        let summary = recorder.summary(elapsed);
        let ms = |p: f64| summary.percentile_secs(p).unwrap_or(0.0) * 1e3;
        PhaseFigures {
            rate_per_sec: summary.requests_per_sec,
            p50_ms: ms(50.0),
            p99_ms: ms(99.0),
            max_ms: summary.slowest_secs * 1e3,
            count: summary.count,
            errors: recorder.error_count(),
            elapsed_secs: elapsed.as_secs_f64(),
        }
    }
}

/// One server's figures at one number of keys.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ServerFigures {
    /// The load of the keys.
    pub load: PhaseFigures,
    /// The server's `/proc/<pid>/io` growth over the load.
    pub load_io: IoCounters,
    /// `write_bytes` over the load divided by the keys loaded.
    pub write_bytes_per_put: f64,
    /// `wchar` over the load divided by the keys loaded.
    pub wchar_bytes_per_put: f64,
    /// Resident memory right after the load.
    pub memory_after_load: Memory,
    /// The data directory right after the load.
    pub data_dir: DirSize,
    /// From starting the killed server again to its first successful
    /// linearizable read, seconds.
    pub restart_secs: f64,
    /// The random linearizable gets after the restart.
    pub gets: PhaseFigures,
    /// Resident memory after the restart and the gets.
    pub memory_after_gets: Memory,
}

/// Both servers at one number of keys, with the goals of issue 26.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleRun {
    /// Distinct keys loaded.
    pub keys: u64,
    /// keel's figures.
    pub keel: ServerFigures,
    /// etcd's figures.
    pub etcd: ServerFigures,
    /// Every compared measure, keel/etcd ratio and goal (as in the table).
    pub measures: Vec<super::measures::Measure>,
}

/// How `scale` ran.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleSettings {
    /// keel binary.
    pub keel_bin: String,
    /// etcd binary.
    pub etcd_bin: String,
    /// `etcd --version`'s first line.
    pub etcd_version: String,
    /// Bytes per key.
    pub key_size_bytes: usize,
    /// Bytes per value.
    pub val_size_bytes: usize,
    /// Concurrent clients of the load and the gets.
    pub clients: usize,
    /// Connections they share.
    pub conns: usize,
    /// Random gets after the restart.
    pub gets: u64,
    /// `--snapshot-count` given to both servers.
    pub snapshot_count: u64,
    /// `--quota-backend-bytes` given to both servers.
    pub quota_backend_bytes: u64,
}

/// The whole run, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct ScaleReport {
    /// How it ran.
    pub settings: ScaleSettings,
    /// One entry per number of keys, in run order.
    pub runs: Vec<ScaleRun>,
    /// Whether keel's bytes written per put stay flat from the smallest
    /// to the largest number of keys (`None` with one number of keys).
    pub bytes_per_put_growth: Option<GoalCheck>,
}
