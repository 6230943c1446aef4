//! Every named scenario for the CI seed set: real keel members under the
//! nemesis, a checked history, liveness after healing, equal HashKV. And
//! the determinism check: one seed run twice gives the same report digest
//! (event log, outcomes, verdicts).
//!
//! Run: `RUSTFLAGS="--cfg madsim" CARGO_TARGET_DIR=target/madsim cargo test -p keel-sim --test scenarios`
//! with `MADSIM_TEST_SEED=<first>` and `MADSIM_TEST_NUM=<seeds>`; a failure
//! prints the scenario, the seed, the event log and the replay command
//! (`scripts/sim.sh run --scenario <name> --seed <seed>`).
//! In a normal build this file is empty.
#![cfg(madsim)]

use keel_sim::run::run_scenario;
use keel_sim::runner::run_seed;
use keel_sim::{RunOptions, Scenario};

async fn check(scenario: Scenario) {
    let report = run_scenario(scenario, RunOptions::ci()).await;
    assert!(report.passed(), "{report}");
}

#[madsim::test]
async fn split_brain() {
    check(Scenario::SplitBrain).await;
}

#[madsim::test]
async fn leader_loss() {
    check(Scenario::LeaderLoss).await;
}

#[madsim::test]
async fn crash_restart() {
    check(Scenario::CrashRestart).await;
}

#[madsim::test]
async fn random() {
    check(Scenario::Random).await;
}

/// The same seed twice: identical event logs, outcomes and verdicts.
#[test]
fn a_seed_replays_identically() {
    for scenario in [Scenario::SplitBrain, Scenario::CrashRestart] {
        let (first, _) = run_seed(scenario, 7, RunOptions::ci());
        let (second, _) = run_seed(scenario, 7, RunOptions::ci());
        assert!(first.passed(), "{first}");
        assert_eq!(first.events, second.events, "{scenario}: event logs differ");
        assert_eq!(
            first.history_digest, second.history_digest,
            "{scenario}: histories differ"
        );
        assert_eq!(
            first.digest(),
            second.digest(),
            "{scenario}: reports differ"
        );
    }
}
