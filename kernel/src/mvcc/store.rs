//! The MVCC store: the index plus the current and compacted revisions, and
//! the etcd KV operations on top (etcd `mvcc.store` and the KV part of
//! `etcdserver/apply.go`).

use std::borrow::Cow;

use super::error::MvccError;
use super::index::Index;
use super::kv::Event;
use super::ops::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest,
    PutResponse, RangeRequest, RangeResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use super::range::ReadView;
use super::txn::{check_put, check_txn, compares_hold};
use super::write::WriteTxn;

/// Answers whether a lease id exists (the lessor's lookup). The store
/// asks it for every lease a put attaches.
pub type LeaseLookup<'a> = &'a dyn Fn(i64) -> bool;

/// What a write returns: the client's response and the events it caused,
/// in sub revision order (for watchers and lease attach/detach), each with
/// `prev_kv` filled in unless [`Store::set_events_prev_kv`] turned that
/// off. `events` is empty when nothing changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteResult<R> {
    /// The response for the client.
    pub response: R,
    /// The changes made, all at the response's revision.
    pub events: Vec<Event>,
}

/// The in-memory multi-version key-value store.
///
/// A fresh store is at revision 1 with no keys and has never been
/// compacted (`compact_revision() == -1`), as etcd. Every operation is
/// deterministic; equal operation sequences give equal stores, encodings
/// and hashes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Store {
    pub(crate) index: Index,
    pub(crate) current_revision: i64,
    pub(crate) compact_revision: i64,
    max_txn_ops: usize,
    events_prev_kv: bool,
}

impl Default for Store {
    fn default() -> Store {
        Store::new()
    }
}

impl Store {
    /// An empty store at revision 1.
    pub fn new() -> Store {
        Store {
            index: Index::new(),
            current_revision: 1,
            compact_revision: -1,
            max_txn_ops: crate::limits::DEFAULT_MAX_TXN_OPS,
            events_prev_kv: true,
        }
    }

    /// Sets the most compares or operations per txn branch (etcd
    /// `--max-txn-ops`, default 128).
    pub fn set_max_txn_ops(&mut self, max_txn_ops: usize) {
        self.max_txn_ops = max_txn_ops;
    }

    /// Sets whether the events of writes carry `prev_kv` (default: yes).
    ///
    /// Building `prev_kv` copies the previous value on every write; a
    /// server with no watcher asking for `prev_kv` may turn it off. It must
    /// turn it back on before it feeds events to such a watcher: events
    /// made while it was off have `prev_kv = None` (history replayed by
    /// [`Store::history`] always has it). Responses are unaffected (a
    /// request's own `prev_kv` flag decides those).
    pub fn set_events_prev_kv(&mut self, events_prev_kv: bool) {
        self.events_prev_kv = events_prev_kv;
    }

    /// Whether the events of writes carry `prev_kv` (see
    /// [`Store::set_events_prev_kv`]).
    pub fn events_prev_kv(&self) -> bool {
        self.events_prev_kv
    }

    /// The current main revision (the last write's revision; 1 initially).
    pub fn current_revision(&self) -> i64 {
        self.current_revision
    }

    /// The revision of the last compaction, -1 if never compacted.
    pub fn compact_revision(&self) -> i64 {
        self.compact_revision
    }

    /// Number of keys with stored history (live or deleted).
    pub fn key_count(&self) -> usize {
        self.index.len()
    }

