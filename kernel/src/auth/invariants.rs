//! The auth store's invariants, checked whole (for tests and the
//! simulator).
//!
//! * The revision is at least 1 (the store starts there and only bumps it).
//! * Users and roles are stored under their own non-empty names.
//! * Every role a user holds exists, except `root`, which needs no role
//!   object.
//! * A role's permissions are strictly ascending by `(key, range_end)`:
//!   at most one per range.
//! * The merged permission ranges are cached for exactly the users, each
//!   up to date with the user's roles.
//! * While auth is enabled, the `root` user exists and holds the `root`
//!   role.

use crate::invariant::{InvariantViolation, ensure};

use super::range_perm_cache::RangePerms;
use super::{AuthStore, ROOT};

const STRUCTURE: &str = "auth store";

impl AuthStore {
    /// Checks every rule listed in this module. O(users × roles held +
    /// permissions).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        ensure(self.revision >= 1, STRUCTURE, || {
            format!("revision {}", self.revision)
        })?;
        self.check_roles()?;
        self.check_users()?;
        self.check_root()
    }

    fn check_roles(&self) -> Result<(), InvariantViolation> {
        for (name, role) in &self.roles {
            ensure(!name.is_empty() && role.name == *name, STRUCTURE, || {
                format!("role {:?} stored under {name:?}", role.name)
            })?;
            let unordered = role
                .permissions
                .windows(2)
                .find(|w| (&w[0].key, &w[0].range_end) >= (&w[1].key, &w[1].range_end));
            ensure(unordered.is_none(), STRUCTURE, || {
                format!("role {name} permissions not strictly ascending: {unordered:?}")
            })?;
        }
        Ok(())
    }

    fn check_users(&self) -> Result<(), InvariantViolation> {
        let (users, cached) = (self.users.len(), self.range_perms.len());
        ensure(users == cached, STRUCTURE, || {
            format!("{users} users but {cached} cached permission sets")
        })?;
        for (name, user) in &self.users {
            ensure(!name.is_empty() && user.name == *name, STRUCTURE, || {
                format!("user {:?} stored under {name:?}", user.name)
            })?;
            let dangling = user
                .roles
                .iter()
                .find(|role| *role != ROOT && !self.roles.contains_key(*role));
            ensure(dangling.is_none(), STRUCTURE, || {
                format!("user {name} holds missing role {dangling:?}")
            })?;
            let fresh = RangePerms::build(user, &self.roles);
            ensure(
                self.range_perms.get(name) == Some(&fresh),
                STRUCTURE,
                || format!("cached permissions of user {name} out of date"),
            )?;
        }
        Ok(())
    }

    fn check_root(&self) -> Result<(), InvariantViolation> {
        let root_ok = self
            .users
            .get(ROOT)
            .is_some_and(|root| root.has_root_role());
        ensure(!self.enabled || root_ok, STRUCTURE, || {
            "auth enabled without a root user holding the root role".into()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Permission, PermissionType};
    use super::*;

    fn store() -> AuthStore {
        let mut store = AuthStore::new();
        store.user_add(ROOT, None).unwrap();
        store.user_grant_role(ROOT, ROOT).unwrap();
        store.user_add("u", None).unwrap();
        store.role_add("r").unwrap();
        let perm = |key: &[u8]| Permission {
            perm_type: PermissionType::Read,
            key: key.to_vec(),
            range_end: Vec::new(),
        };
        store.role_grant_permission("r", perm(b"a")).unwrap();
        store.role_grant_permission("r", perm(b"b")).unwrap();
        store.user_grant_role("u", "r").unwrap();
        store.enable().unwrap();
        assert_eq!(store.check_invariants(), Ok(()));
        store
    }

    #[test]
    fn a_dangling_role_reference_is_reported() {
        let mut s = store();
        s.roles.remove("r");
        let err = s.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("user u holds missing role Some(\"r\")")
        );
    }

    #[test]
    fn a_stale_permission_cache_is_reported() {
        let mut s = store();
        s.roles.get_mut("r").unwrap().permissions.pop();
        let err = s.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("cached permissions of user u out of date")
        );
    }

    #[test]
    fn unordered_permissions_are_reported() {
        let mut s = store();
        s.roles.get_mut("r").unwrap().permissions.reverse();
        assert!(s.check_invariants().is_err());
    }

    #[test]
    fn enabled_without_root_is_reported() {
        let mut s = store();
        s.users.get_mut(ROOT).unwrap().roles.clear();
        let err = s.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("auth enabled without a root user holding the root role")
        );
    }
}
