//! Model-based tests of the MVCC store: random sequences of put, delete,
//! txn, compact, range and history reads run against the store and against
//! a plain reference model (a map of key -> full revision history), and
//! every answer, error and event must agree. Also: snapshot round trips
//! give identical answers to every range and hash.
//!
//! `PROPTEST_CASES=N` raises the number of cases (default 256 sequences).

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use keel_kernel::mvcc::*;
use proptest::prelude::*;

/// Leases 1 and 2 exist, 3 does not.
fn lease_exists(lease: i64) -> bool {
    lease != 3
}

const MAX_TXN_OPS: usize = 8;

// ---------------------------------------------------------------------------
// The reference model.

/// One change to a key: the new key-value, or `None` for a delete.
#[derive(Clone, Debug)]
struct Change {
    main: i64,
    sub: i64,
    kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default)]
struct Model {
    history: BTreeMap<Vec<u8>, Vec<Change>>,
    revision: i64,
    compacted: i64,
    /// Changes of the write under way, in order.
    pending: Vec<Event>,
}

fn in_span(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    match end {
        [] => key == start,
        [0] => key >= start,
        _ => key >= start && key < end,
    }
}

impl Model {
    fn new() -> Model {
        Model {
            revision: 1,
            compacted: -1,
            ..Model::default()
        }
    }

    fn live(&self, key: &[u8], at: i64) -> Option<KeyValue> {
        let changes = self.history.get(key)?;
        changes.iter().rev().find(|c| c.main <= at)?.kv.clone()
    }

    fn live_span(&self, start: &[u8], end: &[u8], at: i64) -> Vec<KeyValue> {
        self.history
            .keys()
            .filter(|k| in_span(k, start, end))
            .filter_map(|k| self.live(k, at))
            .collect()
    }

    fn view_revision(&self) -> i64 {
        self.revision + i64::from(!self.pending.is_empty())
    }

