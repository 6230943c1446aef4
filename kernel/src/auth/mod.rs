//! Authentication and authorization (etcd v3 `Auth` service, etcd's
//! `auth/store.go` and `auth/range_perm_cache.go`).
//!
//! * [`AuthStore`]: users, roles, their permissions, the enabled flag and
//!   the auth revision (bumped by every change, so requests checked against
//!   an older revision are refused). Changes are applied through Raft.
//! * [`Permission`] / [`KeyRange`]: READ, WRITE, READWRITE over a key, a
//!   range `[key, range_end)` or everything from a key (`range_end = "\0"`).
//! * `authorize`: every authorization rule: what a user may do, which
//!   permission each request needs, and the lease checks answered locally.
//! * `invariants`: [`AuthStore::check_invariants`].
//! * [`SimpleTokens`]: etcd's "simple" tokens with a TTL, issued and checked
//!   from instants passed in: member-local, beside the replicated store.
//!
//! Password hashing uses bcrypt; the salt (or the finished hash) is passed in
//! so every member stores the same bytes.

mod authorize;
mod error;
mod invariants;
mod login;
mod password;
mod permission;
mod range_perm_cache;
mod store;
mod token;
mod user;

pub(crate) use authorize::Authorizer;
pub use authorize::{CallerNeeds, MemberCall};
pub use error::AuthError;
pub use login::LoginCheck;
pub use password::{MIN_BCRYPT_COST, hash_password};
pub use permission::{KeyRange, Permission, PermissionType, RangeEnd};
pub use store::{AuthSnapshot, AuthStore};
pub use token::{SIMPLE_TOKEN_TTL_MS, SIMPLE_TOKENS_MAX, SimpleTokens};
pub use user::{Role, User};

/// Name of the superuser and of the role that grants everything.
pub const ROOT: &str = "root";

/// Who sent a request, as the server learned it from the request's token:
/// the user name and the auth revision current when the token was checked
/// (etcd `auth.AuthInfo`). The default (empty name, revision 0) means "no
/// user", which is refused while auth is enabled.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct AuthInfo {
    /// The user name; empty for none.
    pub username: String,
    /// Auth revision the caller's permissions were checked at.
    pub revision: u64,
}
