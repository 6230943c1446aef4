//! Revisions: the logical clock of the MVCC store (etcd `mvcc.revision`).

use serde::{Deserialize, Serialize};

/// A store revision `(main, sub)`.
///
/// Every write transaction takes one new `main` revision; each change (one
/// key put or deleted) inside that transaction takes the next `sub` revision,
/// starting at 0. Revisions order all changes ever made to the store
/// (etcd `server/mvcc/revision.go`). `main` starts at 1 for the first write;
/// a fresh store is at main revision 1 with no keys, as in etcd.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Revision {
    /// The transaction's revision, as seen by clients (`mod_revision`, ...).
    pub main: i64,
    /// The position of the change inside its transaction.
    pub sub: i64,
}

impl Revision {
    /// Builds a revision from its two parts.
    pub fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_main_then_sub() {
        assert!(Revision::new(1, 5) < Revision::new(2, 0));
        assert!(Revision::new(2, 0) < Revision::new(2, 1));
        assert_eq!(Revision::new(3, 4), Revision { main: 3, sub: 4 });
    }
}