    fn range(&self, r: &RangeRequest) -> Result<RangeResponse, MvccError> {
        let current = self.view_revision();
        if r.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let at = if r.revision <= 0 { current } else { r.revision };
        if at > current {
            return Err(MvccError::FutureRevision);
        }
        if at < self.compacted {
            return Err(MvccError::Compacted);
        }
        let mut kvs = self.live_span(&r.key, &r.range_end, at);
        let count = kvs.len() as i64;
        if r.count_only {
            return Ok(RangeResponse {
                revision: current,
                kvs: vec![],
                more: false,
                count,
            });
        }
        let filters = [
            r.min_mod_revision,
            r.max_mod_revision,
            r.min_create_revision,
            r.max_create_revision,
        ];
        if r.sort_order == SortOrder::None && filters == [0; 4] && r.limit > 0 {
            kvs.truncate(r.limit as usize + 1);
        }
        kvs.retain(|kv| {
            (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
                && (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
                && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
                && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
        });
        let field = |kv: &KeyValue| -> (Vec<u8>, i64) {
            match r.sort_target {
                SortTarget::Key => (kv.key.to_vec(), 0),
                SortTarget::Version => (vec![], kv.version),
                SortTarget::Create => (vec![], kv.create_revision),
                SortTarget::Mod => (vec![], kv.mod_revision),
                SortTarget::Value => (kv.value.to_vec(), 0),
            }
        };
        match (r.sort_order, r.sort_target) {
            (SortOrder::Descend, _) => kvs.sort_by_key(|kv| std::cmp::Reverse(field(kv))),
            (_, SortTarget::Key) => {}
            _ => kvs.sort_by_key(field),
        }
        let more = r.limit > 0 && kvs.len() > r.limit as usize;
        if more {
            kvs.truncate(r.limit as usize);
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        Ok(RangeResponse {
            revision: current,
            kvs,
            more,
            count,
        })
    }

    fn record(&mut self, key: &[u8], kv: Option<KeyValue>) {
        let main = self.revision + 1;
        // Events carry the key as it was before the write (etcd reads
        // prev_kv at mod_revision - 1).
        let prev = self.live(key, self.revision);
        let sub = self.pending.len() as i64;
        let event = match &kv {
            Some(kv) => Event {
                event_type: EventType::Put,
                kv: kv.clone(),
                prev_kv: prev.filter(|_| !is_create(kv)),
                sub_revision: sub,
            },
            None => Event {
                event_type: EventType::Delete,
                kv: KeyValue {
                    key: Bytes::copy_from_slice(key),
                    mod_revision: main,
                    ..Default::default()
                },
                prev_kv: prev,
                sub_revision: sub,
            },
        };
        self.pending.push(event);
        self.history
            .entry(key.to_vec())
            .or_default()
            .push(Change { main, sub, kv });
    }

    fn do_put(&mut self, key: &[u8], value: Vec<u8>, lease: i64) -> Option<KeyValue> {
        let main = self.revision + 1;
        let prev = self.live(key, main);
        let (create_revision, version) = prev
            .as_ref()
            .map_or((main, 1), |p| (p.create_revision, p.version + 1));
        let kv = KeyValue {
            key: Bytes::copy_from_slice(key),
            create_revision,
            mod_revision: main,
            version,
            value: value.into(),
            lease,
        };
        self.record(key, Some(kv));
        prev
    }

    fn do_delete(&mut self, key: &[u8], end: &[u8]) -> Vec<KeyValue> {
        let at = self.view_revision();
        let gone = self.live_span(key, end, at);
        for kv in &gone {
            self.record(&kv.key, None);
        }
        gone
    }

    fn finish(&mut self) -> Vec<Event> {
        if !self.pending.is_empty() {
            self.revision += 1;
        }
        std::mem::take(&mut self.pending)
    }

    fn put_checks(&self, p: &PutRequest, state: bool) -> Result<(), MvccError> {
        if p.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        if p.ignore_value && !p.value.is_empty() {
            return Err(MvccError::ValueProvided);
        }
        if p.ignore_lease && p.lease != 0 {
            return Err(MvccError::LeaseProvided);
        }
        if state && (p.ignore_value || p.ignore_lease) && self.live(&p.key, self.revision).is_none()
        {
            return Err(MvccError::KeyNotFound);
        }
        if state && p.lease != 0 && !lease_exists(p.lease) {
            return Err(MvccError::LeaseNotFound);
        }
        Ok(())
    }

    fn exec_put(&mut self, p: &PutRequest) -> PutResponse {
        let old = self.live(&p.key, self.view_revision());
        let value = if p.ignore_value {
            old.as_ref().map(|o| o.value.to_vec()).unwrap_or_default()
        } else {
            p.value.clone()
        };
        let lease = if p.ignore_lease {
            old.as_ref().map_or(0, |o| o.lease)
        } else {
            p.lease
        };
        let prev = self.do_put(&p.key, value, lease);
        PutResponse {
            revision: self.revision + 1,
            prev_kv: prev.filter(|_| p.prev_kv),
        }
    }

    fn put(&mut self, p: &PutRequest) -> Result<(PutResponse, Vec<Event>), MvccError> {
        self.put_checks(p, true)?;
        let response = self.exec_put(p);
        Ok((response, self.finish()))
    }

    fn exec_delete(&mut self, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let gone = self.do_delete(&d.key, &d.range_end);
        let deleted = gone.len() as i64;
        DeleteRangeResponse {
            revision: self.view_revision(),
            deleted,
            prev_kvs: if d.prev_kv { gone } else { vec![] },
        }
    }

    fn delete(
        &mut self,
        d: &DeleteRangeRequest,
    ) -> Result<(DeleteRangeResponse, Vec<Event>), MvccError> {
        if d.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        let response = self.exec_delete(d);
        Ok((response, self.finish()))
    }

    fn compare(&self, c: &Compare) -> bool {
        let kvs = self.live_span(&c.key, &c.range_end, self.revision);
        if kvs.is_empty() {
            if matches!(c.target, CompareTarget::Value(_)) {
                return false;
            }
            return compare_kv(c, &KeyValue::default());
        }
        kvs.iter().all(|kv| compare_kv(c, kv))
    }

    fn shape(&self, t: &TxnRequest, max_ops: usize) -> Result<(), MvccError> {
        let opc = t.compare.len().max(t.success.len()).max(t.failure.len());
        if opc > max_ops {
            return Err(MvccError::TooManyOps);
        }
        if t.compare.iter().any(|c| c.key.is_empty()) {
            return Err(MvccError::EmptyKey);
        }
        for op in t.success.iter().chain(&t.failure) {
            match op {
                RequestOp::Range(r) if r.key.is_empty() => return Err(MvccError::EmptyKey),
                RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(MvccError::EmptyKey),
                RequestOp::Put(p) => self.put_checks(p, false)?,
                RequestOp::Txn(n) => self.shape(n, max_ops - opc)?,
                _ => {}
            }
        }
        Ok(())
    }

    fn branch<'t>(&self, t: &'t TxnRequest) -> (bool, &'t [RequestOp]) {
        let ok = t.compare.iter().all(|c| self.compare(c));
        (ok, if ok { &t.success } else { &t.failure })
    }

    /// The pre-checks of the chosen path. `wiped` holds the starts of the
    /// deletes to the end of the keyspace run so far: an ignore_* put on a
    /// key they removed is refused.
    fn state_checks(&self, t: &TxnRequest, wiped: &mut Vec<Vec<u8>>) -> Result<(), MvccError> {
        for op in self.branch(t).1 {
            match op {
                RequestOp::Put(p) => {
                    self.put_checks(p, true)?;
                    if (p.ignore_value || p.ignore_lease) && wiped.iter().any(|w| w <= &p.key) {
                        return Err(MvccError::KeyNotFound);
                    }
                }
                RequestOp::Range(r) if r.revision > self.revision => {
                    return Err(MvccError::FutureRevision);
                }
                RequestOp::Range(r) if r.revision > 0 && r.revision < self.compacted => {
                    return Err(MvccError::Compacted);
                }
                RequestOp::Txn(n) => self.state_checks(n, wiped)?,
                RequestOp::DeleteRange(d) if d.range_end == [0] => wiped.push(d.key.clone()),
                _ => {}
            }
        }
        Ok(())
    }

    fn exec_txn(&mut self, t: &TxnRequest) -> TxnResponse {
        let (succeeded, ops) = self.branch(t);
        let mut responses = Vec::new();
        for op in ops {
            responses.push(match op {
                RequestOp::Range(r) => ResponseOp::Range(self.range(r).expect("checked")),
                RequestOp::Put(p) => ResponseOp::Put(self.exec_put(p)),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.exec_delete(d)),
                RequestOp::Txn(n) => ResponseOp::Txn(self.exec_txn(n)),
            });
        }
        TxnResponse {
            revision: self.view_revision(),
            succeeded,
            responses,
        }
    }

    fn txn(&mut self, t: &TxnRequest) -> Result<(TxnResponse, Vec<Event>), MvccError> {
        self.shape(t, MAX_TXN_OPS)?;
        duplicates(&t.success)?;
        duplicates(&t.failure)?;
        self.state_checks(t, &mut Vec::new())?;
        let response = self.exec_txn(t);
        Ok((response, self.finish()))
    }

    fn compact(&mut self, revision: i64) -> Result<CompactionResponse, MvccError> {
        if revision <= self.compacted {
            return Err(MvccError::Compacted);
        }
        if revision > self.revision {
            return Err(MvccError::FutureRevision);
        }
        self.compacted = revision;
        Ok(CompactionResponse {
            revision: self.revision,
        })
    }

    /// Every change with main revision >= from in span, with prev_kv when
    /// the previous version survives compaction.
    fn history(&self, start: &[u8], end: &[u8], from: i64) -> Vec<Event> {
        let mut events = Vec::new();
        for (key, changes) in self.history.iter().filter(|(k, _)| in_span(k, start, end)) {
            // Of the changes below the compacted revision only a key's
            // newest survives, and only if it is a put.
            let newest_compacted = changes.iter().rposition(|c| c.main < self.compacted);
            for (i, c) in changes.iter().enumerate() {
                let survives =
                    c.main >= self.compacted || (Some(i) == newest_compacted && c.kv.is_some());
                if c.main < from || !survives {
                    continue;
                }
                let prev_kv = if c.main > self.compacted {
                    self.live(key, c.main - 1)
                } else {
                    None
                };
                events.push(match &c.kv {
                    Some(kv) => Event {
                        event_type: EventType::Put,
                        kv: kv.clone(),
                        prev_kv: prev_kv.filter(|_| !is_create(kv)),
                        sub_revision: c.sub,
                    },
                    None => Event {
                        event_type: EventType::Delete,
                        kv: KeyValue {
                            key: key.clone().into(),
                            mod_revision: c.main,
                            ..Default::default()
                        },
                        prev_kv,
                        sub_revision: c.sub,
                    },
                });
            }
        }
        events.sort_by_key(|e| (e.kv.mod_revision, e.sub_revision));
        events
    }
}

fn compare_kv(c: &Compare, kv: &KeyValue) -> bool {
    let ord = match &c.target {
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Create(v) => kv.create_revision.cmp(v),
        CompareTarget::Mod(v) => kv.mod_revision.cmp(v),
        CompareTarget::Lease(v) => kv.lease.cmp(v),
        CompareTarget::Value(v) => kv.value[..].cmp(v),
    };
    match c.result {
        CompareResult::Equal => ord.is_eq(),
        CompareResult::NotEqual => ord.is_ne(),
        CompareResult::Greater => ord.is_gt(),
        CompareResult::Less => ord.is_lt(),
    }
}

/// Deleted spans: `(key, range_end)`.
type Spans = Vec<(Vec<u8>, Vec<u8>)>;

/// etcd's duplicate-key rule, written with sets.
fn duplicates(ops: &[RequestOp]) -> Result<(BTreeSet<Vec<u8>>, Spans), MvccError> {
    let hit = |dels: &[(Vec<u8>, Vec<u8>)], k: &[u8]| {
        dels.iter().any(|(s, e)| {
            if e.is_empty() {
                k == s.as_slice()
            } else {
                k >= s.as_slice() && k < e.as_slice()
            }
        })
    };
    let mut dels: Spans = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some((d.key.clone(), d.range_end.clone())),
            _ => None,
        })
        .collect();
    let mut puts = BTreeSet::new();
    for op in ops {
        if let RequestOp::Txn(t) = op {
            let (then_puts, then_dels) = duplicates(&t.success)?;
            let (else_puts, else_dels) = duplicates(&t.failure)?;
            for k in &then_puts {
                if puts.contains(k) || hit(&dels, k) {
                    return Err(MvccError::DuplicateKey);
                }
                puts.insert(k.clone());
            }
            for k in &else_puts {
                if (puts.contains(k) && !then_puts.contains(k)) || hit(&dels, k) {
                    return Err(MvccError::DuplicateKey);
                }
                puts.insert(k.clone());
            }
            dels.extend(then_dels);
            dels.extend(else_dels);
        }
    }
    for op in ops {
        if let RequestOp::Put(p) = op {
            if puts.contains(&p.key) || hit(&dels, &p.key) {
                return Err(MvccError::DuplicateKey);
            }
            puts.insert(p.key.clone());
        }
    }
    Ok((puts, dels))
}

