//! The lessor: every lease, the keys attached to them, and the replicated
//! operations on them (etcd `lease/lessor.go`). Only apply changes it;
//! when each lease expires is member-local ([`super::LeaseClock`]).

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

/// Answer to a time-to-live query (etcd `LeaseTimeToLiveResponse`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The lease.
    pub id: LeaseId,
    /// Remaining TTL in whole seconds (truncated, never below 0). On a
    /// member that is not the leader: the checkpointed or granted TTL
    /// (see [`super::LeaseClock::time_to_live`]).
    pub ttl_secs: i64,
    /// TTL the lease was granted with, in seconds.
    pub granted_ttl_secs: i64,
    /// Attached keys, ascending.
    pub keys: Vec<Vec<u8>>,
}

/// All leases of a member, the same on every member: the replicated
/// operations (grant, revoke, checkpoint, attach/detach) are called by
/// apply in log order, and nothing here depends on time. Expiry, keep-alive
/// and checkpoint scheduling are [`super::LeaseClock`]'s.
#[derive(Clone, Debug)]
pub struct Lessor {
    pub(super) config: LessorConfig,
    pub(super) leases: BTreeMap<LeaseId, Lease>,
    pub(super) key_leases: BTreeMap<Vec<u8>, LeaseId>,
}

impl Lessor {
    /// An empty lessor.
    pub fn new(config: LessorConfig) -> Lessor {
        Lessor {
            config,
            leases: BTreeMap::new(),
            key_leases: BTreeMap::new(),
        }
    }

    /// The settings this lessor runs with.
    pub fn config(&self) -> LessorConfig {
        self.config
    }

    /// The TTL, in seconds, a grant asking for `requested_secs` gets: at
    /// least this member's minimum ([`min_lease_ttl_secs`] of its election
    /// timeout; etcd's `minLeaseTTL`). The member that proposes the grant
    /// decides it and proposes the result, so every member applies the same
    /// TTL: the minimum depends on member-local settings, and a grant that
    /// each member raised to its own minimum left members with different
    /// TTLs for one lease (a leader with a shorter one expired it before the
    /// TTL the client was told; keel-sim's `clock-skew` scenario, whose
    /// members have different election timeouts, found it).
    pub fn ttl_to_grant_secs(&self, requested_secs: i64) -> i64 {
        requested_secs.max(self.config.min_ttl_secs)
    }

    /// Grants lease `id` with `ttl_secs` as proposed (the proposer raised
    /// it to its minimum, see [`Lessor::ttl_to_grant_secs`]: apply depends
    /// on nothing member-local); returns the granted TTL in seconds. The
    /// member's clock starts timing it when it follows the apply
    /// ([`super::LeaseClock::granted`]).
    ///
    /// Errors: `id == 0` → [`LeaseError::NotFound`] (the server assigns ids
    /// before proposing); TTL above the maximum → [`LeaseError::TtlTooLarge`];
    /// existing id → [`LeaseError::AlreadyExists`].
    pub fn grant(&mut self, id: LeaseId, ttl_secs: i64) -> Result<i64, LeaseError> {
        if id == NO_LEASE {
            return Err(LeaseError::NotFound);
        }
        if ttl_secs > MAX_LEASE_TTL_SECS {
            return Err(LeaseError::TtlTooLarge);
        }
        if self.leases.contains_key(&id) {
            return Err(LeaseError::AlreadyExists);
        }
        let lease = Lease {
            id,
            ttl_secs,
            remaining_ttl_secs: 0,
            keys: BTreeSet::new(),
        };
        self.leases.insert(id, lease);
        Ok(ttl_secs)
    }

    /// Removes lease `id` and returns the keys attached to it (ascending),
    /// which apply deletes in one revision.
    ///
    /// Errors: unknown id → [`LeaseError::NotFound`].
    pub fn revoke(&mut self, id: LeaseId) -> Result<Vec<Vec<u8>>, LeaseError> {
        let lease = self.leases.remove(&id).ok_or(LeaseError::NotFound)?;
        for key in &lease.keys {
            self.key_leases.remove(key);
        }
        Ok(lease.keys.into_iter().collect())
    }

    /// Applies a checkpoint: records the remaining TTL (0 clears it);
    /// returns false for an unknown lease, which is ignored, as in etcd (it
    /// was revoked meanwhile).
    pub fn checkpoint(&mut self, checkpoint: LeaseCheckpoint) -> bool {
        let Some(lease) = self.leases.get_mut(&checkpoint.id) else {
            return false;
        };
        lease.remaining_ttl_secs = checkpoint.remaining_ttl_secs.max(0);
        true
    }

    /// TTL information of lease `id` as every member knows it: the
    /// checkpointed remaining TTL, else the granted one (what a member that
    /// does not time the lease answers).
    ///
    /// Errors: unknown id → [`LeaseError::NotFound`].
    pub fn time_to_live(&self, id: LeaseId) -> Result<LeaseStatus, LeaseError> {
        let lease = self.leases.get(&id).ok_or(LeaseError::NotFound)?;
        Ok(LeaseStatus {
            id,
            ttl_secs: lease.refresh_ttl_secs(),
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

    /// A lessor holding `leases` (from [`Lessor::snapshot`]).
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
