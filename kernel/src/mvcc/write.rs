//! A write transaction: every change takes the same main revision and the
//! next sub revision (etcd `storeTxnWrite`). Reads inside it see its own
//! earlier writes.

use super::index::Index;
use super::key_index::{KeyIndex, Version};
use super::kv::{Event, EventType, KeyValue};
use super::range::{ReadView, key_span};
use super::revision::Revision;

/// Changes under way at main revision `main`; [`WriteTxn::finish`] says
/// whether anything changed.
pub(crate) struct WriteTxn<'s> {
    index: &'s mut Index,
    /// The revision before this txn.
    begin: i64,
    compact_revision: i64,
    events: Vec<Event>,
}

impl<'s> WriteTxn<'s> {
    /// Starts a txn on `index`, whose current revision is `begin`, with
    /// room for `events_capacity` events (a hint: 1 for a put, so the
    /// common single write allocates exactly one event).
    pub fn new(
        index: &'s mut Index,
        begin: i64,
        compact_revision: i64,
        events_capacity: usize,
    ) -> WriteTxn<'s> {
        WriteTxn {
            index,
            begin,
            compact_revision,
            events: Vec::with_capacity(events_capacity),
        }
    }

    /// The main revision of this txn's changes.
    pub fn main(&self) -> i64 {
        self.begin + 1
    }

    /// The current revision as seen inside the txn.
    pub fn view_revision(&self) -> i64 {
        if self.events.is_empty() {
            self.begin
        } else {
            self.main()
        }
    }

    /// A read view including the txn's writes so far.
    pub fn view(&self) -> ReadView<'_> {
        ReadView {
            index: self.index,
            revision: self.view_revision(),
            compact_revision: self.compact_revision,
        }
    }

    /// A read view of the state before the txn.
    pub fn begin_view(&self) -> ReadView<'_> {
        ReadView {
            index: self.index,
            revision: self.begin,
            compact_revision: self.compact_revision,
        }
    }

    fn next_revision(&self) -> Revision {
        Revision::new(self.main(), self.events.len() as i64)
    }

    /// Puts `key = value` with `lease`. Returns the previous live version
    /// (which may be an earlier write of this txn) when `want_prev`.
    pub fn put(
        &mut self,
        key: &[u8],
        value: &[u8],
        lease: i64,
        want_prev: bool,
    ) -> Option<KeyValue> {
        debug_assert!(!key.is_empty());
        let rev = self.next_revision();
        let mut next = Version {
            rev,
            create_revision: rev.main,
            version: 1,
            lease,
            value: Some(value),
        };
        let (prev, event_prev) = match self.index.get_mut(key) {
            Some(ki) => {
                let latest = ki.latest();
                debug_assert!(latest.rev < rev);
                let live = Some(latest).filter(|v| !v.is_tombstone());
                if let Some(p) = live {
                    next.create_revision = p.create_revision;
                    next.version = p.version + 1;
                }
                let event_prev = if latest.rev.main <= self.begin {
                    live.map(|v| v.to_key_value(key, false))
                } else {
                    // Changed earlier in this txn: the event shows the key
                    // as it was before the txn (etcd reads mod_revision - 1).
                    ki.live_at(self.begin).map(|v| v.to_key_value(key, false))
                };
                let prev = live
                    .filter(|_| want_prev)
                    .map(|v| v.to_key_value(key, false));
                ki.push(&next);
                (prev, event_prev)
            }
            None => {
                self.index.insert(KeyIndex::new(key, &next));
                (None, None)
            }
        };
        let kv = next.to_key_value(key, false);
        self.events.push(Event {
            event_type: EventType::Put,
            kv,
            prev_kv: event_prev,
            sub_revision: rev.sub,
        });
        prev
    }

    /// Deletes every live key in the span (`range_end` as in a range);
    /// returns the deleted key-values in key order.
    pub fn delete_range(&mut self, key: &[u8], range_end: &[u8]) -> Vec<KeyValue> {
        let at = self.view_revision();
        let keys: Vec<Vec<u8>> = key_span(self.index, key, range_end)
            .filter(|ki| ki.live_at(at).is_some())
            .map(|ki| ki.key().to_vec())
            .collect();
        keys.iter().filter_map(|k| self.delete(k)).collect()
    }

    /// Deletes one key if it is live; returns its last version.
    pub fn delete(&mut self, key: &[u8]) -> Option<KeyValue> {
        let rev = self.next_revision();
        let ki = self.index.get_mut(key)?;
        let latest = ki.latest();
        if latest.is_tombstone() {
            return None;
        }
        debug_assert!(latest.rev < rev);
        let prev = latest.to_key_value(key, false);
        let event_prev = before_txn(ki, &latest, Some(&prev), self.begin);
        ki.push(&Version::tombstone(rev));
        let kv = KeyValue {
            key: key.to_vec(),
            mod_revision: rev.main,
            ..KeyValue::default()
        };
        self.events.push(Event {
            event_type: EventType::Delete,
            kv,
            prev_kv: event_prev,
            sub_revision: rev.sub,
        });
        Some(prev)
    }

    /// Ends the txn: the store's new current revision and the events.
    pub fn finish(self) -> (i64, Vec<Event>) {
        (self.view_revision(), self.events)
    }
}

/// An event's `prev_kv`: the key as it was before the txn (etcd reads it at
/// `mod_revision - 1`). That is `latest` unless this txn changed the key
/// already, which etcd allows only through a delete to the end of the
/// keyspace (`range_end = "\0"`) next to a put.
fn before_txn(
    ki: &KeyIndex,
    latest: &Version<'_>,
    latest_kv: Option<&KeyValue>,
    begin: i64,
) -> Option<KeyValue> {
    if latest.rev.main <= begin {
        return latest_kv.cloned();
    }
    ki.live_at(begin).map(|v| v.to_key_value(ki.key(), false))
}
