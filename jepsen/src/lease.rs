//! The lease check: a key attached to a lease is never gone before the
//! lease's TTL has run out since the last keep-alive the cluster accepted.
//!
//! etcd's guarantee (API guide, "Lease"): a lease granted or kept alive
//! with TTL `t` does not expire before `t` seconds after the leader took
//! the grant or keep-alive; its keys are deleted only when it expires or
//! is revoked. A client cannot see the leader's instant, but the leader
//! took each accepted request after the client sent it, so a key read as
//! absent before `sent + TTL` of any accepted grant or keep-alive is an
//! early expiry (the checked lease is never revoked by the client and its
//! key never deleted). All instants are the test's one clock, in
//! nanoseconds.

use std::fmt;

/// One read of a lease's key: when it was sent and answered, and whether
/// the key was there. Only answered reads are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseRead {
    /// When the read was sent.
    pub invoke_ns: u64,
    /// When its answer arrived.
    pub complete_ns: u64,
    /// Whether the key existed.
    pub present: bool,
}

/// What one client saw of one lease: its TTL, when its key was attached,
/// the requests that kept it alive, and the reads of its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseLog {
    /// The lease id.
    pub lease_id: i64,
    /// The key attached to it.
    pub key: String,
    /// The smallest TTL (seconds) the grant and keep-alive answers gave.
    pub ttl_secs: i64,
    /// When the put attaching the key was answered (reads sent earlier
    /// may see no key, rightly).
    pub attached_ns: u64,
    /// Send instants of the grant and of every keep-alive answered with a
    /// positive TTL.
    pub accepted_ns: Vec<u64>,
    /// Reads of the key.
    pub reads: Vec<LeaseRead>,
}

/// A key read as absent while its lease had to be alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EarlyExpiry {
    /// The lease.
    pub lease_id: i64,
    /// Its key.
    pub key: String,
    /// The read that found no key.
    pub read: LeaseRead,
    /// Until when the lease had to live: the last accepted request's send
    /// instant plus the TTL.
    pub alive_until_ns: u64,
}

impl fmt::Display for EarlyExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |ns: u64| ns as f64 / 1e6;
        write!(
            f,
            "lease {:x}: key {:?} gone in a read answered at {:.1} ms, but the lease had to live until {:.1} ms",
            self.lease_id,
            self.key,
            ms(self.read.complete_ns),
            ms(self.alive_until_ns)
        )
    }
}

/// Every read that found a lease's key gone before the lease could have
/// expired, across `logs`: answered before the last accepted grant or
/// keep-alive was sent plus the TTL.
pub fn check_leases(logs: &[LeaseLog]) -> Vec<EarlyExpiry> {
    logs.iter().flat_map(early_expiries).collect()
}

fn early_expiries(log: &LeaseLog) -> Vec<EarlyExpiry> {
    let ttl_ns = u64::try_from(log.ttl_secs.max(0))
        .unwrap_or(0)
        .saturating_mul(1_000_000_000);
    // The lease lived at least TTL past the sending of its last accepted
    // request, and its key as long as the lease.
    let Some(last_sent) = log.accepted_ns.iter().max() else {
        return Vec::new();
    };
    let alive_until_ns = last_sent.saturating_add(ttl_ns);
    log.reads
        .iter()
        .filter(|read| !read.present && read.invoke_ns >= log.attached_ns)
        .filter(|read| read.complete_ns < alive_until_ns)
        .map(|read| EarlyExpiry {
            lease_id: log.lease_id,
            key: log.key.clone(),
            read: *read,
            alive_until_ns,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn log(accepted_s: &[u64], reads: &[(u64, u64, bool)]) -> LeaseLog {
        LeaseLog {
            lease_id: 7,
            key: "lease-7".into(),
            ttl_secs: 3,
            attached_ns: S,
            accepted_ns: accepted_s.iter().map(|s| s * S).collect(),
            reads: reads
                .iter()
                .map(|&(invoke, complete, present)| LeaseRead {
                    invoke_ns: invoke * S,
                    complete_ns: complete * S,
                    present,
                })
                .collect(),
        }
    }

    #[test]
    fn a_key_gone_after_the_ttl_since_the_last_keep_alive_is_fine() {
        let log = log(&[0, 2, 4], &[(5, 5, true), (8, 8, false)]);
        assert!(check_leases(&[log]).is_empty());
    }

    #[test]
    fn a_key_gone_while_kept_alive_is_an_early_expiry() {
        let log = log(&[0, 2, 4], &[(5, 6, false)]);
        let found = check_leases(&[log]);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].alive_until_ns, 7 * S);
        assert!(found[0].to_string().contains("had to live until 7000.0 ms"));
    }

    #[test]
    fn reads_before_the_key_was_attached_do_not_count() {
        let log = log(&[0], &[(0, 1, false)]);
        assert!(check_leases(&[log]).is_empty());
    }

    #[test]
    fn a_key_gone_before_a_later_accepted_keep_alive_is_an_early_expiry() {
        // The lease was still there to renew at 9 s, so its key was too.
        let log = log(&[0, 9], &[(7, 8, false)]);
        assert_eq!(check_leases(&[log]).len(), 1);
    }
}
