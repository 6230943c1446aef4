//! `keel-bench`: etcd's `benchmark` tool's commands against any etcd v3
//! endpoint (keel or etcd), and `compare`, which runs keel and etcd side
//! by side. See docs/benchmarking.md.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use keel_bench::compare;
use keel_bench::loadgen::cli::{Cli, Command};
use keel_bench::loadgen::command;

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("keel-bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        tokio::select! {
            code = run(&cli) => code,
            _ = tokio::signal::ctrl_c() => {
                // Dropping `run` drops the clusters, which kills their processes.
                eprintln!("keel-bench: interrupted");
                ExitCode::from(EXIT_INTERRUPTED)
            }
        }
    })
}

/// Runs the command; prints its report or error.
async fn run(cli: &Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Compare(args) => compare::run(args).await.map(|_| ()),
        other => command::run(&cli.global, other).await.map(|report| {
            let text = if cli.global.json {
                report.to_json() + "\n"
            } else {
                report.to_text(cli.global.precise)
            };
            // A closed pipe (`| head`) is not an error of the benchmark.
            let _ = std::io::stdout().write_all(text.as_bytes());
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keel-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}
