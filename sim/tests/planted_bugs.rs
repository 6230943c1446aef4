//! Planted bugs are caught: built with one `planted-bug-*` feature, the
//! named scenario fails within a fixed seed budget (seeds 1..=budget).
//! Measured first failing seeds (full runs, seeds 1..=40 per scenario):
//! read without ReadIndex: split-brain 1; vote without the log check:
//! split-brain 1; ack before the WAL fsync: crash-restart 1. The budgets
//! leave room for workload changes that move the draws.
//! Without a planted-bug feature this file has no tests.
//!
//! Run one: `RUSTFLAGS="--cfg madsim" cargo test -p keel-sim --test planted_bugs --features planted-bug-read-without-readindex`
//! (`scripts/sim-planted-bugs.sh` runs them all and prints the table of
//! seeds to first failure).
#![cfg(madsim)]

#[cfg(any(
    feature = "planted-bug-ack-before-fsync",
    feature = "planted-bug-vote-without-log-check",
    feature = "planted-bug-read-without-readindex"
))]
use keel_sim::{RunOptions, Scenario, runner::run_seed};

/// Runs `scenario` on seeds `1..=budget` until one fails; panics if none
/// does. Prints the first failing report.
#[cfg(any(
    feature = "planted-bug-ack-before-fsync",
    feature = "planted-bug-vote-without-log-check",
    feature = "planted-bug-read-without-readindex"
))]
fn caught_within(scenario: Scenario, budget: u64) {
    for seed in 1..=budget {
        let (report, _) = run_seed(scenario, seed, RunOptions::full());
        if !report.passed() {
            println!("caught by {scenario} seed {seed}:\n{report}");
            return;
        }
    }
    panic!("{scenario} did not catch the planted bug in seeds 1..={budget}");
}

#[cfg(feature = "planted-bug-read-without-readindex")]
#[test]
fn a_read_without_readindex_is_caught_by_split_brain() {
    caught_within(Scenario::SplitBrain, 5);
}

#[cfg(feature = "planted-bug-vote-without-log-check")]
#[test]
fn a_vote_without_the_log_check_is_caught_by_split_brain() {
    caught_within(Scenario::SplitBrain, 30);
}

#[cfg(feature = "planted-bug-ack-before-fsync")]
#[test]
fn an_ack_before_fsync_is_caught_by_crash_restart() {
    caught_within(Scenario::CrashRestart, 5);
}
