//! Auth permission matrix through the state machine: users (root, reader,
//! writer, read-writer, no role) x operations (range, put, put with
//! prev_kv, delete, delete with prev_kv, txn compare, nested txn put, watch,
//! lease revoke, admin request) x key ranges (inside, outside, the whole
//! prefix, beyond it, from-key). Denied requests write nothing.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use bytes::Bytes;
use keel_kernel::apply::{
    ApplyError, ApplyResult, AuthRequest, Request, RequestEnvelope, StateMachine,
    StateMachineConfig,
};
use keel_kernel::auth::{AuthError, AuthInfo, Permission, PermissionType, ROOT};
use keel_kernel::membership::{Cluster, Member};
use keel_kernel::mvcc::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest,
};
use keel_kernel::raft::{Entry, EntryType};

const LEASE: i64 = 77;

struct Node {
    sm: StateMachine,
    index: u64,
}

impl Node {
    fn propose(&mut self, auth: Option<&AuthInfo>, request: Request) -> ApplyResult {
        self.index += 1;
        let envelope = RequestEnvelope {
            id: self.index,
            auth: auth.cloned(),
            request,
        };
        let data: Bytes = envelope.encode().unwrap();
        self.sm.apply(&Entry {
            term: 1,
            index: self.index,
            entry_type: EntryType::Normal,
            data,
        })
    }

    fn setup(&mut self, request: Request) {
        self.propose(None, request).result.unwrap();
    }
}

fn put(key: &str, lease: i64) -> Request {
    Request::Put(PutRequest {
        key: key.into(),
        value: b"v".to_vec(),
        lease,
        ..Default::default()
    })
}

/// A node with keys a/x, a/y (attached to `LEASE`) and b, users root,
/// reader, writer, rw (each with one permission over the prefix "a/") and
/// nobody (no role); auth enabled.
fn node() -> Node {
    let member = Member::new("n", &["http://n:2380".into()], "t", None, false);
    let cluster = Cluster::bootstrap(vec![member]).unwrap();
    let mut node = Node {
        sm: StateMachine::new(StateMachineConfig::new(1000), cluster),
        index: 0,
    };
    node.setup(Request::LeaseGrant {
        id: LEASE,
        ttl_secs: 60,
    });
    for (key, lease) in [("a/x", 0), ("a/y", LEASE), ("b", 0)] {
        node.setup(put(key, lease));
    }
    let roles = [
        ("reader", PermissionType::Read),
        ("writer", PermissionType::Write),
        ("rw", PermissionType::ReadWrite),
    ];
    for user in [ROOT, "reader", "writer", "rw", "nobody"] {
        node.setup(Request::Auth(AuthRequest::UserAdd {
            name: user.into(),
            password_hash: None,
        }));
    }
    node.setup(Request::Auth(AuthRequest::UserGrantRole {
        user: ROOT.into(),
        role: ROOT.into(),
    }));
    for (role, perm_type) in roles {
        node.setup(Request::Auth(AuthRequest::RoleAdd { name: role.into() }));
        let permission = Permission {
            perm_type,
            key: b"a/".to_vec(),
            range_end: b"a0".to_vec(),
        };
        node.setup(Request::Auth(AuthRequest::RoleGrantPermission {
            name: role.into(),
            permission,
        }));
        node.setup(Request::Auth(AuthRequest::UserGrantRole {
            user: role.into(),
            role: role.into(),
        }));
    }
    node.setup(Request::Auth(AuthRequest::Enable));
    node
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Range,
    Put,
    PutPrevKv,
    Delete,
    DeletePrevKv,
    TxnCompare,
    TxnNestedPut,
    Watch,
    LeaseRevoke,
    Admin,
}

const OPS: [Op; 10] = [
    Op::Range,
    Op::Put,
    Op::PutPrevKv,
    Op::Delete,
    Op::DeletePrevKv,
    Op::TxnCompare,
    Op::TxnNestedPut,
    Op::Watch,
    Op::LeaseRevoke,
    Op::Admin,
];

/// `(key, range_end)` in etcd's encoding.
const RANGES: [(&str, &str); 5] = [
    ("a/x", ""),
    ("b", ""),
    ("a/", "a0"),
    ("a/", "b"),
    ("a/", "\0"),
];

