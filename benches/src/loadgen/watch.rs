//! `watch` and `watch-latency` (etcd v3.4.27 `tools/benchmark/cmd/
//! watch.go`, `watch_latency.go`) as one fan-out run: open `streams` watch
//! streams of `per_stream` watchers each (watcher `w` watches
//! `watched[w % watched.len()]`), timing each creation; then put the
//! watched keys in turn (closed loop, see [`super::runner`]) with values
//! stamped with their send time, and time every event from its put being
//! sent to its arrival at a watcher. Events still missing
//! [`EVENT_GRACE`] after the last put count as errors.
//!
//! etcd's `watch-latency` starts its clock when the put returns; this one
//! when the put is sent, so the figure includes the put's commit.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use etcd_client::{Client, EventType, WatchStream};
use indicatif::ProgressBar;
use tokio::sync::{mpsc, watch};

use super::connect::connection_for;
use super::report::{Part, Recorder, Report};
use super::request::{Workload, since_stamp};
use super::runner::{self, Load};

/// How long events may lag the last put before they count as lost.
pub const EVENT_GRACE: Duration = Duration::from_secs(10);
/// Title of the report part with the event delivery latencies.
pub const EVENTS: &str = "Events";
/// Event latencies queued between the streams and the collector.
const EVENT_QUEUE_LEN: usize = 8192;

/// One fan-out run.
#[derive(Clone, Debug)]
pub struct FanOut {
    /// Watch streams, spread over the connections round-robin.
    pub streams: usize,
    /// Watchers on each stream.
    pub per_stream: usize,
    /// The keys watched and put (not empty).
    pub watched: Vec<Vec<u8>>,
    /// Bytes of each put's value (at least 8).
    pub value_size_bytes: usize,
    /// The puts: clients, stop rule, rate.
    pub puts: Load,
}

/// Runs `fan_out` on `connections`; the report has the summaries "Watch
/// creation", "Put" and "Events" (whose requests/s is events/s).
pub async fn run(
    command: &str,
    fan_out: FanOut,
    connections: &[Client],
    show_progress: bool,
) -> Result<Report> {
    if fan_out.watched.is_empty() {
        bail!("no keys to watch");
    }
    let creation_start = Instant::now();
    let mut creation = Recorder::new();
    let mut streams = Vec::with_capacity(fan_out.streams);
    for s in 0..fan_out.streams {
        let mut client = connection_for(connections, s);
        streams.push(open_stream(&mut client, &fan_out, s, &mut creation).await?);
    }
    let creation = Part {
        title: "Watch creation".to_string(),
        recorder: creation,
        elapsed: creation_start.elapsed(),
    };

    let mut watchers_per_key: HashMap<&[u8], u64> = HashMap::new();
    for w in 0..fan_out.streams * fan_out.per_stream {
        *watchers_per_key
            .entry(&fan_out.watched[w % fan_out.watched.len()])
            .or_default() += 1;
    }
    let base = Instant::now();
    let (tx, rx) = mpsc::channel(EVENT_QUEUE_LEN);
    let receivers: Vec<_> = streams
        .into_iter()
        .map(|stream| tokio::spawn(receive(stream, base, tx.clone())))
        .collect();
    drop(tx);
    let workload = Workload::PutStamped {
        keys: fan_out.watched.clone(),
        value_size_bytes: fan_out.value_size_bytes,
        base,
    };
    let bar = super::progress::bar(None, show_progress);
    let events_start = Instant::now();
    let (expected_tx, expected_rx) = watch::channel(None);
    let collector = tokio::spawn(collect_events(rx, expected_rx, bar.clone()));
    let put_report = runner::run(
        "put",
        workload,
        connections,
        fan_out.puts,
        ProgressBar::hidden(),
    )
    .await?;
    let puts_sent = put_report
        .parts
        .first()
        .map_or(0, |p| p.recorder.count() + p.recorder.error_count());
    let expected = expected_events(&fan_out.watched, &watchers_per_key, puts_sent);
    // The collector may already be done (every stream ended): ignore.
    let _ = expected_tx.send(Some(expected));
    let events = collector.await.context("event collector failed")?;
    for receiver in receivers {
        receiver.abort();
    }
    bar.finish_and_clear();
    let mut events_recorder = events.recorder;
    for _ in events.received..expected {
        events_recorder.record_error(&format!(
            "event not received within {EVENT_GRACE:?} of the last put"
        ));
    }
    let mut parts = vec![creation];
    parts.extend(put_report.parts.into_iter().map(|p| Part {
        title: "Put".to_string(),
        ..p
    }));
    parts.push(Part {
        title: EVENTS.to_string(),
        recorder: events_recorder,
        elapsed: events
            .last_at
            .unwrap_or(events_start)
            .saturating_duration_since(events_start),
    });
    Ok(Report {
        command: command.to_string(),
        parts,
    })
}

