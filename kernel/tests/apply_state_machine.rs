//! The replicated state machine end to end: committed entries in, client
//! responses and watch events out, the member-local state following each
//! apply; every applied entry is followed by `StateMachine::check_invariants`
//! and `LocalState::check_invariants`.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use bytes::Bytes;
use keel_kernel::apply::{
    AlarmAction, AlarmRequest, AlarmType, ApplyError, ApplyResult, AuthRequest, LocalState,
    Request, RequestEnvelope, Response, StateMachine, StateMachineConfig,
};
use keel_kernel::auth::{
    AuthError, AuthInfo, MIN_BCRYPT_COST, Permission, PermissionType, ROOT, hash_password,
};
use keel_kernel::lease::{LeaseCheckpoint, LeaseError};
use keel_kernel::membership::{Cluster, ConfChangeContext, Member, MembershipError};
use keel_kernel::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventType, MvccError, PutRequest,
    RangeRequest, RequestOp, TxnRequest,
};
use keel_kernel::raft::{ConfChange, ConfChangeSingle, ConfChangeType, Entry, EntryType};

struct Node {
    sm: StateMachine,
    /// The member-local state beside `sm`, following every apply.
    local: LocalState,
    /// The member's clock (ms) at which entries apply.
    now_ms: u64,
    next_index: u64,
    next_request_id: u64,
}

impl Node {
    fn new() -> Node {
        Node::with_election_timeout_ms(1000)
    }

    fn with_election_timeout_ms(election_timeout_ms: u64) -> Node {
        let member = Member::new("n1", &["http://n1:2380".to_string()], "t", None, false);
        let cluster = Cluster::bootstrap(vec![member]).unwrap();
        let config = StateMachineConfig::new(election_timeout_ms);
        Node {
            sm: StateMachine::new(config, cluster),
            local: LocalState::new(config),
            now_ms: 0,
            next_index: 1,
            next_request_id: 1,
        }
    }

    fn entry(&mut self, entry_type: EntryType, data: Bytes) -> ApplyResult {
        let entry = Entry {
            term: 1,
            index: self.next_index,
            entry_type,
            data,
        };
        self.next_index += 1;
        let result = self.sm.apply(&entry);
        self.local.follow(&self.sm, &result, self.now_ms);
        assert_eq!(self.sm.applied_index(), entry.index);
        assert_eq!(self.sm.check_invariants(), Ok(()));
        assert_eq!(self.local.check_invariants(&self.sm), Ok(()));
        result
    }

    fn propose(&mut self, auth: Option<&AuthInfo>, request: Request) -> ApplyResult {
        let id = self.next_request_id;
        self.next_request_id += 1;
        let envelope = RequestEnvelope {
            id,
            auth: auth.cloned(),
            request,
        };
        let result = self.entry(EntryType::Normal, envelope.encode().unwrap());
        assert_eq!(result.request_id, id);
        result
    }

    fn ok(&mut self, request: Request) -> Response {
        let result = self.propose(None, request);
        result.result.unwrap()
    }

    fn revision(&self) -> i64 {
        self.sm.store().current_revision()
    }

    fn get(&self, key: &str) -> Option<Vec<u8>> {
        let request = RangeRequest {
            key: key.as_bytes().to_vec(),
            ..Default::default()
        };
        let response = self.sm.range(None, &request).unwrap();
        response.kvs.first().map(|kv| kv.value.to_vec())
    }
}

fn put(key: &str, value: &str, lease: i64) -> Request {
    Request::Put(PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        lease,
        ..Default::default()
    })
}

fn delete(key: &str, range_end: &str) -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        key: key.as_bytes().to_vec(),
        range_end: range_end.as_bytes().to_vec(),
        prev_kv: false,
    })
}

