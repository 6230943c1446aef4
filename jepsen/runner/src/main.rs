//! `keel-jepsen`: Jepsen-style tests of real etcd-compatible clusters.
//! Starts keel (or etcd) members, runs a client workload under faults,
//! heals, waits for recovery and checks the history. Prints one line,
//! `valid`, `invalid` or `unknown`, and exits 0, 1 or 2. See docs/jepsen.md.

mod check;
mod cleanup;
mod cli;
mod client;
mod cluster;
mod disk;
mod member_network;
mod nemesis;
mod network;
mod partition;
mod proxy;
mod proxy_network;
mod recorder;
mod report;
mod run;
mod workload;

use clap::Parser;
use tokio::signal::unix::{SignalKind, signal};

use crate::check::Validity;

fn main() {
    let args = cli::Args::parse();
    cleanup::install_panic_hook();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("keel-jepsen: cannot start the async runtime: {e}");
            std::process::exit(Validity::Unknown.exit_code());
        }
    };
    let code = runtime.block_on(run_until_signal(args));
    // Anything a cancelled run left behind.
    cleanup::cleanup_all();
    std::process::exit(code);
}

/// Runs the test; SIGINT or SIGTERM stop it (cleaned up, verdict unknown).
async fn run_until_signal(args: cli::Args) -> i32 {
    let (mut interrupt, mut terminate) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            eprintln!("keel-jepsen: cannot install signal handlers");
            return Validity::Unknown.exit_code();
        }
    };
    let outcome = tokio::select! {
        result = run::run(args) => result,
        _ = interrupt.recv() => Err("interrupted (SIGINT)".to_owned()),
        _ = terminate.recv() => Err("terminated (SIGTERM)".to_owned()),
    };
    match outcome {
        Ok(validity) => {
            println!("{}", validity.word());
            validity.exit_code()
        }
        Err(e) => {
            eprintln!("keel-jepsen: {e}");
            println!("{}", Validity::Unknown.word());
            Validity::Unknown.exit_code()
        }
    }
}
