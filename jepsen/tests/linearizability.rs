//! Hand-made histories for the linearizability checker: valid concurrent
//! histories pass; a stale read, a lost acknowledged write, a duplicate
//! apply and a read of a failed write fail; an unknown write that took
//! effect passes; the search bound answers unknown.
#![allow(clippy::unwrap_used)] // tests may unwrap

use keel_jepsen::{History, Op, Outcome, Ret, Verdict, check_linearizable};

const STATES_MAX: u64 = 100_000;

/// Records `op` by `process` over `[invoke, complete]` with `outcome`.
fn record(history: &mut History, process: u64, op: Op, span: (u64, u64), outcome: Outcome) {
    let id = history.invoke(process, op, span.0).unwrap();
    history.complete(id, outcome, span.1).unwrap();
}

fn wrote() -> Outcome {
    Outcome::Ok(Ret::Write { revision: None })
}

fn read(value: Option<u64>) -> Outcome {
    Outcome::Ok(Ret::Read(value))
}

fn assert_violation(history: &History, blocked_value: Option<u64>) {
    match check_linearizable(history, STATES_MAX) {
        Verdict::NotLinearizable(failure) => {
            println!("{failure}");
            assert_eq!(failure.blocked.outcome, Some(read(blocked_value)));
        }
        other => panic!("expected a violation, got {other:?}"),
    }
}

#[test]
fn a_concurrent_history_with_reads_of_either_order_passes() {
    let mut h = History::new(100);
    record(&mut h, 1, Op::write("x", 1), (0, 100), wrote());
    record(&mut h, 2, Op::write("x", 2), (10, 90), wrote());
    // Both writes overlap: the order 2 then 1 explains the reads.
    record(&mut h, 3, Op::read("x"), (20, 50), read(Some(2)));
    record(&mut h, 3, Op::read("x"), (110, 120), read(Some(1)));
    record(
        &mut h,
        4,
        Op::cas("x", 1, 3),
        (130, 140),
        Outcome::Ok(Ret::Cas { succeeded: true }),
    );
    record(
        &mut h,
        4,
        Op::cas("x", 1, 4),
        (150, 160),
        Outcome::Ok(Ret::Cas { succeeded: false }),
    );
    record(
        &mut h,
        5,
        Op::delete("y"),
        (0, 10),
        Outcome::Ok(Ret::Delete { deleted: 0 }),
    );
    record(&mut h, 5, Op::read("y"), (20, 30), read(None));
    let verdict = check_linearizable(&h, STATES_MAX);
    assert!(
        matches!(
            verdict,
            Verdict::Linearizable {
                keys: 2,
                operations: 8,
                ..
            }
        ),
        "{verdict:?}"
    );
}

#[test]
fn a_stale_read_fails() {
    let mut h = History::new(100);
    record(&mut h, 1, Op::write("x", 1), (0, 10), wrote());
    record(&mut h, 1, Op::write("x", 2), (20, 30), wrote());
    record(&mut h, 2, Op::read("x"), (40, 50), read(Some(1)));
    assert_violation(&h, Some(1));
}

#[test]
fn a_lost_acknowledged_write_fails() {
    let mut h = History::new(100);
    record(&mut h, 1, Op::write("x", 1), (0, 10), wrote());
    record(&mut h, 2, Op::read("x"), (20, 30), read(None));
    assert_violation(&h, None);
}

#[test]
fn a_duplicate_apply_fails() {
    // Write 1 applied again after write 2: a later read sees 1.
    let mut h = History::new(100);
    record(&mut h, 1, Op::write("x", 1), (0, 10), wrote());
    record(&mut h, 1, Op::write("x", 2), (20, 30), wrote());
    record(&mut h, 2, Op::read("x"), (40, 50), read(Some(2)));
    record(&mut h, 2, Op::read("x"), (60, 70), read(Some(1)));
    assert_violation(&h, Some(1));
}

#[test]
fn a_read_of_a_failed_write_fails() {
    let mut h = History::new(100);
    record(&mut h, 1, Op::write("x", 1), (0, 10), Outcome::Fail);
    record(&mut h, 2, Op::read("x"), (20, 30), read(Some(1)));
    assert_violation(&h, Some(1));
}

#[test]
fn an_unknown_write_may_take_effect_late_or_never() {
    let mut h = History::new(100);
    record(&mut h, 1, Op::write("x", 1), (0, 10), wrote());
    record(&mut h, 2, Op::write("x", 2), (5, 15), Outcome::Unknown);
    record(&mut h, 3, Op::read("x"), (20, 30), read(Some(1)));
    // Took effect long after its timeout.
    record(&mut h, 3, Op::read("x"), (40, 50), read(Some(2)));
    let pending = h.invoke(4, Op::write("x", 3), 60).unwrap();
    assert_eq!(pending, 4);
    record(&mut h, 3, Op::read("x"), (70, 80), read(Some(2)));
    assert!(matches!(
        check_linearizable(&h, STATES_MAX),
        Verdict::Linearizable { .. }
    ));
}

#[test]
fn an_unknown_write_cannot_take_effect_before_its_invocation() {
    let mut h = History::new(100);
    record(&mut h, 3, Op::read("x"), (0, 10), read(Some(2)));
    record(&mut h, 2, Op::write("x", 2), (20, 30), Outcome::Unknown);
    assert_violation(&h, Some(2));
}

#[test]
fn the_search_bound_answers_unknown() {
    // Many concurrent writes and a read that none explains: the search
    // explores every order before it could answer.
    let mut h = History::new(100);
    for i in 0..20 {
        record(&mut h, i, Op::write("x", i), (0, 100), wrote());
    }
    record(&mut h, 99, Op::read("x"), (0, 100), read(Some(1_000)));
    let verdict = check_linearizable(&h, 1_000);
    assert!(
        matches!(verdict, Verdict::Unknown { ref key, states } if key == "x" && states >= 1_000),
        "{verdict:?}"
    );
}