#[test]
fn kv_requests_answer_with_revisions_and_events() {
    let mut node = Node::new();
    assert_eq!(node.revision(), 1);
    let result = node.propose(None, put("a", "1", 0));
    assert_eq!(result.header.revision, 2);
    assert!(matches!(result.result, Ok(Response::Put(ref r)) if r.revision == 2));
    assert_eq!(result.events.len(), 1);
    assert_eq!(result.events[0].event_type, EventType::Put);
    node.ok(put("b", "2", 0));
    let txn = TxnRequest {
        compare: vec![Compare {
            result: CompareResult::Equal,
            target: CompareTarget::Value(b"1".to_vec()),
            key: b"a".to_vec(),
            range_end: vec![],
        }],
        success: vec![
            RequestOp::Put(PutRequest {
                key: b"c".to_vec(),
                value: b"3".to_vec(),
                ..Default::default()
            }),
            RequestOp::DeleteRange(DeleteRangeRequest {
                key: b"b".to_vec(),
                ..Default::default()
            }),
        ],
        failure: vec![],
    };
    let result = node.propose(None, Request::Txn(txn));
    assert!(matches!(result.result, Ok(Response::Txn(ref t)) if t.succeeded));
    assert_eq!(result.header.revision, 4);
    assert_eq!(result.events.len(), 2, "one revision, two changes");
    assert!(result.events.iter().all(|e| e.kv.mod_revision == 4));
    assert_eq!(node.get("b"), None);
    assert_eq!(node.get("c"), Some(b"3".to_vec()));
    let result = node.propose(None, delete("a", "\0"));
    assert!(matches!(result.result, Ok(Response::DeleteRange(ref d)) if d.deleted == 2));
    let empty_key = node.propose(None, put("", "x", 0));
    assert_eq!(empty_key.result, Err(ApplyError::Mvcc(MvccError::EmptyKey)));
    assert!(empty_key.events.is_empty());
}

#[test]
fn empty_duplicate_and_bad_entries() {
    let mut node = Node::new();
    let noop = node.entry(EntryType::Normal, Bytes::new());
    assert_eq!(noop.result, Ok(Response::Empty));
    assert_eq!(noop.request_id, 0);
    node.ok(put("k", "v", 0));
    // Replaying an applied entry changes nothing.
    let envelope = RequestEnvelope {
        id: 9,
        auth: None,
        request: put("k", "other", 0),
    };
    let replay = Entry {
        term: 1,
        index: 2,
        entry_type: EntryType::Normal,
        data: envelope.encode().unwrap(),
    };
    let skipped = node.sm.apply(&replay);
    assert_eq!(
        (skipped.request_id, skipped.result),
        (0, Ok(Response::Empty))
    );
    assert_eq!(node.get("k"), Some(b"v".to_vec()));
    let bad = node.entry(
        EntryType::Normal,
        Bytes::from_static(&[1, 0xff, 0xff, 0xff]),
    );
    assert!(matches!(bad.result, Err(ApplyError::BadEntry(_))));
    let bad_version = node.entry(EntryType::Normal, Bytes::from_static(&[9, 0]));
    assert!(matches!(bad_version.result, Err(ApplyError::BadEntry(_))));
    assert_eq!(node.sm.applied_index(), 4);
}

#[test]
fn leases_attach_keys_and_revoke_deletes_them_in_one_revision() {
    let mut node = Node::new();
    let granted = node.ok(Request::LeaseGrant { id: 7, ttl_secs: 1 });
    assert_eq!(
        granted,
        Response::LeaseGrant { id: 7, ttl_secs: 1 },
        "applied as proposed"
    );
    let dup = node.propose(
        None,
        Request::LeaseGrant {
            id: 7,
            ttl_secs: 10,
        },
    );
    assert_eq!(
        dup.result,
        Err(ApplyError::Lease(LeaseError::AlreadyExists))
    );
    node.ok(put("x", "1", 7));
    node.ok(put("y", "1", 7));
    node.ok(put("z", "1", 7));
    node.ok(put("z", "2", 0)); // re-put without lease detaches z
    node.ok(put("keep", "1", 0));
    let before = node.revision();
    let unknown = node.propose(None, put("w", "1", 99));
    assert_eq!(
        unknown.result.unwrap_err().to_string(),
        "etcdserver: requested lease not found"
    );
    assert_eq!(node.revision(), before, "nothing written");
    assert_eq!(node.get("w"), None);
    let status = node.sm.lease_time_to_live(None, 7, true).unwrap();
    assert_eq!(status.keys, vec![b"x".to_vec(), b"y".to_vec()]);
    let revoke = node.propose(None, Request::LeaseRevoke { id: 7 });
    assert_eq!(revoke.result, Ok(Response::Done));
    assert_eq!(revoke.header.revision, before + 1);
    assert_eq!(revoke.events.len(), 2);
    assert!(
        revoke
            .events
            .iter()
            .all(|e| e.event_type == EventType::Delete && e.kv.mod_revision == before + 1)
    );
    assert_eq!((node.get("x"), node.get("y")), (None, None));
    assert_eq!(node.get("z"), Some(b"2".to_vec()));
    assert!(node.sm.lessor().is_empty());
    let again = node.propose(None, Request::LeaseRevoke { id: 7 });
    assert_eq!(again.result, Err(ApplyError::Lease(LeaseError::NotFound)));
}

