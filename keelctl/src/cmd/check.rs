//! `check perf` (etcdctl 3.4's `ctlv3/command/check.go`): a fixed load of
//! puts of 256-byte keys and 1 KiB values under a prefix, at a rate limit
//! with many clients, for 60 s; then the keys are deleted and the
//! throughput, slowest request and standard deviation are judged against
//! etcd's thresholds (90 % of the rate, 500 ms, 100 ms).

use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use etcd_client::{Client, DeleteOptions, GetOptions};
use tokio::sync::mpsc;

use crate::cli::GlobalArgs;
use crate::client::connect;
use crate::error::{CtlError, EXIT_ERROR};
use crate::output::emit;

/// Most connections opened for one check (the load's clients share them).
pub const CONNECTIONS_MAX: usize = 64;

/// The check commands.
#[derive(Debug, Subcommand)]
pub enum CheckCommand {
    /// Check the performance of the etcd cluster
    Perf(PerfArgs),
}

/// `check perf [options]`.
#[derive(Debug, Clone, Args)]
pub struct PerfArgs {
    /// The performance check's workload model. Accepted workloads: s(small), m(medium), l(large), xl(xLarge)
    #[arg(long, default_value = "s")]
    pub load: String,
    /// The prefix for writing the performance check's keys.
    #[arg(long, default_value = "/etcdctl-check-perf/")]
    pub prefix: String,
    /// Compact storage with last revision after test is finished.
    #[arg(long = "auto-compact")]
    pub auto_compact: bool,
    /// Defragment storage after test is finished.
    #[arg(long = "auto-defrag")]
    pub auto_defrag: bool,
    /// keelctl only: how long the load runs, in seconds (etcdctl: always 60).
    #[arg(long = "duration-secs", default_value_t = 60, hide = true)]
    pub duration_secs: u64,
}

/// One of etcdctl's load models.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Puts per second.
    pub rate_per_sec: u64,
    /// Concurrent clients.
    pub clients: usize,
}

/// etcdctl's load models by name or alias (`s`/`small` ... `xl`/`xLarge`).
pub fn load_model(name: &str) -> Option<Load> {
    let (rate_per_sec, clients) = match name {
        "s" | "small" => (150, 50),
        "m" | "medium" => (1000, 200),
        "l" | "large" => (8000, 500),
        "xl" | "xLarge" => (15000, 1000),
        _ => return None,
    };
    Some(Load {
        rate_per_sec,
        clients,
    })
}

/// Runs a check command.
///
/// # Errors
/// See [`perf`].
pub async fn run(global: &GlobalArgs, command: CheckCommand) -> Result<(), CtlError> {
    match command {
        CheckCommand::Perf(args) => perf(global, args).await,
    }
}

/// Runs `check perf` and prints etcdctl's verdict lines.
///
/// # Errors
/// An unknown load (exit 4); keys under the prefix already (exit 3);
/// a failed connection or clean-up (exit 1 or 2); a failed check (exit 1,
/// after printing `FAIL`).
pub async fn perf(global: &GlobalArgs, args: PerfArgs) -> Result<(), CtlError> {
    let load = load_model(&args.load)
        .ok_or_else(|| CtlError::bad_feature(format!("unknown load option {}", args.load)))?;
    let ctl = connect(global).await?;
    let existing = ctl
        .call(ctl.client.kv_client().get(
            args.prefix.as_str(),
            Some(GetOptions::new().with_prefix().with_limit(1)),
        ))
        .await?;
    if !existing.kvs().is_empty() {
        let prefix = &args.prefix;
        return Err(CtlError::invalid_input(format!(
            "prefix {prefix:?} has keys. Delete with etcdctl del --prefix {prefix} first"
        )));
    }
    let mut connections = vec![ctl.client.clone()];
    for _ in 1..load.clients.min(CONNECTIONS_MAX) {
        connections.push(connect(global).await?.client);
    }
    let duration = Duration::from_secs(args.duration_secs);
    let stats = drive(&connections, load, &args.prefix, duration).await;
    let deleted = ctl
        .call(ctl.client.kv_client().delete(
            args.prefix.as_str(),
            Some(DeleteOptions::new().with_prefix()),
        ))
        .await?;
    let revision = deleted.header().map_or(0, |h| h.revision());
    clean_up(&ctl, global, &args, revision).await?;
    let (report, passed) = verdict(&stats, load);
    emit(&report);
    if passed {
        Ok(())
    } else {
        // etcdctl prints FAIL and exits 1 with no `Error:` line.
        Err(CtlError::new(EXIT_ERROR, ""))
    }
}

