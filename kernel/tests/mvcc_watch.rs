//! Watch registry tests: history replay, filters, prev_kv, slow watchers
//! caught up from history, compaction cancels, and a property test that
//! every watcher sees exactly the events of its span from its start
//! revision, in order, whole revisions at a time, whatever the timing of
//! writes, polls, syncs and compactions.
//!
//! `PROPTEST_CASES=N` sets the number of random schedules (default 128).

use keel_kernel::mvcc::*;
use proptest::prelude::*;

fn no_leases(_: i64) -> bool {
    true
}

/// Applies a put and offers its events; returns the revision.
fn put(store: &mut Store, registry: &mut WatchRegistry, key: &str, value: &str) -> i64 {
    let req = PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    };
    let w = store.put(&req, &no_leases).expect("put");
    registry.notify(w.response.revision, &w.events);
    w.response.revision
}

fn delete(store: &mut Store, registry: &mut WatchRegistry, key: &str, range_end: &str) -> i64 {
    let req = DeleteRangeRequest {
        key: key.into(),
        range_end: range_end.into(),
        prev_kv: false,
    };
    let w = store.delete_range(&req).expect("delete");
    registry.notify(w.response.revision, &w.events);
    w.response.revision
}

fn watch(key: &str, range_end: &str, start_revision: i64) -> WatchCreate {
    WatchCreate {
        key: key.into(),
        range_end: range_end.into(),
        start_revision,
        ..Default::default()
    }
}

/// Syncs and polls until nothing is ready; returns the responses.
fn drain(
    store: &Store,
    registry: &mut WatchRegistry,
    id: WatchId,
    max_events: usize,
) -> Vec<WatchResponse> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        registry.sync(store);
        match registry.poll(id, max_events) {
            Some(r) => out.push(r),
            None if registry.is_synced(id) => break,
            None => {}
        }
    }
    out
}

fn summary(responses: &[WatchResponse]) -> Vec<(i64, EventType, String)> {
    responses
        .iter()
        .flat_map(|r| &r.events)
        .map(|e| {
            (
                e.kv.mod_revision,
                e.event_type,
                String::from_utf8_lossy(&e.kv.key).into_owned(),
            )
        })
        .collect()
}

/// etcd's header revisions: replayed events carry the store's revision at
/// replay time (`syncWatchers`' `curRev`), live ones their own revision.
#[test]
fn replayed_events_carry_the_store_revision_live_ones_their_own() {
    let mut store = Store::new();
    let mut registry = WatchRegistry::new(WatchLimits::default());
    put(&mut store, &mut registry, "a", "1"); // rev 2
    put(&mut store, &mut registry, "b", "1"); // rev 3
    let id = registry.create(&store, watch("a", "", 2)).expect("create");
    registry.sync(&store);
    let replayed = registry.poll(id, 100).expect("replayed");
    assert_eq!(summary(std::slice::from_ref(&replayed)).len(), 1);
    assert_eq!(
        replayed.revision, 3,
        "the store's revision, not the event's 2"
    );
    put(&mut store, &mut registry, "a", "2"); // rev 4, live
    let live = registry.poll(id, 100).expect("live");
    assert_eq!(live.revision, 4);
}

