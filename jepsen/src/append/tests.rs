//! Hand-made histories: one for each anomaly the checker must find, and
//! valid ones (concurrent, unknown and failed outcomes) it must pass.

use super::*;

/// A committed transaction over `[invoke, complete]`.
fn ok(id: usize, invoke_ns: u64, complete_ns: u64, mops: Vec<Mop>) -> Txn {
    Txn {
        id,
        process: id as u64,
        mops,
        invoke_ns,
        complete_ns: Some(complete_ns),
        outcome: TxnOutcome::Ok,
    }
}

fn with(outcome: TxnOutcome, mut txn: Txn) -> Txn {
    txn.outcome = outcome;
    if outcome == TxnOutcome::Unknown {
        txn.complete_ns = None;
        for mop in &mut txn.mops {
            if let Mop::Read { value, .. } = mop {
                *value = None;
            }
        }
    }
    txn
}

fn r(key: &str, list: &[Element]) -> Mop {
    Mop::read(key, Some(list.to_vec()))
}

fn a(key: &str, element: Element) -> Mop {
    Mop::append(key, element)
}

fn names(txns: &[Txn]) -> Vec<String> {
    check_append(txns).anomaly_names()
}

#[test]
fn a_serial_history_is_valid() {
    let txns = vec![
        ok(0, 0, 10, vec![a("x", 1), r("y", &[])]),
        ok(
            1,
            20,
            30,
            vec![r("x", &[1]), a("y", 2), a("x", 3), r("x", &[1, 3])],
        ),
        ok(2, 40, 50, vec![r("x", &[1, 3]), r("y", &[2])]),
    ];
    let report = check_append(&txns);
    assert!(report.is_valid(), "{:?}", report.anomalies);
    assert_eq!((report.txns_committed, report.keys), (3, 2));
}

#[test]
fn concurrent_unknown_and_failed_transactions_can_be_valid() {
    let txns = vec![
        // Concurrent: T1's read may be ordered before T0's append.
        ok(0, 0, 100, vec![a("x", 1)]),
        ok(1, 10, 20, vec![r("x", &[])]),
        // Unknown and seen: it committed.
        with(TxnOutcome::Unknown, ok(2, 30, 40, vec![a("x", 2)])),
        // Unknown and never seen, failed and never seen: never happened.
        with(TxnOutcome::Unknown, ok(3, 30, 40, vec![a("x", 9)])),
        with(TxnOutcome::Fail, ok(4, 30, 40, vec![a("y", 7)])),
        ok(5, 200, 210, vec![r("x", &[1, 2]), r("y", &[])]),
    ];
    let report = check_append(&txns);
    assert!(report.is_valid(), "{:?}", report.anomalies);
    assert_eq!(report.txns_committed, 4);
}

#[test]
fn g0_write_cycle_is_found() {
    let txns = vec![
        ok(0, 0, 100, vec![a("x", 1), a("y", 1)]),
        ok(1, 0, 100, vec![a("x", 2), a("y", 2)]),
        ok(2, 200, 300, vec![r("x", &[1, 2]), r("y", &[2, 1])]),
    ];
    assert_eq!(names(&txns), ["G0"]);
}

#[test]
fn g1c_circular_information_flow_is_found() {
    let txns = vec![
        ok(0, 0, 100, vec![a("x", 1), r("y", &[2])]),
        ok(1, 0, 100, vec![a("y", 2), r("x", &[1])]),
    ];
    let report = check_append(&txns);
    assert_eq!(report.anomaly_names(), ["G1c"]);
    let text = &report.anomalies[0].explanation;
    assert!(
        text.contains("-wr(x)->") && text.contains("-wr(y)->"),
        "{text}"
    );
}

#[test]
fn g_single_read_skew_is_found() {
    let txns = vec![
        ok(0, 0, 100, vec![a("x", 1), a("y", 1)]),
        ok(1, 0, 100, vec![r("x", &[]), r("y", &[1])]),
        ok(2, 200, 300, vec![r("x", &[1]), r("y", &[1])]),
    ];
    assert_eq!(names(&txns), ["G-single"]);
}

#[test]
fn lost_update_is_g_single() {
    // Both read x empty and appended; T0's append is not first.
    let txns = vec![
        ok(0, 0, 100, vec![r("x", &[]), a("x", 1)]),
        ok(1, 0, 100, vec![r("x", &[]), a("x", 2)]),
        ok(2, 200, 300, vec![r("x", &[2, 1])]),
    ];
    assert_eq!(names(&txns), ["G-single"]);
}

#[test]
fn g2_write_skew_is_found() {
    let txns = vec![
        ok(0, 0, 100, vec![r("x", &[]), a("y", 1)]),
        ok(1, 0, 100, vec![r("y", &[]), a("x", 2)]),
        ok(2, 200, 300, vec![r("x", &[2]), r("y", &[1])]),
    ];
    assert_eq!(names(&txns), ["G2-item"]);
}

