//! Broken invariants of the kernel's core structures.
//!
//! Each core structure has a `check_invariants(&self)` that walks it whole
//! (O(n), for tests and the simulator) and reports the first rule that does
//! not hold as an [`InvariantViolation`]. The O(1) rules are also asserted
//! with `assert!` where the structure changes, so a broken invariant stops
//! the member in release builds instead of letting it serve on.

use std::fmt;

/// A rule of a structure that does not hold: which structure, which rule,
/// and the values that break it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    /// The structure checked, e.g. `"raft log"` or `"lessor"`.
    pub structure: &'static str,
    /// The rule that failed, with the offending values.
    pub detail: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} invariant violated: {}", self.structure, self.detail)
    }
}

impl std::error::Error for InvariantViolation {}

/// `Ok(())` when `holds`; otherwise a violation of `structure` described by
/// `detail()` (called only on failure, so building the message costs
/// nothing when the rule holds).
///
/// Errors: `holds == false` → the [`InvariantViolation`].
pub(crate) fn ensure(
    holds: bool,
    structure: &'static str,
    detail: impl FnOnce() -> String,
) -> Result<(), InvariantViolation> {
    if holds {
        Ok(())
    } else {
        Err(InvariantViolation {
            structure,
            detail: detail(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_structure_and_detail_only_on_failure() {
        assert_eq!(ensure(true, "x", || unreachable!()), Ok(()));
        let err = ensure(false, "raft log", || "commit 5 > last 4".into());
        let err = err.err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("raft log invariant violated: commit 5 > last 4")
        );
    }
}