/// Opens stream `s` and its watchers, recording each creation's latency
/// (watch request sent to `created` response received).
async fn open_stream(
    client: &mut Client,
    fan_out: &FanOut,
    s: usize,
    creation: &mut Recorder,
) -> Result<WatchStream> {
    let key_of =
        |j: usize| fan_out.watched[(s * fan_out.per_stream + j) % fan_out.watched.len()].clone();
    let start = Instant::now();
    let mut stream = client
        .watch(key_of(0), None)
        .await
        .context("cannot open a watch stream")?;
    wait_created(&mut stream).await?;
    creation.record(start.elapsed());
    for j in 1..fan_out.per_stream {
        let start = Instant::now();
        stream
            .watch(key_of(j), None)
            .await
            .context("cannot add a watcher")?;
        wait_created(&mut stream).await?;
        creation.record(start.elapsed());
    }
    Ok(stream)
}

/// Waits for the `created` response of the watcher just requested.
async fn wait_created(stream: &mut WatchStream) -> Result<()> {
    loop {
        match tokio::time::timeout(super::connect::REQUEST_TIMEOUT, stream.message()).await {
            Err(_) => bail!(
                "watch not created within {:?}",
                super::connect::REQUEST_TIMEOUT
            ),
            Ok(Err(e)) => bail!("watch creation failed: {e}"),
            Ok(Ok(None)) => bail!("watch stream closed during creation"),
            Ok(Ok(Some(response))) if response.canceled() => {
                bail!("watch refused: {}", response.cancel_reason())
            }
            Ok(Ok(Some(response))) if response.created() => return Ok(()),
            Ok(Ok(Some(_))) => {}
        }
    }
}

/// Forwards the latency of every put event on `stream` until it ends or
/// the collector is gone.
async fn receive(mut stream: WatchStream, base: Instant, tx: mpsc::Sender<Duration>) {
    while let Ok(Some(response)) = stream.message().await {
        for event in response.events() {
            if event.event_type() != EventType::Put {
                continue;
            }
            let Some(latency) = event.kv().and_then(|kv| since_stamp(base, kv.value())) else {
                continue;
            };
            if tx.send(latency).await.is_err() {
                return;
            }
        }
    }
}

/// Events the puts should produce: each put of a key reaches every
/// watcher of that key.
fn expected_events(watched: &[Vec<u8>], watchers_per_key: &HashMap<&[u8], u64>, puts: u64) -> u64 {
    (0..puts)
        .map(|n| {
            let key = &watched[(n % watched.len() as u64) as usize];
            watchers_per_key.get(key.as_slice()).copied().unwrap_or(0)
        })
        .sum()
}

/// What the event collector saw.
struct Events {
    recorder: Recorder,
    received: u64,
    last_at: Option<Instant>,
}

/// Collects event latencies until the expected count (published on
/// `expected` once the puts are done) has arrived, or [`EVENT_GRACE`]
/// after it was published, or every stream ended.
async fn collect_events(
    mut rx: mpsc::Receiver<Duration>,
    mut expected: watch::Receiver<Option<u64>>,
    bar: ProgressBar,
) -> Events {
    let mut events = Events {
        recorder: Recorder::new(),
        received: 0,
        last_at: None,
    };
    let mut target: Option<(u64, tokio::time::Instant)> = None;
    loop {
        if let Some((count, _)) = target
            && events.received >= count
        {
            break;
        }
        let grace_over = async {
            match target {
                Some((_, deadline)) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            latency = rx.recv() => match latency {
                Some(latency) => {
                    events.recorder.record(latency);
                    events.received += 1;
                    events.last_at = Some(Instant::now());
                    bar.set_position(events.received);
                }
                None => break,
            },
            changed = expected.changed(), if target.is_none() => {
                match (changed, *expected.borrow()) {
                    (Ok(()), Some(count)) => {
                        target = Some((count, tokio::time::Instant::now() + EVENT_GRACE));
                    }
                    (Ok(()), None) => {}
                    (Err(_), _) => break,
                }
            },
            () = grace_over => break,
        }
    }
    events
}
