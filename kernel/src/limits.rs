//! Request limits: one value built from the configuration, read by the API
//! for early rejection and by the state machine at apply.
//!
//! etcd's flags `--max-request-bytes` (default 1.5 MiB) and the txn
//! operation limit (`--max-txn-ops`, default 128). The state machine's
//! copy must be the same on every member (it decides whether a txn applies),
//! so keel takes it from [`Limits::default`] unless every member is
//! configured alike.

/// etcd's default `--max-request-bytes`: 1.5 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1536 * 1024;
/// etcd's default `--max-txn-ops`: compares, or operations per branch.
pub const DEFAULT_MAX_TXN_OPS: usize = 128;

/// The limits a member enforces on client requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest request accepted, in bytes (etcd `--max-request-bytes`):
    /// a client message, and the proposal it becomes.
    pub max_request_bytes: u64,
    /// Most compares, or operations per branch, in a txn; a nested txn gets
    /// what its parent leaves (etcd `--max-txn-ops`, `checkTxnRequest`).
    pub max_txn_ops: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_txn_ops: DEFAULT_MAX_TXN_OPS,
        }
    }
}

impl Limits {
    /// True when a request (or proposal) of `size_bytes` is over
    /// `max_request_bytes` (etcd answers "etcdserver: request is too large").
    pub fn is_too_large(&self, size_bytes: usize) -> bool {
        u64::try_from(size_bytes).map_or(true, |size| size > self.max_request_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_etcds() {
        let limits = Limits::default();
        assert_eq!(limits.max_request_bytes, 1_572_864);
        assert_eq!(limits.max_txn_ops, 128);
    }

    #[test]
    fn a_request_at_the_limit_fits() {
        let limits = Limits {
            max_request_bytes: 100,
            ..Limits::default()
        };
        assert!(!limits.is_too_large(100));
        assert!(limits.is_too_large(101));
    }
}