/// Apply depends on nothing member-local: members whose election timeouts,
/// hence minimum TTLs, differ apply one grant with the same TTL (each used
/// to raise it to its own minimum, so a leader with a lower one expired the
/// lease early); the proposer raises a requested TTL to its minimum first.
#[test]
fn a_grant_applies_alike_on_members_with_different_election_timeouts() {
    let mut members = [
        Node::with_election_timeout_ms(700),
        Node::with_election_timeout_ms(1500),
    ];
    let granted = members.each_mut().map(|member| {
        member.ok(Request::LeaseGrant { id: 7, ttl_secs: 1 });
        let status = member.sm.lease_time_to_live(None, 7, false).unwrap();
        status.granted_ttl_secs
    });
    assert_eq!(granted, [1, 1]);
    let proposed = members
        .each_ref()
        .map(|m| m.sm.lessor().ttl_to_grant_secs(1));
    assert_eq!(
        proposed,
        [2, 3],
        "1.5 election timeouts, rounded up to seconds"
    );
    assert_eq!(members[0].sm.lessor().ttl_to_grant_secs(60), 60);
}

#[test]
fn expiry_is_proposed_by_the_leader_and_applied_everywhere() {
    let mut node = Node::new();
    node.now_ms = 1_000;
    node.local.lease_promote(&node.sm, 1_000, 0);
    node.ok(Request::LeaseGrant { id: 3, ttl_secs: 5 });
    node.ok(put("session", "s", 3));
    assert!(node.local.lease_expired(5_999).is_empty());
    let renewal = node.local.lease_renew(&node.sm, 3, 5_999).unwrap();
    assert_eq!(renewal.ttl_secs, 5);
    assert!(node.local.lease_expired(10_998).is_empty());
    let expired = node.local.lease_expired(10_999);
    assert_eq!(expired, vec![3]);
    for id in expired {
        node.ok(Request::LeaseRevoke { id });
    }
    assert_eq!(node.get("session"), None);
}

fn auth_node() -> (Node, AuthInfo, AuthInfo) {
    let mut node = Node::new();
    let hash = hash_password("pw", MIN_BCRYPT_COST, [1; 16]).unwrap();
    node.ok(Request::Auth(AuthRequest::UserAdd {
        name: ROOT.into(),
        password_hash: Some(hash.clone()),
    }));
    node.ok(Request::Auth(AuthRequest::UserGrantRole {
        user: ROOT.into(),
        role: ROOT.into(),
    }));
    node.ok(Request::Auth(AuthRequest::UserAdd {
        name: "alice".into(),
        password_hash: Some(hash),
    }));
    node.ok(Request::Auth(AuthRequest::RoleAdd { name: "app".into() }));
    let permission = Permission {
        perm_type: PermissionType::ReadWrite,
        key: b"a/".to_vec(),
        range_end: b"a0".to_vec(),
    };
    node.ok(Request::Auth(AuthRequest::RoleGrantPermission {
        name: "app".into(),
        permission,
    }));
    let read_b = Permission {
        perm_type: PermissionType::Read,
        key: b"b".to_vec(),
        range_end: vec![],
    };
    node.ok(Request::Auth(AuthRequest::RoleGrantPermission {
        name: "app".into(),
        permission: read_b,
    }));
    let write_w = Permission {
        perm_type: PermissionType::Write,
        key: b"w".to_vec(),
        range_end: vec![],
    };
    node.ok(Request::Auth(AuthRequest::RoleGrantPermission {
        name: "app".into(),
        permission: write_w,
    }));
    node.ok(Request::Auth(AuthRequest::UserGrantRole {
        user: "alice".into(),
        role: "app".into(),
    }));
    node.ok(Request::Auth(AuthRequest::Enable));
    let revision = node.sm.auth().revision();
    let root = AuthInfo {
        username: ROOT.into(),
        revision,
    };
    let alice = AuthInfo {
        username: "alice".into(),
        revision,
    };
    (node, root, alice)
}

