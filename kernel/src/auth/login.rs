//! Logins: password checks before proposing, token issue when the login
//! is applied, and token validation on every request (etcd
//! `auth/store.go` `CheckPassword`, `Authenticate`, `AuthInfoFromCtx`).

use super::password::password_matches;
use super::{AuthError, AuthInfo, AuthStore};

impl AuthStore {
    /// Checks a login before it is proposed; returns the auth revision it
    /// was checked at (pass it to [`AuthStore::authenticate`]).
    ///
    /// Errors: disabled → [`AuthError::AuthNotEnabled`]; unknown user, wrong
    /// password or a `no_password` user → [`AuthError::AuthFailed`].
    pub fn check_password(&self, name: &str, password: &str) -> Result<u64, AuthError> {
        if !self.enabled {
            return Err(AuthError::AuthNotEnabled);
        }
        let user = self.users.get(name).ok_or(AuthError::AuthFailed)?;
        let hash = user.password_hash.as_deref().ok_or(AuthError::AuthFailed)?;
        if !password_matches(password, hash) {
            return Err(AuthError::AuthFailed);
        }
        Ok(self.revision)
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