/// What the op needs: (read, write) over its keys, or admin.
fn needs(op: Op) -> (bool, bool) {
    match op {
        Op::Range | Op::TxnCompare | Op::Watch => (true, false),
        Op::Put | Op::Delete | Op::TxnNestedPut | Op::LeaseRevoke => (false, true),
        Op::PutPrevKv | Op::DeletePrevKv => (true, true),
        Op::Admin => (false, false),
    }
}

/// The keys the op touches lie inside the granted prefix ["a/", "a0").
/// Single-key ops use the range's first key; lease revoke touches the
/// lease's key a/y.
fn inside(op: Op, key: &str, range_end: &str) -> bool {
    let single = matches!(op, Op::Put | Op::PutPrevKv | Op::TxnNestedPut) || range_end.is_empty();
    match op {
        Op::LeaseRevoke => true,
        _ if single => key.starts_with("a/"),
        _ => key >= "a/" && range_end != "\0" && range_end <= "a0",
    }
}

fn expected(user: &str, op: Op, key: &str, range_end: &str) -> bool {
    if user == ROOT {
        return true;
    }
    let (read, write) = needs(op);
    let (can_read, can_write) = match user {
        "reader" => (true, false),
        "writer" => (false, true),
        "rw" => (true, true),
        _ => (false, false),
    };
    if matches!(op, Op::Admin) {
        return false;
    }
    inside(op, key, range_end) && (!read || can_read) && (!write || can_write)
}

fn request(op: Op, key: &str, range_end: &str) -> Option<Request> {
    let (key, end) = (key.as_bytes().to_vec(), range_end.as_bytes().to_vec());
    let delete = |prev_kv| DeleteRangeRequest {
        key: key.clone(),
        range_end: end.clone(),
        prev_kv,
    };
    let single_put = |prev_kv| PutRequest {
        key: key.clone(),
        value: b"w".to_vec(),
        prev_kv,
        ..Default::default()
    };
    Some(match op {
        Op::Put => Request::Put(single_put(false)),
        Op::PutPrevKv => Request::Put(single_put(true)),
        Op::Delete => Request::DeleteRange(delete(false)),
        Op::DeletePrevKv => Request::DeleteRange(delete(true)),
        Op::TxnCompare => Request::Txn(TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Greater,
                target: CompareTarget::Version(0),
                key,
                range_end: end,
            }],
            success: vec![],
            failure: vec![],
        }),
        Op::TxnNestedPut => Request::Txn(TxnRequest {
            compare: vec![],
            success: vec![],
            failure: vec![RequestOp::Txn(TxnRequest {
                compare: vec![],
                success: vec![RequestOp::Put(single_put(false))],
                failure: vec![],
            })],
        }),
        Op::LeaseRevoke => Request::LeaseRevoke { id: LEASE },
        Op::Admin => Request::Auth(AuthRequest::UserList),
        Op::Range | Op::Watch => return None,
    })
}

/// Runs one cell; returns whether it was allowed, checking that a denied
/// request wrote nothing.
fn run(user: &str, op: Op, key: &str, range_end: &str) -> bool {
    let mut node = node();
    let info = AuthInfo {
        username: user.into(),
        revision: node.sm.auth().revision(),
    };
    let outcome = match op {
        Op::Range => {
            let range = RangeRequest {
                key: key.into(),
                range_end: range_end.into(),
                ..Default::default()
            };
            node.sm.range(Some(&info), &range).map(|_| ())
        }
        Op::Watch => node
            .sm
            .check_watch(&info, key.as_bytes(), range_end.as_bytes()),
        _ => {
            let before = node.sm.store().current_revision();
            let request = request(op, key, range_end).unwrap();
            let result = node.propose(Some(&info), request);
            if result.result.is_err() {
                assert_eq!(node.sm.store().current_revision(), before);
                assert!(result.events.is_empty());
                assert!(node.sm.lessor().lease(LEASE).is_some());
            }
            result.result.map(|_| ())
        }
    };
    match outcome {
        Ok(()) => true,
        Err(ApplyError::Auth(AuthError::PermissionDenied)) => false,
        Err(other) => panic!("{user} {op:?} [{key:?}, {range_end:?}): unexpected {other}"),
    }
}

