//! Runs one parsed `keel-bench` command (all but `compare`) and returns
//! its report.

use anyhow::{Result, bail};

use super::cli::{
    Command, Consistency, GlobalArgs, LeaseArgs, PutArgs, RangeArgs, TxnMixedArgs, TxnPutArgs,
    WatchArgs, WatchLatencyArgs,
};
use super::connect::connect_all;
use super::keys::{KeyGen, value};
use super::progress;
use super::report::Report;
use super::request::Workload;
use super::runner::{self, Load, Stop};
use super::watch::{self, FanOut};

/// Runs `command` against `global.endpoints` and returns its report.
/// Errors: bad flag combinations, unreachable endpoints, a stream or lease
/// that cannot be opened; failed requests are counted in the report.
pub async fn run(global: &GlobalArgs, command: &Command) -> Result<Report> {
    let show = !global.json;
    match command {
        Command::Put(args) => {
            closed_loop(global, "put", put(args)?, args.total, args.rate, show).await
        }
        Command::Range(args) => {
            closed_loop(global, "range", range(args), args.total, args.rate, show).await
        }
        Command::TxnPut(args) => {
            closed_loop(
                global,
                "txn-put",
                txn_put(args)?,
                args.total,
                args.rate,
                show,
            )
            .await
        }
        Command::TxnMixed(args) => {
            closed_loop(
                global,
                "txn-mixed",
                txn_mixed(args)?,
                args.total,
                args.rate,
                show,
            )
            .await
        }
        Command::LeaseKeepalive(LeaseArgs { total }) => {
            closed_loop(
                global,
                "lease-keepalive",
                Workload::LeaseKeepalive,
                *total,
                0,
                show,
            )
            .await
        }
        Command::Watch(args) => fan_out(global, "watch", watch_fan_out(global, args)?, show).await,
        Command::WatchLatency(args) => {
            fan_out(
                global,
                "watch-latency",
                watch_latency_fan_out(global, args)?,
                show,
            )
            .await
        }
        Command::Compare(_) => bail!("compare is not a load command"),
        Command::Scale(_) => bail!("scale is not a load command"),
    }
}

/// Runs a closed-loop workload: `global.clients` clients on
/// `global.conns` connections, `total` requests, at most `rate`/s.
async fn closed_loop(
    global: &GlobalArgs,
    name: &str,
    workload: Workload,
    total: u64,
    rate: u64,
    show_progress: bool,
) -> Result<Report> {
    let connections = connect_all(&global.endpoints, global.conns.min(global.clients)).await?;
    let load = Load {
        clients: global.clients,
        stop: Stop::Total(total),
        rate_per_sec: (rate > 0).then_some(rate),
    };
    let bar = progress::bar(Some(total), show_progress);
    runner::run(name, workload, &connections, load, bar).await
}

/// Runs a watch fan-out on `global.conns` connections.
async fn fan_out(
    global: &GlobalArgs,
    name: &str,
    fan_out: FanOut,
    show_progress: bool,
) -> Result<Report> {
    let connections = connect_all(&global.endpoints, global.conns).await?;
    watch::run(name, fan_out, &connections, show_progress).await
}

/// `put`'s workload.
pub fn put(args: &PutArgs) -> Result<Workload> {
    Ok(Workload::Put {
        keys: KeyGen::new(args.key_size, args.key_space_size, args.sequential_keys)?,
        value: value(args.val_size),
    })
}

/// `range`'s workload.
pub fn range(args: &RangeArgs) -> Workload {
    Workload::Range {
        key: args.key.as_bytes().to_vec(),
        end: args.end.as_ref().map(|e| e.as_bytes().to_vec()),
        serializable: args.consistency == Consistency::Serializable,
    }
}

/// `txn-put`'s workload.
pub fn txn_put(args: &TxnPutArgs) -> Result<Workload> {
    Ok(Workload::TxnPut {
        keys: KeyGen::new(args.key_size, args.key_space_size, false)?,
        value: value(args.val_size),
        ops_per_txn: args.txn_ops,
    })
}

/// `txn-mixed`'s workload.
pub fn txn_mixed(args: &TxnMixedArgs) -> Result<Workload> {
    Ok(Workload::TxnMixed {
        keys: KeyGen::new(args.key_size, args.key_space_size, false)?,
        value: value(args.val_size),
        key: args.key.as_bytes().to_vec(),
        end: args.end.as_ref().map(|e| e.as_bytes().to_vec()),
        limit: args.limit,
        serializable: args.consistency == Consistency::Serializable,
        rw_ratio: args.rw_ratio,
    })
}

/// `watch`: `--streams` streams of `--watch-per-stream` watchers over
/// `--watched-key-total` keys, then `--put-total` puts by `--clients`
/// clients at most `--put-rate`/s.
pub fn watch_fan_out(global: &GlobalArgs, args: &WatchArgs) -> Result<FanOut> {
    let keys = KeyGen::new(args.key_size, args.key_space_size, args.sequential_keys)?;
    Ok(FanOut {
        streams: args.streams,
        per_stream: args.watch_per_stream,
        watched: (0..args.watched_key_total as u64)
            .map(|i| keys.key(i))
            .collect(),
        value_size_bytes: 8,
        puts: Load {
            clients: global.clients,
            stop: Stop::Total(args.put_total),
            rate_per_sec: (args.put_rate > 0).then_some(args.put_rate),
        },
    })
}

/// `watch-latency`: one watcher per client (each on its own stream) on one
/// key, and `--total` puts of it, one at a time, at most `--put-rate`/s.
pub fn watch_latency_fan_out(global: &GlobalArgs, args: &WatchLatencyArgs) -> Result<FanOut> {
    if args.val_size < 8 {
        bail!("--val-size must be at least 8 (the value carries its send time)");
    }
    Ok(FanOut {
        streams: global.clients,
        per_stream: 1,
        watched: vec![KeyGen::new(args.key_size, 1, true)?.key(0)],
        value_size_bytes: args.val_size,
        puts: Load {
            clients: 1,
            stop: Stop::Total(args.total),
            rate_per_sec: (args.put_rate > 0).then_some(args.put_rate),
        },
    })
}
