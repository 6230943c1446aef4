//! The auth store: users, roles, the enabled flag and the auth revision,
//! with their management operations (etcd `auth/store.go`). Logins are in
//! `login.rs`, permission checks in `authorize/`, invariants in
//! `invariants.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::range_perm_cache::{RangePerms, build_all};
use super::{AuthError, Permission, ROOT, Role, User};

/// The replicated auth state, as stored in a state-machine snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthSnapshot {
    /// Whether auth is enabled.
    pub enabled: bool,
    /// Auth revision.
    pub revision: u64,
    /// Users, ascending by name.
    pub users: Vec<User>,
    /// Roles, ascending by name.
    pub roles: Vec<Role>,
}

/// Users, roles and permission checks: replicated state, changed only by
/// apply. Every change bumps the auth revision; the store starts disabled
/// at revision 1 (as etcd). Tokens are member-local ([`super::SimpleTokens`]).
#[derive(Clone, Debug)]
pub struct AuthStore {
    pub(super) enabled: bool,
    pub(super) revision: u64,
    pub(super) users: BTreeMap<String, User>,
    pub(super) roles: BTreeMap<String, Role>,
    /// Merged permission ranges per user, rebuilt with every revision.
    pub(super) range_perms: BTreeMap<String, RangePerms>,
}

impl Default for AuthStore {
    fn default() -> AuthStore {
        AuthStore::new()
    }
}

impl AuthStore {
    /// An empty, disabled store.
    pub fn new() -> AuthStore {
        AuthStore {
            enabled: false,
            revision: 1,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            range_perms: BTreeMap::new(),
        }
    }

    /// True when requests are checked against permissions.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision: bumped by every change of users, roles or the
    /// enabled flag.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Enables auth (a no-op when enabled).
    ///
    /// Errors: no `root` user → [`AuthError::RootUserNotExist`]; `root`
    /// without the `root` role → [`AuthError::RootRoleNotExist`].
    pub fn enable(&mut self) -> Result<(), AuthError> {
        if self.enabled {
            return Ok(());
        }
        let root = self.users.get(ROOT).ok_or(AuthError::RootUserNotExist)?;
        if !root.has_root_role() {
            return Err(AuthError::RootRoleNotExist);
        }
        self.enabled = true;
        self.bump_revision(Vec::new());
        Ok(())
    }

    /// Disables auth (a no-op when disabled); returns true when it was
    /// enabled (every member then drops every token).
    pub fn disable(&mut self) -> bool {
        if !self.enabled {
            return false;
        }
        self.enabled = false;
        self.bump_revision(Vec::new());
        true
    }

