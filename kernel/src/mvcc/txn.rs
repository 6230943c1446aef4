//! Txn rules that need no writing: request validation (etcd
//! `api/v3rpc/key.go` `checkTxnRequest`, `checkIntervals`) and compare
//! evaluation (etcd `etcdserver/apply.go` `applyCompare`).

use std::cmp::Ordering;

use super::error::MvccError;
use super::index::key_index::Version;
use super::ops::{Compare, CompareResult, CompareTarget, PutRequest, RequestOp, TxnRequest};
use super::range::ReadView;

/// Checks a put's own fields (etcd `checkPutRequest`).
pub(crate) fn check_put(req: &PutRequest) -> Result<(), MvccError> {
    if req.key.is_empty() {
        return Err(MvccError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(MvccError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(MvccError::LeaseProvided);
    }
    Ok(())
}

/// Checks a txn's shape, recursively (etcd's `checkTxnRequest` and
/// `checkIntervals`, which the API runs before proposing and the store runs
/// again at apply): at most `max_ops` compares and ops
/// per branch (nested txns get what their parent leaves), no empty keys,
/// and no two writes to one key in a branch.
///
/// Errors: `TooManyOps`, `EmptyKey`, `ValueProvided`, `LeaseProvided`,
/// `DuplicateKey`.
pub fn check_txn(req: &TxnRequest, max_ops: usize) -> Result<(), MvccError> {
    check_txn_fields(req, max_ops)?;
    check_intervals(&req.success)?;
    check_intervals(&req.failure)?;
    Ok(())
}

fn check_txn_fields(req: &TxnRequest, max_ops: usize) -> Result<(), MvccError> {
    let ops = req
        .compare
        .len()
        .max(req.success.len())
        .max(req.failure.len());
    if ops > max_ops {
        return Err(MvccError::TooManyOps);
    }
    if req.compare.iter().any(|c| c.key.is_empty()) {
        return Err(MvccError::EmptyKey);
    }
    for op in req.success.iter().chain(&req.failure) {
        match op {
            RequestOp::Range(r) if r.key.is_empty() => return Err(MvccError::EmptyKey),
            RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(MvccError::EmptyKey),
            RequestOp::Put(p) => check_put(p)?,
            RequestOp::Txn(t) => check_txn_fields(t, max_ops - ops)?,
            _ => {}
        }
    }
    Ok(())
}

/// A deleted span as etcd's interval tree sees it: `range_end` empty = the
/// key alone, otherwise `[key, range_end)` compared as plain strings (so a
/// `"\0"` end, "to the last key", overlaps nothing, as in etcd).
struct DeleteSpan<'a> {
    key: &'a [u8],
    range_end: &'a [u8],
}

impl DeleteSpan<'_> {
    fn contains(&self, point: &[u8]) -> bool {
        if self.range_end.is_empty() {
            point == self.key
        } else {
            self.key <= point && point < self.range_end
        }
    }
}