#[test]
fn a_stale_read_after_completion_is_realtime_and_only_that() {
    let stale = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 20, 30, vec![r("x", &[])]),
        ok(2, 40, 50, vec![r("x", &[1])]),
    ];
    assert_eq!(names(&stale), ["G-single-realtime"]);
    // The same reads overlapping in time are serializable and strict.
    let overlapping = vec![
        ok(0, 0, 25, vec![a("x", 1)]),
        ok(1, 20, 30, vec![r("x", &[])]),
        ok(2, 40, 50, vec![r("x", &[1])]),
    ];
    assert!(check_append(&overlapping).is_valid());
}

#[test]
fn a_write_order_against_real_time_is_g0_realtime() {
    let txns = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 20, 30, vec![a("x", 2)]),
        ok(2, 40, 50, vec![r("x", &[2, 1])]),
    ];
    assert_eq!(names(&txns), ["G0-realtime"]);
}

#[test]
fn an_unseen_acknowledged_append_is_lost() {
    let txns = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 20, 30, vec![r("x", &[])]),
    ];
    assert_eq!(names(&txns), ["lost-append"]);
    // A read that began before the append completed may miss it.
    let concurrent = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 5, 30, vec![r("x", &[])]),
    ];
    assert!(check_append(&concurrent).is_valid());
}

#[test]
fn reading_a_failed_append_is_g1a() {
    let txns = vec![
        with(TxnOutcome::Fail, ok(0, 0, 10, vec![a("x", 1)])),
        ok(1, 20, 30, vec![r("x", &[1])]),
    ];
    assert_eq!(names(&txns), ["G1a"]);
}

#[test]
fn reading_an_intermediate_append_is_g1b() {
    let txns = vec![
        ok(0, 0, 10, vec![a("x", 1), a("x", 2)]),
        ok(1, 0, 30, vec![r("x", &[1])]),
        ok(2, 40, 50, vec![r("x", &[1, 2])]),
    ];
    assert_eq!(names(&txns), ["G1b"]);
}

#[test]
fn single_read_anomalies_are_found() {
    let duplicate = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 20, 30, vec![r("x", &[1, 1])]),
    ];
    assert!(names(&duplicate).contains(&"duplicate-elements".to_owned()));
    let incompatible = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 0, 10, vec![a("x", 2)]),
        ok(2, 20, 30, vec![r("x", &[1, 2])]),
        ok(3, 20, 30, vec![r("x", &[2])]),
    ];
    assert_eq!(names(&incompatible), ["incompatible-order"]);
    let unwritten = vec![ok(0, 0, 10, vec![r("x", &[9])])];
    assert_eq!(names(&unwritten), ["unwritten-element"]);
    let twice = vec![
        ok(0, 0, 10, vec![a("x", 1)]),
        ok(1, 20, 30, vec![a("x", 1)]),
    ];
    assert_eq!(names(&twice), ["duplicate-appends"]);
}

#[test]
fn a_read_that_misses_its_own_append_is_internal() {
    let txns = vec![ok(0, 0, 10, vec![a("x", 1), r("x", &[])])];
    assert_eq!(names(&txns), ["internal"]);
    let changed = vec![
        ok(0, 0, 10, vec![a("y", 5)]),
        ok(1, 20, 30, vec![r("y", &[]), r("y", &[5])]),
    ];
    assert!(names(&changed).contains(&"internal".to_owned()));
}

/// A list-append store that runs transactions one at a time: whatever it
/// runs, in whatever order, with real time following that order, the
/// history is strict serializable.
#[test]
fn random_serial_histories_are_valid() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for _ in 0..50 {
        let mut store: std::collections::HashMap<String, Vec<Element>> = Default::default();
        let mut txns = Vec::new();
        let mut element = 0;
        for t in 0..40 {
            let mut mops = Vec::new();
            for _ in 0..1 + next(4) {
                let key = format!("k{}", next(3));
                if next(2) == 0 {
                    element += 1;
                    store.entry(key.clone()).or_default().push(element);
                    mops.push(a(&key, element));
                } else {
                    mops.push(r(&key, store.get(&key).map_or(&[][..], Vec::as_slice)));
                }
            }
            let invoke_ns = t * 10;
            let mut txn = ok(t as usize, invoke_ns, invoke_ns + 5, mops);
            if next(8) == 0 {
                txn = with(TxnOutcome::Unknown, txn);
            }
            txns.push(txn);
        }
        let report = check_append(&txns);
        assert!(report.is_valid(), "{:?}", report.anomalies);
    }
}
