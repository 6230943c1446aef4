//! `compare`'s results: per case and server, the figures merged over its
//! slices; the ratios of keel's to etcd's; `compare.json`.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use super::plan::{Case, Timing};
use crate::loadgen::report::Recorder;

/// One server's figures in one case (and, in `scale`, in one phase).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Successful requests (events, for `watch`) per second.
    pub rate_per_sec: f64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
    /// Successful requests (events).
    pub count: u64,
    /// Failed requests (lost events).
    pub errors: u64,
}

impl Figures {
    /// Figures of `recorder` over `elapsed` of measured time.
    pub fn of(recorder: &Recorder, elapsed: Duration) -> Figures {
        let summary = recorder.summary(elapsed);
        let ms = |p: f64| summary.percentile_secs(p).unwrap_or(0.0) * 1e3;
        Figures {
            rate_per_sec: summary.requests_per_sec,
            p50_ms: ms(50.0),
            p99_ms: ms(99.0),
            count: summary.count,
            errors: recorder.error_count(),
        }
    }
}

/// One case, both servers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    /// What ran.
    #[serde(flatten)]
    pub case: Case,
    /// keel's figures.
    pub keel: Figures,
    /// etcd's figures.
    pub etcd: Figures,
    /// keel's rate over etcd's (above 1: keel is faster).
    pub rate_ratio: f64,
    /// keel's p99 over etcd's (below 1: keel's tail is shorter).
    pub p99_ratio: f64,
}

impl CaseResult {
    /// The result of `case` from both servers' figures.
    pub fn new(case: Case, keel: Figures, etcd: Figures) -> CaseResult {
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
        CaseResult {
            case,
            rate_ratio: ratio(keel.rate_per_sec, etcd.rate_per_sec),
            p99_ratio: ratio(keel.p99_ms, etcd.p99_ms),
            keel,
            etcd,
        }
    }

    /// Short label: `put m1 c64`.
    pub fn label(&self) -> String {
        format!(
            "{} m{} c{}",
            self.case.workload.name(),
            self.case.members,
            self.case.clients
        )
    }
}

/// Settings of a comparison, recorded with its results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// keel binary.
    pub keel_bin: String,
    /// etcd binary.
    pub etcd_bin: String,
    /// `etcd --version`'s first line.
    pub etcd_version: String,
    /// Time per case.
    pub timing: Timing,
    /// Connections shared by the clients of a case (at most one per client).
    pub conns: usize,
    /// Key size, bytes.
    pub key_size_bytes: usize,
    /// Value size, bytes.
    pub val_size_bytes: usize,
    /// Distinct keys the puts write.
    pub key_space_size: u64,
    /// Watchers in the watch fan-out.
    pub watchers: usize,
}

/// The whole comparison, as written to `compare.json`.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    /// How it ran.
    pub settings: Settings,
    /// Every case, in run order.
    pub cases: Vec<CaseResult>,
}

impl Comparison {
    /// Writes `dir/compare.json`.
    pub fn write_json(&self, dir: &Path) -> Result<()> {
        let path = dir.join("compare.json");
        let text = serde_json::to_string_pretty(self).context("cannot encode the results")?;
        std::fs::write(&path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))
    }
}
