//! Hand-checked etcd behaviours (etcd v3.5 API reference and
//! `etcdserver/apply.go`), independent of the model test: the values here
//! are what etcdctl shows for the same sequence.

use keel_kernel::mvcc::*;

fn any_lease(lease: i64) -> bool {
    lease == 7
}

fn put(key: &str, value: &str) -> PutRequest {
    PutRequest {
        key: key.into(),
        value: value.into(),
        ..Default::default()
    }
}

fn get(key: &str) -> RangeRequest {
    RangeRequest {
        key: key.into(),
        ..Default::default()
    }
}

#[test]
fn revisions_versions_and_generations() {
    let mut s = Store::new();
    assert_eq!(s.current_revision(), 1, "a fresh etcd is at revision 1");
    assert_eq!(
        s.put(&put("foo", "a"), &any_lease)
            .map(|w| w.response.revision),
        Ok(2)
    );
    assert_eq!(
        s.put(&put("foo", "b"), &any_lease)
            .map(|w| w.response.revision),
        Ok(3)
    );
    let kv = &s.range(&get("foo")).expect("get").kvs[0];
    assert_eq!((kv.create_revision, kv.mod_revision, kv.version), (2, 3, 2));
    let del = DeleteRangeRequest {
        key: b"foo".to_vec(),
        prev_kv: true,
        ..Default::default()
    };
    let deleted = s.delete_range(&del).expect("delete");
    assert_eq!(
        (deleted.response.revision, deleted.response.deleted),
        (4, 1)
    );
    assert_eq!(deleted.response.prev_kvs[0].value, &b"b"[..]);
    let again = s.delete_range(&del).expect("delete");
    assert_eq!(
        (again.response.revision, again.response.deleted),
        (4, 0),
        "no-op delete keeps the revision"
    );
    s.put(&put("foo", "c"), &any_lease).expect("put");
    let kv = &s.range(&get("foo")).expect("get").kvs[0];
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (5, 5, 1),
        "new generation"
    );
    let old = RangeRequest {
        revision: 3,
        ..get("foo")
    };
    let response = s.range(&old).expect("historical get");
    assert_eq!(
        (response.revision, &response.kvs[0].value[..]),
        (5, &b"b"[..]),
        "header has the current revision"
    );
}

#[test]
fn errors_have_etcds_messages() {
    let mut s = Store::new();
    s.put(&put("k", "v"), &any_lease).expect("put");
    let future = RangeRequest {
        revision: 3,
        ..get("k")
    };
    assert_eq!(
        s.range(&future).map_err(|e| e.to_string()),
        Err("mvcc: required revision is a future revision".into())
    );
    s.put(&put("k", "w"), &any_lease).expect("put");
    s.compact(&CompactionRequest {
        revision: 3,
        physical: true,
    })
    .expect("compact");
    let compacted = RangeRequest {
        revision: 2,
        ..get("k")
    };
    assert_eq!(
        s.range(&compacted).map_err(|e| e.to_string()),
        Err("mvcc: required revision has been compacted".into())
    );
    assert_eq!(
        s.compact(&CompactionRequest {
            revision: 3,
            physical: false
        }),
        Err(MvccError::Compacted)
    );
    let ignore_missing = PutRequest {
        ignore_value: true,
        ..put("nope", "")
    };
    assert_eq!(
        s.put(&ignore_missing, &any_lease)
            .map_err(|e| e.to_string()),
        Err("etcdserver: key not found".into())
    );
    let both = PutRequest {
        ignore_value: true,
        ..put("k", "x")
    };
    assert_eq!(
        s.put(&both, &any_lease).map_err(|e| e.to_string()),
        Err("etcdserver: value is provided".into())
    );
    let unknown_lease = PutRequest {
        lease: 9,
        ..put("k", "x")
    };
    assert_eq!(
        s.put(&unknown_lease, &any_lease).map_err(|e| e.to_string()),
        Err("etcdserver: requested lease not found".into())
    );
    let dup = TxnRequest {
        success: vec![RequestOp::Put(put("a", "1")), RequestOp::Put(put("a", "2"))],
        ..Default::default()
    };
    assert_eq!(
        s.txn(&dup, &any_lease).map_err(|e| e.to_string()),
        Err("etcdserver: duplicate key given in txn request".into())
    );
    assert_eq!(s.current_revision(), 3, "refused writes change nothing");
}