// ---------------------------------------------------------------------------
// Generators. Revisions are drawn as small numbers; `Rev` maps them onto
// the state's range when the operation runs.

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        60 => prop::sample::select(vec![b"a".to_vec(), b"b".to_vec(), b"ba".to_vec(), b"c".to_vec(), b"d".to_vec()]),
        1 => Just(vec![]),
        2 => Just(vec![0]),
    ]
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => Just(vec![]),
        1 => Just(vec![0]),
        3 => prop::sample::select(vec![b"b".to_vec(), b"c".to_vec(), b"e".to_vec(), b"a".to_vec()]),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop::sample::select(vec![vec![], b"x".to_vec(), b"y".to_vec(), b"yy".to_vec()])
}

fn small_rev() -> impl Strategy<Value = i64> {
    prop_oneof![3 => Just(0), 4 => 1i64..14, 1 => Just(-1)]
}

fn sort_order() -> impl Strategy<Value = SortOrder> {
    prop::sample::select(vec![SortOrder::None, SortOrder::Ascend, SortOrder::Descend])
}

fn sort_target() -> impl Strategy<Value = SortTarget> {
    prop::sample::select(vec![
        SortTarget::Key,
        SortTarget::Version,
        SortTarget::Create,
        SortTarget::Mod,
        SortTarget::Value,
    ])
}

