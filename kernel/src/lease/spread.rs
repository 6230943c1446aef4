//! Spreading lease expiries after a leader change (etcd `lessor.Promote`):
//! when many leases would expire in the same second, later ones are
//! pushed back so that revocations arrive at most
//! [`TARGET_EXPIRES_PER_SEC`] per second instead of as one burst.

use super::LeaseId;

/// Leases revoked per second at most (etcd `leaseRevokeRate`); spreading
/// starts only with at least this many leases.
pub const LEASE_REVOKE_RATE_PER_SEC: usize = 1000;

/// Expiries allowed per one-second window after spreading: three quarters
/// of the revoke rate, so piled-up leases do not use the whole rate.
pub const TARGET_EXPIRES_PER_SEC: usize = LEASE_REVOKE_RATE_PER_SEC * 3 / 4;

/// For leases given as `(remaining_ms, id)` sorted ascending (time left
/// until each expires, after the promotion's extension), the extra delay
/// in ms each lease that needs one gets. etcd's algorithm: walk one-second
/// windows; once a window holds more than [`TARGET_EXPIRES_PER_SEC`]
/// leases, delay each further lease by `1 s * expires / target` minus how
/// far it already is past the window start.
pub fn spread_delays_ms(sorted: &[(u64, LeaseId)]) -> Vec<(LeaseId, u64)> {
    let mut delays = Vec::new();
    if sorted.len() < LEASE_REVOKE_RATE_PER_SEC {
        return delays;
    }
    debug_assert!(sorted.windows(2).all(|pair| pair[0].0 <= pair[1].0));
    let target = TARGET_EXPIRES_PER_SEC as u64;
    let mut base_ms = sorted[0].0;
    let mut next_window_ms = base_ms + 1000;
    let mut expires: u64 = 0;
    for &(remaining_ms, id) in sorted {
        if remaining_ms > next_window_ms {
            base_ms = remaining_ms;
            next_window_ms = base_ms + 1000;
            expires = 1;
            continue;
        }
        expires += 1;
        if expires <= target {
            continue;
        }
        let rate_delay_ms = (1000 * expires / target).saturating_sub(remaining_ms - base_ms);
        next_window_ms = base_ms + rate_delay_ms;
        delays.push((id, rate_delay_ms));
    }
    delays
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn few_leases_are_left_alone() {
        let sorted: Vec<(u64, LeaseId)> = (0..999).map(|id| (5_000, id)).collect();
        assert!(spread_delays_ms(&sorted).is_empty());
    }

    #[test]
    fn a_burst_is_spread_to_the_target_rate() {
        let sorted: Vec<(u64, LeaseId)> = (0..3000).map(|id| (10_000, id)).collect();
        let delays = spread_delays_ms(&sorted);
        assert_eq!(delays.len(), 3000 - TARGET_EXPIRES_PER_SEC);
        let mut per_second = std::collections::BTreeMap::new();
        let mut expiry: Vec<u64> = vec![10_000; 3000];
        for (id, delay) in delays {
            expiry[id as usize] += delay;
        }
        for at in expiry {
            *per_second.entry(at / 1000).or_insert(0usize) += 1;
        }
        assert!(
            per_second.values().all(|&n| n <= LEASE_REVOKE_RATE_PER_SEC),
            "{per_second:?}"
        );
        assert!(
            per_second.len() >= 3,
            "spread over several seconds: {per_second:?}"
        );
    }

    /// A lease exactly one second after the window's start still counts
    /// in that window (etcd compares with `>`): with the window full, it
    /// is delayed.
    #[test]
    fn the_window_includes_its_last_millisecond() {
        let mut sorted: Vec<(u64, LeaseId)> = (0..1000).map(|id| (5_000, id)).collect();
        sorted.push((6_000, 1000));
        let delays = spread_delays_ms(&sorted);
        assert!(
            delays.iter().any(|&(id, _)| id == 1000),
            "{:?}",
            delays.last()
        );
    }

    #[test]
    fn etcds_checkpoint_interval_is_five_minutes() {
        assert_eq!(super::super::DEFAULT_CHECKPOINT_INTERVAL_MS, 300_000);
    }
}
