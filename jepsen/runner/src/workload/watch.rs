//! The `watch` workload: writers put unique values to a few keys under one
//! prefix (through every member); one watcher per member watches the prefix
//! from the run's start revision, and after a broken stream resumes from
//! the revision after its last event (etcd's resumable watch). keel-jepsen's
//! [`check_watches`](keel_jepsen::check_watches) then checks that every
//! watcher's events are ordered and unique, that none of the acknowledged
//! writes inside a watcher's seen window is missing, and that watchers
//! agree on the sequence.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, EventType, WatchOptions};
use keel_jepsen::{CommittedWrite, Op, Outcome, Ret, WatchEvent, WatchEventKind, WatchLog};
use keel_kernel::mvcc::prefix_range_end;

use crate::client::connect;
use crate::recorder::Recorder;
use crate::workload::register::execute;

/// Keys the writers spread their puts over.
const KEYS: u64 = 4;
/// How long watchers keep receiving after the writers stop, in
/// milliseconds (events still in flight are delivered).
const DRAIN_MS: u64 = 2000;
/// Pause after a failed connect or a broken stream, in milliseconds.
const RETRY_PAUSE_MS: u64 = 100;
/// Bound on the events one watcher records.
const EVENTS_MAX: usize = 1_000_000;

/// The workload's settings.
#[derive(Debug, Clone)]
pub struct WatchConfig {
    /// Client URL of every member.
    pub urls: Vec<String>,
    /// Concurrent writers (round robin over the members).
    pub concurrency: usize,
    /// The watched prefix (unique per run).
    pub prefix: String,
    /// Per-operation timeout, in milliseconds.
    pub op_timeout_ms: u64,
}

/// What the watch check needs.
#[derive(Debug, Clone)]
pub struct WatchOutput {
    /// Every watcher's events.
    pub logs: Vec<WatchLog>,
    /// Every acknowledged put, with the revision its response carried.
    pub committed: Vec<CommittedWrite>,
}

/// Runs the writers until `deadline` and the watchers a little longer.
/// Errors: the start revision could not be read.
pub async fn run(
    config: WatchConfig,
    recorder: Arc<Recorder>,
    deadline: Instant,
) -> Result<WatchOutput, String> {
    let start_revision = start_revision(&config).await?;
    let committed = Arc::new(Mutex::new(Vec::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let config = Arc::new(config);
    let mut writers = Vec::new();
    for c in 0..config.concurrency {
        let writer = write_loop(
            config.clone(),
            recorder.clone(),
            committed.clone(),
            counter.clone(),
            c,
            deadline,
        );
        writers.push(tokio::spawn(writer));
    }
    let drain_deadline = deadline + Duration::from_millis(DRAIN_MS);
    let mut watchers = Vec::new();
    for member in 0..config.urls.len() {
        let watcher = watch_loop(config.clone(), member, start_revision, drain_deadline);
        watchers.push(tokio::spawn(watcher));
    }
    for writer in writers {
        let _ = writer.await;
    }
    let mut logs = Vec::new();
    for watcher in watchers {
        if let Ok(log) = watcher.await {
            logs.push(log);
        }
    }
    let committed = committed.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(WatchOutput { logs, committed })
}

async fn start_revision(config: &WatchConfig) -> Result<i64, String> {
    let mut client = connect(&config.urls[0], config.op_timeout_ms).await?;
    let marker = format!("{}start", config.prefix.trim_end_matches('/'));
    let put = client
        .put(marker, "start", None)
        .await
        .map_err(|e| e.to_string())?;
    let revision = put
        .header()
        .map(|h| h.revision())
        .ok_or("put without header")?;
    Ok(revision + 1)
}

async fn write_loop(
    config: Arc<WatchConfig>,
    recorder: Arc<Recorder>,
    committed: Arc<Mutex<Vec<CommittedWrite>>>,
    counter: Arc<AtomicU64>,
    c: usize,
    deadline: Instant,
) {
    let member = c % config.urls.len();
    let mut process = c as u64;
    let mut client: Option<Client> = None;
    while Instant::now() < deadline {
        if client.is_none() {
            client = connect(&config.urls[member], config.op_timeout_ms)
                .await
                .ok();
        }
        let Some(connected) = client.as_mut() else {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            continue;
        };
        let value = counter.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}{}", config.prefix, value % KEYS);
        let op = Op::write(&key, value);
        let Some(id) = recorder.invoke(process, member, op.clone()) else {
            return;
        };
        let (outcome, error) = execute(connected, &op, config.op_timeout_ms).await;
        if let Outcome::Ok(Ret::Write {
            revision: Some(revision),
        }) = &outcome
        {
            let write = CommittedWrite {
                revision: *revision,
                key,
                kind: WatchEventKind::Put(value),
            };
            committed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(write);
        }
        let failed = !matches!(outcome, Outcome::Ok(_));
        if outcome == Outcome::Unknown {
            process += config.concurrency as u64;
            client = None;
        }
        recorder.complete(id, outcome, error);
        if failed {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
        }
    }
}

async fn watch_loop(
    config: Arc<WatchConfig>,
    member: usize,
    start_revision: i64,
    deadline: Instant,
) -> WatchLog {
    let mut log = WatchLog {
        watcher: member as u64,
        key: config.prefix.clone(),
        range_end: String::from_utf8_lossy(&prefix_range_end(config.prefix.as_bytes()))
            .into_owned(),
        start_revision,
        events: Vec::new(),
    };
    while Instant::now() < deadline && log.events.len() < EVENTS_MAX {
        let next = log.events.last().map_or(start_revision, |e| e.revision + 1);
        let remaining = deadline.saturating_duration_since(Instant::now());
        let watching = watch_from(&config, member, next, &mut log);
        let _ = tokio::time::timeout(remaining, watching).await;
        tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
    }
    log
}

/// Watches from `revision` until the stream breaks, appending to `log`.
async fn watch_from(config: &WatchConfig, member: usize, revision: i64, log: &mut WatchLog) {
    let Ok(mut client) = connect(&config.urls[member], config.op_timeout_ms).await else {
        return;
    };
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(revision);
    let Ok(mut stream) = client.watch(config.prefix.as_str(), Some(options)).await else {
        return;
    };
    while let Ok(Some(response)) = stream.message().await {
        if response.canceled() {
            return;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let kind = match event.event_type() {
                EventType::Put => match std::str::from_utf8(kv.value())
                    .ok()
                    .and_then(|v| v.parse().ok())
                {
                    Some(value) => WatchEventKind::Put(value),
                    None => continue,
                },
                EventType::Delete => WatchEventKind::Delete,
            };
            log.events.push(WatchEvent {
                revision: kv.mod_revision(),
                key,
                kind,
            });
        }
    }
}
