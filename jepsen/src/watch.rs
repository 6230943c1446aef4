//! Watch guarantees (etcd's API guarantees document): each watcher's events
//! are ordered by revision and unique, none is missing against the
//! committed writes the test knows of (reliable), and watchers of the same
//! key range see the same sequence over the revisions they share.

use std::collections::BTreeMap;
use std::fmt;

use crate::history::Value;

/// What a watch event (or a committed write) did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchEventKind {
    /// The key was put with this value.
    Put(Value),
    /// The key was deleted.
    Delete,
}

/// One event a watcher received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    /// The event's `mod_revision` (for a delete, the delete's revision).
    pub revision: i64,
    /// The key.
    pub key: String,
    /// Put or delete.
    pub kind: WatchEventKind,
}

/// A write the test knows was committed at `revision`: an acknowledged
/// operation whose response header carried the revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedWrite {
    /// The revision the response carried.
    pub revision: i64,
    /// The key.
    pub key: String,
    /// Put or delete.
    pub kind: WatchEventKind,
}

/// Everything one watcher received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchLog {
    /// The watcher's id in the test.
    pub watcher: u64,
    /// The watched range's first key.
    pub key: String,
    /// The range's end as etcd takes it: empty for `key` alone, `"\0"` for
    /// every key from `key` on, else exclusive.
    pub range_end: String,
    /// The revision the watch started from (its events are at or after it).
    pub start_revision: i64,
    /// The events, in the order received.
    pub events: Vec<WatchEvent>,
}

impl WatchLog {
    fn contains(&self, key: &str) -> bool {
        match self.range_end.as_str() {
            "" => key == self.key,
            "\0" => key >= self.key.as_str(),
            end => key >= self.key.as_str() && key < end,
        }
    }

    /// The revision up to which the watcher has seen every event: its last
    /// event's revision (or `start_revision - 1` before any event).
    fn seen_through(&self) -> i64 {
        self.events
            .last()
            .map_or(self.start_revision - 1, |e| e.revision)
    }
}

/// A broken watch guarantee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchViolation {
    /// An event at or before the previous one's (revision, key).
    OutOfOrder {
        /// The watcher.
        watcher: u64,
        /// The event that came too late.
        event: WatchEvent,
        /// The revision of the event before it.
        previous_revision: i64,
    },
    /// An event before the watch's start revision or outside its range.
    Unwatched {
        /// The watcher.
        watcher: u64,
        /// The event.
        event: WatchEvent,
    },
    /// A committed write in the watcher's range and seen window that it
    /// never received (a gap), or received as a different event.
    Missed {
        /// The watcher.
        watcher: u64,
        /// The committed write.
        write: CommittedWrite,
        /// What it received at that revision and key, if anything.
        received: Option<WatchEvent>,
    },
    /// Two watchers of the same range received different sequences over
    /// the revisions both cover.
    Diverged {
        /// One watcher.
        watcher: u64,
        /// The other watcher.
        other: u64,
        /// The first revision at which the sequences differ.
        revision: i64,
    },
}

impl fmt::Display for WatchViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WatchViolation::OutOfOrder {
                watcher,
                event,
                previous_revision,
            } => write!(
                f,
                "watcher {watcher}: {event:?} after revision {previous_revision}"
            ),
            WatchViolation::Unwatched { watcher, event } => {
                write!(f, "watcher {watcher}: event outside its watch: {event:?}")
            }
            WatchViolation::Missed {
                watcher,
                write,
                received,
            } => write!(
                f,
                "watcher {watcher}: committed {write:?} but received {received:?}"
            ),
            WatchViolation::Diverged {
                watcher,
                other,
                revision,
            } => write!(
                f,
                "watchers {watcher} and {other} of one range differ at revision {revision}"
            ),
        }
    }
}

/// Checks every watcher in `logs` against the guarantees and against
/// `committed`; returns the violations found (empty: all hold).
pub fn check_watches(logs: &[WatchLog], committed: &[CommittedWrite]) -> Vec<WatchViolation> {
    let mut violations = Vec::new();
    for log in logs {
        check_order(log, &mut violations);
        check_reliable(log, committed, &mut violations);
    }
    check_agreement(logs, &mut violations);
    violations
}

fn check_order(log: &WatchLog, violations: &mut Vec<WatchViolation>) {
    let mut previous: Option<(i64, &str)> = None;
    for event in &log.events {
        if event.revision < log.start_revision || !log.contains(&event.key) {
            violations.push(WatchViolation::Unwatched {
                watcher: log.watcher,
                event: event.clone(),
            });
        }
        let here = (event.revision, event.key.as_str());
        if let Some(before) = previous
            && here <= before
        {
            violations.push(WatchViolation::OutOfOrder {
                watcher: log.watcher,
                event: event.clone(),
                previous_revision: before.0,
            });
        }
        previous = Some(here);
    }
}

fn check_reliable(
    log: &WatchLog,
    committed: &[CommittedWrite],
    violations: &mut Vec<WatchViolation>,
) {
    let received: BTreeMap<(i64, &str), &WatchEvent> = log
        .events
        .iter()
        .map(|e| ((e.revision, e.key.as_str()), e))
        .collect();
    let window = log.start_revision..=log.seen_through();
    for write in committed {
        if !window.contains(&write.revision) || !log.contains(&write.key) {
            continue;
        }
        let got = received.get(&(write.revision, write.key.as_str()));
        if got.is_none_or(|e| e.kind != write.kind) {
            violations.push(WatchViolation::Missed {
                watcher: log.watcher,
                write: write.clone(),
                received: got.map(|e| (*e).clone()),
            });
        }
    }
}

fn check_agreement(logs: &[WatchLog], violations: &mut Vec<WatchViolation>) {
    for (i, a) in logs.iter().enumerate() {
        for b in &logs[i + 1..] {
            if (&a.key, &a.range_end) != (&b.key, &b.range_end) {
                continue;
            }
            let from = a.start_revision.max(b.start_revision);
            let through = a.seen_through().min(b.seen_through());
            let within = |log: &'_ WatchLog| -> Vec<WatchEvent> {
                log.events
                    .iter()
                    .filter(|e| (from..=through).contains(&e.revision))
                    .cloned()
                    .collect()
            };
            let (seq_a, seq_b) = (within(a), within(b));
            if seq_a != seq_b {
                let revision = first_difference(&seq_a, &seq_b).unwrap_or(from);
                violations.push(WatchViolation::Diverged {
                    watcher: a.watcher,
                    other: b.watcher,
                    revision,
                });
            }
        }
    }
}

fn first_difference(a: &[WatchEvent], b: &[WatchEvent]) -> Option<i64> {
    let differs = a
        .iter()
        .zip(b)
        .find(|(x, y)| x != y)
        .map(|(x, y)| x.revision.min(y.revision));
    differs.or_else(|| a.get(b.len()).or(b.get(a.len())).map(|e| e.revision))
}