#[test]
fn auth_denied_requests_write_nothing() {
    let (mut node, root, alice) = auth_node();
    node.propose(Some(&root), put("b", "root-wrote", 0))
        .result
        .unwrap();
    node.propose(Some(&alice), put("a/1", "ok", 0))
        .result
        .unwrap();
    let before = node.revision();
    let denied = AuthError::PermissionDenied;
    let cases = vec![
        put("b", "x", 0),
        put("zzz", "x", 0),
        delete("a/", "a1"),
        Request::Put(PutRequest {
            key: b"w".to_vec(),
            value: b"x".to_vec(),
            prev_kv: true,
            ..Default::default()
        }),
        Request::Txn(TxnRequest {
            compare: vec![],
            success: vec![RequestOp::Put(PutRequest {
                key: b"a/3".to_vec(),
                ..Default::default()
            })],
            failure: vec![RequestOp::Txn(TxnRequest {
                compare: vec![],
                success: vec![RequestOp::DeleteRange(DeleteRangeRequest {
                    key: b"b".to_vec(),
                    ..Default::default()
                })],
                failure: vec![],
            })],
        }),
        Request::Txn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Version(0),
                key: b"secret".to_vec(),
                range_end: vec![],
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: b"a/4".to_vec(),
                ..Default::default()
            })],
            failure: vec![],
        }),
        Request::Auth(AuthRequest::UserAdd {
            name: "mallory".into(),
            password_hash: None,
        }),
        Request::Auth(AuthRequest::Disable),
        Request::Compaction(keel_kernel::mvcc::CompactionRequest {
            revision: 2,
            physical: false,
        }),
    ];
    // Compaction needs root, as in etcd 3.6.9+/3.5.28+/3.4.42+ (etcd
    // 3.4.23 let any user compact; docs/auth-compat.md).
    for (i, request) in cases.into_iter().enumerate() {
        let result = node.propose(Some(&alice), request);
        assert_eq!(result.result, Err(ApplyError::Auth(denied)), "case {i}");
        assert!(result.events.is_empty());
        assert_eq!(node.revision(), before, "case {i} wrote nothing");
    }
    assert_eq!(node.get("b"), Some(b"root-wrote".to_vec()));
    assert!(node.sm.auth().user_get("mallory").is_err());
    let write_only = node.propose(Some(&alice), put("w", "blind write", 0));
    assert!(
        write_only.result.is_ok(),
        "write-only permission allows a put without prev_kv"
    );
    let no_user = node.propose(Some(&AuthInfo::default()), put("a/5", "x", 0));
    assert_eq!(no_user.result, Err(ApplyError::Auth(AuthError::UserEmpty)));
    let range = RangeRequest {
        key: b"a/".to_vec(),
        range_end: b"a0".to_vec(),
        ..Default::default()
    };
    assert_eq!(node.sm.range(Some(&alice), &range).unwrap().count, 1);
    let all = RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    };
    assert_eq!(
        node.sm.range(Some(&alice), &all),
        Err(ApplyError::Auth(denied))
    );
    assert_eq!(node.sm.check_watch(&alice, b"b", b""), Ok(()));
    assert_eq!(
        node.sm.check_watch(&alice, b"c", b""),
        Err(ApplyError::Auth(denied))
    );
    // Users may read themselves; the server's own requests skip checks.
    let me = node.propose(
        Some(&alice),
        Request::Auth(AuthRequest::UserGet {
            name: "alice".into(),
        }),
    );
    assert_eq!(
        me.result,
        Ok(Response::UserGet {
            roles: vec!["app".into()]
        })
    );
    node.propose(None, put("internal", "x", 0)).result.unwrap();
}