fn range_req() -> impl Strategy<Value = RangeRequest> {
    let base = (
        key(),
        range_end(),
        0i64..4,
        small_rev(),
        sort_order(),
        sort_target(),
    );
    let flags = (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.15),
    );
    let filter = || prop_oneof![4 => Just(0i64), 1 => 1i64..30];
    let filters = (filter(), filter(), filter(), filter());
    (base, flags, filters).prop_map(
        |(
            (key, range_end, limit, revision, sort_order, sort_target),
            (serializable, keys_only, count_only),
            f,
        )| {
            RangeRequest {
                key,
                range_end,
                limit,
                revision,
                sort_order,
                sort_target,
                serializable,
                keys_only,
                count_only,
                min_mod_revision: f.0,
                max_mod_revision: f.1,
                min_create_revision: f.2,
                max_create_revision: f.3,
            }
        },
    )
}

fn put_req() -> impl Strategy<Value = PutRequest> {
    let flags = (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.8),
    );
    (
        key(),
        value(),
        prop_oneof![3 => Just(0i64), 1 => 1i64..4],
        flags,
    )
        .prop_map(
            |(key, mut value, mut lease, (prev_kv, ignore_value, ignore_lease, obey))| {
                // Mostly well-formed ignore_* requests, sometimes not.
                if obey && ignore_value {
                    value.clear();
                }
                if obey && ignore_lease {
                    lease = 0;
                }
                PutRequest {
                    key,
                    value,
                    lease,
                    prev_kv,
                    ignore_value,
                    ignore_lease,
                }
            },
        )
}

