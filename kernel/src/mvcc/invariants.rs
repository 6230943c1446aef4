//! The store's invariants, checked whole (for tests and the simulator).
//!
//! * The current revision is at least 1 and the compacted revision is not
//!   above it.
//! * No key has a version newer than the current revision.
//! * The index's own rules (see [`Index::check_invariants`]).
//!
//! [`Index::check_invariants`]: super::index::Index::check_invariants

use crate::invariant::{InvariantViolation, ensure};

use super::Store;

const STRUCTURE: &str = "mvcc store";

impl Store {
    /// Checks every rule listed in this module. O(number of keys).
    ///
    /// Errors: the first rule broken, as an [`InvariantViolation`].
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        let (current, compact) = (self.current_revision, self.compact_revision);
        ensure(current >= 1 && compact <= current, STRUCTURE, || {
            format!("current revision {current}, compacted {compact}")
        })?;
        let newer = self.index.iter().find(|ki| ki.latest().rev.main > current);
        ensure(newer.is_none(), STRUCTURE, || {
            format!(
                "key {:?} has a version after revision {current}",
                newer.map(|ki| ki.key())
            )
        })?;
        self.index.check_invariants()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::PutRequest;
    use super::*;

    fn store() -> Store {
        let mut store = Store::new();
        for key in [b"a", b"b"] {
            let put = PutRequest {
                key: key.to_vec(),
                value: b"v".to_vec(),
                ..PutRequest::default()
            };
            store.put(&put, &|_| true).unwrap();
        }
        assert_eq!(store.check_invariants(), Ok(()));
        store
    }

    #[test]
    fn a_version_from_the_future_is_reported() {
        let mut s = store();
        s.current_revision = 2;
        let err = s.check_invariants().err().map(|e| e.detail);
        assert_eq!(
            err.as_deref(),
            Some("key Some([98]) has a version after revision 2")
        );
    }

    #[test]
    fn a_compaction_past_the_current_revision_is_reported() {
        let mut s = store();
        s.compact_revision = 9;
        assert!(s.check_invariants().is_err());
    }
}
