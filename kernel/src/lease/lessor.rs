//! The lessor: every lease, the keys attached to them, and the replicated
//! operations on them (etcd `lease/lessor.go`). The leader's expiry and
//! checkpoint scheduling is in `leader.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    DEFAULT_CHECKPOINT_INTERVAL_MS, Lease, LeaseError, LeaseId, LeaseSnapshot, MAX_LEASE_TTL_SECS,
    NO_LEASE, min_lease_ttl_secs,
};

/// Settings of a [`Lessor`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LessorConfig {
    /// Smallest TTL a lease gets, in seconds (see [`min_lease_ttl_secs`]).
    pub min_ttl_secs: i64,
    /// Interval between checkpoints of one lease, in milliseconds; 0
    /// disables checkpoints (etcd's `--experimental-enable-lease-checkpoint`).
    pub checkpoint_interval_ms: u64,
}

impl LessorConfig {
    /// Settings for a cluster with the given election timeout (ms), with
    /// checkpoints every [`DEFAULT_CHECKPOINT_INTERVAL_MS`].
    pub fn new(election_timeout_ms: u64) -> LessorConfig {
        LessorConfig {
            min_ttl_secs: min_lease_ttl_secs(election_timeout_ms),
            checkpoint_interval_ms: DEFAULT_CHECKPOINT_INTERVAL_MS,
        }
    }
}

/// A remaining TTL to record through Raft (etcd `pb.LeaseCheckpoint`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeaseCheckpoint {
    /// The lease.
    pub id: LeaseId,
    /// Remaining TTL in whole seconds (rounded up); 0 clears the checkpoint.
    pub remaining_ttl_secs: i64,
}

/// Result of a keep-alive ([`Lessor::renew`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseRenewal {
    /// The lease's granted TTL in seconds: the client's new deadline.
    pub ttl_secs: i64,
    /// A checkpoint the server must propose through Raft so that followers
    /// forget an older remaining TTL (etcd 3.5 does the same on renew).
    pub checkpoint: Option<LeaseCheckpoint>,
}

/// Answer to a time-to-live query (etcd `LeaseTimeToLiveResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The lease.
    pub id: LeaseId,
    /// Remaining TTL in whole seconds (truncated, never below 0). On a
    /// member that is not the leader: the checkpointed or granted TTL.
    pub ttl_secs: i64,
    /// TTL the lease was granted with, in seconds.
    pub granted_ttl_secs: i64,
    /// Attached keys, ascending.
    pub keys: Vec<Vec<u8>>,
}

/// All leases of a member. Replicated operations (grant, revoke,
/// checkpoint, attach/detach) are called by apply in log order; the leader's
/// timing (expiry, promote, renew, checkpoints due) by the server with
/// monotonic instants in milliseconds.
#[derive(Clone, Debug)]
pub struct Lessor {
    pub(super) config: LessorConfig,
    pub(super) leases: BTreeMap<LeaseId, Lease>,
    pub(super) key_leases: BTreeMap<Vec<u8>, LeaseId>,
    pub(super) primary: bool,
    /// Leader only: `(instant_ms, id)` at which to look at the lease's expiry.
    pub(super) expiry_queue: BTreeSet<(u64, LeaseId)>,
    /// Leader only: the instant each lease sits at in `expiry_queue`.
    pub(super) expiry_check_ms: BTreeMap<LeaseId, u64>,
    /// Leader only: `(instant_ms, id)` at which to checkpoint the lease.
    pub(super) checkpoint_queue: BTreeSet<(u64, LeaseId)>,
}

impl Lessor {
    /// An empty lessor that is not primary (no lease expires until
    /// [`Lessor::promote`]).
    pub fn new(config: LessorConfig) -> Lessor {
        Lessor {
            config,
            leases: BTreeMap::new(),
            key_leases: BTreeMap::new(),
            primary: false,
            expiry_queue: BTreeSet::new(),
            expiry_check_ms: BTreeMap::new(),
            checkpoint_queue: BTreeSet::new(),
        }
    }