fn delete_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..20).prop_map(CompareTarget::Create),
        (0i64..20).prop_map(CompareTarget::Mod),
        value().prop_map(CompareTarget::Value),
        (0i64..3).prop_map(CompareTarget::Lease),
    ];
    let result = prop::sample::select(vec![
        CompareResult::Equal,
        CompareResult::NotEqual,
        CompareResult::Greater,
        CompareResult::Less,
    ]);
    (
        result,
        target,
        key(),
        prop_oneof![3 => Just(vec![]), 1 => range_end()],
    )
        .prop_map(|(result, target, key, range_end)| Compare {
            result,
            target,
            key,
            range_end,
        })
}

fn request_op() -> impl Strategy<Value = RequestOp> {
    let leaf = prop_oneof![
        1 => range_req().prop_map(RequestOp::Range),
        3 => put_req().prop_map(RequestOp::Put),
        1 => delete_req().prop_map(RequestOp::DeleteRange),
    ];
    leaf.prop_recursive(2, 12, 3, |inner| {
        (
            prop::collection::vec(compare(), 0..3),
            prop::collection::vec(inner.clone(), 0..4),
            prop::collection::vec(inner, 0..3),
        )
            .prop_map(|(compare, success, failure)| {
                RequestOp::Txn(TxnRequest {
                    compare,
                    success,
                    failure,
                })
            })
    })
}