#[test]
fn replays_history_then_follows_live_writes() {
    let mut store = Store::new();
    let mut registry = WatchRegistry::new(WatchLimits::default());
    put(&mut store, &mut registry, "a", "1"); // rev 2
    put(&mut store, &mut registry, "b", "1"); // rev 3
    put(&mut store, &mut registry, "a", "2"); // rev 4
    delete(&mut store, &mut registry, "a", ""); // rev 5
    let id = registry.create(&store, watch("a", "", 3)).expect("create");
    assert_eq!(id, 0, "etcd assigns ids from 0");
    assert!(!registry.is_synced(id));
    assert_eq!(registry.poll(id, 100), None, "nothing before a sync");
    assert_eq!(registry.sync(&store), 0);
    put(&mut store, &mut registry, "a", "3"); // rev 6, live
    let got = drain(&store, &mut registry, id, 100);
    assert_eq!(
        summary(&got),
        vec![
            (4, EventType::Put, "a".into()),
            (5, EventType::Delete, "a".into()),
            (6, EventType::Put, "a".into())
        ]
    );
    assert!(
        got.iter()
            .flat_map(|r| &r.events)
            .all(|e| e.prev_kv.is_none()),
        "prev_kv only on request"
    );
    let from_now = registry.create(&store, watch("a", "", 0)).expect("create");
    assert_eq!(from_now, 1);
    assert!(registry.is_synced(from_now));
    assert_eq!(
        registry.create(
            &store,
            WatchCreate {
                watch_id: 1,
                ..watch("x", "", 0)
            }
        ),
        Err(WatchError::DuplicateId)
    );
}

#[test]
fn filters_and_prev_kv() {
    let mut store = Store::new();
    let mut registry = WatchRegistry::new(WatchLimits::default());
    let spec = |no_put, no_delete| WatchCreate {
        prev_kv: true,
        no_put,
        no_delete,
        ..watch("k", "l", 0)
    };
    let puts_only = registry.create(&store, spec(false, true)).expect("create");
    let deletes_only = registry.create(&store, spec(true, false)).expect("create");
    put(&mut store, &mut registry, "k1", "a");
    put(&mut store, &mut registry, "k1", "b");
    put(&mut store, &mut registry, "z", "out of range");
    delete(&mut store, &mut registry, "k", "l");
    let puts = registry.poll(puts_only, 100).expect("events");
    assert_eq!(
        summary(std::slice::from_ref(&puts)),
        vec![
            (2, EventType::Put, "k1".into()),
            (3, EventType::Put, "k1".into())
        ]
    );
    assert_eq!(
        puts.events[1].prev_kv.as_ref().map(|kv| kv.value.to_vec()),
        Some(b"a".to_vec())
    );
    let deletes = registry.poll(deletes_only, 100).expect("events");
    assert_eq!(
        summary(std::slice::from_ref(&deletes)),
        vec![(5, EventType::Delete, "k1".into())]
    );
    assert_eq!(
        deletes.events[0]
            .prev_kv
            .as_ref()
            .map(|kv| kv.value.to_vec()),
        Some(b"b".to_vec())
    );
    assert!(registry.cancel(puts_only));
    assert!(!registry.cancel(puts_only));
}

#[test]
fn slow_watcher_is_caught_up_from_history_without_losing_events() {
    let mut store = Store::new();
    let limits = WatchLimits {
        max_watchers: 10,
        max_pending_events: 4,
        max_sync_events: 3,
    };
    let mut registry = WatchRegistry::new(limits);
    let id = registry
        .create(&store, watch("k", "\0", 0))
        .expect("create");
    let mut expected = Vec::new();
    for i in 0..50 {
        let key = format!("k{}", i % 7);
        let rev = put(&mut store, &mut registry, &key, "v");
        expected.push((rev, EventType::Put, key));
    }
    assert!(!registry.is_synced(id), "the queue overflowed");
    let got = drain(&store, &mut registry, id, 2);
    assert_eq!(summary(&got), expected);
    assert!(registry.is_synced(id));
    // Whole revisions per response: a txn's events stay together.
    let txn = TxnRequest {
        success: (0..5)
            .map(|i| {
                RequestOp::Put(PutRequest {
                    key: format!("k{i}").into(),
                    ..Default::default()
                })
            })
            .collect(),
        ..Default::default()
    };
    let w = store.txn(&txn, &no_leases).expect("txn");
    registry.notify(w.response.revision, &w.events);
    let response = registry.poll(id, 1).expect("events");
    assert_eq!(response.events.len(), 5);
    assert_eq!(response.revision, w.response.revision);
}

