//! What one run of a scenario for one seed found, and how to replay it.

use std::fmt;

use crate::event_log::EventLog;
use crate::scenario::Scenario;

/// The result of one seed of one scenario.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunReport {
    /// The scenario run.
    pub scenario: Scenario,
    /// The madsim seed.
    pub seed: u64,
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

    /// The one command that replays this run.
    pub fn replay_command(&self) -> String {
        format!(
            "scripts/sim.sh run --scenario {} --seed {}",
            self.scenario, self.seed
        )
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