#[test]
fn lease_revoke_needs_write_on_every_attached_key() {
    let (mut node, root, alice) = auth_node();
    node.propose(
        Some(&root),
        Request::LeaseGrant {
            id: 5,
            ttl_secs: 60,
        },
    )
    .result
    .unwrap();
    node.propose(Some(&root), put("outside", "x", 5))
        .result
        .unwrap();
    let attach = node.propose(Some(&alice), put("a/k", "x", 5));
    assert_eq!(
        attach.result,
        Err(ApplyError::Auth(AuthError::PermissionDenied))
    );
    let revoke = node.propose(Some(&alice), Request::LeaseRevoke { id: 5 });
    assert_eq!(
        revoke.result,
        Err(ApplyError::Auth(AuthError::PermissionDenied))
    );
    assert_eq!(node.get("outside"), Some(b"x".to_vec()));
    let ttl = node.sm.lease_time_to_live(Some(&alice), 5, true);
    assert_eq!(ttl, Err(ApplyError::Auth(AuthError::PermissionDenied)));
    assert_eq!(
        node.sm
            .lease_time_to_live(Some(&alice), 5, false)
            .unwrap()
            .keys,
        Vec::<Vec<u8>>::new()
    );
    node.propose(Some(&root), Request::LeaseRevoke { id: 5 })
        .result
        .unwrap();
    assert_eq!(node.get("outside"), None);
}

#[test]
fn login_through_the_log_and_stale_auth_revision() {
    let (mut node, root, alice) = auth_node();
    let checked = node.sm.check_password("alice", "pw").unwrap();
    assert_eq!(
        node.sm.check_password("alice", "nope"),
        Err(AuthError::AuthFailed)
    );
    let login = node.propose(
        None,
        Request::Auth(AuthRequest::Authenticate {
            name: "alice".into(),
            checked_revision: checked,
            token_random: "rnd".into(),
        }),
    );
    let index = login.index;
    assert_eq!(
        login.result,
        Ok(Response::Authenticate {
            token: format!("rnd.{index}")
        })
    );
    let token = format!("rnd.{index}");
    let who = node.local.authenticate_token(&node.sm, &token, 0).unwrap();
    assert_eq!(who, alice);
    assert_eq!(
        node.local.authenticate_token(&node.sm, "forged.1", 0),
        Err(AuthError::InvalidAuthToken)
    );
    node.propose(
        Some(&root),
        Request::Auth(AuthRequest::RoleAdd {
            name: "other".into(),
        }),
    )
    .result
    .unwrap();
    let stale = node.propose(Some(&alice), put("a/1", "x", 0));
    assert_eq!(
        stale.result,
        Err(ApplyError::Auth(AuthError::AuthOldRevision))
    );
    let stale_login = node.propose(
        None,
        Request::Auth(AuthRequest::Authenticate {
            name: "alice".into(),
            checked_revision: checked,
            token_random: "r2".into(),
        }),
    );
    assert_eq!(
        stale_login.result,
        Err(ApplyError::Auth(AuthError::AuthOldRevision))
    );
}

#[test]
fn conf_change_entries_update_membership() {
    let mut node = Node::new();
    let new = Member::new("n2", &["http://n2:2380".to_string()], "t", Some(5), false);
    let change = ConfChange {
        changes: vec![ConfChangeSingle {
            change_type: ConfChangeType::AddNode,
            node_id: new.id,
        }],
        context: ConfChangeContext {
            members: vec![new.clone()],
            is_promote: false,
        }
        .encode(),
    };
    let result = node.entry(EntryType::ConfChange, change.encode());
    let applied = result.conf_change.unwrap();
    assert!(applied.accepted);
    assert_eq!(applied.change, change);
    assert_eq!(node.sm.cluster().members().len(), 2);
    let again = node.entry(EntryType::ConfChange, change.encode());
    assert!(!again.conf_change.unwrap().accepted);
    assert_eq!(
        again.result,
        Err(ApplyError::Membership(MembershipError::IdExists))
    );
    let urls = vec!["http://n2:2379".to_string()];
    node.ok(Request::MemberAttrSet {
        member_id: new.id,
        name: "n2".into(),
        client_urls: urls.clone(),
    });
    assert_eq!(node.sm.cluster().member(new.id).unwrap().client_urls, urls);
    let garbage = node.entry(EntryType::ConfChange, Bytes::from_static(&[7]));
    assert!(matches!(garbage.result, Err(ApplyError::BadEntry(_))));
    assert!(garbage.conf_change.is_none());
}

