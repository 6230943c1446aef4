//! One `compare` case against one cluster for one slice, through the same
//! load generator as the single commands.

use std::time::Duration;

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use super::plan::{Case, CaseWorkload};
use super::results::Settings;
use crate::loadgen::connect::{connect, connect_all};
use crate::loadgen::keys::{KeyGen, value};
use crate::loadgen::report::{Recorder, Report};
use crate::loadgen::request::Workload;
use crate::loadgen::runner::{self, Load, Stop};
use crate::loadgen::watch::{self, EVENTS, FanOut};

/// Watchers per watch stream in the fan-out (etcd's tool puts up to 100
/// on one stream; 10 spreads them over the connections).
const WATCHERS_PER_STREAM: usize = 10;

/// The key the range cases read (written by [`preload`]).
pub fn range_key(settings: &Settings) -> Result<Vec<u8>> {
    Ok(KeyGen::new(settings.key_size_bytes, settings.key_space_size, true)?.key(0))
}

/// Writes the key the range cases read, so they find a value.
pub async fn preload(endpoints: &[String], settings: &Settings) -> Result<()> {
    let mut client = connect(endpoints).await?;
    client
        .put(range_key(settings)?, value(settings.val_size_bytes), None)
        .await
        .context("cannot write the key the range cases read")?;
    Ok(())
}

/// Runs `case` against `endpoints` for one slice; returns the measured
/// part (requests, or events for `watch`) and its wall time.
pub async fn run_slice(
    endpoints: &[String],
    case: Case,
    settings: &Settings,
) -> Result<(Recorder, Duration)> {
    let load = Load {
        clients: case.clients,
        stop: Stop::Duration(settings.timing.slice()),
        rate_per_sec: None,
    };
    let report = match case.workload {
        CaseWorkload::Watch => watch_slice(endpoints, load, settings).await?,
        workload => {
            let connections = connect_all(endpoints, settings.conns.min(case.clients)).await?;
            let workload = closed_loop_workload(workload, settings)?;
            runner::run(
                case.workload.name(),
                workload,
                &connections,
                load,
                ProgressBar::hidden(),
            )
            .await?
        }
    };
    let title = if case.workload == CaseWorkload::Watch {
        EVENTS
    } else {
        "Requests"
    };
    let part = report
        .part(title)
        .with_context(|| format!("no {title} in the report"))?;
    Ok((part.recorder.clone(), part.elapsed))
}

/// The closed-loop workload of a case (all but `watch`).
fn closed_loop_workload(workload: CaseWorkload, settings: &Settings) -> Result<Workload> {
    let keys = || KeyGen::new(settings.key_size_bytes, settings.key_space_size, false);
    Ok(match workload {
        CaseWorkload::Put => Workload::Put {
            keys: keys()?,
            value: value(settings.val_size_bytes),
        },
        CaseWorkload::TxnPut => Workload::TxnPut {
            keys: keys()?,
            value: value(settings.val_size_bytes),
            ops_per_txn: 1,
        },
        CaseWorkload::RangeL | CaseWorkload::RangeS => Workload::Range {
            key: range_key(settings)?,
            end: None,
            serializable: workload == CaseWorkload::RangeS,
        },
        CaseWorkload::LeaseKeepalive | CaseWorkload::Watch => Workload::LeaseKeepalive,
    })
}

/// The watch fan-out: `settings.watchers` watchers of one key on streams
/// of [`WATCHERS_PER_STREAM`], puts by `load.clients` clients.
async fn watch_slice(endpoints: &[String], load: Load, settings: &Settings) -> Result<Report> {
    let streams = settings.watchers.div_ceil(WATCHERS_PER_STREAM);
    let connections = connect_all(endpoints, settings.conns.min(streams)).await?;
    let key = KeyGen::new(settings.key_size_bytes, 1, true)?.key(0);
    let fan_out = FanOut {
        streams,
        per_stream: settings.watchers.min(WATCHERS_PER_STREAM),
        watched: vec![key],
        value_size_bytes: settings.val_size_bytes,
        puts: load,
    };
    watch::run("watch", fan_out, &connections, false).await
}
