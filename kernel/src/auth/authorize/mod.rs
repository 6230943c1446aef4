//! Every authorization rule, in one place (etcd `auth/store.go`
//! `isOpPermitted`/`IsAdminPermitted`, `etcdserver/apply_auth.go` and
//! `v3_server.go`'s lease checks):
//!
//! * `principal`: what the caller is allowed as a user ([`AuthStore`]'s
//!   `check_permission`, `check_admin`, `check_user`, `require_user`).
//! * `request`: which of those each replicated request needs, walking every
//!   op of a txn ([`Authorizer::request`]).
//! * `lease`: the lease requests a member answers without Raft
//!   (keep-alive, lease listing).
//!
//! [`AuthStore`]: crate::auth::AuthStore

mod lease;
mod principal;
mod request;

pub(crate) use request::Authorizer;
