//! The lock workload: clients take etcd's lease-based lock
//! (`v3lockpb.Lock` with a lease the client keeps alive), hold it for a
//! random time, unlock, and revoke the lease. Each hold is timed
//! conservatively on the simulated clock: from the arrival of the Lock
//! response to the sending of Unlock, so two holds whose times overlap
//! certainly overlapped.
//!
//! What [`check_holds`] checks. The lock only promises mutual exclusion
//! while the holder's lease lives: a holder whose member is paused or cut
//! off may outlive its lease, and then another client rightly gets the
//! lock (Jepsen's finding for etcd; keel-jepsen's lock workload reports it
//! the same way). So an overlap is *explained* when the second hold began
//! at or after the first holder's lease could have run out: its TTL after
//! the sending of the last grant or keep-alive the cluster accepted (the
//! leader took it after it was sent, and a lease lasts at least its TTL
//! from then: etcd's lease guarantee, which the lease check holds keel
//! to). Explained overlaps are counted and logged, not failures. An
//! overlap that began while the first holder's lease certainly lived is a
//! failure: the second Lock returned while the first owner key still
//! existed, which only a broken lock, a broken lease or a lost write
//! allows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::StreamExt;
use keel_server::proto::etcdserverpb::lease_client::LeaseClient;
use keel_server::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseKeepAliveRequest, LeaseRevokeRequest,
};
use keel_server::proto::v3lockpb::lock_client::LockClient;
use keel_server::proto::v3lockpb::{LockRequest, UnlockRequest};
use madsim::rand::Rng;

use crate::NodeAddr;
use crate::rpc::{bytes_of, random_member, sleep_ms, within};
use crate::sim_log::SharedLog;

/// The lock's name.
const LOCK_NAME: &str = "sim-lock";
/// TTL the holders ask for, in seconds (keel may raise it to its minimum).
const LEASE_TTL_SECS: i64 = 2;
/// Longest hold, in ms: longer than the TTL, so a holder cut off from its
/// lease outlives it.
const HOLD_MS_MAX: u64 = 3_000;
/// How long a Lock call may wait for the lock.
const LOCK_WAIT_MS: u64 = 5_000;
/// Interval between keep-alives while holding.
const KEEP_ALIVE_EVERY_MS: u64 = 500;
/// Per-request timeout of grants, keep-alives, unlocks and revokes.
const REQUEST_TIMEOUT_MS: u64 = 1_000;
/// Most holds recorded; clients stop past it.
pub const HOLDS_MAX: usize = 10_000;

/// One time a client held the lock; instants in simulated ns since the run
/// started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hold {
    /// The lock client.
    pub client: usize,
    /// The lease the lock was held with.
    pub lease_id: i64,
    /// The lease's TTL in seconds (the smallest any answer gave).
    pub ttl_secs: i64,
    /// When the Lock response arrived.
    pub acquired_ns: u64,
    /// When the client sent Unlock (or gave up on the hold).
    pub released_ns: u64,
    /// When the last grant or keep-alive that the cluster accepted was
    /// sent, up to the release.
    pub last_accepted_ns: u64,
}

impl Hold {
    /// The earliest instant the lease may have expired.
    pub fn lease_may_expire_ns(&self) -> u64 {
        let ttl_ns = u64::try_from(self.ttl_secs)
            .unwrap_or(0)
            .saturating_mul(1_000_000_000);
        self.last_accepted_ns.saturating_add(ttl_ns)
    }
}

/// The holds as the run shares them.
pub type SharedHolds = Arc<Mutex<Vec<Hold>>>;

fn lock(holds: &SharedHolds) -> std::sync::MutexGuard<'_, Vec<Hold>> {
    holds.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Lock client `client`: grant, lock, hold, unlock, revoke through random
/// members of `members` until `stop`, appending each hold to `holds`.
pub async fn lock_client(
    client: usize,
    members: u8,
    clock: SharedLog,
    holds: SharedHolds,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) && lock(&holds).len() < HOLDS_MAX {
        if let Some(hold) = hold_once(client, members, &clock, &stop).await {
            lock(&holds).push(hold);
        }
        sleep_ms(100).await;
    }
}

/// One round: `None` when the lease or the lock was not had.
async fn hold_once(
    client: usize,
    members: u8,
    clock: &SharedLog,
    stop: &AtomicBool,
) -> Option<Hold> {
    let grant_sent_ns = clock.now_ns();
    let (lease_id, ttl_secs) = grant(random_member(members)).await?;
    let Some(key) = take_lock(random_member(members), lease_id).await else {
        revoke(random_member(members), lease_id).await;
        return None;
    };
    let mut hold = Hold {
        client,
        lease_id,
        ttl_secs,
        acquired_ns: clock.now_ns(),
        released_ns: 0,
        last_accepted_ns: grant_sent_ns,
    };
    let hold_ms = madsim::rand::thread_rng().gen_range(100..HOLD_MS_MAX);
    let until_ns = hold.acquired_ns + hold_ms * 1_000_000;
    while clock.now_ns() < until_ns && !stop.load(Ordering::Relaxed) {
        let sent_ns = clock.now_ns();
        if let Some(ttl) = keep_alive(random_member(members), lease_id).await {
            hold.last_accepted_ns = sent_ns;
            hold.ttl_secs = hold.ttl_secs.min(ttl);
        }
        sleep_ms(KEEP_ALIVE_EVERY_MS).await;
    }
    hold.released_ns = clock.now_ns();
    unlock(random_member(members), key).await;
    revoke(random_member(members), lease_id).await;
    Some(hold)
}