fn txn_req() -> impl Strategy<Value = TxnRequest> {
    (
        prop::collection::vec(compare(), 0..3),
        prop::collection::vec(request_op(), 0..4),
        prop::collection::vec(request_op(), 0..3),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

#[derive(Clone, Debug)]
enum Op {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Txn(TxnRequest),
    Compact(i64),
    Range(RangeRequest),
    History(Vec<u8>, Vec<u8>, i64, usize),
    LeaseRevoke(Vec<Vec<u8>>),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => put_req().prop_map(Op::Put),
        2 => delete_req().prop_map(Op::Delete),
        3 => txn_req().prop_map(Op::Txn),
        1 => (0i64..40).prop_map(Op::Compact),
        5 => range_req().prop_map(Op::Range),
        1 => (key(), range_end(), 0i64..40, 1usize..5).prop_map(|(k, e, f, m)| Op::History(k, e, f, m)),
        1 => prop::collection::vec(key(), 0..4).prop_map(Op::LeaseRevoke),
    ]
}

// ---------------------------------------------------------------------------
// Running.

fn run(store: &mut Store, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Put(p) => {
            let got = store.put(p, &lease_exists).map(|w| (w.response, w.events));
            prop_assert_eq!(got, model.put(p));
        }
        Op::Delete(d) => {
            let got = store.delete_range(d).map(|w| (w.response, w.events));
            prop_assert_eq!(got, model.delete(d));
        }
        Op::Txn(t) => {
            let got = store.txn(t, &lease_exists).map(|w| (w.response, w.events));
            prop_assert_eq!(got, model.txn(t));
        }
        Op::Compact(pick) => {
            let rev = &relative(model, *pick);
            let req = CompactionRequest {
                revision: *rev,
                physical: false,
            };
            prop_assert_eq!(store.compact(&req), model.compact(*rev));
        }
        Op::Range(r) => {
            let mut r = r.clone();
            if r.revision > 0 {
                r.revision = relative(model, r.revision);
            }
            prop_assert_eq!(store.range(&r), model.range(&r));
        }
        Op::History(key, end, pick, max) => {
            check_history(store, model, key, end, relative(model, *pick), *max)?;
        }
        Op::LeaseRevoke(keys) => {
            let got = store.delete_keys(keys);
            let mut sorted: Vec<Vec<u8>> = keys.iter().filter(|k| !k.is_empty()).cloned().collect();
            sorted.sort();
            sorted.dedup();
            for key in &sorted {
                model.do_delete(key, &[]);
            }
            let events = model.finish();
            prop_assert_eq!(
                got,
                WriteResult {
                    response: model.revision,
                    events
                }
            );
        }
    }
    prop_assert_eq!(store.current_revision(), model.revision);
    prop_assert_eq!(store.compact_revision(), model.compacted);
    Ok(())
}

/// Maps a drawn number onto `[compacted - 1, revision + 1]`, so that
/// revision arguments mostly hit the interesting range.
fn relative(model: &Model, pick: i64) -> i64 {
    let low = model.compacted.max(1) - 1;
    low + pick.rem_euclid(model.revision + 3 - low)
}

/// Replays history in batches of about `max` events and checks it against
/// the model's full list.
fn check_history(
    store: &Store,
    model: &Model,
    key: &[u8],
    end: &[u8],
    from: i64,
    max: usize,
) -> Result<(), TestCaseError> {
    let mut next = from;
    let mut got = Vec::new();
    for _ in 0..1000 {
        match store.history(key, end, next, max) {
            Err(e) => {
                prop_assert_eq!(e, MvccError::Compacted);
                prop_assert!(next < model.compacted);
                return Ok(());
            }
            Ok(batch) => {
                prop_assert!(
                    batch.next_revision > next || batch.next_revision > store.current_revision()
                );
                if let (Some(first), Some(last)) = (batch.events.first(), batch.events.last()) {
                    prop_assert!(
                        first.kv.mod_revision >= next && last.kv.mod_revision < batch.next_revision
                    );
                }
                got.extend(batch.events);
                if batch.next_revision > store.current_revision() {
                    break;
                }
                next = batch.next_revision;
            }
        }
    }
    prop_assert_eq!(got, model.history(key, end, from));
    Ok(())
}

/// A put that creates its key (etcd `isCreateEvent`: create revision ==
/// mod revision) carries no prev_kv, even when the txn that made it deleted
/// a live value first.
fn is_create(kv: &KeyValue) -> bool {
    kv.create_revision == kv.mod_revision
}

