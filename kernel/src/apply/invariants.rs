//! The state machine's invariants: those of each part it applies to.

use crate::invariant::InvariantViolation;

use super::StateMachine;

impl StateMachine {
    /// Checks the invariants of the MVCC store, the lessor, the auth store
    /// and the cluster, in that order. O(size of the replicated state).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.store.check_invariants()?;
        self.lessor.check_invariants()?;
        self.auth.check_invariants()?;
        self.cluster.check_invariants()
    }
}