#[test]
fn nospace_alarm_blocks_writes_but_not_deletes_or_reads() {
    let mut node = Node::new();
    node.ok(put("k", "v", 0));
    let raise = AlarmRequest {
        action: AlarmAction::Activate,
        member_id: 1,
        alarm: AlarmType::NoSpace,
    };
    node.ok(Request::Alarm(raise));
    let blocked = node.propose(None, put("k2", "v", 0));
    assert_eq!(
        blocked.result.unwrap_err().to_string(),
        "etcdserver: mvcc: database space exceeded"
    );
    let grant = node.propose(
        None,
        Request::LeaseGrant {
            id: 1,
            ttl_secs: 10,
        },
    );
    assert_eq!(grant.result, Err(ApplyError::NoSpace));
    let read_txn = TxnRequest {
        compare: vec![],
        success: vec![RequestOp::Range(RangeRequest {
            key: b"k".to_vec(),
            ..Default::default()
        })],
        failure: vec![],
    };
    assert!(node.propose(None, Request::Txn(read_txn)).result.is_ok());
    node.ok(delete("k", ""));
    let clear = AlarmRequest {
        action: AlarmAction::Deactivate,
        member_id: 1,
        alarm: AlarmType::NoSpace,
    };
    node.ok(Request::Alarm(clear));
    node.ok(put("k2", "v", 0));
    let corrupt = AlarmRequest {
        action: AlarmAction::Activate,
        member_id: 2,
        alarm: AlarmType::Corrupt,
    };
    node.ok(Request::Alarm(corrupt));
    let range = RangeRequest {
        key: b"k2".to_vec(),
        ..Default::default()
    };
    assert_eq!(node.sm.range(None, &range), Err(ApplyError::Corrupt));
}

mod robustness {
    //! Arbitrary entry bytes never panic the state machine and change
    //! nothing but the applied index.

    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn garbage_entries_change_nothing(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            conf_change in any::<bool>(),
        ) {
            let mut node = Node::new();
            node.ok(put("k", "v", 0));
            let before = node.sm.snapshot();
            let mut framed = bytes.clone();
            if !conf_change && !framed.is_empty() {
                framed[0] = 1; // the current request format version
            }
            let entry_type = if conf_change { EntryType::ConfChange } else { EntryType::Normal };
            let result = node.entry(entry_type, Bytes::from(framed));
            if result.result.is_ok() {
                // The bytes happened to decode as a valid request; then it
                // was applied like any other.
                return Ok(());
            }
            let after = StateMachine::restore(node.sm.config(), &node.sm.snapshot()).unwrap();
            let restored_before = StateMachine::restore(node.sm.config(), &before).unwrap();
            prop_assert_eq!(after.store().hash_kv(0), restored_before.store().hash_kv(0));
            prop_assert_eq!(after.applied_index(), restored_before.applied_index() + 1);
            prop_assert_eq!(after.cluster(), restored_before.cluster());
        }
    }

    #[test]
    fn requests_round_trip_through_their_encoding() {
        let envelope = RequestEnvelope {
            id: u64::MAX,
            auth: Some(AuthInfo {
                username: "ü".into(),
                revision: 7,
            }),
            request: Request::Txn(TxnRequest {
                compare: vec![],
                success: vec![RequestOp::Put(PutRequest {
                    key: vec![0, 255],
                    ..Default::default()
                })],
                failure: vec![],
            }),
        };
        let bytes = envelope.encode().unwrap();
        assert_eq!(RequestEnvelope::decode(&bytes).unwrap(), envelope);
        assert!(RequestEnvelope::decode(&bytes[..bytes.len() - 1]).is_err());
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(RequestEnvelope::decode(&trailing).is_err());
    }
}

