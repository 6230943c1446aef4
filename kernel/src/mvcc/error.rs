//! Errors of the MVCC store, with etcd's messages (etcd `mvcc/kvstore.go`,
//! `etcdserver/errors.go`, `api/v3rpc/rpctypes/error.go`).

use std::fmt;

/// Why an MVCC operation was refused. Nothing is written when one of these is
/// returned. `Display` prints etcd's exact message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MvccError {
    /// The requested revision is below the compacted revision.
    Compacted,
    /// The requested revision is above the current revision.
    FutureRevision,
    /// Two operations of one txn branch touch the same key.
    DuplicateKey,
    /// A txn has more compares or operations than allowed.
    TooManyOps,
    /// A request's key is empty.
    EmptyKey,
    /// `ignore_value` was set together with a value.
    ValueProvided,
    /// `ignore_lease` was set together with a lease.
    LeaseProvided,
    /// `ignore_value`/`ignore_lease` was set for a key that does not exist.
    KeyNotFound,
    /// A put names a lease the caller's lease lookup does not know.
    LeaseNotFound,
    /// A snapshot could not be decoded (truncated, corrupt, wrong version).
    CorruptSnapshot(String),
}

impl fmt::Display for MvccError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let message = match self {
            MvccError::Compacted => "mvcc: required revision has been compacted",
            MvccError::FutureRevision => "mvcc: required revision is a future revision",
            MvccError::DuplicateKey => "etcdserver: duplicate key given in txn request",
            MvccError::TooManyOps => "etcdserver: too many operations in txn request",
            MvccError::EmptyKey => "etcdserver: key is not provided",
            MvccError::ValueProvided => "etcdserver: value is provided",
            MvccError::LeaseProvided => "etcdserver: lease is provided",
            MvccError::KeyNotFound => "etcdserver: key not found",
            MvccError::LeaseNotFound => "etcdserver: requested lease not found",
            MvccError::CorruptSnapshot(why) => {
                return write!(f, "mvcc: corrupt snapshot: {why}");
            }
        };
        f.write_str(message)
    }
}

impl std::error::Error for MvccError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_etcd() {
        assert_eq!(
            MvccError::Compacted.to_string(),
            "mvcc: required revision has been compacted"
        );
        assert_eq!(
            MvccError::FutureRevision.to_string(),
            "mvcc: required revision is a future revision"
        );
        assert_eq!(
            MvccError::DuplicateKey.to_string(),
            "etcdserver: duplicate key given in txn request"
        );
        assert!(
            MvccError::CorruptSnapshot("x".into())
                .to_string()
                .ends_with(": x")
        );
    }
}