#[test]
fn txn_semantics() {
    let mut s = Store::new();
    s.put(&put("x", "1"), &any_lease).expect("put");
    let missing_version_zero = Compare {
        result: CompareResult::Equal,
        target: CompareTarget::Version(0),
        key: b"absent".to_vec(),
        range_end: vec![],
    };
    let read_only = TxnRequest {
        compare: vec![missing_version_zero.clone()],
        success: vec![RequestOp::Range(get("x"))],
        failure: vec![],
    };
    let response = s.txn(&read_only, &any_lease).expect("txn").response;
    assert!(response.succeeded, "a missing key has version 0");
    assert_eq!(
        response.revision, 2,
        "read-only txns do not bump the revision"
    );
    let writes = TxnRequest {
        compare: vec![Compare {
            target: CompareTarget::Value(b"1".to_vec()),
            key: b"x".to_vec(),
            ..missing_version_zero
        }],
        success: vec![
            RequestOp::Put(put("x", "2")),
            RequestOp::Put(put("y", "3")),
            RequestOp::Range(get("x")),
        ],
        failure: vec![],
    };
    let done = s.txn(&writes, &any_lease).expect("txn");
    assert_eq!(done.response.revision, 3, "one revision for the whole txn");
    assert_eq!(
        done.events
            .iter()
            .map(|e| (e.kv.mod_revision, e.sub_revision))
            .collect::<Vec<_>>(),
        vec![(3, 0), (3, 1)]
    );
    let ResponseOp::Range(read) = &done.response.responses[2] else {
        panic!("range response")
    };
    assert_eq!(
        read.kvs[0].value,
        &b"2"[..],
        "reads inside a txn see its earlier writes"
    );
    let revoke = s.delete_keys(&[b"y".to_vec(), b"x".to_vec(), b"gone".to_vec()]);
    assert_eq!(revoke.response, 4);
    assert_eq!(
        revoke
            .events
            .iter()
            .map(|e| e.kv.key.clone())
            .collect::<Vec<_>>(),
        vec![b"x".to_vec(), b"y".to_vec()]
    );
}

#[test]
fn range_sorting_and_limits() {
    let mut s = Store::new();
    for (k, v) in [("a", "3"), ("b", "1"), ("c", "2"), ("d", "2")] {
        s.put(&put(k, v), &any_lease).expect("put");
    }
    s.put(&put("a", "4"), &any_lease).expect("put");
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    let keys = |r: RangeResponse| {
        r.kvs
            .into_iter()
            .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
            .collect::<Vec<_>>()
    };
    let by_value = RangeRequest {
        sort_target: SortTarget::Value,
        sort_order: SortOrder::Descend,
        ..all.clone()
    };
    assert_eq!(
        keys(s.range(&by_value).expect("range")),
        ["a", "c", "d", "b"]
    );
    let by_version_default = RangeRequest {
        sort_target: SortTarget::Version,
        ..all.clone()
    };
    assert_eq!(
        keys(s.range(&by_version_default).expect("range")),
        ["b", "c", "d", "a"],
        "non-key targets sort ascending"
    );
    let limited = RangeRequest {
        limit: 2,
        ..all.clone()
    };
    let response = s.range(&limited).expect("range");
    assert_eq!((response.count, response.more), (4, true));
    let prefix = RangeRequest {
        key: b"b".to_vec(),
        range_end: b"d".to_vec(),
        count_only: true,
        ..Default::default()
    };
    let response = s.range(&prefix).expect("range");
    assert_eq!((response.count, response.kvs.len()), (2, 0));
    let recent = RangeRequest {
        min_mod_revision: 5,
        keys_only: true,
        ..all
    };
    let response = s.range(&recent).expect("range");
    assert_eq!(
        (
            response.count,
            response.kvs.len(),
            response.kvs[0].value.len()
        ),
        (4, 2, 0)
    );
}

/// etcd's HashKV accepts the current revision itself (only a later one is
/// a future revision), and hashes there what revision 0 hashes.
#[test]
fn hash_kv_at_the_current_revision_is_the_current_hash() {
    let mut s = Store::new();
    s.put(&put("a", "1"), &any_lease).expect("put");
    s.put(&put("b", "2"), &any_lease).expect("put");
    let current = s.current_revision();
    assert_eq!(s.hash_kv(current), s.hash_kv(0));
    assert_eq!(s.hash_kv(current + 1), Err(MvccError::FutureRevision));
}

/// A history batch with no room for events covers nothing: replay goes on
/// from where it was asked to start, so no event is skipped. Past the
/// present, it continues from the requested revision.
#[test]
fn an_empty_history_batch_does_not_move_replay_forward() {
    let mut s = Store::new();
    for value in ["1", "2", "3"] {
        s.put(&put("a", value), &any_lease).expect("put");
    }
    let batch = s.history(b"a", b"", 2, 0).expect("history");
    assert!(batch.events.is_empty());
    assert_eq!(batch.next_revision, 2);
    let past = s.history(b"a", b"", 9, 10).expect("history");
    assert_eq!((past.events.len(), past.next_revision), (0, 9));
    let all = s.history(b"a", b"", 2, 10).expect("history");
    assert_eq!((all.events.len(), all.next_revision), (3, 5));
}

/// A replay batch holds the oldest `max_events` changes of the span, even
/// when the keys that changed last come first in key order.
#[test]
fn a_history_batch_takes_the_oldest_revisions_across_keys() {
    let mut s = Store::new();
    for (key, value) in [("b", "1"), ("b", "2"), ("a", "1"), ("a", "2"), ("a", "3")] {
        s.put(&put(key, value), &any_lease).expect("put");
    }
    let batch = s.history(b"a", b"c", 1, 2).expect("history");
    let revisions: Vec<i64> = batch.events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revisions, vec![2, 3]);
    assert_eq!(batch.next_revision, 4);
    let rest = s.history(b"a", b"c", 4, 2).expect("history");
    let revisions: Vec<i64> = rest.events.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!((revisions, rest.next_revision), (vec![4, 5], 6));
}