async fn clean_up(
    ctl: &crate::client::Ctl,
    global: &GlobalArgs,
    args: &PerfArgs,
    revision: i64,
) -> Result<(), CtlError> {
    if args.auto_compact {
        let options = etcd_client::CompactionOptions::new().with_physical();
        ctl.call(ctl.client.kv_client().compact(revision, Some(options)))
            .await?;
    }
    if args.auto_defrag {
        for endpoint in crate::client::endpoint_urls(global) {
            let one = GlobalArgs {
                endpoints: vec![endpoint],
                ..global.clone()
            };
            let single = connect(&one).await?;
            single
                .call(single.client.maintenance_client().defragment())
                .await?;
        }
    }
    Ok(())
}

/// What the load measured.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Stats {
    /// Latency of each successful put, in seconds.
    pub latencies_secs: Vec<f64>,
    /// Failed puts by error message.
    pub errors: BTreeMap<String, u64>,
    /// From the first put's start to the last put's end, in seconds.
    pub total_secs: f64,
}

/// Sends rate-limited puts for `duration` through `clients` tasks sharing
/// `connections`, and measures them.
async fn drive(connections: &[Client], load: Load, prefix: &str, duration: Duration) -> Stats {
    let (tx, rx) = mpsc::channel::<Vec<u8>>(load.clients);
    let rx = std::sync::Arc::new(tokio::sync::Mutex::new(rx));
    let (done_tx, mut done_rx) = mpsc::channel(load.clients);
    let started = Instant::now();
    for i in 0..load.clients {
        let client = connections[i % connections.len()].clone();
        let (rx, done_tx) = (rx.clone(), done_tx.clone());
        tokio::spawn(async move {
            let mut kv = client.kv_client();
            loop {
                let Some(key) = rx.lock().await.recv().await else {
                    break;
                };
                let sent = Instant::now();
                let outcome = kv.put(key, vec![0u8; 1024], None).await;
                let result = outcome.map(|_| sent.elapsed()).map_err(|e| e.to_string());
                if done_tx.send(result).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(done_tx);
    tokio::spawn(produce(tx, load.rate_per_sec, prefix.to_owned(), duration));
    let mut stats = Stats::default();
    while let Some(result) = done_rx.recv().await {
        match result {
            Ok(latency) => stats.latencies_secs.push(latency.as_secs_f64()),
            Err(message) => *stats.errors.entry(message).or_default() += 1,
        }
    }
    stats.total_secs = started.elapsed().as_secs_f64();
    stats
}

/// Queues one put key per `1 / rate_per_sec` until `duration` passed: the
/// prefix, then 256 bytes holding a random varint (as etcdctl's keys).
async fn produce(tx: mpsc::Sender<Vec<u8>>, rate_per_sec: u64, prefix: String, duration: Duration) {
    let period = Duration::from_secs_f64(1.0 / rate_per_sec.max(1) as f64);
    let mut ticker = tokio::time::interval(period);
    let deadline = tokio::time::Instant::now() + duration;
    let mut random = Random::seeded();
    while tokio::time::Instant::now() < deadline {
        ticker.tick().await;
        let mut key = prefix.clone().into_bytes();
        let mut suffix = [0u8; 256];
        put_varint(&mut suffix, random.next_i63());
        key.extend_from_slice(&suffix);
        if tx.send(key).await.is_err() {
            break;
        }
    }
}

/// Go's `binary.PutVarint`: zig-zag, then 7 bits per byte.
fn put_varint(out: &mut [u8], value: i64) {
    let mut zigzag = ((value << 1) ^ (value >> 63)) as u64;
    for byte in out.iter_mut() {
        if zigzag < 0x80 {
            *byte = zigzag as u8;
            return;
        }
        *byte = (zigzag as u8) | 0x80;
        zigzag >>= 7;
    }
}

/// xorshift64*, seeded from the process's random hasher state.
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let seed = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        Random(seed | 1)
    }

    fn next_i63(&mut self) -> i64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 1) as i64
    }
}

