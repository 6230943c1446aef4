//! Logins: password checks before proposing, token issue when the login
//! is applied, and token validation on every request (etcd
//! `auth/store.go` `CheckPassword`, `Authenticate`, `AuthInfoFromCtx`).

use super::password::password_matches;
use super::{AuthError, AuthInfo, AuthStore};

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

    /// Applies a login: records `token` for `name` at `now_ms` and returns
    /// it.
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
        now_ms: u64,
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
        self.tokens.assign(token.clone(), name, now_ms);
        Ok(token)
    }

    /// Who a request's `token` stands for at `now_ms` (restarting its TTL).
    ///
    /// Errors: unknown or expired token → [`AuthError::InvalidAuthToken`].
    pub fn authenticate_token(&mut self, token: &str, now_ms: u64) -> Result<AuthInfo, AuthError> {
        let username = self
            .tokens
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
