//! `keel-sim`: run, replay and sweep keel's simulation scenarios.
//!
//! ```text
//! scripts/sim.sh run --scenario split-brain --seed 1234
//! scripts/sim.sh replay --scenario split-brain --seed 1234
//! scripts/sim.sh sweep --scenario all --seeds 1000 --first 1
//! ```
//!
//! Only the madsim build (`RUSTFLAGS="--cfg madsim"`, which
//! `scripts/sim.sh` sets) simulates; any other build exits with 2.

#[cfg(not(madsim))]
fn main() {
    eprintln!(
        "keel-sim needs the madsim build: RUSTFLAGS=\"--cfg madsim\" with its own target dir; \
         run it through scripts/sim.sh"
    );
    std::process::exit(2);
}

#[cfg(madsim)]
fn main() {
    std::process::exit(cli::main());
}

#[cfg(madsim)]
mod cli {
    use clap::{Parser, Subcommand};
    use keel_sim::runner::{SweepPlan, SweepRow, planted_bugs, run_seed, sweep};
    use keel_sim::{RunOptions, Scenario};

    /// Deterministic simulation of keel clusters: scenarios, seeds, replay.
    #[derive(Parser)]
    #[command(name = "keel-sim")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Runs one scenario for one seed and prints its report and event log.
        Run(RunArgs),
        /// Runs a seed again (the same as `run`): every choice comes from the seed.
        Replay(RunArgs),
        /// Runs many seeds of one scenario (or `all`) and prints a table.
        Sweep(SweepArgs),
    }

    #[derive(clap::Args)]
    struct RunArgs {
        /// `membership`: re-add removed members at their old peer URL on
        /// empty disks (etcd's runbook for replacing a member).
        #[arg(long)]
        reuse_member_addresses: bool,
        /// split-brain, leader-loss, crash-restart, disk-faults, clock-skew,
        /// membership or random.
        #[arg(long)]
        scenario: Scenario,
        /// The madsim seed.
        #[arg(long)]
        seed: u64,
        /// The shortened runs of the CI seed set.
        #[arg(long)]
        ci: bool,
        /// Search states the linearizability check may explore per key.
        #[arg(long)]
        states_max: Option<u64>,
        /// Clients running the lease-based lock workload (default: 2;
        /// 0: none).
        #[arg(long)]
        lock_clients: Option<usize>,
        /// Run the bank (multi-key txn) and compaction clients (default:
        /// true).
        #[arg(long)]
        side_workloads: Option<bool>,
    }

    #[derive(clap::Args)]
    struct SweepArgs {
        /// `membership`: re-add removed members at their old peer URL on
        /// empty disks (etcd's runbook for replacing a member).
        #[arg(long)]
        reuse_member_addresses: bool,
        /// A scenario's name (as for `run`), or `all`.
        #[arg(long, default_value = "all")]
        scenario: String,
        /// How many seeds per scenario.
        #[arg(long, default_value_t = 100)]
        seeds: u64,
        /// The first seed.
        #[arg(long, default_value_t = 1)]
        first: u64,
        /// The shortened runs of the CI seed set.
        #[arg(long)]
        ci: bool,
        /// Search states the linearizability check may explore per key.
        #[arg(long)]
        states_max: Option<u64>,
        /// Clients running the lease-based lock workload (default: 2;
        /// 0: none).
        #[arg(long)]
        lock_clients: Option<usize>,
        /// Run the bank (multi-key txn) and compaction clients (default:
        /// true).
        #[arg(long)]
        side_workloads: Option<bool>,
        /// Stop each scenario at its first failing seed (to measure seeds
        /// to first failure of a planted bug).
        #[arg(long)]
        stop_at_failure: bool,
        /// Seeds run at once (each on its own thread and runtime).
        #[arg(long, default_value_t = 1)]
        jobs: usize,
    }

    fn options(
        ci: bool,
        states_max: Option<u64>,
        reuse_member_addresses: bool,
        lock_clients: Option<usize>,
        side_workloads: Option<bool>,
    ) -> RunOptions {
        let options = if ci {
            RunOptions::ci()
        } else {
            RunOptions::full()
        };
        RunOptions {
            states_max: states_max.unwrap_or(options.states_max),
            reuse_member_addresses,
            lock_clients: lock_clients.unwrap_or(options.lock_clients),
            side_workloads: side_workloads.unwrap_or(options.side_workloads),
            ..options
        }
    }

    /// Runs the command line; returns the exit code (1: a run failed).
    pub fn main() -> i32 {
        let bugs = planted_bugs();
        if !bugs.is_empty() {
            println!("this build has planted bugs: {}", bugs.join(", "));
        }
        match Cli::parse().command {
            Command::Run(args) | Command::Replay(args) => run(&args),
            Command::Sweep(args) => run_sweep(&args),
        }
    }

    fn run(args: &RunArgs) -> i32 {
        let (report, wall) = run_seed(
            args.scenario,
            args.seed,
            options(
                args.ci,
                args.states_max,
                args.reuse_member_addresses,
                args.lock_clients,
                args.side_workloads,
            ),
        );
        println!("event log:\n{}", report.events);
        println!("{report}");
        println!(
            "wall time {:.2} s ({:.1} simulated s per wall s)",
            wall.as_secs_f64(),
            report.simulated_ms as f64 / 1000.0 / wall.as_secs_f64().max(1e-9)
        );
        i32::from(!report.passed())
    }

    fn run_sweep(args: &SweepArgs) -> i32 {
        let scenarios: Vec<Scenario> = if args.scenario == "all" {
            Scenario::ALL.to_vec()
        } else {
            match args.scenario.parse() {
                Ok(scenario) => vec![scenario],
                Err(error) => {
                    eprintln!("{error}");
                    return 2;
                }
            }
        };
        let mut rows = Vec::new();
        for scenario in scenarios {
            let plan = SweepPlan {
                first: args.first,
                count: args.seeds,
                jobs: args.jobs,
                stop_at_failure: args.stop_at_failure,
            };
            let options = options(
                args.ci,
                args.states_max,
                args.reuse_member_addresses,
                args.lock_clients,
                args.side_workloads,
            );
            let row = sweep(scenario, plan, options, |report, _| {
                if !report.passed() {
                    println!("{report}");
                }
                for note in &report.notes {
                    println!("{} seed {}: {note}", report.scenario, report.seed);
                }
            });
            print_table(&[(scenario, row.clone())]);
            rows.push((scenario, row));
        }
        println!("\nsummary:");
        print_table(&rows);
        i32::from(rows.iter().any(|(_, row)| !row.failed_seeds.is_empty()))
    }

    fn print_table(rows: &[(Scenario, SweepRow)]) {
        println!(
            "{:<14} {:>6} {:>8} {:>12} {:>9} {:>9} {:>12} {:>10}",
            "scenario",
            "seeds",
            "failures",
            "simulated s",
            "wall s",
            "sim/wall",
            "ops checked",
            "undecided"
        );
        for (scenario, row) in rows {
            let simulated_s = row.simulated_ms as f64 / 1000.0;
            let wall_s = row.wall.as_secs_f64();
            println!(
                "{:<14} {:>6} {:>8} {:>12.1} {:>9.1} {:>9.1} {:>12} {:>10}",
                scenario.name(),
                row.seeds,
                row.failed_seeds.len(),
                simulated_s,
                wall_s,
                simulated_s / wall_s.max(1e-9),
                row.operations_checked,
                row.undecided
            );
            if let Some(first) = row.failed_seeds.first() {
                println!("  failing seeds: {:?} (first: {first})", row.failed_seeds);
            }
        }
    }
}