#[test]
fn users_by_ops_by_key_ranges() {
    let mut cells = 0;
    let mut allowed = 0;
    for user in [ROOT, "reader", "writer", "rw", "nobody"] {
        for op in OPS {
            for (key, range_end) in RANGES {
                let want = expected(user, op, key, range_end);
                assert_eq!(
                    run(user, op, key, range_end),
                    want,
                    "{user} {op:?} [{key:?}, {range_end:?})"
                );
                cells += 1;
                allowed += usize::from(want);
            }
        }
    }
    assert_eq!(cells, 5 * OPS.len() * RANGES.len());
    assert!(
        allowed > cells / 4 && allowed < cells * 3 / 4,
        "{allowed} of {cells} allowed"
    );
}

/// Issue 28 item 1: changing a password needs the `root` role, also for
/// the user's own password (etcd `needAdminPermission` lists
/// `AuthUserChangePassword` in 3.4, 3.5 and 3.6); reading oneself stays
/// open.
#[test]
fn only_root_changes_passwords_even_its_own() {
    let mut node = node();
    let change = |name: &str| {
        Request::Auth(AuthRequest::UserChangePassword {
            name: name.into(),
            password_hash: None,
        })
    };
    for user in ["reader", "rw", "nobody"] {
        let info = AuthInfo {
            username: user.into(),
            revision: node.sm.auth().revision(),
        };
        let before = node.sm.auth().revision();
        let own = node.propose(Some(&info), change(user)).result;
        assert_eq!(
            own.unwrap_err(),
            ApplyError::Auth(AuthError::PermissionDenied),
            "{user} changing its own password"
        );
        assert_eq!(node.sm.auth().revision(), before, "nothing changed");
        let other = node.propose(Some(&info), change(ROOT)).result;
        assert_eq!(
            other.unwrap_err(),
            ApplyError::Auth(AuthError::PermissionDenied)
        );
        let get = Request::Auth(AuthRequest::UserGet { name: user.into() });
        assert!(node.propose(Some(&info), get).result.is_ok(), "{user} get");
    }
    let root = AuthInfo {
        username: ROOT.into(),
        revision: node.sm.auth().revision(),
    };
    node.propose(Some(&root), change("nobody")).result.unwrap();
    node.propose(Some(&root), change(ROOT)).result.unwrap();
}

/// A user may read the roles it holds and no other (etcd `RoleGet`).
#[test]
fn users_read_only_the_roles_they_hold() {
    let mut node = node();
    let info = AuthInfo {
        username: "nobody".into(),
        revision: node.sm.auth().revision(),
    };
    let get = |name: &str| Request::Auth(AuthRequest::RoleGet { name: name.into() });
    let other = node.propose(Some(&info), get(ROOT)).result;
    assert_eq!(
        other.unwrap_err(),
        ApplyError::Auth(AuthError::PermissionDenied)
    );
    let reader = AuthInfo {
        username: "reader".into(),
        revision: node.sm.auth().revision(),
    };
    let roles = node.sm.auth().user_get("reader").unwrap().roles.clone();
    for role in roles {
        assert!(
            node.propose(Some(&reader), get(&role)).result.is_ok(),
            "{role}"
        );
    }
    let root_role = node.propose(Some(&reader), get(ROOT)).result;
    assert_eq!(
        root_role.unwrap_err(),
        ApplyError::Auth(AuthError::PermissionDenied)
    );
}