async fn lease_client(member: u8) -> Option<LeaseClient<tonic::transport::Channel>> {
    LeaseClient::connect(NodeAddr::member(member).client_url())
        .await
        .ok()
}

/// Grants a lease through `member`: its id and TTL.
async fn grant(member: u8) -> Option<(i64, i64)> {
    within(REQUEST_TIMEOUT_MS, async {
        let request = LeaseGrantRequest {
            ttl: LEASE_TTL_SECS,
            id: 0,
        };
        let answer = lease_client(member).await?.lease_grant(request).await;
        let response = answer.ok()?.into_inner();
        (response.error.is_empty() && response.id != 0).then_some((response.id, response.ttl))
    })
    .await
}

/// Waits for the lock through `member`: the owner key.
async fn take_lock(member: u8, lease_id: i64) -> Option<bytes::Bytes> {
    within(LOCK_WAIT_MS, async {
        let url = NodeAddr::member(member).client_url();
        let mut client = LockClient::connect(url).await.ok()?;
        let request = LockRequest {
            name: bytes_of(LOCK_NAME),
            lease: lease_id,
        };
        Some(client.lock(request).await.ok()?.into_inner().key)
    })
    .await
}

/// One keep-alive through `member`: the TTL it answered, if positive.
async fn keep_alive(member: u8, lease_id: i64) -> Option<i64> {
    within(REQUEST_TIMEOUT_MS, async {
        let requests = futures_util::stream::iter([LeaseKeepAliveRequest { id: lease_id }]);
        let answer = lease_client(member).await?.lease_keep_alive(requests).await;
        let first = answer.ok()?.into_inner().next().await?.ok()?;
        (first.ttl > 0).then_some(first.ttl)
    })
    .await
}

/// Unlocks `key` through `member`, whatever the answer.
async fn unlock(member: u8, key: bytes::Bytes) {
    let _ = within(REQUEST_TIMEOUT_MS, async {
        let url = NodeAddr::member(member).client_url();
        let mut client = LockClient::connect(url).await.ok()?;
        client.unlock(UnlockRequest { key }).await.ok()
    })
    .await;
}

/// Revokes the lease through `member`, whatever the answer.
async fn revoke(member: u8, lease_id: i64) {
    let _ = within(REQUEST_TIMEOUT_MS, async {
        let request = LeaseRevokeRequest { id: lease_id };
        lease_client(member).await?.lease_revoke(request).await.ok()
    })
    .await;
}

/// Overlapping holds: those a lease expiry explains, and those it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldOverlaps {
    /// Overlaps that began once the earlier holder's lease could have run
    /// out, counted (etcd's lock allows them).
    pub explained: u64,
    /// Overlaps that began while the earlier holder's lease certainly
    /// lived: mutual exclusion broken.
    pub unexplained: Vec<String>,
}

/// Checks every pair of holds of different clients (see the module doc).
pub fn check_holds(holds: &[Hold]) -> HoldOverlaps {
    let mut sorted = holds.to_vec();
    sorted.sort_by_key(|h| h.acquired_ns);
    let mut overlaps = HoldOverlaps::default();
    for (i, first) in sorted.iter().enumerate() {
        for second in &sorted[i + 1..] {
            if second.acquired_ns >= first.released_ns {
                continue;
            }
            if second.client == first.client {
                continue;
            }
            if second.acquired_ns >= first.lease_may_expire_ns() {
                overlaps.explained += 1;
            } else {
                overlaps.unexplained.push(format!(
                    "lock: client {} got the lock at {} ms while client {} held it (since {} ms, lease {:x} alive until at least {} ms)",
                    second.client,
                    second.acquired_ns / 1_000_000,
                    first.client,
                    first.acquired_ns / 1_000_000,
                    first.lease_id,
                    first.lease_may_expire_ns() / 1_000_000
                ));
            }
        }
    }
    overlaps
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(client: usize, acquired_ms: u64, released_ms: u64, last_accepted_ms: u64) -> Hold {
        Hold {
            client,
            lease_id: client as i64 + 1,
            ttl_secs: 2,
            acquired_ns: acquired_ms * 1_000_000,
            released_ns: released_ms * 1_000_000,
            last_accepted_ns: last_accepted_ms * 1_000_000,
        }
    }

    #[test]
    fn overlaps_count_as_failures_only_while_the_lease_lived() {
        let disjoint = [hold(0, 0, 1_000, 0), hold(1, 1_000, 2_000, 900)];
        assert_eq!(check_holds(&disjoint), HoldOverlaps::default());
        // Client 0 kept nothing alive after 0 ms: its lease may have gone at 2 s.
        let expired = [hold(0, 0, 3_000, 0), hold(1, 2_500, 4_000, 2_400)];
        let found = check_holds(&expired);
        assert_eq!((found.explained, found.unexplained.len()), (1, 0));
        let broken = [hold(0, 0, 3_000, 1_000), hold(1, 2_500, 4_000, 2_400)];
        let found = check_holds(&broken);
        assert_eq!((found.explained, found.unexplained.len()), (0, 1));
    }
}
