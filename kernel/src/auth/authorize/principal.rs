//! Permission checks of requests against the caller's roles (etcd
//! `auth/store.go` `isOpPermitted`, `IsAdminPermitted`).

use crate::auth::{AuthError, AuthInfo, AuthStore, KeyRange, PermissionType, User};

impl AuthStore {
    /// Checks that `info` may do a `need` (`Read` or `Write`) operation on
    /// `(key, range_end)` (etcd encoding). Always allowed while disabled.
    ///
    /// Errors: no user → [`AuthError::UserEmpty`]; `info` older than the
    /// store → [`AuthError::AuthOldRevision`]; unknown user or missing
    /// permission → [`AuthError::PermissionDenied`].
    pub fn check_permission(
        &self,
        info: &AuthInfo,
        key: &[u8],
        range_end: &[u8],
        need: PermissionType,
    ) -> Result<(), AuthError> {
        let Some(user) = self.checked_user(info)? else {
            return Ok(());
        };
        let user = user.ok_or(AuthError::PermissionDenied)?;
        if user.has_root_role() {
            return Ok(());
        }
        let allowed = self
            .range_perms
            .get(&user.name)
            .is_some_and(|perms| perms.allows(&KeyRange::new(key, range_end), need));
        if allowed {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Checks that `info` is an administrator (has the `root` role), as
    /// needed for auth management, membership, alarms and defragment.
    /// Always allowed while disabled.
    ///
    /// Errors: no user → [`AuthError::UserEmpty`]; unknown user →
    /// [`AuthError::UserNotFound`]; not root → [`AuthError::PermissionDenied`].
    pub fn check_admin(&self, info: &AuthInfo) -> Result<(), AuthError> {
        if !self.enabled {
            return Ok(());
        }
        if info.username.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        let user = self
            .users
            .get(&info.username)
            .ok_or(AuthError::UserNotFound)?;
        if user.has_root_role() {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied)
        }
    }

    /// Checks that `info` names an existing user at a current revision,
    /// for operations open to every user (compaction, lease grant).
    ///
    /// Errors: as [`AuthStore::check_permission`].
    pub fn check_user(&self, info: &AuthInfo) -> Result<(), AuthError> {
        match self.checked_user(info)? {
            None | Some(Some(_)) => Ok(()),
            Some(None) => Err(AuthError::PermissionDenied),
        }
    }

    /// Checks that a request names a user at all while auth is enabled
    /// (etcd 3.6.9+/3.5.28+/3.4.42+ `requireAuthInfo`: status, member
    /// list, alarm list, lease requests); the user's permissions are not
    /// looked at.
    ///
    /// Errors: enabled and no user → [`AuthError::UserEmpty`].
    pub fn require_user(&self, info: &AuthInfo) -> Result<(), AuthError> {
        if self.enabled && info.username.is_empty() {
            return Err(AuthError::UserEmpty);
        }
        Ok(())
    }

    /// `None` while disabled (anything goes); else the user `info` names,
    /// `Some(None)` if it does not exist.
    fn checked_user(&self, info: &AuthInfo) -> Result<Option<Option<&User>>, AuthError> {
        if !self.enabled {
            return Ok(None);
        }
        if info.username.is_empty() || info.revision == 0 {
            return Err(AuthError::UserEmpty);
        }
        if info.revision < self.revision {
            return Err(AuthError::AuthOldRevision);
        }
        Ok(Some(self.users.get(&info.username)))
    }
}