/// Issue 28 item 4: the requests etcd 3.4.23 left open follow the newest
/// etcd (3.6.9+, 3.5.28+, 3.4.42+): compaction and alarm changes need
/// root, listing alarms and lease TTLs needs a user.
#[test]
fn compaction_alarms_and_lease_queries_follow_the_newest_etcd() {
    use keel_kernel::apply::{AlarmAction, AlarmRequest, AlarmType};
    let mut node = node();
    let info = |user: &str, node: &Node| AuthInfo {
        username: user.into(),
        revision: node.sm.auth().revision(),
    };
    let compact = || {
        Request::Compaction(keel_kernel::mvcc::CompactionRequest {
            revision: 2,
            physical: false,
        })
    };
    let alarm = |action| {
        Request::Alarm(AlarmRequest {
            action,
            member_id: 1,
            alarm: AlarmType::NoSpace,
        })
    };
    let denied = ApplyError::Auth(AuthError::PermissionDenied);
    let empty = ApplyError::Auth(AuthError::UserEmpty);
    let anonymous = AuthInfo::default();
    let rw = info("rw", &node);
    let outcome =
        |node: &mut Node, who: &AuthInfo, request| node.propose(Some(who), request).result;
    assert_eq!(outcome(&mut node, &rw, compact()).unwrap_err(), denied);
    assert_eq!(
        outcome(&mut node, &anonymous, compact()).unwrap_err(),
        empty
    );
    for action in [AlarmAction::Activate, AlarmAction::Deactivate] {
        assert_eq!(outcome(&mut node, &rw, alarm(action)).unwrap_err(), denied);
    }
    let nobody = info("nobody", &node);
    outcome(&mut node, &nobody, alarm(AlarmAction::Get)).unwrap();
    let get = outcome(&mut node, &anonymous, alarm(AlarmAction::Get));
    assert_eq!(get.unwrap_err(), empty);
    let ttl = node.sm.lease_time_to_live(Some(&anonymous), LEASE, false);
    assert_eq!(ttl.unwrap_err(), empty);
    let nobody = info("nobody", &node);
    assert!(
        node.sm
            .lease_time_to_live(Some(&nobody), LEASE, false)
            .is_ok()
    );
    let root = info(ROOT, &node);
    outcome(&mut node, &root, compact()).unwrap();
    outcome(&mut node, &root, alarm(AlarmAction::Activate)).unwrap();
}

/// Issue 28: a keep-alive needs a user and, unless root, WRITE on every
/// key of its lease; listing leases needs a user and, unless root, READ on
/// every key of every lease (etcd 3.6.9+ `checkLeaseRenew`,
/// `checkLeaseLeases`). `LEASE` holds "a/y"; lease 78 holds no key.
#[test]
fn keep_alive_and_lease_listing_check_the_leases_keys() {
    let mut node = node();
    let info = |user: &str, node: &Node| AuthInfo {
        username: user.into(),
        revision: node.sm.auth().revision(),
    };
    let bare = 78;
    node.propose(
        Some(&info(ROOT, &node)),
        Request::LeaseGrant {
            id: bare,
            ttl_secs: 60,
        },
    )
    .result
    .unwrap();
    let denied = ApplyError::Auth(AuthError::PermissionDenied);
    let empty = ApplyError::Auth(AuthError::UserEmpty);
    let anonymous = AuthInfo::default();
    let renew = |who: &AuthInfo, id| node.sm.check_lease_renew(who, id);
    assert_eq!(renew(&anonymous, bare), Err(empty.clone()));
    assert_eq!(renew(&anonymous, LEASE), Err(empty.clone()));
    for (user, allowed) in [
        (ROOT, true),
        ("writer", true),
        ("rw", true),
        ("reader", false),
        ("nobody", false),
    ] {
        let who = info(user, &node);
        let expected = if allowed { Ok(()) } else { Err(denied.clone()) };
        assert_eq!(renew(&who, LEASE), expected, "{user} renews");
        assert_eq!(
            renew(&who, bare),
            Ok(()),
            "{user} renews a lease without keys"
        );
        assert_eq!(renew(&who, 999), Ok(()), "{user} renews an unknown lease");
    }
    let list = |who: &AuthInfo| node.sm.lease_leases(who);
    assert_eq!(list(&anonymous), Err(empty));
    for (user, allowed) in [
        (ROOT, true),
        ("reader", true),
        ("rw", true),
        ("writer", false),
        ("nobody", false),
    ] {
        let expected = if allowed {
            Ok(vec![LEASE, bare])
        } else {
            Err(denied.clone())
        };
        assert_eq!(list(&info(user, &node)), expected, "{user} lists");
    }
    node.propose(
        Some(&info(ROOT, &node)),
        Request::Auth(AuthRequest::Disable),
    )
    .result
    .unwrap();
    assert_eq!(node.sm.check_lease_renew(&anonymous, LEASE), Ok(()));
    assert_eq!(node.sm.lease_leases(&anonymous), Ok(vec![LEASE, bare]));
}
