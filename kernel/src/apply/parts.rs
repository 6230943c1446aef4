//! The replicated state taken apart and put back together: what offline
//! tools (`keel-snapshot`'s restore and its migration from etcd) need to
//! rebuild a state machine with new membership or from another store's data.
//! The parts are exactly what a state-machine snapshot holds.

use std::fmt;

use super::{AlarmMember, Alarms, SnapshotError, StateMachine, StateMachineConfig};
use crate::auth::{AuthSnapshot, AuthStore};
use crate::lease::{LeaseSnapshot, Lessor};
use crate::membership::{Cluster, ClusterSnapshot};
use crate::mvcc::Store;

/// Everything a state-machine snapshot holds, as plain values.
#[derive(Clone, Debug)]
pub struct StateParts {
    /// The multi-version key-value store.
    pub store: Store,
    /// Every lease with its attached keys.
    pub leases: Vec<LeaseSnapshot>,
    /// Users, roles and the enabled flag.
    pub auth: AuthSnapshot,
    /// The cluster id and members.
    pub cluster: ClusterSnapshot,
    /// Raised alarms.
    pub alarms: Vec<AlarmMember>,
    /// Index of the last applied Raft entry (the consistent index).
    pub applied_index: u64,
    /// Term of that entry.
    pub applied_term: u64,
}

impl StateMachine {
    /// Takes the state machine apart (it holds no member-local state: lease
    /// expiry instants and auth tokens are [`super::LocalState`]'s).
    pub fn into_parts(self) -> StateParts {
        StateParts {
            leases: self.lessor.snapshot(),
            auth: self.auth.snapshot(),
            cluster: self.cluster.snapshot(),
            alarms: self.alarms.list(),
            applied_index: self.applied_index,
            applied_term: self.applied_term,
            store: self.store,
        }
    }

    /// Builds a follower's state machine from `parts`, as
    /// [`StateMachine::restore`] does from snapshot bytes.
    ///
    /// Errors: [`SnapshotError::Invalid`] when the leases, auth or
    /// membership parts are inconsistent (duplicate ids or names, a key
    /// attached to two leases, ...) or the whole breaks an invariant
    /// ([`StateMachine::check_invariants`]).
    pub fn from_parts(
        config: StateMachineConfig,
        parts: StateParts,
    ) -> Result<StateMachine, SnapshotError> {
        let invalid =
            |what: &str, err: &dyn fmt::Display| SnapshotError::Invalid(format!("{what}: {err}"));
        let mut store = parts.store;
        store.set_max_txn_ops(config.limits.max_txn_ops);
        let lessor =
            Lessor::restore(config.lessor, parts.leases).map_err(|e| invalid("leases", &e))?;
        let auth = AuthStore::restore(parts.auth).map_err(|e| invalid("auth", &e))?;
        let cluster = Cluster::restore(parts.cluster).map_err(|e| invalid("membership", &e))?;
        let machine = StateMachine {
            config,
            store,
            lessor,
            auth,
            cluster,
            alarms: Alarms::restore(parts.alarms),
            applied_index: parts.applied_index,
            applied_term: parts.applied_term,
        };
        // Parts that decode may still break a rule between them (a key
        // attached to a lease that does not list it, a removed id still a
        // member): refuse them rather than serve from them.
        machine
            .check_invariants()
            .map_err(|violation| SnapshotError::Invalid(violation.to_string()))?;
        Ok(machine)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_to_the_same_snapshot_bytes() {
        let config = StateMachineConfig::new(1000);
        let machine = StateMachine::new(config, Cluster::empty(7));
        let before = machine.snapshot();
        let again = StateMachine::from_parts(config, machine.into_parts()).unwrap();
        assert_eq!(again.snapshot(), before);
    }
}
