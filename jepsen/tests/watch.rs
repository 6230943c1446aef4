//! Hand-made watcher logs for the watch checker.
#![allow(clippy::unwrap_used)] // tests may unwrap

use keel_jepsen::{
    CommittedWrite, WatchEvent, WatchEventKind, WatchLog, WatchViolation, check_watches,
};

fn put(revision: i64, value: u64) -> WatchEvent {
    WatchEvent {
        revision,
        key: "x".into(),
        kind: WatchEventKind::Put(value),
    }
}

fn committed(revision: i64, value: u64) -> CommittedWrite {
    CommittedWrite {
        revision,
        key: "x".into(),
        kind: WatchEventKind::Put(value),
    }
}

fn log(watcher: u64, start_revision: i64, events: Vec<WatchEvent>) -> WatchLog {
    WatchLog {
        watcher,
        key: "x".into(),
        range_end: String::new(),
        start_revision,
        events,
    }
}

#[test]
fn watchers_that_agree_with_the_committed_writes_pass() {
    let writes = [committed(2, 1), committed(3, 2), committed(5, 3)];
    let a = log(1, 1, vec![put(2, 1), put(3, 2), put(5, 3)]);
    // Started later, and has not yet seen revision 5.
    let b = log(2, 3, vec![put(3, 2)]);
    assert_eq!(check_watches(&[a, b], &writes), vec![]);
}

#[test]
fn a_gap_a_duplicate_and_a_reorder_are_reported() {
    let writes = [committed(2, 1), committed(3, 2), committed(5, 3)];
    let gap = log(1, 1, vec![put(2, 1), put(5, 3)]);
    let violations = check_watches(&[gap], &writes);
    assert!(
        matches!(&violations[..], [WatchViolation::Missed { write, received: None, .. }] if write.revision == 3),
        "{violations:?}"
    );
    let duplicate = log(2, 1, vec![put(2, 1), put(2, 1), put(3, 2)]);
    let violations = check_watches(&[duplicate], &writes);
    assert!(
        matches!(&violations[..], [WatchViolation::OutOfOrder { .. }]),
        "{violations:?}"
    );
    let early = log(3, 3, vec![put(2, 1), put(3, 2)]);
    let violations = check_watches(&[early], &writes);
    assert!(
        matches!(&violations[0], WatchViolation::Unwatched { .. }),
        "{violations:?}"
    );
}

#[test]
fn watchers_of_one_range_that_differ_are_reported() {
    // No committed write is known for revision 4 (its outcome was
    // unknown), but the two watchers disagree about it.
    let a = log(1, 1, vec![put(2, 1), put(4, 7), put(5, 3)]);
    let b = log(2, 1, vec![put(2, 1), put(5, 3)]);
    let violations = check_watches(&[a, b], &[committed(2, 1)]);
    assert_eq!(
        violations,
        vec![WatchViolation::Diverged {
            watcher: 1,
            other: 2,
            revision: 4
        }]
    );
    let text = violations[0].to_string();
    assert!(text.contains("differ at revision 4"), "{text}");
}