#[test]
fn compaction_cancels_watchers_that_need_compacted_history() {
    let mut store = Store::new();
    let mut registry = WatchRegistry::new(WatchLimits {
        max_watchers: 10,
        max_pending_events: 1,
        max_sync_events: 1,
    });
    for i in 0..6 {
        put(&mut store, &mut registry, "a", &i.to_string()); // revs 2..=7
    }
    store
        .compact(&CompactionRequest {
            revision: 5,
            physical: false,
        })
        .expect("compact");
    let old = registry.create(&store, watch("a", "", 3)).expect("create");
    let at_compaction = registry.create(&store, watch("a", "", 5)).expect("create");
    let canceled = registry.poll(old, 10).expect("cancel notice");
    assert!(canceled.canceled && canceled.compact_revision == 5 && canceled.events.is_empty());
    assert_eq!(
        canceled.revision, 0,
        "etcd's compaction notice has no revision"
    );
    assert_eq!(registry.poll(old, 10), None, "removed after the notice");
    let got = drain(&store, &mut registry, at_compaction, 10);
    assert_eq!(
        summary(&got).iter().map(|e| e.0).collect::<Vec<_>>(),
        vec![5, 6, 7]
    );
    // A watcher left behind by compaction while unsynced is canceled too.
    let behind = registry.create(&store, watch("a", "", 6)).expect("create");
    store
        .compact(&CompactionRequest {
            revision: 7,
            physical: false,
        })
        .expect("compact");
    registry.sync(&store);
    let notice = registry.poll(behind, 10).expect("notice");
    assert!(notice.canceled && notice.compact_revision == 7);
    assert_eq!(
        registry
            .create(&store, watch("a", "", 0))
            .map(|_| registry.len()),
        Ok(2)
    );
}

// ---------------------------------------------------------------------------
// Property: exact delivery under random schedules.

#[derive(Clone, Debug)]
enum Step {
    Put(u8),
    DeleteRange(u8, u8),
    Watch {
        key: u8,
        end: u8,
        start_back: i64,
        no_put: bool,
        no_delete: bool,
    },
    Poll(usize, usize),
    /// A server whose stream missed applied events rewinds the watcher to
    /// just after the last event it took.
    Rewind(usize),
    Sync,
    Compact(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..6).prop_map(Step::Put),
        1 => (0u8..6, 0u8..7).prop_map(|(k, e)| Step::DeleteRange(k, e)),
        2 => (0u8..6, 0u8..7, 0i64..8, prop::bool::weighted(0.2), prop::bool::weighted(0.2))
            .prop_map(|(key, end, start_back, no_put, no_delete)| Step::Watch { key, end, start_back, no_put, no_delete }),
        4 => (0usize..8, 1usize..4).prop_map(|(w, m)| Step::Poll(w, m)),
        1 => (0usize..8).prop_map(Step::Rewind),
        2 => Just(Step::Sync),
        1 => (0i64..6).prop_map(Step::Compact),
    ]
}

fn key_of(k: u8) -> Vec<u8> {
    vec![b'a' + k]
}

/// `end` 0 = the key alone, 6 = to the end, else the key `k + end`.
fn end_of(k: u8, end: u8) -> Vec<u8> {
    match end {
        0 => vec![],
        6 => vec![0],
        e => vec![b'a' + k + e],
    }
}

