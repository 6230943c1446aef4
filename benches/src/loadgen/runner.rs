//! Closed-loop clients: each of `--clients` tasks sends its next request
//! when the previous one is answered, until `--total` requests have been
//! sent (or a deadline passes, for `compare`), optionally paced to
//! `--rate` requests/s over all clients. Outcomes go through a bounded
//! channel to one collector that fills the report and the progress bar.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Result;
use etcd_client::Client;
use indicatif::ProgressBar;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use super::connect::connection_for;
use super::report::{Part, Recorder, Report};
use super::request::{Outcome, Session, Workload};

/// Outcomes queued between the clients and the collector.
const OUTCOME_QUEUE_LEN: usize = 4096;

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this many requests in all.
    Total(u64),
    /// When this much time has passed since the start.
    Duration(Duration),
    /// After `total` requests, or when `timeout` has passed since the
    /// start, whichever comes first (a bounded `Total`, for `scale`).
    TotalWithin {
        /// Requests in all.
        total: u64,
        /// Longest the run may take.
        timeout: Duration,
    },
}

/// How a closed-loop run drives its workload.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    /// Concurrent clients.
    pub clients: usize,
    /// When to stop.
    pub stop: Stop,
    /// Most requests per second over all clients (`None`: no limit).
    pub rate_per_sec: Option<u64>,
}

/// What the clients share: the request counter, the stop rule and the
/// pacing slot.
struct Shared {
    next_request: AtomicU64,
    stop: Stop,
    deadline: Option<Instant>,
    pacing: Option<(Duration, Mutex<Instant>)>,
}

impl Shared {
    /// The number of the next request to send, or `None` when the run is over.
    fn take(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let n = self.next_request.fetch_add(1, Ordering::Relaxed);
        match self.stop {
            Stop::Total(total) | Stop::TotalWithin { total, .. } if n >= total => None,
            _ => Some(n),
        }
    }

    /// Waits for this request's slot under `--rate`.
    async fn pace(&self) {
        if let Some((interval, next)) = &self.pacing {
            let slot = {
                let mut next = next.lock().await;
                let slot = (*next).max(Instant::now());
                *next = slot + *interval;
                slot
            };
            tokio::time::sleep_until(slot).await;
        }
    }
}

/// Runs `workload` on `connections` under `load`; returns the report
/// titled `command`. Errors only when a client cannot start (a lease
/// cannot be granted); failed requests are counted in the report.
pub async fn run(
    command: &str,
    workload: Workload,
    connections: &[Client],
    load: Load,
    bar: ProgressBar,
) -> Result<Report> {
    let labels = workload.labels();
    let workload = Arc::new(workload);
    let mut sessions = Vec::with_capacity(load.clients);
    for i in 0..load.clients {
        sessions.push(Session::start(connection_for(connections, i), &workload).await?);
    }
    let start = Instant::now();
    let shared = Arc::new(Shared {
        next_request: AtomicU64::new(0),
        stop: load.stop,
        deadline: match load.stop {
            Stop::Duration(d) | Stop::TotalWithin { timeout: d, .. } => Some(start + d),
            Stop::Total(_) => None,
        },
        pacing: load
            .rate_per_sec
            .filter(|&r| r > 0)
            .map(|r| (Duration::from_secs_f64(1.0 / r as f64), Mutex::new(start))),
    });
    let (tx, rx) = mpsc::channel::<Outcome>(OUTCOME_QUEUE_LEN);
    let collector = tokio::spawn(collect(rx, labels.len(), bar.clone()));
    let tasks: Vec<_> = sessions
        .into_iter()
        .map(|session| {
            tokio::spawn(client_loop(
                session,
                workload.clone(),
                shared.clone(),
                tx.clone(),
            ))
        })
        .collect();
    drop(tx);
    for task in tasks {
        task.await?;
    }
    let elapsed = start.elapsed();
    let recorders = collector.await?;
    bar.finish_and_clear();
    Ok(Report {
        command: command.to_string(),
        parts: labels
            .into_iter()
            .zip(recorders)
            .map(|(title, recorder)| Part {
                title,
                recorder,
                elapsed,
            })
            .collect(),
    })
}

/// One client: takes request numbers until the run is over.
async fn client_loop(
    mut session: Session,
    workload: Arc<Workload>,
    shared: Arc<Shared>,
    tx: mpsc::Sender<Outcome>,
) {
    while let Some(n) = shared.take() {
        shared.pace().await;
        let outcome = session.issue(&workload, n).await;
        if tx.send(outcome).await.is_err() {
            return;
        }
    }
}

/// Records every outcome into one [`Recorder`] per label.
async fn collect(
    mut rx: mpsc::Receiver<Outcome>,
    labels: usize,
    bar: ProgressBar,
) -> Vec<Recorder> {
    let mut recorders = vec![Recorder::new(); labels.max(1)];
    while let Some((label, result)) = rx.recv().await {
        let recorder = &mut recorders[label.min(labels.saturating_sub(1))];
        match result {
            Ok(latency) => recorder.record(latency),
            Err(message) => recorder.record_error(&message),
        }
        bar.inc(1);
    }
    recorders
}
