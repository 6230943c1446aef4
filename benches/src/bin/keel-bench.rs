//! `keel-bench`: etcd's `benchmark` tool's commands against any etcd v3
//! endpoint (keel or etcd), `compare`, which runs keel and etcd side by
//! side, and `scale`, which loads both with millions of keys. See
//! docs/benchmarking.md.

use std::io::Write as _;
use std::process::ExitCode;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};
use keel_bench::compare;
use keel_bench::loadgen::cli::{Cli, Command};
use keel_bench::loadgen::command;
use keel_bench::scale;

/// Exit status after Ctrl-C (128 + SIGINT), as shells report it.
const EXIT_INTERRUPTED: u8 = 130;

/// Global flags that `compare` and `scale` do not use (they start their
/// own servers and set their own client counts).
const FLAGS_UNUSED_BY_OWN_SERVERS: [&str; 3] = ["endpoints", "clients", "conns"];

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    if let Err(message) = check_unused_flags(&cli, &matches) {
        eprintln!("keel-bench: {message}");
        return ExitCode::FAILURE;
    }
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

/// Refuses global flags a command would ignore, so a run is never made
/// with settings other than those asked for.
fn check_unused_flags(cli: &Cli, matches: &ArgMatches) -> Result<(), String> {
    let (name, instead) = match cli.command {
        Command::Compare(_) => ("compare", "--client-counts and --max-conns"),
        Command::Scale(_) => ("scale", "--load-clients and --load-conns"),
        _ => return Ok(()),
    };
    for flag in FLAGS_UNUSED_BY_OWN_SERVERS {
        if matches.value_source(flag) == Some(ValueSource::CommandLine) {
            return Err(format!(
                "`{name}` starts its own servers and does not take --{flag}; use {instead}"
            ));
        }
    }
    Ok(())
}

/// Runs the command; prints its report or error.
async fn run(cli: &Cli) -> ExitCode {
    let result = match &cli.command {
        Command::Compare(args) => compare::run(args).await.map(|_| ()),
        Command::Scale(args) => scale::run(args, cli.global.json).await.and_then(|report| {
            if cli.global.json {
                let text = serde_json::to_string_pretty(&report)?;
                // A closed pipe (`| head`) is not an error of the benchmark.
                let _ = std::io::stdout().write_all((text + "\n").as_bytes());
            }
            Ok(())
        }),
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