    pub(crate) fn view(&self) -> ReadView<'_> {
        ReadView {
            index: &self.index,
            revision: self.current_revision,
            compact_revision: self.compact_revision,
        }
    }

    /// Reads a key or range (etcd `Range`; see [`RangeRequest`]).
    ///
    /// Errors: `EmptyKey`; `FutureRevision` if `revision` is above the
    /// current revision; `Compacted` if it is below the compacted one.
    pub fn range(&self, req: &RangeRequest) -> Result<RangeResponse, MvccError> {
        self.view().range(req)
    }

    /// Writes one key (etcd `Put`), at a new revision.
    ///
    /// Errors (nothing written): `EmptyKey`, `ValueProvided`,
    /// `LeaseProvided`, `KeyNotFound` (`ignore_value`/`ignore_lease` on a
    /// missing key), `LeaseNotFound` (`lease_exists` says no).
    pub fn put(
        &mut self,
        req: &PutRequest,
        lease_exists: LeaseLookup<'_>,
    ) -> Result<WriteResult<PutResponse>, MvccError> {
        check_put(req)?;
        check_put_state(&self.view(), req, lease_exists)?;
        Ok(self.write(1, |w| exec_put(w, req)))
    }

    /// Deletes a key or range (etcd `DeleteRange`). The revision moves only
    /// if something was deleted.
    ///
    /// Errors: `EmptyKey`.
    pub fn delete_range(
        &mut self,
        req: &DeleteRangeRequest,
    ) -> Result<WriteResult<DeleteRangeResponse>, MvccError> {
        if req.key.is_empty() {
            return Err(MvccError::EmptyKey);
        }
        Ok(self.write(0, |w| exec_delete(w, req)))
    }

    /// Deletes the given keys (those that are live) in one revision, in key
    /// order: a lease revoke. Returns the new revision (unchanged if none
    /// was live) and the delete events.
    pub fn delete_keys(&mut self, keys: &[Vec<u8>]) -> WriteResult<i64> {
        let mut sorted: Vec<&[u8]> = keys
            .iter()
            .map(Vec::as_slice)
            .filter(|k| !k.is_empty())
            .collect();
        sorted.sort_unstable();
        sorted.dedup();
        self.write(sorted.len(), |w| {
            sorted.iter().for_each(|key| {
                w.delete(key);
            });
            w.view_revision()
        })
    }

    /// Runs a txn (etcd `Txn`): checks its shape and the duplicate-key
    /// rule, evaluates the compares on the current state, checks the chosen
    /// branch (recursively), then runs it at one new revision (none if it
    /// only reads or changes nothing).
    ///
    /// Errors (nothing written): `TooManyOps`, `EmptyKey`, `ValueProvided`,
    /// `LeaseProvided`, `DuplicateKey`, and for the chosen branch
    /// `KeyNotFound`, `LeaseNotFound`, `FutureRevision`, `Compacted`.
    pub fn txn(
        &mut self,
        req: &TxnRequest,
        lease_exists: LeaseLookup<'_>,
    ) -> Result<WriteResult<TxnResponse>, MvccError> {
        check_txn(req, self.max_txn_ops)?;
        check_branch(&self.view(), req, lease_exists, &mut Vec::new())?;
        let ops =
            (req.success.len().max(req.failure.len())).min(crate::limits::DEFAULT_MAX_TXN_OPS);
        Ok(self.write(ops, |w| exec_txn(w, req)))
    }

    /// Compacts history (etcd `Compact`): drops every version that no read
    /// at or above `req.revision` can see, except that a delete at exactly
    /// that revision is kept so watchers starting there still get it (see
    /// `KeyIndex::compact`). The current revision stays.
    ///
    /// Errors: `Compacted` if `req.revision` is not above the compacted
    /// revision; `FutureRevision` if it is above the current one.
    pub fn compact(&mut self, req: &CompactionRequest) -> Result<CompactionResponse, MvccError> {
        let at = req.revision;
        if at <= self.compact_revision {
            return Err(MvccError::Compacted);
        }
        if at > self.current_revision {
            return Err(MvccError::FutureRevision);
        }
        self.index.rebuild(|ki| ki.compact(at));
        self.compact_revision = at;
        Ok(CompactionResponse {
            revision: self.current_revision,
        })
    }

    /// Runs `f` as one write txn; `events_capacity` is a hint of how many
    /// changes it makes (saves regrowing the events list).
    fn write<R>(
        &mut self,
        events_capacity: usize,
        f: impl FnOnce(&mut WriteTxn<'_>) -> R,
    ) -> WriteResult<R> {
        let mut w = WriteTxn::new(
            &mut self.index,
            self.current_revision,
            self.compact_revision,
            self.events_prev_kv,
            events_capacity,
        );
        let response = f(&mut w);
        let (revision, events) = w.finish();
        assert!(
            revision == self.current_revision || revision == self.current_revision + 1,
            "mvcc store: a write moved the revision from {} to {revision}",
            self.current_revision
        );
        debug_assert!(
            events
                .iter()
                .enumerate()
                .all(|(i, e)| e.sub_revision == i as i64 && e.kv.mod_revision == revision)
        );
        self.current_revision = revision;
        WriteResult { response, events }
    }
}