struct Tracked {
    id: WatchId,
    spec: WatchCreate,
    got: Vec<Event>,
    /// The store's compacted revision when each event of `got` was polled.
    compacted_when_got: Vec<i64>,
    canceled_at: Option<i64>,
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn every_watcher_gets_exactly_its_events(steps in prop::collection::vec(step(), 1..120)) {
        let mut store = Store::new();
        let limits = WatchLimits { max_watchers: 64, max_pending_events: 3, max_sync_events: 2 };
        let mut registry = WatchRegistry::new(limits);
        let mut log: Vec<Event> = Vec::new();
        let mut tracked: Vec<Tracked> = Vec::new();
        let mut n = 0u32;
        for step in &steps {
            match step {
                Step::Put(k) => {
                    n += 1;
                    let req = PutRequest { key: key_of(*k), value: n.to_be_bytes().to_vec(), ..Default::default() };
                    let w = store.put(&req, &no_leases).expect("put");
                    registry.notify(w.response.revision, &w.events);
                    log.extend(w.events);
                }
                Step::DeleteRange(k, e) => {
                    let req = DeleteRangeRequest { key: key_of(*k), range_end: end_of(*k, *e), prev_kv: false };
                    let w = store.delete_range(&req).expect("delete");
                    registry.notify(w.response.revision, &w.events);
                    log.extend(w.events);
                }
                Step::Watch { key, end, start_back, no_put, no_delete } => {
                    let start_revision = if *start_back == 0 { 0 } else { (store.current_revision() + 1 - start_back).max(1) };
                    let spec = WatchCreate {
                        key: key_of(*key), range_end: end_of(*key, *end), start_revision,
                        prev_kv: true, no_put: *no_put, no_delete: *no_delete, watch_id: 0,
                    };
                    let id = registry.create(&store, spec.clone()).expect("create");
                    let spec = WatchCreate { start_revision: if start_revision == 0 { store.current_revision() + 1 } else { start_revision }, ..spec };
                    tracked.push(Tracked { id, spec, got: Vec::new(), compacted_when_got: Vec::new(), canceled_at: None });
                }
                Step::Poll(w, max) => {
                    if let Some(t) = tracked.get_mut(*w) {
                        let revisions = (store.compact_revision(), store.current_revision());
                        take(&mut registry, t, *max, revisions)?;
                    }
                }
                Step::Rewind(w) => {
                    if let Some(t) = tracked.get(*w) {
                        let next = t.got.last().map_or(t.spec.start_revision, |e| e.kv.mod_revision + 1);
                        prop_assert_eq!(registry.rewind(&store, t.id, next), t.canceled_at.is_none());
                    }
                }
                Step::Sync => {
                    registry.sync(&store);
                }
                Step::Compact(back) => {
                    let rev = store.current_revision() - back;
                    if rev > store.compact_revision() && rev >= 1 {
                        store.compact(&CompactionRequest { revision: rev, physical: false }).expect("compact");
                    }
                }
            }
        }
        for t in &mut tracked {
            for _ in 0..10_000 {
                registry.sync(&store);
                let before = t.got.len();
                let revisions = (store.compact_revision(), store.current_revision());
                take(&mut registry, t, 2, revisions)?;
                if t.canceled_at.is_some() || (t.got.len() == before && registry.is_synced(t.id)) {
                    break;
                }
            }
            prop_assert!(t.canceled_at.is_some() || registry.is_synced(t.id));
            let want: Vec<Event> = log
                .iter()
                .filter(|e| e.kv.mod_revision >= t.spec.start_revision && in_span(&e.kv.key, &t.spec))
                .filter(|e| !(t.spec.no_put && e.event_type == EventType::Put))
                .filter(|e| !(t.spec.no_delete && e.event_type == EventType::Delete))
                .cloned()
                .collect();
            // An event replayed at or below the compacted revision of the
            // moment it was taken has lost its previous version (etcd sends
            // no prev_kv then); one taken before that compaction has not.
            let got: Vec<Event> = t
                .got
                .iter()
                .zip(&t.compacted_when_got)
                .zip(&want)
                .map(|((g, compacted), w)| {
                    let lost = g.prev_kv.is_none() && w.kv.mod_revision <= *compacted;
                    if lost { Event { prev_kv: None, ..w.clone() } } else { w.clone() }
                })
                .collect();
            prop_assert_eq!(&t.got[..got.len()], &got[..]);
            match t.canceled_at {
                None => prop_assert_eq!(t.got.len(), want.len()),
                Some(compacted) => {
                    // A prefix of the stream, then the cancel; the rest was compacted.
                    let next = t.got.last().map_or(t.spec.start_revision, |e| e.kv.mod_revision + 1);
                    prop_assert!(next < compacted);
                }
            }
        }
    }
}

