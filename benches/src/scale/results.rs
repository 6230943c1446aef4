//! What `scale` measured: per number of keys, each server's figures, and
//! the run's settings; serialized as `--json`.

use std::time::Duration;

use serde::Serialize;

use super::disk_usage::DirSize;
use super::goals::GoalCheck;
use super::proc_stats::{IoCounters, Memory};
use crate::compare::results::Figures;
use crate::loadgen::report::Recorder;

/// Latency and rate of one phase (the load's puts, or the gets).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseFigures {
    /// Rate (per second of the phase's wall time), p50, p99, successes and
    /// failures, as `compare` reports them.
    #[serde(flatten)]
    pub figures: Figures,
    /// Slowest request, milliseconds.
    pub max_ms: f64,
    /// Wall time of the phase, seconds.
    pub elapsed_secs: f64,
}

impl PhaseFigures {
    /// The figures of `recorder` over `elapsed`.
    pub fn of(recorder: &Recorder, elapsed: Duration) -> PhaseFigures {
        PhaseFigures {
            figures: Figures::of(recorder, elapsed),
            max_ms: recorder.summary(elapsed).slowest_secs * 1e3,
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
