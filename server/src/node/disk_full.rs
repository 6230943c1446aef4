//! What the driver does when the disk is full.
//!
//! A full disk shows up when the WAL cuts or grows a segment, or when a
//! snapshot file is written; keel-wal then leaves the log usable
//! ([`keel_wal::Wal::is_poisoned`] stays false). The driver keeps the Ready
//! it could not persist and freezes Raft, as a member with a very slow disk
//! would look: no ticks, no peer messages, no new Ready. Writes get
//! etcd's "etcdserver: mvcc: database space exceeded" at once, requests
//! already in the log get "etcdserver: request timed out" (they may still
//! commit), and the member's NOSPACE alarm shows in Status and AlarmList.
//! Every [`DISK_FULL_RETRY_MS`] the same Ready is persisted again; once it
//! is, Raft resumes where it stopped and the NOSPACE alarm is proposed
//! through Raft, so writes stay refused cluster-wide until an operator
//! disarms it (`etcdctl alarm disarm`), as after etcd's quota alarm.
//! Acknowledged writes are never at risk: nothing is acknowledged before
//! the fsync that covers it, and a failed fsync still stops the member.

use keel_kernel::raft::Ready;
use keel_wal::{Storage, Wal, WalError};

/// How often a member whose disk is full tries to persist again.
pub const DISK_FULL_RETRY_MS: u64 = 1_000;

/// A Ready that could not be persisted because the disk is full.
pub struct Stalled {
    /// The Ready, with its `messages` already sent.
    pub ready: Ready,
    /// When to try again (ms, the driver's clock).
    pub retry_at_ms: u64,
}

/// True when `err` is a full disk that left `wal` usable, so persisting can
/// be retried once space is freed.
pub fn is_retryable_full_disk<S: Storage>(err: &WalError, wal: &Wal<S>) -> bool {
    err.is_storage_full() && !wal.is_poisoned()
}
