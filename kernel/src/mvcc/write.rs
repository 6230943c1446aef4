//! A write transaction: every change takes the same main revision and the
//! next sub revision (etcd `storeTxnWrite`). Reads inside it see its own
//! earlier writes.

use bytes::Bytes;

use super::index::Index;
use super::index::key_index::{KeyIndex, Version};
use super::kv::{Event, EventType, KeyValue, shared_parts};
use super::range::{ReadView, key_span};
use super::revision::Revision;

/// Changes under way at main revision `main`; [`WriteTxn::finish`] says
/// whether anything changed.
pub(crate) struct WriteTxn<'s> {
    index: &'s mut Index,
    /// The revision before this txn.
    begin: i64,
    compact_revision: i64,
    /// Whether events carry `prev_kv`.
    events_prev_kv: bool,
    events: Vec<Event>,
}

impl<'s> WriteTxn<'s> {
    /// Starts a txn on `index`, whose current revision is `begin`, with
    /// room for `events_capacity` events (a hint: 1 for a put, so the
    /// common single write allocates exactly one event). Events carry
    /// `prev_kv` when `events_prev_kv`.
    pub fn new(
        index: &'s mut Index,
        begin: i64,
        compact_revision: i64,
        events_prev_kv: bool,
        events_capacity: usize,
    ) -> WriteTxn<'s> {
        WriteTxn {
            index,
            begin,
            compact_revision,
            events_prev_kv,
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
        let (kv, prev, event_prev) = match self.index.get_mut(key) {
            Some(ki) => {
                let latest = ki.latest();
                assert!(
                    latest.rev < rev,
                    "mvcc write: put at {rev:?} not after the key's latest {:?}",
                    latest.rev
                );
                let live = Some(latest).filter(|v| !v.is_tombstone());
                // A put that creates the key (again) is a create event: etcd
                // sends no prev_kv with it (`isCreateEvent`), even when this
                // txn deleted a live value just before.
                let creates = live.is_none();
                if let Some(p) = live {
                    next.create_revision = p.create_revision;
                    next.version = p.version + 1;
                }
                // The event's prev_kv is `live` too unless this txn wrote
                // the key already (see `before_txn`).
                let unchanged = latest.rev.main <= self.begin;
                let prev = live.filter(|_| want_prev || (self.events_prev_kv && unchanged));
                let prev_value = prev.and_then(|p| p.value).unwrap_or_default();
                let [key, value, prev_value] = shared_parts([key, value, prev_value]);
                let prev = prev.map(|p| p.with_bytes(key.clone(), prev_value));
                let (prev, event_prev) = match (self.events_prev_kv, want_prev) {
                    (false, _) => (prev, None),
                    // Only the event wants it: hand it over, no clone.
                    (true, false) if unchanged => (None, prev),
                    (true, _) => {
                        let event_prev = before_txn(ki, &latest, prev.as_ref(), &key, self.begin);
                        (prev.filter(|_| want_prev), event_prev)
                    }
                };
                ki.push(&next);
                let event_prev = event_prev.filter(|_| !creates);
                (next.with_bytes(key, value), prev, event_prev)
            }
            None => {
                self.index.insert(KeyIndex::new(key, &next));
                let [key, value] = shared_parts([key, value]);
                (next.with_bytes(key, value), None, None)
            }
        };
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
        assert!(
            latest.rev < rev,
            "mvcc write: delete at {rev:?} not after the key's latest {:?}",
            latest.rev
        );
        let [key_bytes, value] = shared_parts([key, latest.value.unwrap_or_default()]);
        let prev = latest.with_bytes(key_bytes.clone(), value);
        let event_prev = match self.events_prev_kv {
            true => before_txn(ki, &latest, Some(&prev), &key_bytes, self.begin),
            false => None,
        };
        ki.push(&Version::tombstone(rev));
        let kv = KeyValue {
            key: key_bytes,
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
/// `mod_revision - 1`). That is `latest` (whose client view is
/// `latest_kv`, built if `None`) unless this txn changed the key already,
/// which etcd allows only through a delete to the end of the keyspace
/// (`range_end = "\0"`) next to a put.
fn before_txn(
    ki: &KeyIndex,
    latest: &Version<'_>,
    latest_kv: Option<&KeyValue>,
    key: &Bytes,
    begin: i64,
) -> Option<KeyValue> {
    if latest.rev.main > begin {
        return ki
            .live_at(begin)
            .map(|v| v.to_key_value(key.clone(), false));
    }
    if latest.is_tombstone() {
        return None;
    }
    Some(match latest_kv {
        Some(kv) => kv.clone(),
        None => latest.to_key_value(key.clone(), false),
    })
}

#[cfg(test)]
mod tests {
    use crate::mvcc::{
        DeleteRangeRequest, Event, PutRequest, RequestOp, Store, TxnRequest, WriteResult,
    };

    fn put(key: &str, value: &str, prev_kv: bool) -> PutRequest {
        PutRequest {
            key: key.into(),
            value: value.into(),
            prev_kv,
            ..PutRequest::default()
        }
    }

    fn without_prev(events: &[Event]) -> Vec<Event> {
        let strip = |e: &Event| Event {
            prev_kv: None,
            ..e.clone()
        };
        events.iter().map(strip).collect()
    }

    /// Runs `op` on both stores; the responses must be equal and the
    /// events equal but for `prev_kv`. Returns the full store's events.
    fn both<R: PartialEq + std::fmt::Debug>(
        stores: &mut [Store; 2],
        op: impl Fn(&mut Store) -> WriteResult<R>,
    ) -> Vec<Event> {
        let [full, lean] = stores;
        let (full, lean) = (op(full), op(lean));
        assert_eq!(full.response, lean.response);
        assert_eq!(without_prev(&full.events), lean.events);
        assert!(lean.events.iter().all(|e| e.prev_kv.is_none()));
        full.events
    }

    #[test]
    fn events_without_prev_kv_differ_only_there() {
        let mut lean = Store::new();
        lean.set_events_prev_kv(false);
        let mut stores = [Store::new(), lean];
        let ok = |_: i64| true;
        both(&mut stores, |s| {
            s.put(&put("a", "1", false), &ok).expect("written")
        });
        let events = both(&mut stores, |s| {
            s.put(&put("a", "2", true), &ok).expect("written")
        });
        assert_eq!(
            events[0].prev_kv.as_ref().map(|kv| &kv.value[..]),
            Some(&b"1"[..])
        );
        let events = both(&mut stores, |s| {
            s.put(&put("a", "3", false), &ok).expect("written")
        });
        assert_eq!(
            events[0].prev_kv.as_ref().map(|kv| &kv.value[..]),
            Some(&b"2"[..])
        );
        // A delete to the end of the keyspace, then a put of a deleted key,
        // in one txn: the delete's prev_kv is the key before the txn; the
        // put creates the key again, a create event without prev_kv (etcd
        // `isCreateEvent`).
        let txn = TxnRequest {
            success: vec![
                RequestOp::DeleteRange(DeleteRangeRequest {
                    key: b"a".to_vec(),
                    range_end: vec![0],
                    prev_kv: true,
                }),
                RequestOp::Put(put("a", "4", true)),
            ],
            ..TxnRequest::default()
        };
        let events = both(&mut stores, |s| s.txn(&txn, &ok).expect("written"));
        let prevs: Vec<_> = events
            .iter()
            .map(|e| e.prev_kv.clone().map(|kv| kv.value))
            .collect();
        assert_eq!(prevs, vec![Some("3".into()), None]);
        let events = both(&mut stores, |s| s.delete_keys(&[b"a".to_vec()]));
        assert_eq!(
            events[0].prev_kv.as_ref().map(|kv| &kv.value[..]),
            Some(&b"4"[..])
        );
        let [full, lean] = &stores;
        assert_eq!(full.encode_snapshot(), lean.encode_snapshot());
    }
}
