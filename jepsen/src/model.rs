//! The sequential model of one etcd key as a register: the key's value, or
//! absent.

use crate::history::{Op, Outcome, Ret, Value};

/// The register model of one key. Its state is the key's value (`None`:
/// the key does not exist).
#[derive(Debug, Clone, Copy, Default)]
pub struct Register;

impl Register {
    /// Applies `op`, which ended with `outcome`, to `state`. Returns the
    /// state after it, or `None` if the model cannot produce that outcome
    /// from `state` (for example a read returning another value).
    ///
    /// An [`Outcome::Unknown`] operation is applied as if it took effect
    /// (its answer is unknown, so any answer is accepted); the search
    /// covers "it never took effect" by not linearizing it at all.
    /// [`Outcome::Fail`] operations never reach the model.
    pub fn step(state: Option<Value>, op: &Op, outcome: &Outcome) -> Option<Option<Value>> {
        match outcome {
            Outcome::Ok(ret) => Self::step_ok(state, op, ret),
            Outcome::Unknown => Some(Self::apply(state, op)),
            Outcome::Fail => None,
        }
    }

    fn step_ok(state: Option<Value>, op: &Op, ret: &Ret) -> Option<Option<Value>> {
        match (op, ret) {
            (Op::Read { .. }, Ret::Read(value)) => (*value == state).then_some(state),
            (Op::Write { value, .. }, Ret::Write { .. }) => Some(Some(*value)),
            (Op::Cas { expected, new, .. }, Ret::Cas { succeeded }) => {
                let holds = state == Some(*expected);
                match (holds, succeeded) {
                    (true, true) => Some(Some(*new)),
                    (false, false) => Some(state),
                    _ => None,
                }
            }
            (Op::Delete { .. }, Ret::Delete { deleted }) => {
                (*deleted == u64::from(state.is_some())).then_some(None)
            }
            _ => None,
        }
    }

    /// The state after `op` takes effect, whatever it answered.
    pub fn apply(state: Option<Value>, op: &Op) -> Option<Value> {
        match op {
            Op::Read { .. } => state,
            Op::Write { value, .. } => Some(*value),
            Op::Cas { expected, new, .. } => {
                if state == Some(*expected) {
                    Some(*new)
                } else {
                    state
                }
            }
            Op::Delete { .. } => None,
        }
    }

    /// The answer `op` gets when applied to `state`.
    pub fn answer(state: Option<Value>, op: &Op) -> Ret {
        match op {
            Op::Read { .. } => Ret::Read(state),
            Op::Write { .. } => Ret::Write { revision: None },
            Op::Cas { expected, .. } => Ret::Cas {
                succeeded: state == Some(*expected),
            },
            Op::Delete { .. } => Ret::Delete {
                deleted: u64::from(state.is_some()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_and_delete_follow_the_state() {
        let cas = Op::cas("k", 1, 2);
        let ok = |succeeded| Outcome::Ok(Ret::Cas { succeeded });
        assert_eq!(Register::step(Some(1), &cas, &ok(true)), Some(Some(2)));
        assert_eq!(Register::step(Some(1), &cas, &ok(false)), None);
        assert_eq!(Register::step(None, &cas, &ok(false)), Some(None));
        let delete = Op::delete("k");
        let deleted = |n| Outcome::Ok(Ret::Delete { deleted: n });
        assert_eq!(Register::step(Some(3), &delete, &deleted(1)), Some(None));
        assert_eq!(Register::step(None, &delete, &deleted(1)), None);
        assert_eq!(
            Register::step(Some(3), &cas, &Outcome::Unknown),
            Some(Some(3))
        );
    }
}
