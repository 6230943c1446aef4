//! Runs one seed of a scenario in its own madsim runtime (on its own
//! thread, so std's hash seeds are the seed's too), and many seeds as a
//! sweep.

use std::time::{Duration, Instant};

use madsim::Config;
use madsim::runtime::Runtime;

use crate::event_log::EventLog;
use crate::options::RunOptions;
use crate::report::RunReport;
use crate::run::run_scenario;
use crate::scenario::Scenario;

pub use crate::planted::planted_bugs;

/// Runs every scenario once (seed 0, short) before the first real run of
/// the process, at most once per process.
///
/// Some of the dependencies initialise process-wide state lazily (seeded
/// through `getrandom`, which madsim answers from the running seed's
/// RNG), so the first run in a process can draw from the RNG where later
/// runs do not. Warming up first makes every run see the same process
/// state: a seed replays the same alone (`run`), in a `sweep`, or twice in
/// madsim's determinism check.
pub fn warm_up() {
    static WARM_UP: std::sync::Once = std::sync::Once::new();
    WARM_UP.call_once(|| {
        let options = RunOptions {
            safety_phase_ms: 6_000,
            ..RunOptions::ci()
        };
        for scenario in Scenario::ALL {
            for seed in 0..2 {
                let _ = run_unwarmed(scenario, seed, options);
            }
        }
    });
}

/// Simulated time after which madsim stops a run that hangs.
pub const SIMULATED_LIMIT_S: u64 = 600;

/// Runs `scenario` for `seed`; returns its report and the wall time it
/// took. A panic inside the simulation becomes a failed report.
pub fn run_seed(scenario: Scenario, seed: u64, options: RunOptions) -> (RunReport, Duration) {
    warm_up();
    run_unwarmed(scenario, seed, options)
}

fn run_unwarmed(scenario: Scenario, seed: u64, options: RunOptions) -> (RunReport, Duration) {
    let started = Instant::now();
    let outcome = std::thread::spawn(move || {
        let mut runtime = Runtime::with_seed_and_config(seed, Config::default());
        runtime.set_time_limit(Duration::from_secs(SIMULATED_LIMIT_S));
        runtime.block_on(run_scenario(scenario, options))
    })
    .join();
    let report = outcome.unwrap_or_else(|payload| RunReport {
        scenario,
        seed,
        simulated_ms: 0,
        operations_checked: 0,
        outcomes: (0, 0, 0),
        history_digest: 0,
        options,
        failures: vec![format!(
            "the simulation panicked: {}",
            panic_text(&*payload)
        )],
        notes: Vec::new(),
        events: EventLog::new(0),
    });
    (report, started.elapsed())
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into())
}

/// What a sweep of one scenario found.
#[derive(Debug, Clone, Default)]
pub struct SweepRow {
    /// Seeds run.
    pub seeds: u64,
    /// Seeds whose run failed.
    pub failed_seeds: Vec<u64>,
    /// Simulated milliseconds, summed.
    pub simulated_ms: u64,
    /// Wall time of the whole sweep.
    pub wall: Duration,
    /// Operations checked, summed.
    pub operations_checked: u64,
    /// Seeds whose linearizability check hit its search bound.
    pub undecided: u64,
}

/// How a sweep runs: which seeds, how many at once, when to stop.
#[derive(Debug, Clone, Copy)]
pub struct SweepPlan {
    /// The first seed.
    pub first: u64,
    /// How many seeds.
    pub count: u64,
    /// Seeds run at once, each on its own thread and madsim runtime.
    pub jobs: usize,
    /// Stop at the first failing seed (seeds already started finish).
    pub stop_at_failure: bool,
}

/// Runs the seeds of `plan` for `scenario`; `on_report` sees each report
/// as it arrives (to print failures as they happen). The row's failing
/// seeds are sorted; with `jobs > 1` reports arrive out of seed order.
pub fn sweep(
    scenario: Scenario,
    plan: SweepPlan,
    options: RunOptions,
    mut on_report: impl FnMut(&RunReport, Duration),
) -> SweepRow {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    warm_up();
    let started = Instant::now();
    let end = plan.first.saturating_add(plan.count);
    let next = AtomicU64::new(plan.first);
    let failed = AtomicBool::new(false);
    let (sender, receiver) = std::sync::mpsc::channel();
    let mut row = SweepRow::default();
    std::thread::scope(|scope| {
        for _ in 0..plan.jobs.max(1) {
            let sender = sender.clone();
            let (next, failed) = (&next, &failed);
            scope.spawn(move || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= end || (plan.stop_at_failure && failed.load(Ordering::Relaxed)) {
                        return;
                    }
                    let (report, wall) = run_seed(scenario, seed, options);
                    if !report.passed() {
                        failed.store(true, Ordering::Relaxed);
                    }
                    if sender.send((report, wall)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(sender);
        for (report, wall) in receiver {
            on_report(&report, wall);
            row.seeds += 1;
            row.simulated_ms += report.simulated_ms;
            row.operations_checked += report.operations_checked as u64;
            row.undecided += u64::from(!report.notes.is_empty());
            if !report.passed() {
                row.failed_seeds.push(report.seed);
            }
        }
    });
    row.failed_seeds.sort_unstable();
    row.wall = started.elapsed();
    row
}
