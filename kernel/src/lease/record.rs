//! One lease: its granted TTL, the remaining TTL last checkpointed through
//! Raft, and the keys attached to it. Its expiry instant is member-local
//! (`clock.rs`).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::LeaseId;

/// A granted lease (etcd `lease.Lease`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The lease id (never [`super::NO_LEASE`]).
    pub id: LeaseId,
    /// TTL the lease was granted with, in seconds, after raising it to the
    /// minimum TTL.
    pub ttl_secs: i64,
    /// Remaining TTL recorded by the last checkpoint, in seconds; 0 when no
    /// checkpoint applies (the full `ttl_secs` is used on refresh).
    pub remaining_ttl_secs: i64,
    /// Keys attached to the lease, deleted when it is revoked.
    pub keys: BTreeSet<Vec<u8>>,
}

impl Lease {
    /// The TTL used when the lease's expiry is (re)started: the checkpointed
    /// remaining TTL if there is one, else the granted TTL, in seconds.
    pub fn refresh_ttl_secs(&self) -> i64 {
        if self.remaining_ttl_secs > 0 {
            self.remaining_ttl_secs
        } else {
            self.ttl_secs
        }
    }

    /// Replicated part of the lease, as stored in a state-machine snapshot.
    pub fn to_snapshot(&self) -> LeaseSnapshot {
        LeaseSnapshot {
            id: self.id,
            ttl_secs: self.ttl_secs,
            remaining_ttl_secs: self.remaining_ttl_secs,
            keys: self.keys.iter().cloned().collect(),
        }
    }
}

/// The replicated state of one lease (etcd's `leasepb.Lease` plus the keys
/// attached to it). The expiry instant is member-local and not included.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSnapshot {
    /// The lease id.
    pub id: LeaseId,
    /// Granted TTL in seconds.
    pub ttl_secs: i64,
    /// Checkpointed remaining TTL in seconds (0: none).
    pub remaining_ttl_secs: i64,
    /// Attached keys, ascending.
    pub keys: Vec<Vec<u8>>,
}
