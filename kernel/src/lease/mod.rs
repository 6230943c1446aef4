//! Leases: time-limited grants that keys can be attached to (etcd v3
//! `Lease` service, etcd's `lease/lessor.go`).
//!
//! * [`Lessor`] holds every lease and which keys are attached to it: the
//!   replicated state, changed only by apply, with no notion of time.
//! * [`LeaseClock`] holds, on the leader ("primary"), each lease's expiry
//!   instant: member-local state, as in etcd's lessor, following the lessor
//!   after each apply. Expiry is decided only by the leader from monotonic
//!   instants passed in (`now_ms`); the server proposes a `LeaseRevoke`
//!   through Raft for every id that [`LeaseClock::expired`] returns, so
//!   every member deletes the same keys in the same revision.
//! * After a leader change, [`LeaseClock::promote`] extends every lease so
//!   none expires only because of the election; checkpoints
//!   ([`LeaseClock::checkpoints_due`] on the leader, [`Lessor::checkpoint`]
//!   in apply) record the remaining TTL through Raft so it survives the
//!   change; promotion also spreads expiries that would pile up in one
//!   second.
//! * `invariants`: [`Lessor::check_invariants`]; `clock_invariants`:
//!   [`LeaseClock::check_invariants`].
//! * [`IdGenerator`] assigns ids as etcd's `idutil.Generator` does.

mod clock;
mod clock_invariants;
mod error;
mod id;
mod invariants;
mod leader;
mod lessor;
mod record;
mod spread;

pub use clock::{LeaseClock, LeaseRenewal};
pub use error::LeaseError;
pub use id::IdGenerator;
pub use lessor::{LeaseCheckpoint, LeaseStatus, Lessor, LessorConfig};
pub use record::{Lease, LeaseSnapshot};
pub use spread::{LEASE_REVOKE_RATE_PER_SEC, TARGET_EXPIRES_PER_SEC, spread_delays_ms};

/// A lease identifier (etcd's `LeaseID`, an `int64` on the wire).
pub type LeaseId = i64;

/// The "no lease" id: a key with this lease is not attached to any lease.
pub const NO_LEASE: LeaseId = 0;

/// Largest TTL a lease may be granted with, in seconds (etcd's `MaxLeaseTTL`,
/// 9,000,000,000 s).
pub const MAX_LEASE_TTL_SECS: i64 = 9_000_000_000;

/// How often the leader records a lease's remaining TTL through Raft, in
/// milliseconds (etcd's default `--lease-checkpoint-interval`, 5 minutes).
pub const DEFAULT_CHECKPOINT_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// Most checkpoints returned by one [`LeaseClock::checkpoints_due`] call
/// (etcd's `maxLeaseCheckpointBatchSize`).
pub const CHECKPOINT_BATCH_MAX: usize = 1000;

/// Most expired leases returned by one [`LeaseClock::expired`] call (etcd revokes
/// at most `leaseRevokeRate` = 1000 leases per second).
pub const EXPIRED_BATCH_MAX: usize = 1000;

/// How long the leader waits before reporting an expired lease again when
/// its revocation has not been applied yet, in milliseconds (etcd's
/// `expiredLeaseRetryInterval`, 3 s).
pub const EXPIRED_RETRY_INTERVAL_MS: u64 = 3000;

/// The smallest TTL a lease gets, in whole seconds, for an election timeout
/// in milliseconds: `ceil(1.5 * election_timeout)` rounded up to a second
/// (etcd `etcdserver/server.go`: `minTTL = 3 * electionTicks / 2 *
/// heartbeat`, then `math.Ceil(minTTL.Seconds())`). A shorter lease could
/// expire during a leader election.
pub fn min_lease_ttl_secs(election_timeout_ms: u64) -> i64 {
    let min_ttl_ms = election_timeout_ms.saturating_mul(3).div_ceil(2);
    let secs = min_ttl_ms.div_ceil(1000);
    i64::try_from(secs).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn min_ttl_matches_etcd_for_default_election_timeout() {
        // etcd defaults: heartbeat 100 ms, election 1000 ms => 1.5 s => 2 s.
        assert_eq!(min_lease_ttl_secs(1000), 2);
        assert_eq!(min_lease_ttl_secs(2000), 3);
        assert_eq!(min_lease_ttl_secs(100), 1);
        assert_eq!(min_lease_ttl_secs(0), 0);
    }
}
