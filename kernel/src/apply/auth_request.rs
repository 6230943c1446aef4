//! Auth requests carried in the log (etcd's `Auth*Request` messages inside
//! `InternalRaftRequest`) and how they apply to the auth store.

use serde::{Deserialize, Serialize};

use super::{ApplyError, LocalChange, Response};
use crate::auth::{AuthStore, Permission, SimpleTokens};

/// A replicated auth request (etcd `Auth` service).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthRequest {
    /// Enable auth.
    Enable,
    /// Disable auth.
    Disable,
    /// A login whose password the server checked at `checked_revision`;
    /// the token is `"<token_random>.<entry index>"`.
    Authenticate {
        /// User name.
        name: String,
        /// Auth revision the password was checked at.
        checked_revision: u64,
        /// Random part of the simple token, chosen by the proposer.
        token_random: String,
    },
    /// Add a user with a bcrypt hash (`None`: no-password user).
    UserAdd {
        /// User name.
        name: String,
        /// bcrypt hash, computed by the server before proposing.
        password_hash: Option<String>,
    },
    /// Delete a user.
    UserDelete {
        /// User name.
        name: String,
    },
    /// Replace a user's password hash.
    UserChangePassword {
        /// User name.
        name: String,
        /// New bcrypt hash (`None`: no password).
        password_hash: Option<String>,
    },
    /// Grant a role to a user.
    UserGrantRole {
        /// User name.
        user: String,
        /// Role name.
        role: String,
    },
    /// Revoke a role from a user.
    UserRevokeRole {
        /// User name.
        user: String,
        /// Role name.
        role: String,
    },
    /// Read a user's roles.
    UserGet {
        /// User name.
        name: String,
    },
    /// List user names.
    UserList,
    /// Add a role.
    RoleAdd {
        /// Role name.
        name: String,
    },
    /// Delete a role.
    RoleDelete {
        /// Role name.
        name: String,
    },
    /// Read a role's permissions.
    RoleGet {
        /// Role name.
        name: String,
    },
    /// List role names.
    RoleList,
    /// Grant (or change the type of) a permission.
    RoleGrantPermission {
        /// Role name.
        name: String,
        /// The permission.
        permission: Permission,
    },
    /// Revoke the permission over exactly `(key, range_end)`.
    RoleRevokePermission {
        /// Role name.
        name: String,
        /// Permission key.
        key: Vec<u8>,
        /// Permission range end.
        range_end: Vec<u8>,
    },
}

impl AuthRequest {
    /// Applies the request at log `index` to `store`; pushes onto `local`
    /// what the members' token tables must follow (only on success).
    ///
    /// Errors: the auth store's ([`crate::auth::AuthError`]).
    pub(super) fn apply(
        &self,
        store: &mut AuthStore,
        index: u64,
        local: &mut Vec<LocalChange>,
    ) -> Result<Response, ApplyError> {
        match self {
            AuthRequest::Enable => store.enable()?,
            AuthRequest::Disable => {
                if store.disable() {
                    local.push(LocalChange::AllTokensRevoked);
                }
            }
            AuthRequest::Authenticate {
                name,
                checked_revision,
                token_random,
            } => {
                let token = SimpleTokens::format(token_random, index);
                let token = store.authenticate(name, *checked_revision, token)?;
                local.push(LocalChange::TokenIssued {
                    token: token.clone(),
                    username: name.clone(),
                });
                return Ok(Response::Authenticate { token });
            }
            AuthRequest::UserAdd {
                name,
                password_hash,
            } => store.user_add(name, password_hash.clone())?,
            AuthRequest::UserDelete { name } => {
                store.user_delete(name)?;
                local.push(user_tokens_revoked(name));
            }
            AuthRequest::UserChangePassword {
                name,
                password_hash,
            } => {
                store.user_change_password(name, password_hash.clone())?;
                local.push(user_tokens_revoked(name));
            }
            AuthRequest::UserGrantRole { user, role } => store.user_grant_role(user, role)?,
            AuthRequest::UserRevokeRole { user, role } => store.user_revoke_role(user, role)?,
            AuthRequest::UserGet { name } => {
                let roles = store.user_get(name)?.roles.iter().cloned().collect();
                return Ok(Response::UserGet { roles });
            }
            AuthRequest::UserList => return Ok(Response::UserList(store.user_list())),
            AuthRequest::RoleAdd { name } => store.role_add(name)?,
            AuthRequest::RoleDelete { name } => store.role_delete(name)?,
            AuthRequest::RoleGet { name } => {
                return Ok(Response::RoleGet(store.role_get(name)?.permissions.clone()));
            }
            AuthRequest::RoleList => return Ok(Response::RoleList(store.role_list())),
            AuthRequest::RoleGrantPermission { name, permission } => {
                store.role_grant_permission(name, permission.clone())?
            }
            AuthRequest::RoleRevokePermission {
                name,
                key,
                range_end,
            } => store.role_revoke_permission(name, key, range_end)?,
        }
        Ok(Response::Done)
    }
}

fn user_tokens_revoked(name: &str) -> LocalChange {
    LocalChange::UserTokensRevoked {
        username: name.to_string(),
    }
}
