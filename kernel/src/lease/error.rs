//! Errors of lease operations, with etcd's client-visible messages
//! (`api/v3rpc/rpctypes/error.go`).

use std::fmt;

/// Why a lease operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseError {
    /// The lease id is unknown (or 0): "etcdserver: requested lease not found".
    NotFound,
    /// A lease with this id exists already: "etcdserver: lease already exists".
    AlreadyExists,
    /// TTL above [`super::MAX_LEASE_TTL_SECS`]: "etcdserver: too large lease TTL".
    TtlTooLarge,
    /// Only the leader's lessor renews leases: "etcdserver: not leader"
    /// (the server forwards the request to the leader).
    NotPrimary,
}

impl fmt::Display for LeaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseError::NotFound => "etcdserver: requested lease not found",
            LeaseError::AlreadyExists => "etcdserver: lease already exists",
            LeaseError::TtlTooLarge => "etcdserver: too large lease TTL",
            LeaseError::NotPrimary => "etcdserver: not leader",
        })
    }
}

impl std::error::Error for LeaseError {}
