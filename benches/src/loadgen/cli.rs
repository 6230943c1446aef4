//! `keel-bench`'s command line: etcd's `benchmark` commands and flags with
//! etcd's defaults (v3.4.27 `tools/benchmark/cmd/{root,put,range,txn_put,
//! watch,watch_latency,lease}.go`; `txn-mixed` from v3.6
//! `tools/benchmark/cmd/txn_mixed.go`), plus `--json`, `compare` and
//! `scale`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The whole command line.
#[derive(Parser, Debug)]
#[command(
    name = "keel-bench",
    about = "Load generator for etcd's v3 API (etcd's `benchmark` commands), and keel vs etcd comparison"
)]
pub struct Cli {
    /// Flags every command takes.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The benchmark to run.
    #[command(subcommand)]
    pub command: Command,
}

/// etcd benchmark's persistent flags (`root.go`), plus `--json`.
#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// gRPC endpoints, comma separated (`host:port` or `http://host:port`).
    #[arg(
        long,
        global = true,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379"
    )]
    pub endpoints: Vec<String>,
    /// Total number of gRPC connections.
    #[arg(long, global = true, default_value_t = 1, value_parser = positive)]
    pub conns: usize,
    /// Total number of gRPC clients (concurrent requests in flight).
    #[arg(long, global = true, default_value_t = 1, value_parser = positive)]
    pub clients: usize,
    /// Use full floating point precision in the text report.
    #[arg(long, global = true)]
    pub precise: bool,
    /// Print the report as JSON (one object) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Benchmark put.
    Put(PutArgs),
    /// Benchmark range of KEY (to END if given).
    Range(RangeArgs),
    /// Benchmark txn-put: transactions of `--txn-ops` puts.
    TxnPut(TxnPutArgs),
    /// Benchmark mixed txns: reads of KEY..END and puts, `--rw-ratio` reads per write.
    TxnMixed(TxnMixedArgs),
    /// Benchmark watch: creating watchers, then event delivery under puts.
    Watch(WatchArgs),
    /// Benchmark watch latency: from a put to its event at every watcher.
    WatchLatency(WatchLatencyArgs),
    /// Benchmark lease keep-alive.
    LeaseKeepalive(LeaseArgs),
    /// Start keel and etcd, run the same workloads against each, compare.
    Compare(crate::compare::CompareArgs),
    /// Load 100k..10M keys into keel and then etcd; compare load, disk, memory, restart (issue 26).
    Scale(crate::scale::ScaleArgs),
}

/// `put` (`put.go`).
#[derive(Args, Debug, Clone)]
pub struct PutArgs {
    /// Key size of put request (bytes).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of put request (bytes).
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum puts per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of put requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys.
    #[arg(long)]
    pub sequential_keys: bool,
}

/// Linearizable (`l`) or serializable (`s`) reads.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// Linearizable: the member confirms leadership (ReadIndex) first.
    #[value(name = "l")]
    Linearizable,
    /// Serializable: served from the member's local state.
    #[value(name = "s")]
    Serializable,
}

/// `range key [end-range]` (`range.go`).
#[derive(Args, Debug, Clone)]
pub struct RangeArgs {
    /// Key to read.
    pub key: String,
    /// End of the range (exclusive); a single key when absent.
    pub end: Option<String>,
    /// Maximum range requests per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of range requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Linearizable(l) or Serializable(s).
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
}

/// `txn-put` (`txn_put.go`).
#[derive(Args, Debug, Clone)]
pub struct TxnPutArgs {
    /// Key size of txn put (bytes).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of txn put (bytes).
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Number of puts per txn.
    #[arg(long, default_value_t = 1, value_parser = positive)]
    pub txn_ops: usize,
    /// Maximum txns per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of txn requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
}

/// `txn-mixed key [end-range]` (v3.6 `txn_mixed.go`).
#[derive(Args, Debug, Clone)]
pub struct TxnMixedArgs {
    /// First key the reads cover.
    pub key: String,
    /// End of the reads' range (exclusive); a single key when absent.
    pub end: Option<String>,
    /// Key size of the puts (bytes).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of the puts (bytes).
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Maximum txns per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Total number of txn requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Read operation range result limit.
    #[arg(long, default_value_t = 1000)]
    pub limit: i64,
    /// Maximum possible keys of the puts.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Linearizable(l) or Serializable(s) reads.
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
    /// Read/write ops ratio.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative_ratio)]
    pub rw_ratio: f64,
}

