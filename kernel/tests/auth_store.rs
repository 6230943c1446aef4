//! Auth store: permission matrix (users x roles x ops x key ranges),
//! management rules and errors, logins and tokens; the permission property
//! test checks `AuthStore::check_invariants` after every change.

#![allow(clippy::unwrap_used)] // tests may unwrap (project guide)

use keel_kernel::auth::{
    AuthError, AuthInfo, AuthStore, MIN_BCRYPT_COST, Permission, PermissionType, ROOT,
    SimpleTokens, hash_password,
};

use PermissionType::{Read, ReadWrite, Write};

fn perm(perm_type: PermissionType, key: &str, range_end: &str) -> Permission {
    Permission {
        perm_type,
        key: key.as_bytes().to_vec(),
        range_end: range_end.as_bytes().to_vec(),
    }
}

/// root; alice: read "foo" + write prefix "app/"; bob: readwrite from "z";
/// carol: readwrite ["k1","k5") + read "foo" + read ["k5","k7");
/// dave: no role; erin: write-only ["k1","k5").
fn populated_store() -> AuthStore {
    let mut store = AuthStore::new();
    for user in ["root", "alice", "bob", "carol", "dave", "erin"] {
        store.user_add(user, None).unwrap();
    }
    let roles = [
        ("read_foo", vec![perm(Read, "foo", "")]),
        ("write_app", vec![perm(Write, "app/", "app0")]),
        ("rw_from_z", vec![perm(ReadWrite, "z", "\0")]),
        (
            "rw_k",
            vec![perm(ReadWrite, "k1", "k5"), perm(Read, "k5", "k7")],
        ),
        ("w_k", vec![perm(Write, "k1", "k5")]),
    ];
    for (role, permissions) in roles {
        store.role_add(role).unwrap();
        for permission in permissions {
            store.role_grant_permission(role, permission).unwrap();
        }
    }
    let grants = [
        ("root", ROOT),
        ("alice", "read_foo"),
        ("alice", "write_app"),
        ("bob", "rw_from_z"),
        ("carol", "rw_k"),
        ("carol", "read_foo"),
        ("erin", "w_k"),
    ];
    for (user, role) in grants {
        store.user_grant_role(user, role).unwrap();
    }
    store.enable().unwrap();
    store
}

fn info(store: &AuthStore, user: &str) -> AuthInfo {
    AuthInfo {
        username: user.to_string(),
        revision: store.revision(),
    }
}

#[test]
fn permission_matrix() {
    let store = populated_store();
    // (user, key, range_end, need, allowed)
    let cases: &[(&str, &str, &str, PermissionType, bool)] = &[
        ("root", "anything", "", Write, true),
        ("root", "", "\0", Read, true),
        ("alice", "foo", "", Read, true),
        ("alice", "foo", "", Write, false),
        ("alice", "foo", "fop", Read, false),
        ("alice", "fo", "", Read, false),
        ("alice", "app/x", "", Write, true),
        ("alice", "app/", "app0", Write, true),
        ("alice", "app/a", "app/b", Write, true),
        ("alice", "app/", "app1", Write, false),
        ("alice", "app/x", "", Read, false),
        ("alice", "app", "", Write, false),
        ("bob", "z", "", Read, true),
        ("bob", "zzz", "\0", Write, true),
        ("bob", "z", "\0", Read, true),
        ("bob", "y", "\0", Read, false),
        ("bob", "", "\0", Read, false),
        ("bob", "yz", "", Write, false),
        ("carol", "k1", "k5", Write, true),
        ("carol", "k1", "k7", Read, true),
        ("carol", "k1", "k7", Write, false),
        ("carol", "k4", "", Write, true),
        ("carol", "k5", "", Write, false),
        ("carol", "k6", "", Read, true),
        ("carol", "k7", "", Read, false),
        ("carol", "k0", "k2", Read, false),
        ("carol", "foo", "", Read, true),
        ("carol", "k1", "\0", Read, false),
        ("dave", "foo", "", Read, false),
        ("dave", "k1", "", Write, false),
        ("erin", "k2", "", Write, true),
        ("erin", "k2", "", Read, false),
        ("nobody", "foo", "", Read, false),
    ];
    for &(user, key, end, need, allowed) in cases {
        let result =
            store.check_permission(&info(&store, user), key.as_bytes(), end.as_bytes(), need);
        let expected = if allowed {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        };
        assert_eq!(result, expected, "{user} {need:?} [{key:?}, {end:?})");
    }
}

