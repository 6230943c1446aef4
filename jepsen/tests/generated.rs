//! Property: a history produced by a sequential run of the register model,
//! stretched into random concurrent overlap around each operation's
//! linearization point, is always linearizable; so is one where some
//! operations end unknown (taking effect or not) or fail (never taking
//! effect).
#![allow(clippy::unwrap_used)] // tests may unwrap

use keel_jepsen::{History, Op, Outcome, Register, Verdict, check_linearizable};
use proptest::prelude::*;

/// One generated step: which key, what kind of operation, its overlap
/// around the linearization point, and how it ends.
#[derive(Debug, Clone)]
struct Step {
    key: u8,
    kind: u8,
    before_ns: u64,
    after_ns: u64,
    ending: u8,
}

fn step() -> impl Strategy<Value = Step> {
    (0u8..3, 0u8..4, 0u64..40, 0u64..40, 0u8..10).prop_map(
        |(key, kind, before_ns, after_ns, ending)| Step {
            key,
            kind,
            before_ns,
            after_ns,
            ending,
        },
    )
}

/// Runs the steps on the model; each takes effect at `10 * (i + 1)` and
/// spans `[point - before, point + after]`.
fn history(steps: &[Step]) -> History {
    let mut states = [None; 3];
    let mut history = History::new(steps.len());
    for (i, s) in steps.iter().enumerate() {
        let key = format!("k{}", s.key);
        let value = i as u64 + 1;
        let op = match s.kind {
            0 => Op::read(&key),
            1 => Op::write(&key, value),
            2 => Op::cas(&key, value.saturating_sub(2), value),
            _ => Op::delete(&key),
        };
        let point = 10 * (i as u64 + 1) + 100;
        let state = &mut states[usize::from(s.key)];
        // ending: 0 = fail (no effect), 1 = unknown without effect,
        // 2 = unknown with effect, else ok.
        let outcome = match s.ending {
            0 => Outcome::Fail,
            1 => Outcome::Unknown,
            2 => {
                *state = Register::apply(*state, &op);
                Outcome::Unknown
            }
            _ => {
                let answer = Register::answer(*state, &op);
                *state = Register::apply(*state, &op);
                Outcome::Ok(answer)
            }
        };
        let id = history.invoke(i as u64, op, point - s.before_ns).unwrap();
        history.complete(id, outcome, point + s.after_ns).unwrap();
    }
    history
}

proptest! {
    #[test]
    fn histories_of_a_sequential_run_are_linearizable(steps in prop::collection::vec(step(), 0..60)) {
        let verdict = check_linearizable(&history(&steps), 1_000_000);
        prop_assert!(matches!(verdict, Verdict::Linearizable { .. }), "{:?}", verdict);
    }
}
