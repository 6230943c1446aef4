//! Replaying history as events, for watchers that start in the past or
//! fell behind (etcd `watchableStore.syncWatchers`).

use std::collections::BinaryHeap;

use super::error::MvccError;
use super::index::key_index::{KeyIndex, Version};
use super::kv::{Event, EventType, KeyValue, shared_parts};
use super::range::key_span;
use super::store::Store;

/// A batch of replayed history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryBatch {
    /// Events in `(revision, sub revision)` order; whole revisions only.
    pub events: Vec<Event>,
    /// The first revision not covered yet: replay continues from here.
    /// `current_revision + 1` once the batch reaches the present.
    pub next_revision: i64,
}

impl Store {
    /// The events on keys of the span (`key`, `range_end` as in a range)
    /// with main revision `>= from_revision`, oldest first, each with
    /// `prev_kv` when the previous version is still stored.
    ///
    /// At most about `max_events` are returned: the batch stops at a
    /// revision boundary once it holds `max_events` (a single revision with
    /// more events is returned whole). Cost: two passes over the span's
    /// stored versions.
    ///
    /// Errors: `Compacted` if `from_revision` is below the compacted
    /// revision (those events are gone).
    pub fn history(
        &self,
        key: &[u8],
        range_end: &[u8],
        from_revision: i64,
        max_events: usize,
    ) -> Result<HistoryBatch, MvccError> {
        if from_revision < self.compact_revision {
            return Err(MvccError::Compacted);
        }
        let from = from_revision.max(1);
        if from > self.current_revision || max_events == 0 {
            // Nothing to replay, or no room for it: nothing is covered, so
            // replay continues from `from`.
            return Ok(HistoryBatch {
                events: Vec::new(),
                next_revision: from,
            });
        }
        let upto = self.cutoff(key, range_end, from, max_events);
        let mut events = Vec::new();
        for ki in key_span(&self.index, key, range_end) {
            push_events(ki, from, upto, self.compact_revision, &mut events);
        }
        events.sort_by_key(|e| (e.kv.mod_revision, e.sub_revision));
        let next_revision = if upto >= self.current_revision {
            self.current_revision + 1
        } else {
            upto + 1
        };
        Ok(HistoryBatch {
            events,
            next_revision,
        })
    }

    /// The largest main revision such that the changes in `[from, it]`
    /// number at least `max_events` (or the current revision if there are
    /// fewer): the `max_events`-th smallest revision at or above `from`.
    fn cutoff(&self, key: &[u8], range_end: &[u8], from: i64, max_events: usize) -> i64 {
        let mut smallest: BinaryHeap<i64> = BinaryHeap::with_capacity(max_events.min(1 << 16));
        for ki in key_span(&self.index, key, range_end) {
            for v in ki.versions().filter(|v| v.rev.main >= from) {
                if smallest.len() < max_events {
                    smallest.push(v.rev.main);
                } else if smallest.peek().is_some_and(|top| v.rev.main < *top) {
                    smallest.pop();
                    smallest.push(v.rev.main);
                }
            }
        }
        if smallest.len() < max_events {
            self.current_revision
        } else {
            smallest.peek().copied().unwrap_or(self.current_revision)
        }
    }
}

/// Appends the events of `ki` with main revision in `[from, upto]`. An
/// event's `prev_kv` is the key's live version at `main - 1`, as etcd
/// reads it; none for events at or below the compacted revision (etcd
/// cannot read below it).
fn push_events(ki: &KeyIndex, from: i64, upto: i64, compacted: i64, out: &mut Vec<Event>) {
    let key = ki.key();
    let mut last: Option<Version<'_>> = None;
    let mut before: Option<Version<'_>> = None;
    for v in ki.versions().take_while(|v| v.rev.main <= upto) {
        if last.is_some_and(|l| l.rev.main < v.rev.main) {
            before = last;
        }
        if v.rev.main >= from {
            let prev = before.as_ref().filter(|_| v.rev.main > compacted);
            out.push(event_of(key, &v, prev));
        }
        last = Some(v);
    }
}

fn event_of(key: &[u8], v: &Version<'_>, prev: Option<&Version<'_>>) -> Event {
    // A put that creates the key is a create event: etcd sends no prev_kv
    // with it (`isCreateEvent`), even after a delete in the same txn.
    let creates = !v.is_tombstone() && v.create_revision == v.rev.main;
    let prev = prev.filter(|p| !p.is_tombstone() && !creates);
    let prev_value = prev.and_then(|p| p.value).unwrap_or_default();
    let [key, value, prev_value] = shared_parts([key, v.value.unwrap_or_default(), prev_value]);
    let prev_kv = prev.map(|p| p.with_bytes(key.clone(), prev_value));
    let (event_type, kv) = if v.is_tombstone() {
        (
            EventType::Delete,
            KeyValue {
                key,
                mod_revision: v.rev.main,
                ..KeyValue::default()
            },
        )
    } else {
        (EventType::Put, v.with_bytes(key, value))
    };
    Event {
        event_type,
        kv,
        prev_kv,
        sub_revision: v.rev.sub,
    }
}