    /// The settings this lessor runs with.
    pub fn config(&self) -> LessorConfig {
        self.config
    }

    /// True on the leader, whose lessor decides expiry.
    pub fn is_primary(&self) -> bool {
        self.primary
    }

    /// Grants lease `id` with `ttl_secs` (raised to the minimum TTL) at
    /// `now_ms`; returns the granted TTL in seconds.
    ///
    /// Errors: `id == 0` → [`LeaseError::NotFound`] (the server assigns ids
    /// before proposing); TTL above the maximum → [`LeaseError::TtlTooLarge`];
    /// existing id → [`LeaseError::AlreadyExists`].
    pub fn grant(&mut self, id: LeaseId, ttl_secs: i64, now_ms: u64) -> Result<i64, LeaseError> {
        if id == NO_LEASE {
            return Err(LeaseError::NotFound);
        }
        if ttl_secs > MAX_LEASE_TTL_SECS {
            return Err(LeaseError::TtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(LeaseError::AlreadyExists);
        }
        let ttl_secs = ttl_secs.max(self.config.min_ttl_secs);
        let lease = Lease {
            id,
            ttl_secs,
            remaining_ttl_secs: 0,
            expiry_ms: None,
            keys: BTreeSet::new(),
        };
        self.leases.insert(id, lease);
        // The planted bug lets every member's lessor time leases by its own
        // clock, followers included (they never see keep-alives).
        if self.primary || cfg!(feature = "planted-bug-follower-expires-leases") {
            self.refresh(id, now_ms, 0);
            self.schedule_checkpoint(id, now_ms);
        }
        Ok(ttl_secs)
    }

    /// Removes lease `id` and returns the keys attached to it (ascending),
    /// which apply deletes in one revision.
    ///
    /// Errors: unknown id → [`LeaseError::NotFound`].
    pub fn revoke(&mut self, id: LeaseId) -> Result<Vec<Vec<u8>>, LeaseError> {
        let lease = self.leases.remove(&id).ok_or(LeaseError::NotFound)?;
        if let Some(at_ms) = self.expiry_check_ms.remove(&id) {
            self.expiry_queue.remove(&(at_ms, id));
        }
        for key in &lease.keys {
            self.key_leases.remove(key);
        }
        Ok(lease.keys.into_iter().collect())
    }

    /// Keep-alive on the leader: restarts the lease's full TTL at `now_ms`.
    ///
    /// Errors: not the leader → [`LeaseError::NotPrimary`]; unknown or
    /// already expired lease → [`LeaseError::NotFound`].
    pub fn renew(&mut self, id: LeaseId, now_ms: u64) -> Result<LeaseRenewal, LeaseError> {
        if !self.primary {
            return Err(LeaseError::NotPrimary);
        }
        let lease = self.leases.get_mut(&id).ok_or(LeaseError::NotFound)?;
        if lease.expiry_ms.is_some_and(|expiry_ms| expiry_ms <= now_ms) {
            return Err(LeaseError::NotFound);
        }
        let checkpoint = (self.config.checkpoint_interval_ms > 0 && lease.remaining_ttl_secs > 0)
            .then_some(LeaseCheckpoint {
                id,
                remaining_ttl_secs: 0,
            });
        lease.remaining_ttl_secs = 0;
        let ttl_secs = lease.ttl_secs;
        self.refresh(id, now_ms, 0);
        Ok(LeaseRenewal {
            ttl_secs,
            checkpoint,
        })
    }

    /// Applies a checkpoint: records the remaining TTL (0 clears it). An
    /// unknown lease is ignored, as in etcd (it was revoked meanwhile).
    pub fn checkpoint(&mut self, checkpoint: LeaseCheckpoint, now_ms: u64) {
        let Some(lease) = self.leases.get_mut(&checkpoint.id) else {
            return;
        };
        lease.remaining_ttl_secs = checkpoint.remaining_ttl_secs.max(0);
        if self.primary {
            self.schedule_checkpoint(checkpoint.id, now_ms);
        }
    }

    /// TTL information of lease `id` at `now_ms`.
    ///
    /// Errors: unknown id → [`LeaseError::NotFound`].
    pub fn time_to_live(&self, id: LeaseId, now_ms: u64) -> Result<LeaseStatus, LeaseError> {
        let lease = self.leases.get(&id).ok_or(LeaseError::NotFound)?;
        let ttl_secs = match lease.expiry_ms {
            Some(expiry_ms) => {
                i64::try_from(expiry_ms.saturating_sub(now_ms) / 1000).unwrap_or(i64::MAX)
            }
            None => lease.refresh_ttl_secs(),
        };
        Ok(LeaseStatus {
            id,
            ttl_secs,
            granted_ttl_secs: lease.ttl_secs,
            keys: lease.keys.iter().cloned().collect(),
        })
    }

    /// The lease with this id, if granted.
    pub fn lease(&self, id: LeaseId) -> Option<&Lease> {
        self.leases.get(&id)
    }

    /// Ids of all leases, ascending (etcd `LeaseLeases`).
    pub fn leases(&self) -> Vec<LeaseId> {
        self.leases.keys().copied().collect()
    }

    /// Number of leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True when no lease exists.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The lease `key` is attached to, or [`NO_LEASE`].
    pub fn lease_of(&self, key: &[u8]) -> LeaseId {
        self.key_leases.get(key).copied().unwrap_or(NO_LEASE)
    }

    /// Attaches `key` to lease `id` (detaching it from any other lease);
    /// `id == NO_LEASE` only detaches.
    ///
    /// Errors: unknown lease → [`LeaseError::NotFound`], nothing changes.
    pub fn attach(&mut self, id: LeaseId, key: &[u8]) -> Result<(), LeaseError> {
        if id != NO_LEASE && !self.leases.contains_key(&id) {
            return Err(LeaseError::NotFound);
        }
        self.detach(key);
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.insert(key.to_vec());
            self.key_leases.insert(key.to_vec(), id);
        }
        Ok(())
    }

