//! The lease clock: when each lease expires as this member sees it. It is
//! member-local, never replicated: etcd's lessor keeps each lease's expiry
//! in memory and replicates only grant, revoke and checkpoint (etcd
//! `lease/lessor.go`: `Lease.expiry`, `Renew`, `Promote`). The leader's
//! scheduling (expiry, promotion, checkpoints due) is in `leader.rs`.
//!
//! The clock follows the lessor: after apply grants, revokes or checkpoints
//! a lease, the member calls [`LeaseClock::granted`],
//! [`LeaseClock::revoked`] or [`LeaseClock::checkpointed`] with its own
//! monotonic instant. Only the leader ("primary") times leases.

use std::collections::{BTreeMap, BTreeSet};

use super::{Lease, LeaseCheckpoint, LeaseError, LeaseId, LeaseStatus, Lessor, LessorConfig};

/// Result of a keep-alive ([`LeaseClock::renew`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// The lease's granted TTL in seconds: the client's new deadline.
    pub ttl_secs: i64,
    /// A checkpoint the server must propose through Raft so that followers
    /// forget an older remaining TTL (etcd 3.5 does the same on renew).
    pub checkpoint: Option<LeaseCheckpoint>,
}

/// Each lease's expiry instant on this member (monotonic ms), with the
/// leader's expiry and checkpoint queues.
#[derive(Clone, Debug)]
pub struct LeaseClock {
    pub(super) config: LessorConfig,
    pub(super) primary: bool,
    /// Instant (ms) each timed lease expires at; empty when not primary.
    pub(super) expiry_ms: BTreeMap<LeaseId, u64>,
    /// `(instant_ms, id)` at which to look at the lease's expiry.
    pub(super) expiry_queue: BTreeSet<(u64, LeaseId)>,
    /// The instant each lease sits at in `expiry_queue`.
    pub(super) expiry_check_ms: BTreeMap<LeaseId, u64>,
    /// `(instant_ms, id)` at which to checkpoint the lease.
    pub(super) checkpoint_queue: BTreeSet<(u64, LeaseId)>,
    /// Leases whose checkpointed remaining TTL a keep-alive here cleared;
    /// this member times them from their full TTL until the clearing
    /// checkpoint it proposed is applied (etcd clears it through Raft
    /// before it refreshes the lease). Never more ids than leases.
    pub(super) renewed: BTreeSet<LeaseId>,
}

impl LeaseClock {
    /// A clock that times nothing until [`LeaseClock::promote`].
    pub fn new(config: LessorConfig) -> LeaseClock {
        LeaseClock {
            config,
            primary: false,
            expiry_ms: BTreeMap::new(),
            expiry_queue: BTreeSet::new(),
            expiry_check_ms: BTreeMap::new(),
            checkpoint_queue: BTreeSet::new(),
            renewed: BTreeSet::new(),
        }
    }

    /// True on the leader, whose clock decides expiry.
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// The instant (ms) lease `id` expires at on this member, if timed.
    pub fn expiry_ms(&self, id: LeaseId) -> Option<u64> {
        self.expiry_ms.get(&id).copied()
    }

    /// Apply granted lease `id` at `now_ms`: the leader starts timing it.
    pub fn granted(&mut self, lessor: &Lessor, id: LeaseId, now_ms: u64) {
        // The planted bug lets every member time leases by its own clock,
        // followers included (they never see keep-alives).
        if self.primary || cfg!(feature = "planted-bug-follower-expires-leases") {
            self.refresh(lessor, id, now_ms, 0);
            self.schedule_checkpoint(lessor, id, now_ms);
        }
    }

    /// Apply revoked lease `id`: it is timed no more.
    pub fn revoked(&mut self, id: LeaseId) {
        self.expiry_ms.remove(&id);
        if let Some(at_ms) = self.expiry_check_ms.remove(&id) {
            self.expiry_queue.remove(&(at_ms, id));
        }
        self.renewed.remove(&id);
    }

    /// Apply recorded a checkpoint of lease `id` at `now_ms`: the applied
    /// remaining TTL is in force again, and the leader schedules the next
    /// checkpoint. An unknown lease is ignored.
    pub fn checkpointed(&mut self, lessor: &Lessor, id: LeaseId, now_ms: u64) {
        self.renewed.remove(&id);
        if self.primary && lessor.lease(id).is_some() {
            self.schedule_checkpoint(lessor, id, now_ms);
        }
    }

    /// Keep-alive on the leader: restarts the lease's full TTL at `now_ms`.
    /// The lessor is untouched: a remaining TTL recorded by a checkpoint is
    /// cleared through Raft by the returned checkpoint.
    ///
    /// Errors: not the leader → [`LeaseError::NotPrimary`]; unknown or
    /// already expired lease → [`LeaseError::NotFound`].
    pub fn renew(
        &mut self,
        lessor: &Lessor,
        id: LeaseId,
        now_ms: u64,
    ) -> Result<LeaseRenewal, LeaseError> {
        if !self.primary {
            return Err(LeaseError::NotPrimary);
        }
        let lease = lessor.lease(id).ok_or(LeaseError::NotFound)?;
        if self
            .expiry_ms(id)
            .is_some_and(|expiry_ms| expiry_ms <= now_ms)
        {
            return Err(LeaseError::NotFound);
        }
        let recorded = lease.remaining_ttl_secs > 0 && !self.renewed.contains(&id);
        let checkpoint =
            (self.config.checkpoint_interval_ms > 0 && recorded).then_some(LeaseCheckpoint {
                id,
                remaining_ttl_secs: 0,
            });
        if lease.remaining_ttl_secs > 0 {
            self.renewed.insert(id);
        }
        self.refresh(lessor, id, now_ms, 0);
        Ok(LeaseRenewal {
            ttl_secs: lease.ttl_secs,
            checkpoint,
        })
    }

    /// TTL information of lease `id` at `now_ms`: the time left until its
    /// expiry where this member times it, else the remaining TTL it would
    /// restart from (see [`Lessor::time_to_live`]).
    ///
    /// Errors: unknown id → [`LeaseError::NotFound`].
    pub fn time_to_live(
        &self,
        lessor: &Lessor,
        id: LeaseId,
        now_ms: u64,
    ) -> Result<LeaseStatus, LeaseError> {
        let mut status = lessor.time_to_live(id)?;
        status.ttl_secs = match (self.expiry_ms(id), lessor.lease(id)) {
            (Some(expiry_ms), _) => {
                i64::try_from(expiry_ms.saturating_sub(now_ms) / 1000).unwrap_or(i64::MAX)
            }
            (None, Some(lease)) => self.refresh_ttl_secs(lease),
            (None, None) => return Err(LeaseError::NotFound),
        };
        Ok(status)
    }

    /// The TTL (s) the lease's expiry restarts from: its full TTL after a
    /// keep-alive here cleared the checkpoint, else [`Lease::refresh_ttl_secs`].
    pub(super) fn refresh_ttl_secs(&self, lease: &Lease) -> i64 {
        match self.renewed.contains(&lease.id) {
            true => lease.ttl_secs,
            false => lease.refresh_ttl_secs(),
        }
    }
}