fn in_span(key: &[u8], spec: &WatchCreate) -> bool {
    match spec.range_end.as_slice() {
        [] => key == spec.key.as_slice(),
        [0] => key >= spec.key.as_slice(),
        end => key >= spec.key.as_slice() && key < end,
    }
}

/// Polls once; checks the response shape and records what came.
fn take(
    registry: &mut WatchRegistry,
    t: &mut Tracked,
    max: usize,
    (compacted, store_revision): (i64, i64),
) -> Result<(), TestCaseError> {
    if t.canceled_at.is_some() {
        return Ok(());
    }
    let Some(r) = registry.poll(t.id, max) else {
        return Ok(());
    };
    prop_assert_eq!(r.watch_id, t.id);
    if r.canceled {
        t.canceled_at = Some(r.compact_revision);
        return Ok(());
    }
    prop_assert!(!r.events.is_empty());
    let revisions: Vec<i64> = r.events.iter().map(|e| e.kv.mod_revision).collect();
    prop_assert!(
        revisions.windows(2).all(|w| w[0] <= w[1]),
        "ordered: {:?}",
        revisions
    );
    // Atomic: a revision is never split across responses, so this response
    // starts after the last revision of the previous one (which also makes
    // delivery unique).
    let previous = t.got.last().map(|e| e.kv.mod_revision);
    prop_assert!(
        previous.is_none_or(|p| p < revisions[0]),
        "revision {:?} split or repeated: next response starts at {}",
        previous,
        revisions[0]
    );
    // Header: the last event's revision, or (replayed events, etcd's
    // `curRev`) a later revision the store had reached.
    prop_assert!(r.revision >= revisions[revisions.len() - 1]);
    prop_assert!(r.revision <= store_revision);
    // Bounded: a new revision starts only while fewer than `max` events are
    // taken; only the last revision may carry the response past `max`.
    let last = revisions[revisions.len() - 1];
    let before_last = revisions.iter().filter(|rev| **rev != last).count();
    prop_assert!(
        before_last == 0 || before_last < max,
        "{} events before the last revision, max {}",
        before_last,
        max
    );
    t.compacted_when_got
        .extend(r.events.iter().map(|_| compacted));
    t.got.extend(r.events);
    Ok(())
}

/// A txn that deletes a key and puts it again creates it anew: etcd sends
/// no `prev_kv` with a create event (`create_revision == mod_revision`,
/// `isCreateEvent` in etcd's `v3rpc/watch.go`), neither live nor replayed
/// from history.
#[test]
fn a_key_deleted_and_put_again_in_one_txn_is_a_create_without_prev_kv() {
    let mut store = Store::new();
    let mut live = WatchRegistry::new(WatchLimits::default());
    let watch_prev = |start_revision| WatchCreate {
        prev_kv: true,
        ..watch("c", "", start_revision)
    };
    let id = live.create(&store, watch_prev(0)).expect("create");
    put(&mut store, &mut live, "c", "1");
    let txn = TxnRequest {
        success: vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: b"c".to_vec(),
                range_end: vec![0],
                prev_kv: false,
            }),
            RequestOp::Put(PutRequest {
                key: b"c".to_vec(),
                value: b"2".to_vec(),
                ..Default::default()
            }),
        ],
        ..Default::default()
    };
    let w = store.txn(&txn, &no_leases).expect("txn");
    live.notify(w.response.revision, &w.events);
    let mut replay = WatchRegistry::new(WatchLimits::default());
    let replayed = replay.create(&store, watch_prev(1)).expect("create");
    for (registry, id) in [(&mut live, id), (&mut replay, replayed)] {
        let events: Vec<Event> = drain(&store, registry, id, 100)
            .into_iter()
            .flat_map(|r| r.events)
            .collect();
        let shape: Vec<(EventType, bool)> = events
            .iter()
            .map(|e| (e.event_type, e.prev_kv.is_some()))
            .collect();
        let want = vec![
            (EventType::Put, false),
            (EventType::Delete, true),
            (EventType::Put, false),
        ];
        assert_eq!(shape, want, "{events:?}");
    }
}
