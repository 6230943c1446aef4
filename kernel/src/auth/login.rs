//! Logins: password checks before proposing, the login's checks when it is
//! applied, and token validation on every request (etcd `auth/store.go`
//! `CheckPassword`, `Authenticate`, `AuthInfoFromCtx`). Tokens live in each
//! member's [`SimpleTokens`], not in the replicated store.

use super::password::password_matches;
use super::{AuthError, AuthInfo, AuthStore, SimpleTokens};

impl AuthStore {
    /// Checks a login before it is proposed; returns the auth revision it
    /// was checked at (pass it to [`AuthStore::authenticate`]). Runs bcrypt
    /// (tens of milliseconds at etcd's cost 10): callers holding a lock
    /// shared with apply should use [`AuthStore::login_check`] and verify
    /// after releasing it.
    ///
    /// Errors: disabled → [`AuthError::AuthNotEnabled`]; unknown user or
    /// wrong password → [`AuthError::AuthFailed`]; a `no_password` user →
    /// [`AuthError::NoPasswordUser`] (etcd `CheckPassword`).
    pub fn check_password(&self, name: &str, password: &str) -> Result<u64, AuthError> {
        self.login_check(name)?.verify(password)
    }

    /// The cheap half of a password check: what [`LoginCheck::verify`]
    /// needs, copied out of the store so the bcrypt work can run without
    /// holding the store.
    ///
    /// Errors: disabled → [`AuthError::AuthNotEnabled`]; unknown user →
    /// [`AuthError::AuthFailed`]; a `no_password` user →
    /// [`AuthError::NoPasswordUser`].
    pub fn login_check(&self, name: &str) -> Result<LoginCheck, AuthError> {
        if !self.enabled {
            return Err(AuthError::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(AuthError::AuthFailed)?;
        let hash = user
            .password_hash
            .clone()
            .ok_or(AuthError::NoPasswordUser)?;
        Ok(LoginCheck {
            hash,
            revision: self.revision,
        })
    }

    /// Applies a login: checks it and returns `token`, which every member
    /// then records for `name` in its own [`SimpleTokens`].
    ///
    /// Errors: disabled → [`AuthError::AuthNotEnabled`]; unknown user →
    /// [`AuthError::AuthFailed`]; auth changed since the password check
    /// (`checked_revision` older than the store's) →
    /// [`AuthError::AuthOldRevision`].
    pub fn authenticate(
        &mut self,
        name: &str,
        checked_revision: u64,
        token: String,
    ) -> Result<String, AuthError> {
        if !self.enabled {
            return Err(AuthError::AuthNotEnabled);
        }
        if !self.users.contains_key(name) {
            return Err(AuthError::AuthFailed);
        }
        if checked_revision < self.revision {
            return Err(AuthError::AuthOldRevision);
        }
        Ok(token)
    }

    /// Who a request's `token`, held in this member's `tokens`, stands for
    /// at `now_ms` (restarting its TTL there), at the current auth revision.
    ///
    /// Errors: unknown or expired token → [`AuthError::InvalidAuthToken`].
    pub fn authenticate_token(
        &self,
        tokens: &mut SimpleTokens,
        token: &str,
        now_ms: u64,
    ) -> Result<AuthInfo, AuthError> {
        let username = tokens
            .validate(token, now_ms)
            .ok_or(AuthError::InvalidAuthToken)?;
        Ok(AuthInfo {
            username,
            revision: self.revision,
        })
    }
}

/// A user's password hash and the auth revision it was read at, taken from
/// the store by [`AuthStore::login_check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoginCheck {
    hash: String,
    revision: u64,
}

impl LoginCheck {
    /// Verifies `password` against the hash (bcrypt); returns the auth
    /// revision to pass to [`AuthStore::authenticate`].
    ///
    /// Errors: wrong password → [`AuthError::AuthFailed`].
    pub fn verify(&self, password: &str) -> Result<u64, AuthError> {
        match password_matches(password, &self.hash) {
            true => Ok(self.revision),
            false => Err(AuthError::AuthFailed),
        }
    }
}