#[test]
fn disabled_store_allows_everything_and_requests_need_a_current_user() {
    let mut store = populated_store();
    let stale = info(&store, "alice");
    store
        .role_grant_permission("read_foo", perm(Read, "bar", ""))
        .unwrap();
    assert_eq!(
        store.check_permission(&stale, b"foo", b"", Read),
        Err(AuthError::AuthOldRevision)
    );
    assert_eq!(
        store.check_permission(&AuthInfo::default(), b"foo", b"", Read),
        Err(AuthError::UserEmpty)
    );
    assert_eq!(
        store.check_permission(&info(&store, "alice"), b"bar", b"", Read),
        Ok(())
    );
    assert_eq!(
        store.check_user(&info(&store, "ghost")),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(store.check_user(&info(&store, "dave")), Ok(()));
    assert_eq!(store.check_admin(&info(&store, "root")), Ok(()));
    assert_eq!(
        store.check_admin(&info(&store, "alice")),
        Err(AuthError::PermissionDenied)
    );
    assert_eq!(
        store.check_admin(&info(&store, "ghost")),
        Err(AuthError::UserNotFound)
    );
    store.disable();
    assert!(!store.is_enabled());
    assert_eq!(
        store.check_permission(&AuthInfo::default(), b"x", b"", Write),
        Ok(())
    );
    assert_eq!(store.check_admin(&AuthInfo::default()), Ok(()));
}

#[test]
fn permission_changes_take_effect_at_once() {
    let mut store = populated_store();
    let check = |store: &AuthStore| store.check_permission(&info(store, "dave"), b"d", b"", Write);
    assert_eq!(check(&store), Err(AuthError::PermissionDenied));
    store.role_add("d").unwrap();
    store.user_grant_role("dave", "d").unwrap();
    assert_eq!(check(&store), Err(AuthError::PermissionDenied));
    store
        .role_grant_permission("d", perm(ReadWrite, "d", ""))
        .unwrap();
    assert_eq!(check(&store), Ok(()));
    store
        .role_grant_permission("d", perm(Read, "d", ""))
        .unwrap();
    assert_eq!(
        check(&store),
        Err(AuthError::PermissionDenied),
        "type replaced"
    );
    store
        .role_grant_permission("d", perm(Write, "d", ""))
        .unwrap();
    assert_eq!(check(&store), Ok(()));
    store.user_revoke_role("dave", "d").unwrap();
    assert_eq!(check(&store), Err(AuthError::PermissionDenied));
    store.user_grant_role("dave", "d").unwrap();
    store.role_delete("d").unwrap();
    assert_eq!(check(&store), Err(AuthError::PermissionDenied));
    store.user_grant_role("dave", ROOT).unwrap();
    assert_eq!(check(&store), Ok(()));
    store.user_delete("dave").unwrap();
    assert_eq!(check(&store), Err(AuthError::PermissionDenied));
}

#[test]
fn enable_needs_root_user_with_root_role() {
    let mut store = AuthStore::new();
    assert_eq!(store.enable(), Err(AuthError::RootUserNotExist));
    assert_eq!(
        AuthError::RootUserNotExist.to_string(),
        "etcdserver: root user does not exist"
    );
    store.user_add(ROOT, None).unwrap();
    assert_eq!(store.enable(), Err(AuthError::RootRoleNotExist));
    store.user_grant_role(ROOT, ROOT).unwrap();
    let revision = store.revision();
    store.enable().unwrap();
    assert_eq!(store.revision(), revision + 1);
    store.enable().unwrap();
    assert_eq!(
        store.revision(),
        revision + 1,
        "enabling twice changes nothing"
    );
    assert_eq!(store.user_delete(ROOT), Err(AuthError::InvalidAuthMgmt));
    assert_eq!(
        store.user_revoke_role(ROOT, ROOT),
        Err(AuthError::InvalidAuthMgmt)
    );
    assert_eq!(store.role_delete(ROOT), Err(AuthError::InvalidAuthMgmt));
}

#[test]
fn user_and_role_management_errors() {
    let mut store = AuthStore::new();
    assert_eq!(store.revision(), 1);
    assert_eq!(store.user_add("", None), Err(AuthError::UserEmpty));
    store.user_add("u", None).unwrap();
    assert_eq!(store.user_add("u", None), Err(AuthError::UserAlreadyExist));
    assert_eq!(store.role_add(""), Err(AuthError::RoleEmpty));
    store.role_add("r").unwrap();
    assert_eq!(store.role_add("r"), Err(AuthError::RoleAlreadyExist));
    assert_eq!(
        store.user_grant_role("u", "nope"),
        Err(AuthError::RoleNotFound)
    );
    assert_eq!(
        store.user_grant_role("nope", "r"),
        Err(AuthError::UserNotFound)
    );
    assert_eq!(
        store.user_revoke_role("u", "r"),
        Err(AuthError::RoleNotGranted)
    );
    store.user_grant_role("u", "r").unwrap();
    assert_eq!(
        store.role_revoke_permission("r", b"a", b""),
        Err(AuthError::PermissionNotGranted)
    );
    assert_eq!(
        store.role_grant_permission("r", perm(Read, "b", "a")),
        Err(AuthError::InvalidAuthMgmt)
    );
    assert_eq!(
        store.role_grant_permission("r", perm(Read, "", "")),
        Err(AuthError::InvalidAuthMgmt)
    );
    store
        .role_grant_permission("r", perm(Read, "b", ""))
        .unwrap();
    store
        .role_grant_permission("r", perm(Read, "a", ""))
        .unwrap();
    store
        .role_grant_permission("r", perm(Write, "b", ""))
        .unwrap();
    let permissions = &store.role_get("r").unwrap().permissions;
    assert_eq!(
        permissions,
        &vec![perm(Read, "a", ""), perm(Write, "b", "")]
    );
    store.role_revoke_permission("r", b"a", b"").unwrap();
    store.role_delete("r").unwrap();
    assert!(
        store.user_get("u").unwrap().roles.is_empty(),
        "deleting a role revokes it"
    );
    assert_eq!(store.role_get("r"), Err(AuthError::RoleNotFound));
    store.user_delete("u").unwrap();
    assert_eq!(store.user_delete("u"), Err(AuthError::UserNotFound));
    assert_eq!(store.user_get("u"), Err(AuthError::UserNotFound));
    assert_eq!(store.user_list(), Vec::<String>::new());
}

/// While auth is enabled only root's own `root` role is protected: another
/// user holding `root` may lose it, root may lose another role, and with
/// auth disabled root may lose `root` too (etcd `UserRevokeRole`).
#[test]
fn only_roots_own_root_role_is_protected_while_enabled() {
    let mut store = populated_store();
    assert_eq!(
        store.user_revoke_role(ROOT, ROOT),
        Err(AuthError::InvalidAuthMgmt)
    );
    store.user_add("admin", None).unwrap();
    store.user_grant_role("admin", ROOT).unwrap();
    store.user_revoke_role("admin", ROOT).unwrap();
    store.user_grant_role(ROOT, "read_foo").unwrap();
    store.user_revoke_role(ROOT, "read_foo").unwrap();
    assert_eq!(
        store
            .user_get(ROOT)
            .unwrap()
            .roles
            .iter()
            .collect::<Vec<_>>(),
        vec![ROOT]
    );
    store.disable();
    store.user_revoke_role(ROOT, ROOT).unwrap();
    assert!(store.user_get(ROOT).unwrap().roles.is_empty());
}

#[test]
fn user_list_names_every_user_in_order() {
    let store = populated_store();
    let expected = ["alice", "bob", "carol", "dave", "erin", "root"];
    assert_eq!(store.user_list(), expected.map(String::from).to_vec());
}

/// A revoke removes exactly the permission over the given `(key,
/// range_end)`, whatever its type, and nothing else; a range that matches
/// only by key or only by end is not granted.
#[test]
fn revoking_a_permission_removes_exactly_that_range() {
    let mut store = AuthStore::new();
    store.role_add("r").unwrap();
    for permission in [
        perm(Read, "a", ""),
        perm(Write, "b", ""),
        perm(Read, "a", "c"),
        perm(ReadWrite, "d", "e"),
    ] {
        store.role_grant_permission("r", permission).unwrap();
    }
    store.role_revoke_permission("r", b"a", b"").unwrap();
    let kept = vec![
        perm(Read, "a", "c"),
        perm(Write, "b", ""),
        perm(ReadWrite, "d", "e"),
    ];
    let mut permissions = store.role_get("r").unwrap().permissions.clone();
    permissions.sort_by(|x, y| (&x.key, &x.range_end).cmp(&(&y.key, &y.range_end)));
    assert_eq!(permissions, kept);
    for (key, end) in [("b", "c"), ("x", "e"), ("a", "")] {
        assert_eq!(
            store.role_revoke_permission("r", key.as_bytes(), end.as_bytes()),
            Err(AuthError::PermissionNotGranted),
            "[{key}, {end})"
        );
    }
    assert_eq!(store.role_get("r").unwrap().permissions.len(), 3);
}

/// etcd's `isValidPermissionRange`, one case per rule: a single key needs a
/// non-empty key, `"\0"` means "from the key on" (also from the empty
/// key: every key), a range needs a non-empty key and an end above it.
#[test]
fn permission_ranges_are_checked_as_etcd_checks_them() {
    let cases = [
        ("a", "", true),
        ("", "", false),
        ("a", "\0", true),
        ("", "\0", true),
        ("a", "b", true),
        ("a", "a", false),
        ("b", "a", false),
        ("", "b", false),
    ];
    for (key, end, valid) in cases {
        let mut store = AuthStore::new();
        store.role_add("r").unwrap();
        let granted = store.role_grant_permission("r", perm(Read, key, end));
        let expected = if valid {
            Ok(())
        } else {
            Err(AuthError::InvalidAuthMgmt)
        };
        assert_eq!(granted, expected, "[{key:?}, {end:?})");
    }
}

/// Logins are checked by the store; the token it returns lives in a
/// member's own table (here one table stands for the member), where it
/// expires unless used. That the table drops a user's tokens when the
/// password changes is `apply_state_machine.rs`'s (it follows the apply).
#[test]
fn login_issues_tokens_that_expire_and_stale_checks_are_refused() {
    let mut store = AuthStore::new();
    let mut tokens = SimpleTokens::new(1_000);
    let hash = hash_password("pw", MIN_BCRYPT_COST, [3; 16]).unwrap();
    store.user_add(ROOT, Some(hash.clone())).unwrap();
    store.user_grant_role(ROOT, ROOT).unwrap();
    store.user_add("nopw", None).unwrap();
    assert_eq!(
        store.check_password(ROOT, "pw"),
        Err(AuthError::AuthNotEnabled)
    );
    store.enable().unwrap();
    assert_eq!(
        store.check_password(ROOT, "bad"),
        Err(AuthError::AuthFailed)
    );
    assert_eq!(
        store.check_password("ghost", "pw"),
        Err(AuthError::AuthFailed)
    );
    assert_eq!(
        store.check_password("nopw", ""),
        Err(AuthError::NoPasswordUser)
    );
    let checked = store.check_password(ROOT, "pw").unwrap();
    let token = store.authenticate(ROOT, checked, "tok.7".into()).unwrap();
    assert_eq!(token, "tok.7");
    assert_eq!(
        store.authenticate_token(&mut tokens, &token, 0),
        Err(AuthError::InvalidAuthToken),
        "the store keeps no token: the member's table does"
    );
    tokens.assign(token.clone(), ROOT, 0);
    let who = store.authenticate_token(&mut tokens, &token, 500).unwrap();
    assert_eq!(
        who,
        AuthInfo {
            username: ROOT.into(),
            revision: store.revision()
        }
    );
    assert_eq!(
        store
            .authenticate_token(&mut tokens, &token, 1_400)
            .unwrap()
            .username,
        ROOT
    );
    assert_eq!(
        store.authenticate_token(&mut tokens, &token, 2_500),
        Err(AuthError::InvalidAuthToken)
    );
    store.user_change_password(ROOT, Some(hash)).unwrap();
    assert_eq!(
        store.authenticate(ROOT, checked, "tok.9".into()),
        Err(AuthError::AuthOldRevision)
    );
}

#[test]
fn snapshot_round_trip() {
    let store = populated_store();
    assert_eq!(store.check_invariants(), Ok(()));
    let restored = AuthStore::restore(store.snapshot()).unwrap();
    assert_eq!(restored.snapshot(), store.snapshot());
    assert_eq!(restored.check_invariants(), Ok(()));
    assert_eq!(
        restored.check_permission(&info(&restored, "alice"), b"foo", b"", Read),
        Ok(())
    );
}

mod model {
    //! Property test: `check_permission` against an independent model. A
    //! request `[s, e)` is covered by a union of intervals iff `s` and every
    //! interval end inside `[s, e)` are each inside some interval (the first
    //! uncovered key, if any, is one of those points).

    use std::collections::BTreeMap;

    use super::*;
    use proptest::prelude::*;

    /// `(start, end)` with `None` = unbounded, as etcd's encoding means it.
    fn interval(key: &[u8], range_end: &[u8]) -> (Vec<u8>, Option<Vec<u8>>) {
        let single = || {
            let mut end = key.to_vec();
            end.push(0);
            Some(end)
        };
        match range_end {
            [] => (key.to_vec(), single()),
            [0] => (key.to_vec(), None),
            end if end <= key => (key.to_vec(), single()),
            end => (key.to_vec(), Some(end.to_vec())),
        }
    }

    fn holds(point: &[u8], (start, end): &(Vec<u8>, Option<Vec<u8>>)) -> bool {
        start.as_slice() <= point && end.as_ref().is_none_or(|end| point < end.as_slice())
    }

    fn model_allows(
        granted: &[(Vec<u8>, Option<Vec<u8>>)],
        want: &(Vec<u8>, Option<Vec<u8>>),
    ) -> bool {
        let mut points = vec![want.0.clone()];
        for (_, end) in granted {
            if let Some(end) = end
                && holds(end, want)
            {
                points.push(end.clone());
            }
        }
        points
            .iter()
            .all(|point| granted.iter().any(|range| holds(point, range)))
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(0u8)], 1..4)
    }

    fn range_end() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![Just(vec![]), Just(vec![0]), key()]
    }

    fn perm_type() -> impl Strategy<Value = PermissionType> {
        prop_oneof![Just(Read), Just(Write), Just(ReadWrite)]
    }

    /// One permission change the test sends to the store.
    #[derive(Clone, Debug)]
    enum Change {
        Grant(PermissionType, Vec<u8>, Vec<u8>),
        Revoke(Vec<u8>, Vec<u8>),
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            3 => (perm_type(), key(), range_end()).prop_map(|(t, k, e)| Change::Grant(t, k, e)),
            1 => (key(), range_end()).prop_map(|(k, e)| Change::Revoke(k, e)),
        ]
    }

    /// etcd's `isValidPermissionRange` (auth/store.go), restated: a
    /// non-empty key with no end, the end `"\0"` (from the key on), or an
    /// end above the key.
    fn model_valid(key: &[u8], range_end: &[u8]) -> bool {
        !key.is_empty() && (range_end.is_empty() || range_end == [0] || range_end > key)
    }

    /// A role's permissions as the requests define them, built without the
    /// store: one entry per exact `(key, range_end)`, a later grant of the
    /// same range replacing its type, a revoke removing it. Returns whether
    /// the change must succeed.
    fn model_apply(
        model: &mut BTreeMap<(Vec<u8>, Vec<u8>), PermissionType>,
        change: &Change,
    ) -> bool {
        match change {
            Change::Grant(perm_type, key, end) if model_valid(key, end) => {
                model.insert((key.clone(), end.clone()), *perm_type);
                true
            }
            Change::Grant(..) => false,
            Change::Revoke(key, end) => model.remove(&(key.clone(), end.clone())).is_some(),
        }
    }

    fn store_apply(store: &mut AuthStore, change: &Change) -> bool {
        match change {
            Change::Grant(perm_type, key, range_end) => {
                let permission = Permission {
                    perm_type: *perm_type,
                    key: key.clone(),
                    range_end: range_end.clone(),
                };
                store.role_grant_permission("r", permission).is_ok()
            }
            Change::Revoke(key, range_end) => {
                store.role_revoke_permission("r", key, range_end).is_ok()
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn check_permission_matches_the_model(
            changes in proptest::collection::vec(change(), 0..8),
            requests in proptest::collection::vec((key(), range_end(), prop_oneof![Just(Read), Just(Write)]), 1..10),
        ) {
            let mut store = AuthStore::new();
            store.user_add(ROOT, None).unwrap();
            store.user_grant_role(ROOT, ROOT).unwrap();
            store.user_add("u", None).unwrap();
            store.role_add("r").unwrap();
            store.user_grant_role("u", "r").unwrap();
            let mut model = BTreeMap::new();
            for change in &changes {
                let expected = model_apply(&mut model, change);
                prop_assert_eq!(store_apply(&mut store, change), expected, "{:?}", change);
                prop_assert_eq!(store.check_invariants(), Ok(()));
            }
            store.enable().unwrap();
            prop_assert_eq!(store.check_invariants(), Ok(()));
            for (key, range_end, need) in requests {
                let granted: Vec<_> = model
                    .iter()
                    .filter(|(_, t)| **t == ReadWrite || **t == need)
                    .map(|((k, e), _)| interval(k, e))
                    .collect();
                let expected = model_allows(&granted, &interval(&key, &range_end));
                let actual = store.check_permission(&info(&store, "u"), &key, &range_end, need);
                prop_assert_eq!(actual.is_ok(), expected, "{:?} [{:?}, {:?}) with {:?}", need, key, range_end, model);
            }
        }
    }
}