/// Two members apply the same entries at different instants of their own
/// clocks, and the leader serves keep-alives meanwhile: their replicated
/// states stay identical (whole, not only their snapshots), while each
/// member's lease TTL answer comes from its own clock. This fails if a
/// lease's expiry, or anything a keep-alive changes, were replicated state.
#[test]
fn lease_clocks_and_keep_alives_stay_out_of_the_replicated_state() {
    let (mut leader, mut follower) = (Node::new(), Node::new());
    leader.now_ms = 1_000;
    follower.now_ms = 777_000;
    leader.local.lease_promote(&leader.sm, leader.now_ms, 0);
    let requests = [
        Request::LeaseGrant {
            id: 4,
            ttl_secs: 600,
        },
        put("session", "s", 4),
        Request::LeaseCheckpoint(vec![LeaseCheckpoint {
            id: 4,
            remaining_ttl_secs: 300,
        }]),
    ];
    for request in requests {
        leader.ok(request.clone());
        follower.ok(request);
    }
    let renewal = leader.local.lease_renew(&leader.sm, 4, 31_000).unwrap();
    assert_eq!(renewal.ttl_secs, 600);
    let ttl = |node: &Node, now_ms| {
        let status = node
            .local
            .lease_time_to_live(&node.sm, None, 4, false, now_ms);
        status.unwrap().ttl_secs
    };
    assert_eq!(
        ttl(&leader, 41_000),
        590,
        "the leader's clock: 600 s from 31 s"
    );
    assert_eq!(ttl(&follower, 41_000), 300, "the replicated checkpoint");
    assert_eq!(
        leader
            .sm
            .lease_time_to_live(None, 4, false)
            .unwrap()
            .ttl_secs,
        300
    );
    assert_eq!(format!("{:?}", leader.sm), format!("{:?}", follower.sm));
    assert_eq!(leader.sm.snapshot(), follower.sm.snapshot());
    // The keep-alive's checkpoint clears the remaining TTL on both, through
    // the log.
    let clear = Request::LeaseCheckpoint(vec![renewal.checkpoint.unwrap()]);
    leader.ok(clear.clone());
    follower.ok(clear);
    assert_eq!(ttl(&follower, 41_000), 600);
    assert_eq!(format!("{:?}", leader.sm), format!("{:?}", follower.sm));
}

/// Tokens are member-local: every member issues the login's token when it
/// applies it, and drops a user's tokens when a password change, a user
/// deletion or auth disable is applied; the replicated auth state stays the
/// same on members whose token tables differ.
#[test]
fn token_tables_follow_the_applied_auth_changes() {
    let (mut node, _, _) = auth_node();
    let root_now = |node: &Node| AuthInfo {
        username: ROOT.into(),
        revision: node.sm.auth().revision(),
    };
    let login = |node: &mut Node, user: &str, random: &str| {
        let checked = node.sm.check_password(user, "pw").unwrap();
        let request = Request::Auth(AuthRequest::Authenticate {
            name: user.into(),
            checked_revision: checked,
            token_random: random.into(),
        });
        match node.propose(None, request).result {
            Ok(Response::Authenticate { token }) => token,
            other => panic!("login refused: {other:?}"),
        }
    };
    let valid = |node: &mut Node, token: &str| {
        let now_ms = node.now_ms;
        node.local
            .authenticate_token(&node.sm, token, now_ms)
            .is_ok()
    };
    let alice = login(&mut node, "alice", "a1");
    let root_token = login(&mut node, ROOT, "r1");
    assert!(valid(&mut node, &alice) && valid(&mut node, &root_token));
    let before = node.sm.snapshot();
    node.now_ms = 10_000_000;
    assert!(!valid(&mut node, &alice), "expired by this member's clock");
    assert_eq!(
        node.sm.snapshot(),
        before,
        "token checks change nothing replicated"
    );
    let alice = login(&mut node, "alice", "a2");
    let hash = hash_password("pw", MIN_BCRYPT_COST, [2; 16]).unwrap();
    let change = AuthRequest::UserChangePassword {
        name: "alice".into(),
        password_hash: Some(hash),
    };
    let root = root_now(&node);
    node.propose(Some(&root), Request::Auth(change))
        .result
        .unwrap();
    assert!(!valid(&mut node, &alice), "password changed");
    let alice = login(&mut node, "alice", "a3");
    let delete = AuthRequest::UserDelete {
        name: "alice".into(),
    };
    let root = root_now(&node);
    node.propose(Some(&root), Request::Auth(delete))
        .result
        .unwrap();
    assert!(!valid(&mut node, &alice), "user deleted");
    let root_token = login(&mut node, ROOT, "r2");
    assert!(valid(&mut node, &root_token));
    let now_ms = node.now_ms;
    let root = node
        .local
        .authenticate_token(&node.sm, &root_token, now_ms)
        .unwrap();
    assert_eq!(root, root_now(&node));
    node.propose(Some(&root), Request::Auth(AuthRequest::Disable))
        .result
        .unwrap();
    assert!(node.local.tokens().is_empty(), "auth disabled");
}