/// etcdctl's verdict lines and whether every check passed.
pub fn verdict(stats: &Stats, load: Load) -> (String, bool) {
    let mut out = String::new();
    let mut ok = true;
    if !stats.errors.is_empty() {
        out.push_str("FAIL: too many errors\n");
        for (message, count) in &stats.errors {
            out.push_str(&format!("FAIL: ERROR({message}) -> {count}\n"));
        }
        ok = false;
    }
    let rps = if stats.total_secs > 0.0 {
        stats.latencies_secs.len() as f64 / stats.total_secs
    } else {
        0.0
    };
    let writes = rps as i64 + 1;
    if rps / load.rate_per_sec as f64 <= 0.9 {
        out.push_str(&format!("FAIL: Throughput too low: {writes} writes/s\n"));
        ok = false;
    } else {
        out.push_str(&format!("PASS: Throughput is {writes} writes/s\n"));
    }
    let slowest = stats.latencies_secs.iter().copied().fold(0.0, f64::max);
    if slowest > 0.5 {
        out.push_str(&format!("Slowest request took too long: {slowest:.6}s\n"));
        ok = false;
    } else {
        out.push_str(&format!("PASS: Slowest request took {slowest:.6}s\n"));
    }
    let stddev = stddev(&stats.latencies_secs);
    if stddev > 0.1 {
        out.push_str(&format!("Stddev too high: {stddev:.6}s\n"));
        ok = false;
    } else {
        out.push_str(&format!("PASS: Stddev is {stddev:.6}s\n"));
    }
    out.push_str(if ok { "PASS\n" } else { "FAIL\n" });
    (out, ok)
}

/// Population standard deviation (etcd's `report` package).
fn stddev(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let variance = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    variance.sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_models_and_aliases_are_etcdctls() {
        assert_eq!(load_model("small"), load_model("s"));
        assert_eq!(load_model("xLarge").map(|l| l.clients), Some(1000));
        assert_eq!(load_model("m").map(|l| l.rate_per_sec), Some(1000));
        assert_eq!(load_model("huge"), None);
    }

    #[test]
    fn varints_are_gos() {
        let mut out = [0u8; 4];
        put_varint(&mut out, -1);
        assert_eq!(out, [1, 0, 0, 0]);
        put_varint(&mut out, 64);
        assert_eq!(out, [0x80, 0x01, 0, 0]);
    }

    #[test]
    fn a_fast_even_load_passes_and_errors_fail() {
        let load = load_model("s").expect("small load");
        let stats = Stats {
            latencies_secs: vec![0.01; 1500],
            errors: BTreeMap::new(),
            total_secs: 10.0,
        };
        let (report, ok) = verdict(&stats, load);
        assert!(ok, "{report}");
        assert_eq!(
            report,
            "PASS: Throughput is 151 writes/s\nPASS: Slowest request took 0.010000s\n\
             PASS: Stddev is 0.000000s\nPASS\n"
        );
        let mut failing = stats.clone();
        failing
            .errors
            .insert("etcdserver: request timed out".into(), 3);
        failing.total_secs = 20.0;
        let (report, ok) = verdict(&failing, load);
        assert!(!ok);
        assert!(report.starts_with("FAIL: too many errors\nFAIL: ERROR(etcdserver: request timed out) -> 3\nFAIL: Throughput too low: 76 writes/s\n"), "{report}");
        assert!(report.ends_with("FAIL\n"));
    }
}