    /// Adds user `name` with a bcrypt `password_hash` (`None`: a
    /// `no_password` user).
    ///
    /// Errors: empty name → [`AuthError::UserEmpty`]; existing user →
    /// [`AuthError::UserAlreadyExist`].
    pub fn user_add(&mut self, name: &str, password_hash: Option<String>) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        if self.users.contains_key(name) {
            return Err(AuthError::UserAlreadyExist);
        }
        let user = User {
            name: name.to_string(),
            password_hash,
            roles: Default::default(),
        };
        self.users.insert(name.to_string(), user);
        self.bump_revision(vec![name.to_string()]);
        Ok(())
    }

    /// Deletes user `name` (every member then drops its tokens).
    ///
    /// Errors: `root` while enabled → [`AuthError::InvalidAuthMgmt`];
    /// unknown user → [`AuthError::UserNotFound`].
    pub fn user_delete(&mut self, name: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        self.users.remove(name).ok_or(AuthError::UserNotFound)?;
        self.bump_revision(vec![name.to_string()]);
        Ok(())
    }

    /// Replaces the password hash of `name` (every member then drops its
    /// tokens).
    ///
    /// Errors: unknown user → [`AuthError::UserNotFound`].
    pub fn user_change_password(
        &mut self,
        name: &str,
        password_hash: Option<String>,
    ) -> Result<(), AuthError> {
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        user.password_hash = password_hash;
        self.bump_revision(Vec::new());
        Ok(())
    }

    /// Grants `role` to `name` (granting a held role is a no-op). The
    /// `root` role needs no role object.
    ///
    /// Errors: [`AuthError::UserNotFound`], [`AuthError::RoleNotFound`].
    pub fn user_grant_role(&mut self, name: &str, role: &str) -> Result<(), AuthError> {
        if role != ROOT && !self.roles.contains_key(role) {
            self.users.get(name).ok_or(AuthError::UserNotFound)?;
            return Err(AuthError::RoleNotFound);
        }
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        if user.roles.insert(role.to_string()) {
            self.bump_revision(vec![name.to_string()]);
        }
        Ok(())
    }

    /// Revokes `role` from `name`.
    ///
    /// Errors: `root` from `root` while enabled →
    /// [`AuthError::InvalidAuthMgmt`]; [`AuthError::UserNotFound`];
    /// [`AuthError::RoleNotGranted`].
    pub fn user_revoke_role(&mut self, name: &str, role: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT && role == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let user = self.users.get_mut(name).ok_or(AuthError::UserNotFound)?;
        if !user.roles.remove(role) {
            return Err(AuthError::RoleNotGranted);
        }
        self.bump_revision(vec![name.to_string()]);
        Ok(())
    }

    /// User `name`. Errors: [`AuthError::UserNotFound`].
    pub fn user_get(&self, name: &str) -> Result<&User, AuthError> {
        self.users.get(name).ok_or(AuthError::UserNotFound)
    }

    /// All user names, ascending.
    pub fn user_list(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// Adds an empty role.
    ///
    /// Errors: empty name → [`AuthError::RoleEmpty`]; existing role →
    /// [`AuthError::RoleAlreadyExist`].
    pub fn role_add(&mut self, name: &str) -> Result<(), AuthError> {
        if name.is_empty() {
            return Err(AuthError::RoleEmpty);
        }
        if self.roles.contains_key(name) {
            return Err(AuthError::RoleAlreadyExist);
        }
        let role = Role {
            name: name.to_string(),
            permissions: Vec::new(),
        };
        self.roles.insert(name.to_string(), role);
        self.bump_revision(self.holders(name));
        Ok(())
    }

    /// Deletes a role and revokes it from every user.
    ///
    /// Errors: `root` while enabled → [`AuthError::InvalidAuthMgmt`];
    /// unknown role → [`AuthError::RoleNotFound`].
    pub fn role_delete(&mut self, name: &str) -> Result<(), AuthError> {
        if self.enabled && name == ROOT {
            return Err(AuthError::InvalidAuthMgmt);
        }
        self.roles.remove(name).ok_or(AuthError::RoleNotFound)?;
        let holders = self.holders(name);
        for user in self.users.values_mut() {
            user.roles.remove(name);
        }
        self.bump_revision(holders);
        Ok(())
    }

    /// Role `name`. Errors: [`AuthError::RoleNotFound`].
    pub fn role_get(&self, name: &str) -> Result<&Role, AuthError> {
        self.roles.get(name).ok_or(AuthError::RoleNotFound)
    }

    /// All role names, ascending.
    pub fn role_list(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// Adds `permission` to `role`, replacing the type of an existing
    /// permission over the same `(key, range_end)`.
    ///
    /// Errors: [`AuthError::RoleNotFound`]; an empty or inverted range
    /// (etcd 3.5 `isValidPermissionRange`) → [`AuthError::InvalidAuthMgmt`].
    pub fn role_grant_permission(
        &mut self,
        name: &str,
        permission: Permission,
    ) -> Result<(), AuthError> {
        let role = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
        if !valid_permission_range(&permission.key, &permission.range_end) {
            return Err(AuthError::InvalidAuthMgmt);
        }
        let position = role.permissions.binary_search_by(|p| {
            (&p.key, &p.range_end).cmp(&(&permission.key, &permission.range_end))
        });
        match position {
            Ok(index) => role.permissions[index].perm_type = permission.perm_type,
            Err(index) => role.permissions.insert(index, permission),
        }
        self.bump_revision(self.holders(name));
        Ok(())
    }

    /// Removes the permission over exactly `(key, range_end)` from `role`.
    ///
    /// Errors: [`AuthError::RoleNotFound`], [`AuthError::PermissionNotGranted`].
    pub fn role_revoke_permission(
        &mut self,
        name: &str,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), AuthError> {
        let role = self.roles.get_mut(name).ok_or(AuthError::RoleNotFound)?;
        let before = role.permissions.len();
        role.permissions
            .retain(|p| !(p.key == key && p.range_end == range_end));
        if role.permissions.len() == before {
            return Err(AuthError::PermissionNotGranted);
        }
        self.bump_revision(self.holders(name));
        Ok(())
    }

    /// The replicated state, for a snapshot.
    pub fn snapshot(&self) -> AuthSnapshot {
        AuthSnapshot {
            enabled: self.enabled,
            revision: self.revision,
            users: self.users.values().cloned().collect(),
            roles: self.roles.values().cloned().collect(),
        }
    }

    /// A store holding `snapshot`.
    ///
    /// Errors: an empty or duplicate user name → [`AuthError::UserEmpty`] /
    /// [`AuthError::UserAlreadyExist`]; same for roles.
    pub fn restore(snapshot: AuthSnapshot) -> Result<AuthStore, AuthError> {
        let mut store = AuthStore::new();
        for user in snapshot.users {
            if user.name.is_empty() {
                return Err(AuthError::UserEmpty);
            }
            if store.users.insert(user.name.clone(), user).is_some() {
                return Err(AuthError::UserAlreadyExist);
            }
        }
        for role in snapshot.roles {
            if role.name.is_empty() {
                return Err(AuthError::RoleEmpty);
            }
            if store.roles.insert(role.name.clone(), role).is_some() {
                return Err(AuthError::RoleAlreadyExist);
            }
        }
        store.enabled = snapshot.enabled;
        store.revision = snapshot.revision;
        store.range_perms = build_all(&store.users, &store.roles);
        Ok(store)
    }

    /// Every change of users, roles or the enabled flag goes through here:
    /// bumps the revision and rebuilds the merged permission ranges of the
    /// `changed` users (a deleted user's are dropped).
    fn bump_revision(&mut self, changed: Vec<String>) {
        self.revision += 1;
        for name in changed {
            match self.users.get(&name) {
                Some(user) => {
                    self.range_perms
                        .insert(name, RangePerms::build(user, &self.roles));
                }
                None => {
                    self.range_perms.remove(&name);
                }
            }
        }
        assert_eq!(
            self.range_perms.len(),
            self.users.len(),
            "auth store: cached permission sets must match the users"
        );
    }

    /// Names of the users holding `role`.
    fn holders(&self, role: &str) -> Vec<String> {
        let holds = |user: &&User| user.roles.contains(role);
        self.users
            .values()
            .filter(holds)
            .map(|user| user.name.clone())
            .collect()
    }
}

/// etcd 3.5's `isValidPermissionRange`: a non-empty key with no range end,
/// `"\0"` (from key, also allowed for the empty key), or a range end after
/// the key.
fn valid_permission_range(key: &[u8], range_end: &[u8]) -> bool {
    match range_end {
        [0] => true,
        [] => !key.is_empty(),
        end => !key.is_empty() && end > key,
    }
}