/// etcd's `checkIntervals`: within one branch (and the branches of the
/// txns nested in it) a key may be put at most once and not both put and
/// deleted; the two branches of one nested txn may put the same key.
/// Returns the keys put and the spans deleted by `ops`.
fn check_intervals(ops: &[RequestOp]) -> Result<(Vec<&[u8]>, Vec<DeleteSpan<'_>>), MvccError> {
    let mut dels: Vec<DeleteSpan<'_>> = ops
        .iter()
        .filter_map(|op| match op {
            RequestOp::DeleteRange(d) => Some(DeleteSpan {
                key: &d.key,
                range_end: &d.range_end,
            }),
            _ => None,
        })
        .collect();
    let mut puts: Vec<&[u8]> = Vec::new();
    let deleted = |dels: &[DeleteSpan<'_>], key: &[u8]| dels.iter().any(|d| d.contains(key));
    for op in ops {
        let RequestOp::Txn(nested) = op else { continue };
        let (puts_then, dels_then) = check_intervals(&nested.success)?;
        let (puts_else, dels_else) = check_intervals(&nested.failure)?;
        for key in &puts_then {
            if puts.contains(key) || deleted(&dels, key) {
                return Err(MvccError::DuplicateKey);
            }
            puts.push(key);
        }
        for key in &puts_else {
            if (puts.contains(key) && !puts_then.contains(key)) || deleted(&dels, key) {
                return Err(MvccError::DuplicateKey);
            }
            if !puts.contains(key) {
                puts.push(key);
            }
        }
        dels.extend(dels_then);
        dels.extend(dels_else);
    }
    for op in ops {
        let RequestOp::Put(put) = op else { continue };
        if puts.contains(&put.key.as_slice()) || deleted(&dels, &put.key) {
            return Err(MvccError::DuplicateKey);
        }
        puts.push(&put.key);
    }
    Ok((puts, dels))
}

/// Whether every compare holds in `view` (the txn's starting state).
pub(crate) fn compares_hold(view: &ReadView<'_>, compares: &[Compare]) -> bool {
    compares.iter().all(|c| compare_holds(view, c))
}

/// One compare: over every live key of its span; an empty span compares
/// as a key of zeroes, except that value compares then fail.
fn compare_holds(view: &ReadView<'_>, compare: &Compare) -> bool {
    let mut any = false;
    for (_, version) in view.live(&compare.key, &compare.range_end, view.revision) {
        any = true;
        if !compare_version(compare, &version) {
            return false;
        }
    }
    if any {
        return true;
    }
    if matches!(compare.target, CompareTarget::Value(_)) {
        return false;
    }
    compare_version(
        compare,
        &Version {
            value: Some(&[]),
            ..Version::tombstone(Default::default())
        },
    )
}

fn compare_version(compare: &Compare, version: &Version<'_>) -> bool {
    let ordering = match &compare.target {
        CompareTarget::Version(v) => version.version.cmp(v),
        CompareTarget::Create(v) => version.create_revision.cmp(v),
        CompareTarget::Mod(v) => version.rev.main.cmp(v),
        CompareTarget::Lease(v) => version.lease.cmp(v),
        CompareTarget::Value(v) => version.value.unwrap_or_default().cmp(v.as_slice()),
    };
    match compare.result {
        CompareResult::Equal => ordering == Ordering::Equal,
        CompareResult::NotEqual => ordering != Ordering::Equal,
        CompareResult::Greater => ordering == Ordering::Greater,
        CompareResult::Less => ordering == Ordering::Less,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mvcc::ops::DeleteRangeRequest;

    fn put(key: &str) -> RequestOp {
        RequestOp::Put(PutRequest {
            key: key.into(),
            ..Default::default()
        })
    }

    fn del(key: &str, end: &str) -> RequestOp {
        RequestOp::DeleteRange(DeleteRangeRequest {
            key: key.into(),
            range_end: end.into(),
            prev_kv: false,
        })
    }

    fn txn(success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure,
        }
    }

    fn nested_both_clone() -> RequestOp {
        RequestOp::Txn(txn(vec![put("a")], vec![put("a")]))
    }

    #[test]
    fn duplicate_rules_follow_etcd() {
        let ok = |t: TxnRequest| check_txn(&t, 128).is_ok();
        assert!(!ok(txn(vec![put("a"), put("a")], vec![])));
        assert!(ok(txn(vec![put("a")], vec![put("a")])));
        assert!(!ok(txn(vec![put("b"), del("a", "c")], vec![])));
        assert!(ok(txn(vec![put("c"), del("a", "c")], vec![])));
        assert!(ok(txn(vec![put("b"), del("a", "\0")], vec![])));
        assert!(ok(txn(vec![del("a", ""), del("a", "z")], vec![])));
        let nested_both = RequestOp::Txn(txn(vec![put("a")], vec![put("a")]));
        assert!(ok(txn(vec![nested_both.clone()], vec![])));
        assert!(!ok(txn(vec![nested_both, put("a")], vec![])));
        let twice = RequestOp::Txn(txn(vec![], vec![nested_both_clone()]));
        assert!(ok(txn(vec![twice], vec![])));
        let nested_del = RequestOp::Txn(txn(vec![del("a", "")], vec![]));
        assert!(!ok(txn(vec![nested_del, put("a")], vec![])));
    }

    #[test]
    fn shape_checks() {
        let many = txn((0..129).map(|i| put(&i.to_string())).collect(), vec![]);
        assert_eq!(check_txn(&many, 128), Err(MvccError::TooManyOps));
        assert_eq!(
            check_txn(&txn(vec![put("")], vec![]), 128),
            Err(MvccError::EmptyKey)
        );
        let bad = RequestOp::Put(PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ignore_value: true,
            ..Default::default()
        });
        assert_eq!(
            check_txn(&txn(vec![], vec![bad]), 128),
            Err(MvccError::ValueProvided)
        );
    }
}
