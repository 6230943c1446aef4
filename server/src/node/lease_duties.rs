//! The leader's lease duties: revoking expired leases and checkpointing
//! remaining TTLs, both through Raft (etcd's lessor `revokeExpiredLeases`
//! and `checkpointScheduledLeases`, run by the leader only).
//!
//! Which leases expired and which checkpoints are due is the kernel's
//! lessor's decision (`keel_kernel::lease`); this file decides who acts and
//! how often, and turns the lessor's answer into proposals.

use keel_kernel::apply::Request;
use keel_kernel::lease::{LeaseCheckpoint, LeaseId};

/// How often the periodic duties (lease duties, the quota check) run (ms).
pub const DUTY_INTERVAL_MS: u64 = 500;

/// True when this member revokes and checkpoints leases: the leader only,
/// since only it keeps lease clocks running (a follower's would expire
/// leases its clients still renew at the leader).
pub fn performs_lease_duties(is_leader: bool) -> bool {
    is_leader || cfg!(feature = "planted-bug-follower-expires-leases")
}

/// The proposals for one round of lease duties: one `LeaseRevoke` per
/// expired lease, then one `LeaseCheckpoint` carrying every due checkpoint
/// (none when no checkpoint is due).
pub fn lease_duty_requests(
    expired: Vec<LeaseId>,
    checkpoints: Vec<LeaseCheckpoint>,
) -> Vec<Request> {
    let mut requests: Vec<Request> = expired
        .into_iter()
        .map(|id| Request::LeaseRevoke { id })
        .collect();
    if !checkpoints.is_empty() {
        requests.push(Request::LeaseCheckpoint(checkpoints));
    }
    requests
}

/// A fixed cadence on the driver's millisecond clock.
#[derive(Debug, Clone)]
pub struct Cadence {
    interval_ms: u64,
    last_ms: u64,
}

impl Cadence {
    /// A cadence firing every `interval_ms`; the first check at or after
    /// `interval_ms` fires.
    pub fn new(interval_ms: u64) -> Cadence {
        Cadence {
            interval_ms,
            last_ms: 0,
        }
    }

    /// True (and the next firing scheduled) when `interval_ms` passed
    /// since the last firing.
    pub fn due(&mut self, now_ms: u64) -> bool {
        if now_ms < self.last_ms.saturating_add(self.interval_ms) {
            return false;
        }
        self.last_ms = now_ms;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_leader_acts() {
        assert!(performs_lease_duties(true));
        assert_eq!(
            performs_lease_duties(false),
            cfg!(feature = "planted-bug-follower-expires-leases")
        );
    }

    #[test]
    fn expired_leases_are_revoked_and_checkpoints_batched() {
        let checkpoint = LeaseCheckpoint {
            id: 9,
            remaining_ttl_secs: 2,
        };
        let requests = lease_duty_requests(vec![3, 4], vec![checkpoint]);
        assert_eq!(
            requests,
            vec![
                Request::LeaseRevoke { id: 3 },
                Request::LeaseRevoke { id: 4 },
                Request::LeaseCheckpoint(vec![checkpoint]),
            ]
        );
        assert!(lease_duty_requests(Vec::new(), Vec::new()).is_empty());
    }

    #[test]
    fn the_cadence_fires_once_per_interval() {
        let mut cadence = Cadence::new(500);
        assert!(!cadence.due(499));
        assert!(cadence.due(500));
        assert!(!cadence.due(999));
        assert!(cadence.due(1_000));
    }
}
