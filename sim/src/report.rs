//! What one run of a scenario for one seed found, and how to replay it.

use std::fmt;

use crate::event_log::EventLog;
use crate::options::RunOptions;
use crate::planted::planted_bugs;
use crate::scenario::Scenario;

/// The result of one seed of one scenario.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunReport {
    /// The scenario run.
    pub scenario: Scenario,
    /// The madsim seed.
    pub seed: u64,
    /// The options the run used (the replay command repeats them).
    pub options: RunOptions,
    /// Simulated milliseconds the run took.
    pub simulated_ms: u64,
    /// Operations the linearizability check searched.
    pub operations_checked: usize,
    /// Client operations by outcome: (ok, fail, unknown).
    pub outcomes: (usize, usize, usize),
    /// The checks' verdicts that failed, each readable on its own; empty
    /// when the run passed.
    pub failures: Vec<String>,
    /// Notes that are not failures (for example a check that could not
    /// decide within its bound).
    pub notes: Vec<String>,
    /// FNV-1a digest of the recorded history (every operation, its
    /// times and outcome), for the determinism check.
    pub history_digest: u64,
    /// The faults, heals, leader changes and phases, in time order.
    pub events: EventLog,
}

/// FNV-1a, the same in every process (std's `DefaultHasher` keys are not
/// guaranteed stable across builds).
#[derive(Debug, Clone, Copy)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x100_0000_01b3);
        }
    }
}

impl RunReport {
    /// Whether every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The one command that replays this run: the scenario, the seed, the
    /// flags of its options ([`RunOptions::replay_flags`]) and, in a build
    /// with planted bugs, the `KEEL_SIM_FEATURES` that build them. Options
    /// no flag gives (a test's own) are named after a `#`.
    pub fn replay_command(&self) -> String {
        let bugs = planted_bugs();
        let mut command = match bugs.is_empty() {
            true => String::new(),
            false => format!("KEEL_SIM_FEATURES={} ", bugs.join(",")),
        };
        command.push_str(&format!(
            "scripts/sim.sh run --scenario {} --seed {}",
            self.scenario, self.seed
        ));
        match self.options.replay_flags() {
            Some(flags) => {
                for flag in flags {
                    command.push(' ');
                    command.push_str(&flag);
                }
            }
            None => command.push_str(&format!(
                "  # the run's options have no flags: {:?}",
                self.options
            )),
        }
        command
    }

    /// A stable digest of the run (events, outcomes, verdicts) for the
    /// determinism check: two runs of one seed must give the same digest.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = Fnv::default();
        self.hash(&mut hasher);
        hasher.finish()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.passed() { "PASSED" } else { "FAILED" };
        writeln!(
            f,
            "scenario {} seed {}: {verdict} after {:.1} simulated s",
            self.scenario,
            self.seed,
            self.simulated_ms as f64 / 1000.0
        )?;
        let (ok, fail, unknown) = self.outcomes;
        writeln!(
            f,
            "operations: {ok} ok, {fail} failed, {unknown} unknown; {} checked; history digest {:016x}",
            self.operations_checked, self.history_digest
        )?;
        for failure in &self.failures {
            writeln!(f, "FAILURE: {failure}")?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        if !self.passed() {
            writeln!(f, "replay: {}", self.replay_command())?;
            writeln!(f, "event log:\n{}", self.events)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(options: RunOptions) -> RunReport {
        RunReport {
            scenario: Scenario::Membership,
            seed: 9,
            options,
            simulated_ms: 0,
            operations_checked: 0,
            outcomes: (0, 0, 0),
            failures: vec!["x".into()],
            notes: Vec::new(),
            history_digest: 0,
            events: EventLog::new(0),
        }
    }

    #[test]
    fn the_replay_command_repeats_the_ci_and_reuse_flags() {
        let options = RunOptions {
            reuse_member_addresses: true,
            ..RunOptions::ci()
        };
        let command = report(options).replay_command();
        assert!(
            command.ends_with(
                "scripts/sim.sh run --scenario membership --seed 9 --ci --reuse-member-addresses"
            ),
            "{command}"
        );
        let full = report(RunOptions::full()).replay_command();
        assert!(
            full.ends_with("scripts/sim.sh run --scenario membership --seed 9"),
            "{full}"
        );
        assert_eq!(
            command.starts_with("KEEL_SIM_FEATURES="),
            !planted_bugs().is_empty()
        );
    }
}
