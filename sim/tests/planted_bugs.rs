//! Planted bugs are caught: built with one `planted-bug-*` feature, the
//! named scenario fails within a fixed seed budget (seeds 1..=budget).
//! Measured first failing seeds (full runs, seeds 1..=40 per scenario,
//! `scripts/sim-planted-bugs.sh 40`; the README has the whole table): read
//! without ReadIndex: split-brain 1; vote without the log check:
//! crash-restart 1, split-brain 3; ack before the WAL fsync: disk-faults 1;
//! conflicting suffix kept: split-brain 1; a watcher starting at the
//! current revision misses it: clock-skew 18, leader-loss 21; followers
//! expiring leases: leader-loss 1; an entry applied twice after restart:
//! crash-restart 4. The last was measured with the bank and compaction
//! workloads in the full runs, the others before those joined (they move
//! the draws); the budgets leave room for such changes. The seventh planted
//! bug, commit of a
//! previous-term entry by counting replicas, is not found by these
//! scenarios in 40 seeds (a leader appends its no-op in the same message
//! as the old entry); the kernel's directed Figure 8 test
//! (`kernel/tests/raft_scenarios.rs`,
//! `old_term_entries_commit_only_with_a_current_term_entry`) catches it:
//! `cargo test -p keel-kernel --test raft_scenarios --features planted-bug-commit-previous-term`.
//! Without a planted-bug feature this file has no tests.
//!
//! Run one: `RUSTFLAGS="--cfg madsim" cargo test -p keel-sim --test planted_bugs --features planted-bug-read-without-readindex`
//! (`scripts/sim-planted-bugs.sh` runs them all and prints the table of
//! seeds to first failure).
#![cfg(madsim)]

#[cfg(any(
    feature = "planted-bug-ack-before-fsync",
    feature = "planted-bug-vote-without-log-check",
    feature = "planted-bug-read-without-readindex",
    feature = "planted-bug-keep-conflicting-suffix",
    feature = "planted-bug-watch-misses-start-revision",
    feature = "planted-bug-follower-expires-leases",
    feature = "planted-bug-apply-twice-after-restart"
))]
use keel_sim::{RunOptions, Scenario, runner::run_seed};

/// Runs `scenario` on seeds `1..=budget` until one fails; panics if none
/// does. Prints the first failing report.
#[cfg(any(
    feature = "planted-bug-ack-before-fsync",
    feature = "planted-bug-vote-without-log-check",
    feature = "planted-bug-read-without-readindex",
    feature = "planted-bug-keep-conflicting-suffix",
    feature = "planted-bug-watch-misses-start-revision",
    feature = "planted-bug-follower-expires-leases",
    feature = "planted-bug-apply-twice-after-restart"
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
    caught_within(Scenario::SplitBrain, 10);
}

#[cfg(feature = "planted-bug-ack-before-fsync")]
#[test]
fn an_ack_before_fsync_is_caught_by_disk_faults() {
    caught_within(Scenario::DiskFaults, 5);
}

#[cfg(feature = "planted-bug-keep-conflicting-suffix")]
#[test]
fn a_kept_conflicting_suffix_is_caught_by_split_brain() {
    caught_within(Scenario::SplitBrain, 5);
}

#[cfg(feature = "planted-bug-watch-misses-start-revision")]
#[test]
fn a_watcher_missing_its_start_revision_is_caught_by_clock_skew() {
    caught_within(Scenario::ClockSkew, 30);
}

#[cfg(feature = "planted-bug-follower-expires-leases")]
#[test]
fn followers_expiring_leases_are_caught_by_leader_loss() {
    caught_within(Scenario::LeaderLoss, 5);
}

#[cfg(feature = "planted-bug-apply-twice-after-restart")]
#[test]
fn an_entry_applied_twice_after_restart_is_caught_by_crash_restart() {
    caught_within(Scenario::CrashRestart, 10);
}
