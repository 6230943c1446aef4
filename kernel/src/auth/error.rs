//! Errors of auth operations, with etcd's client-visible messages
//! (`api/v3rpc/rpctypes/error.go`).

use std::fmt;

/// Why an auth operation or permission check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// Enabling auth without a `root` user.
    RootUserNotExist,
    /// Enabling auth while `root` lacks the `root` role.
    RootRoleNotExist,
    /// Adding a user that exists.
    UserAlreadyExist,
    /// Empty user name (also: a request without a user while auth is on).
    UserEmpty,
    /// Unknown user.
    UserNotFound,
    /// Adding a role that exists.
    RoleAlreadyExist,
    /// Unknown role.
    RoleNotFound,
    /// Empty role name.
    RoleEmpty,
    /// Wrong user name or password.
    AuthFailed,
    /// A password login of a `no_password` user (etcd `ErrNoPasswordUser`,
    /// which etcd's gRPC layer does not translate: clients see code
    /// Unknown and the `auth:` text).
    NoPasswordUser,
    /// The user's roles do not allow the operation.
    PermissionDenied,
    /// Revoking a role the user does not have.
    RoleNotGranted,
    /// Revoking a permission the role does not have.
    PermissionNotGranted,
    /// Authenticating while auth is disabled.
    AuthNotEnabled,
    /// Unknown or expired token.
    InvalidAuthToken,
    /// A change that would lock everyone out (deleting `root`, revoking
    /// `root` from `root` while enabled) or an invalid permission range.
    InvalidAuthMgmt,
    /// The request was checked against an older auth revision.
    AuthOldRevision,
    /// bcrypt refused the input (cost out of range).
    PasswordHashFailed,
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AuthError::RootUserNotExist => "etcdserver: root user does not exist",
            AuthError::RootRoleNotExist => "etcdserver: root user does not have root role",
            AuthError::UserAlreadyExist => "etcdserver: user name already exists",
            AuthError::UserEmpty => "etcdserver: user name is empty",
            AuthError::UserNotFound => "etcdserver: user name not found",
            AuthError::RoleAlreadyExist => "etcdserver: role name already exists",
            AuthError::RoleNotFound => "etcdserver: role name not found",
            AuthError::RoleEmpty => "etcdserver: role name is empty",
            AuthError::AuthFailed => {
                "etcdserver: authentication failed, invalid user ID or password"
            }
            AuthError::NoPasswordUser => {
                "auth: authentication failed, password was given for no password user"
            }
            AuthError::PermissionDenied => "etcdserver: permission denied",
            AuthError::RoleNotGranted => "etcdserver: role is not granted to the user",
            AuthError::PermissionNotGranted => "etcdserver: permission is not granted to the role",
            AuthError::AuthNotEnabled => "etcdserver: authentication is not enabled",
            AuthError::InvalidAuthToken => "etcdserver: invalid auth token",
            AuthError::InvalidAuthMgmt => "etcdserver: invalid auth management",
            AuthError::AuthOldRevision => "etcdserver: revision of auth store is old",
            AuthError::PasswordHashFailed => "etcdserver: failed to hash password",
        })
    }
}

impl std::error::Error for AuthError {}
