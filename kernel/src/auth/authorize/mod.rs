//! Every authorization rule, in one place (etcd `auth/store.go`
//! `isOpPermitted`/`IsAdminPermitted`, `etcdserver/apply_auth.go` and
//! `v3_server.go`'s lease and admin checks, `v3rpc/maintenance.go`):
//!
//! * `principal`: what the caller is allowed as a user ([`AuthStore`]'s
//!   `check_permission`, `check_admin`, `check_user`, `require_user`).
//! * `request`: which of those each replicated request needs, walking every
//!   op of a txn ([`Authorizer::request`]).
//! * `lease`: the lease requests a member answers without Raft
//!   (keep-alive, lease listing).
//! * `call`: who may make the other calls a member answers itself
//!   (maintenance, membership, AuthStatus): [`MemberCall`].
//!
//! [`AuthStore`]: crate::auth::AuthStore

mod call;
mod lease;
mod principal;
mod request;

pub use call::{CallerNeeds, MemberCall};
pub(crate) use request::Authorizer;