/// `watch` (`watch.go`).
#[derive(Args, Debug, Clone)]
pub struct WatchArgs {
    /// Total watch streams.
    #[arg(long, default_value_t = 10, value_parser = positive)]
    pub streams: usize,
    /// Total watchers per stream.
    #[arg(long, default_value_t = 100, value_parser = positive)]
    pub watch_per_stream: usize,
    /// Total number of keys to be watched.
    #[arg(long, default_value_t = 1, value_parser = positive)]
    pub watched_key_total: usize,
    /// Number of keys to put per second (0 is no limit).
    #[arg(long, default_value_t = 0)]
    pub put_rate: u64,
    /// Number of put requests.
    #[arg(long, default_value_t = 1000)]
    pub put_total: u64,
    /// Key size of watch request (bytes).
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Maximum possible keys.
    #[arg(long, default_value_t = 1)]
    pub key_space_size: u64,
    /// Use sequential keys.
    #[arg(long)]
    pub sequential_keys: bool,
}

/// `watch-latency` (`watch_latency.go`).
#[derive(Args, Debug, Clone)]
pub struct WatchLatencyArgs {
    /// Total number of put requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Number of keys to put per second (0 is no limit).
    #[arg(long, default_value_t = 100)]
    pub put_rate: u64,
    /// Key size of watch response (bytes).
    #[arg(long, default_value_t = 32)]
    pub key_size: usize,
    /// Value size of watch response (bytes; at least 8, the send time).
    #[arg(long, default_value_t = 32)]
    pub val_size: usize,
}

/// `lease-keepalive` (`lease.go`).
#[derive(Args, Debug, Clone)]
pub struct LeaseArgs {
    /// Total number of lease keepalive requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
}

/// Parses a count that must be at least 1.
pub fn positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a finite ratio that is not negative.
fn non_negative_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= 0.0 => Ok(r),
        Ok(_) => Err("must be a finite number >= 0".to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// Where `compare` looks for keel by default: `$KEEL_BIN`, else this
/// workspace's `target/release/keel` (`$CARGO_TARGET_DIR` when set at
/// build time is not known here, so the workspace's own `target/`).
pub fn default_keel_binary() -> PathBuf {
    match std::env::var_os("KEEL_BIN") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/release/keel"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("keel-bench").chain(args.iter().copied()))
    }

    #[test]
    fn put_has_etcds_defaults() {
        let cli = parse(&["put"]).expect("parses");
        assert_eq!(cli.global.endpoints, ["127.0.0.1:2379"]);
        assert_eq!((cli.global.conns, cli.global.clients), (1, 1));
        let Command::Put(put) = cli.command else {
            panic!("not put")
        };
        assert_eq!((put.key_size, put.val_size, put.total), (8, 8, 10_000));
        assert_eq!(
            (put.key_space_size, put.rate, put.sequential_keys),
            (1, 0, false)
        );
    }

    #[test]
    fn global_flags_go_before_or_after_the_command() {
        let cli = parse(&[
            "--endpoints=a:1,b:2",
            "put",
            "--clients",
            "64",
            "--conns=8",
            "--total=5",
            "--sequential-keys",
            "--json",
        ])
        .expect("parses");
        assert_eq!(cli.global.endpoints, ["a:1", "b:2"]);
        assert_eq!(
            (cli.global.conns, cli.global.clients, cli.global.json),
            (8, 64, true)
        );
    }

    #[test]
    fn range_takes_key_end_and_consistency() {
        let cli = parse(&["range", "k", "z", "--consistency", "s"]).expect("parses");
        let Command::Range(range) = cli.command else {
            panic!("not range")
        };
        assert_eq!((range.key.as_str(), range.end.as_deref()), ("k", Some("z")));
        assert_eq!(range.consistency, Consistency::Serializable);
        assert!(parse(&["range", "k", "--consistency", "x"]).is_err());
        assert!(parse(&["range"]).is_err());
    }

    #[test]
    fn every_command_parses() {
        for args in [
            &["txn-put", "--txn-ops", "4"][..],
            &["txn-mixed", "k", "--rw-ratio", "3"],
            &[
                "watch",
                "--streams",
                "2",
                "--watch-per-stream",
                "3",
                "--put-total",
                "9",
            ],
            &["watch-latency", "--put-rate", "10"],
            &["lease-keepalive", "--total", "7"],
            &[
                "compare",
                "--quick",
                "--members",
                "1",
                "--workloads",
                "put,range-s",
            ],
        ] {
            parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--clients", "0", "put"]).is_err());
        assert!(parse(&["put", "--total", "-1"]).is_err());
        assert!(parse(&["txn-put", "--txn-ops", "0"]).is_err());
        assert!(parse(&["txn-mixed", "k", "--rw-ratio", "-1"]).is_err());
        assert!(parse(&["compare", "--workloads", "nope"]).is_err());
        assert!(parse(&["nope"]).is_err());
    }
}