/// The state checks etcd makes before a put (`checkRequestPut`).
fn check_put_state(
    view: &ReadView<'_>,
    req: &PutRequest,
    lease_exists: LeaseLookup<'_>,
) -> Result<(), MvccError> {
    if (req.ignore_value || req.ignore_lease)
        && view.live(&req.key, &[], view.revision).next().is_none()
    {
        return Err(MvccError::KeyNotFound);
    }
    if req.lease != 0 && !lease_exists(req.lease) {
        return Err(MvccError::LeaseNotFound);
    }
    Ok(())
}

/// Checks the ops of the branch the compares choose, in `view` (the state
/// before the txn), recursing into nested txns.
///
/// `deleted_from` collects, in execution order, the starts of deletes to
/// the end of the keyspace (`range_end = "\0"`): the duplicate-key rule
/// lets those overlap later puts (as in etcd), and an `ignore_value` or
/// `ignore_lease` put on a key such a delete removed earlier in the txn
/// fails with `KeyNotFound` here (etcd 3.5 panics on it mid-txn).
fn check_branch<'r>(
    view: &ReadView<'_>,
    req: &'r TxnRequest,
    lease_exists: LeaseLookup<'_>,
    deleted_from: &mut Vec<&'r [u8]>,
) -> Result<(), MvccError> {
    let ops = if compares_hold(view, &req.compare) {
        &req.success
    } else {
        &req.failure
    };
    for op in ops {
        match op {
            RequestOp::Put(put) => {
                check_put_state(view, put, lease_exists)?;
                let ignores = put.ignore_value || put.ignore_lease;
                if ignores && deleted_from.iter().any(|from| *from <= put.key.as_slice()) {
                    return Err(MvccError::KeyNotFound);
                }
            }
            RequestOp::Range(range) => {
                view.read_revision(range.revision)?;
            }
            RequestOp::Txn(nested) => check_branch(view, nested, lease_exists, deleted_from)?,
            RequestOp::DeleteRange(delete) if delete.range_end == [0] => {
                deleted_from.push(&delete.key)
            }
            RequestOp::DeleteRange(_) => {}
        }
    }
    Ok(())
}

fn exec_put(w: &mut WriteTxn<'_>, req: &PutRequest) -> PutResponse {
    let mut value = Cow::Borrowed(req.value.as_slice());
    let mut lease = req.lease;
    if req.ignore_value || req.ignore_lease {
        let view = w.view();
        let current = view.live(&req.key, &[], view.revision).next();
        debug_assert!(current.is_some(), "checked before the txn");
        if let Some((_, current)) = current {
            if req.ignore_value {
                value = Cow::Owned(current.value.unwrap_or_default().to_vec());
            }
            if req.ignore_lease {
                lease = current.lease;
            }
        }
    }
    let prev = w.put(&req.key, &value, lease, req.prev_kv);
    PutResponse {
        revision: w.main(),
        prev_kv: prev,
    }
}

fn exec_delete(w: &mut WriteTxn<'_>, req: &DeleteRangeRequest) -> DeleteRangeResponse {
    let deleted = w.delete_range(&req.key, &req.range_end);
    DeleteRangeResponse {
        revision: w.view_revision(),
        deleted: deleted.len() as i64,
        prev_kvs: if req.prev_kv { deleted } else { Vec::new() },
    }
}

fn exec_txn(w: &mut WriteTxn<'_>, req: &TxnRequest) -> TxnResponse {
    let succeeded = compares_hold(&w.begin_view(), &req.compare);
    let ops = if succeeded {
        &req.success
    } else {
        &req.failure
    };
    let responses = ops.iter().map(|op| exec_op(w, op)).collect();
    TxnResponse {
        revision: w.view_revision(),
        succeeded,
        responses,
    }
}

fn exec_op(w: &mut WriteTxn<'_>, op: &RequestOp) -> ResponseOp {
    match op {
        RequestOp::Range(req) => {
            let response = w.view().range(req);
            debug_assert!(response.is_ok(), "checked before the txn");
            ResponseOp::Range(response.unwrap_or_default())
        }
        RequestOp::Put(req) => ResponseOp::Put(exec_put(w, req)),
        RequestOp::DeleteRange(req) => ResponseOp::DeleteRange(exec_delete(w, req)),
        RequestOp::Txn(req) => ResponseOp::Txn(exec_txn(w, req)),
    }
}
