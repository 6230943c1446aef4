//! Why applying a request failed, with the message etcd's clients see.

use std::fmt;

use crate::auth::AuthError;
use crate::lease::LeaseError;
use crate::membership::MembershipError;
use crate::mvcc::MvccError;

/// A failed request. Nothing was changed by a request that failed (the
/// entry is still consumed: the applied index moves on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// The KV store refused it.
    Mvcc(MvccError),
    /// The lessor refused it.
    Lease(LeaseError),
    /// Authentication or permissions refused it.
    Auth(AuthError),
    /// Membership refused it.
    Membership(MembershipError),
    /// A NOSPACE alarm is raised: "etcdserver: mvcc: database space exceeded".
    NoSpace,
    /// A CORRUPT alarm is raised: "etcdserver: corrupt cluster".
    Corrupt,
    /// The request could not be encoded within the size limit:
    /// "etcdserver: request is too large".
    RequestTooLarge,
    /// The entry's data is not a request this build understands (a bug or
    /// corruption; etcd would stop).
    BadEntry(String),
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApplyError::Mvcc(err) => err.fmt(f),
            ApplyError::Lease(err) => err.fmt(f),
            ApplyError::Auth(err) => err.fmt(f),
            ApplyError::Membership(err) => err.fmt(f),
            ApplyError::NoSpace => f.write_str("etcdserver: mvcc: database space exceeded"),
            ApplyError::Corrupt => f.write_str("etcdserver: corrupt cluster"),
            ApplyError::RequestTooLarge => f.write_str("etcdserver: request is too large"),
            ApplyError::BadEntry(why) => write!(f, "etcdserver: bad raft entry: {why}"),
        }
    }
}

impl std::error::Error for ApplyError {}

impl From<MvccError> for ApplyError {
    fn from(err: MvccError) -> ApplyError {
        ApplyError::Mvcc(err)
    }
}

impl From<LeaseError> for ApplyError {
    fn from(err: LeaseError) -> ApplyError {
        ApplyError::Lease(err)
    }
}

impl From<AuthError> for ApplyError {
    fn from(err: AuthError) -> ApplyError {
        ApplyError::Auth(err)
    }
}

impl From<MembershipError> for ApplyError {
    fn from(err: MembershipError) -> ApplyError {
        ApplyError::Membership(err)
    }
}