    /// Detaches `key` from its lease; returns that lease or [`NO_LEASE`].
    pub fn detach(&mut self, key: &[u8]) -> LeaseId {
        let Some(id) = self.key_leases.remove(key) else {
            return NO_LEASE;
        };
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
        id
    }

    /// The replicated state of every lease, ascending by id.
    pub fn snapshot(&self) -> Vec<LeaseSnapshot> {
        self.leases.values().map(Lease::to_snapshot).collect()
    }

    /// A non-primary lessor holding `leases` (from [`Lessor::snapshot`]).
    ///
    /// Errors: a lease id 0 or a key attached twice →
    /// [`LeaseError::NotFound`]; a duplicate id → [`LeaseError::AlreadyExists`].
    pub fn restore(config: LessorConfig, leases: Vec<LeaseSnapshot>) -> Result<Lessor, LeaseError> {
        let mut lessor = Lessor::new(config);
        for snapshot in leases {
            if snapshot.id == NO_LEASE {
                return Err(LeaseError::NotFound);
            }
            if lessor.leases.contains_key(&snapshot.id) {
                return Err(LeaseError::AlreadyExists);
            }
            let mut lease = Lease {
                id: snapshot.id,
                ttl_secs: snapshot.ttl_secs,
                remaining_ttl_secs: snapshot.remaining_ttl_secs,
                expiry_ms: None,
                keys: BTreeSet::new(),
            };
            for key in snapshot.keys {
                if lessor.key_leases.insert(key.clone(), snapshot.id).is_some() {
                    return Err(LeaseError::NotFound);
                }
                lease.keys.insert(key);
            }
            lessor.leases.insert(snapshot.id, lease);
        }
        Ok(lessor)
    }
}