/// Every range at every readable revision over a set of spans, plus hashes.
fn all_answers(store: &Store) -> Vec<String> {
    let spans: [(&[u8], &[u8]); 4] = [(b"a", b""), (b"b", b"\0"), (b"\0", b"\0"), (b"a", b"c")];
    let mut out = Vec::new();
    for revision in -1..=store.current_revision() + 1 {
        for (key, range_end) in spans {
            let req = RangeRequest {
                key: key.to_vec(),
                range_end: range_end.to_vec(),
                revision,
                ..Default::default()
            };
            out.push(format!("{:?}", store.range(&req)));
            out.push(format!("{:?}", store.history(key, range_end, revision, 3)));
        }
        out.push(format!("{:?}", store.hash_kv(revision)));
    }
    out
}

/// Cases per property: `PROPTEST_CASES` or 256.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut store = Store::new();
        store.set_max_txn_ops(MAX_TXN_OPS);
        let mut model = Model::new();
        for op in &ops {
            run(&mut store, &mut model, op)?;
            prop_assert_eq!(store.check_invariants(), Ok(()));
        }
        // A full read at every revision agrees too.
        for revision in 0..=model.revision + 1 {
            let all = RangeRequest { key: vec![0], range_end: vec![0], revision, ..Default::default() };
            prop_assert_eq!(store.range(&all), model.range(&all));
        }
        let encoded = store.encode_snapshot();
        prop_assert_eq!(store.snapshot_len_bytes(), encoded.len());
        let mut appended = b"prefix".to_vec();
        store.encode_snapshot_into(&mut appended);
        prop_assert_eq!(&appended[6..], &encoded[..]);
        let decoded = Store::decode_snapshot(&encoded);
        prop_assert!(decoded.is_ok());
        let decoded = decoded.expect("checked");
        prop_assert_eq!(decoded.check_invariants(), Ok(()));
        prop_assert_eq!(all_answers(&decoded), all_answers(&store));
        prop_assert_eq!(decoded.encode_snapshot(), store.encode_snapshot());
    }
}

#[test]
fn snapshot_rejects_corruption() {
    let mut store = Store::new();
    for i in 0..20u8 {
        let put = PutRequest {
            key: vec![b'k', i % 7],
            value: vec![i; 3],
            ..Default::default()
        };
        store.put(&put, &lease_exists).expect("put");
    }
    store.delete_keys(&[vec![b'k', 1]]);
    store
        .compact(&CompactionRequest {
            revision: 10,
            physical: false,
        })
        .expect("compact");
    let bytes = store.encode_snapshot();
    for cut in 0..bytes.len() {
        assert!(
            Store::decode_snapshot(&bytes[..cut]).is_err(),
            "truncated at {cut}"
        );
    }
    for at in 0..bytes.len() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x10;
        assert!(
            Store::decode_snapshot(&flipped).is_err(),
            "bit flip at {at}"
        );
    }
    assert_eq!(Store::decode_snapshot(&bytes), Ok(store));
}

#[test]
fn hash_tracks_content_and_revision() {
    let mut a = Store::new();
    let mut b = Store::new();
    let put = |s: &mut Store, k: &str, v: &str| {
        s.put(
            &PutRequest {
                key: k.into(),
                value: v.into(),
                ..Default::default()
            },
            &lease_exists,
        )
        .expect("put");
    };
    put(&mut a, "x", "1");
    put(&mut b, "x", "1");
    assert_eq!(a.hash_kv(0), b.hash_kv(0));
    put(&mut a, "y", "2");
    put(&mut b, "y", "3");
    assert_ne!(a.hash_kv(0), b.hash_kv(0));
    assert_eq!(a.hash_kv(2), b.hash_kv(2));
    assert_eq!(a.hash_kv(4), Err(MvccError::FutureRevision));
    a.compact(&CompactionRequest {
        revision: 3,
        physical: false,
    })
    .expect("compact");
    assert_eq!(a.hash_kv(2), Err(MvccError::Compacted));
    assert_eq!(a.hash_kv(0).map(|(_, c)| c), Ok(3));
}
