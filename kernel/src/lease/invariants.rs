//! The lessor's invariants, checked whole (for tests and the simulator).
//!
//! * Every attached key maps to a lease that lists it, and every key a
//!   lease lists maps back to that lease.
//! * No lease has id [`NO_LEASE`], and each is stored under its own id.
//!
//! The lease clock's rules are in `clock_invariants.rs`.

use crate::invariant::{InvariantViolation, ensure};

use super::{Lessor, NO_LEASE};

const STRUCTURE: &str = "lessor";

impl Lessor {
    /// Checks every rule listed in this module. O(leases + attached keys).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        for (key, id) in &self.key_leases {
            let listed = self.leases.get(id).is_some_and(|l| l.keys.contains(key));
            ensure(listed, STRUCTURE, || {
                format!("key {key:?} attached to lease {id}, which does not list it")
            })?;
        }
        for (id, lease) in &self.leases {
            ensure(*id != NO_LEASE && lease.id == *id, STRUCTURE, || {
                format!("lease {} stored under id {id}", lease.id)
            })?;
            let stray = lease
                .keys
                .iter()
                .find(|key| self.key_leases.get(*key) != Some(id));
            ensure(stray.is_none(), STRUCTURE, || {
                format!("lease {id} lists key {stray:?} attached elsewhere")
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::LessorConfig;
    use super::*;

    fn lessor() -> Lessor {
        let mut lessor = Lessor::new(LessorConfig::new(1000));
        lessor.grant(7, 10).unwrap();
        lessor.attach(7, b"k").unwrap();
        assert_eq!(lessor.check_invariants(), Ok(()));
        lessor
    }

    #[test]
    fn a_key_listed_by_no_lease_is_reported() {
        let mut l = lessor();
        l.leases.get_mut(&7).unwrap().keys.clear();
        let err = l.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("key [107] attached to lease 7, which does not list it")
        );
    }

    #[test]
    fn an_unmapped_key_is_reported() {
        let mut l = lessor();
        l.key_leases.clear();
        assert!(l.check_invariants().is_err());
    }
}
