//! `keel-bench compare`: starts keel and real etcd clusters with the same
//! flags on separate loopback ports and data directories, runs the same
//! workloads against each in turn (slice by slice, alternating which goes
//! first, so drift of the shared disk and CPU falls on both), prints a
//! table of keel/etcd ratios, and writes `compare.json` and `compare.png`
//! to `--out`.
//!
//! - [`plan`]: the cases (cluster sizes × workloads × client counts);
//! - [`crate::servers`]: server processes and their cleanup (shared with
//!   `scale`);
//! - [`case`]: one case against one cluster for one slice;
//! - [`results`], [`table`], [`chart`]: the outputs.

pub mod case;
pub mod chart;
pub mod plan;
pub mod results;
pub mod table;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::loadgen::cli::{default_keel_binary, positive};
use crate::loadgen::report::Recorder;
use crate::servers::cluster::{Cluster, Flavor};
use crate::servers::etcd_version;
use plan::{CaseWorkload, Timing};
use results::{CaseResult, Comparison, Figures, Settings};

/// `compare`'s flags.
#[derive(Args, Debug, Clone)]
pub struct CompareArgs {
    /// keel binary (default: `$KEEL_BIN`, else this workspace's target/release/keel).
    #[arg(long, default_value_os_t = default_keel_binary())]
    pub keel_bin: PathBuf,
    /// etcd binary (etcd 3.4, as Debian's etcd-server installs it).
    #[arg(long, default_value = "etcd")]
    pub etcd_bin: PathBuf,
    /// Directory for compare.json and compare.png (created if missing).
    #[arg(long, default_value = "keel-bench-out")]
    pub out: PathBuf,
    /// Short run: 1 slice of 1 s per server and case.
    #[arg(long)]
    pub quick: bool,
    /// Slices per server and case (servers alternate slice by slice).
    #[arg(long, default_value_t = 3, value_parser = positive)]
    pub slices: usize,
    /// Length of one slice, milliseconds.
    #[arg(long, default_value_t = 5000)]
    pub slice_ms: u64,
    /// Cluster sizes, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "1,3", value_parser = positive)]
    pub members: Vec<usize>,
    /// Client counts, comma separated.
    #[arg(long = "client-counts", value_delimiter = ',', default_value = "1,16,64", value_parser = positive)]
    pub client_counts: Vec<usize>,
    /// Workloads, comma separated (default: all).
    #[arg(long, value_delimiter = ',', value_enum)]
    pub workloads: Vec<CaseWorkload>,
    /// Most connections the clients of a case share.
    #[arg(long = "max-conns", default_value_t = 8, value_parser = positive)]
    pub max_conns: usize,
    /// Key size of puts, bytes.
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value size of puts, bytes (at least 8).
    #[arg(long, default_value_t = 256)]
    pub val_size: usize,
    /// Distinct keys the puts write.
    #[arg(long, default_value_t = 10_000)]
    pub key_space_size: u64,
    /// Watchers in the watch fan-out.
    #[arg(long, default_value_t = 100, value_parser = positive)]
    pub watchers: usize,
}

impl CompareArgs {
    /// Slices and their length, `--quick` applied.
    pub fn timing(&self) -> Timing {
        if self.quick {
            Timing {
                slices: 1,
                slice_ms: 1000,
            }
        } else {
            Timing {
                slices: self.slices,
                slice_ms: self.slice_ms,
            }
        }
    }

    fn workloads(&self) -> Vec<CaseWorkload> {
        if self.workloads.is_empty() {
            CaseWorkload::ALL.to_vec()
        } else {
            self.workloads.clone()
        }
    }
}

/// Runs the comparison, printing progress lines and the table to stdout;
/// returns the results (also written to `--out`). Errors: a binary that
/// is missing or does not start, an unwritable `--out`, a workload that
/// cannot start (the chart alone may fail with a warning).
pub async fn run(args: &CompareArgs) -> Result<Comparison> {
    if !args.keel_bin.exists() {
        bail!(
            "keel binary {} not found: run `cargo build --release --bin keel` or pass --keel-bin",
            args.keel_bin.display()
        );
    }
    if args.val_size < 8 {
        bail!("--val-size must be at least 8 (watch values carry their send time)");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let settings = Settings {
        keel_bin: args.keel_bin.display().to_string(),
        etcd_bin: args.etcd_bin.display().to_string(),
        etcd_version: etcd_version(&args.etcd_bin)?,
        timing: args.timing(),
        conns: args.max_conns,
        key_size_bytes: args.key_size,
        val_size_bytes: args.val_size,
        key_space_size: args.key_space_size,
        watchers: args.watchers,
    };
    let mut results = Vec::new();
    for &members in &args.members {
        let clusters = [
            Cluster::start(Flavor::Keel, &args.keel_bin, members).await?,
            Cluster::start(Flavor::Etcd, &args.etcd_bin, members).await?,
        ];
        for cluster in &clusters {
            case::preload(&cluster.endpoints, &settings).await?;
        }
        for case in plan::cases(&[members], &args.workloads(), &args.client_counts) {
            let result = run_case(&clusters, case, &settings).await?;
            println!(
                "{:<24} keel {:>9.0}/s p99 {:>7.2} ms | etcd {:>9.0}/s p99 {:>7.2} ms | {:.2}x",
                result.label(),
                result.keel.rate_per_sec,
                result.keel.p99_ms,
                result.etcd.rate_per_sec,
                result.etcd.p99_ms,
                result.rate_ratio
            );
            results.push(result);
        }
    }
    let comparison = Comparison {
        settings,
        cases: results,
    };
    println!("\n{}", table::render(&comparison.cases));
    comparison.write_json(&args.out)?;
    let png = args.out.join("compare.png");
    match chart::draw(&comparison.cases, &png) {
        Ok(()) => println!(
            "wrote {} and {}",
            args.out.join("compare.json").display(),
            png.display()
        ),
        Err(e) => eprintln!("warning: no chart: {e:#}"),
    }
    Ok(comparison)
}

/// Runs `case` on both clusters, slice by slice, keel first in even
/// slices and etcd first in odd ones; merges each server's slices.
async fn run_case(
    clusters: &[Cluster; 2],
    case: plan::Case,
    settings: &Settings,
) -> Result<CaseResult> {
    let mut merged = [
        (Recorder::new(), std::time::Duration::ZERO),
        (Recorder::new(), std::time::Duration::ZERO),
    ];
    for slice in 0..settings.timing.slices {
        let order = if slice % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            let (recorder, elapsed) = case::run_slice(&clusters[i].endpoints, case, settings)
                .await
                .with_context(|| {
                    format!("{} on {}", case.workload.name(), clusters[i].flavor.name())
                })?;
            merged[i].0.merge(&recorder);
            merged[i].1 += elapsed;
        }
    }
    let [keel, etcd] = merged.map(|(recorder, elapsed)| Figures::of(&recorder, elapsed));
    Ok(CaseResult::new(case, keel, etcd))
}
