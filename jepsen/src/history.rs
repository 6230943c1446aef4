//! The history model: client operations on the etcd KV API as a test
//! records them (invoke, then ok, fail or unknown), in real-time order.

use std::fmt;

/// A register value. Workloads write unique values (a counter), encoded in
/// the key's bytes as decimal text; the checker only compares them.
pub type Value = u64;

/// Index of an operation in its [`History`].
pub type OpId = usize;

/// What a client asked for, on one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A linearizable Range of one key.
    Read {
        /// The key.
        key: String,
    },
    /// A Put.
    Write {
        /// The key.
        key: String,
        /// The value written.
        value: Value,
    },
    /// A Txn: if the key's value equals `expected`, put `new`.
    Cas {
        /// The key.
        key: String,
        /// The value the compare requires.
        expected: Value,
        /// The value put when the compare holds.
        new: Value,
    },
    /// A DeleteRange of one key.
    Delete {
        /// The key.
        key: String,
    },
}

impl Op {
    /// A read of `key`.
    pub fn read(key: &str) -> Op {
        Op::Read { key: key.into() }
    }

    /// A write of `value` to `key`.
    pub fn write(key: &str, value: Value) -> Op {
        Op::Write {
            key: key.into(),
            value,
        }
    }

    /// A compare-and-set of `key` from `expected` to `new`.
    pub fn cas(key: &str, expected: Value, new: Value) -> Op {
        Op::Cas {
            key: key.into(),
            expected,
            new,
        }
    }

    /// A delete of `key`.
    pub fn delete(key: &str) -> Op {
        Op::Delete { key: key.into() }
    }

    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Read { key } | Op::Write { key, .. } | Op::Cas { key, .. } | Op::Delete { key } => {
                key
            }
        }
    }

    /// Whether the operation can change the key (reads cannot).
    pub fn is_mutation(&self) -> bool {
        !matches!(self, Op::Read { .. })
    }
}

/// What the server answered to a completed operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// The value read; `None` when the key does not exist.
    Read(Option<Value>),
    /// The write's revision, when the response carried one.
    Write {
        /// The revision the response header carried.
        revision: Option<i64>,
    },
    /// Whether the compare held (and the new value was put).
    Cas {
        /// The Txn response's `succeeded`.
        succeeded: bool,
    },
    /// How many keys the delete removed (0 or 1).
    Delete {
        /// The DeleteRange response's `deleted`.
        deleted: u64,
    },
}

/// How an operation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered; the operation took effect exactly once.
    Ok(Ret),
    /// The operation certainly did not take effect (never sent, or refused
    /// before it could be proposed).
    Fail,
    /// Unknown (timeout, lost connection): it may or may not have taken
    /// effect, at any time after its invocation.
    Unknown,
}

/// One operation of a history: its invocation and, once known, its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Its index in the history.
    pub id: OpId,
    /// The client (process) that issued it; a process runs one operation
    /// at a time.
    pub process: u64,
    /// What was asked.
    pub op: Op,
    /// When it was invoked (nanoseconds, logical or simulated time).
    pub invoke_ns: u64,
    /// When it completed, if it did.
    pub complete_ns: Option<u64>,
    /// How it ended; `None` while pending (checked as [`Outcome::Unknown`]).
    pub outcome: Option<Outcome>,
}

impl Operation {
    /// The outcome the checkers use: a pending operation is unknown.
    pub fn effective_outcome(&self) -> &Outcome {
        self.outcome.as_ref().unwrap_or(&Outcome::Unknown)
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = match self.complete_ns {
            Some(ns) => format!("{:.3}s", ns as f64 / 1e9),
            None => "never".into(),
        };
        write!(
            f,
            "#{} p{} {:?} -> {:?} [{:.3}s .. {}]",
            self.id,
            self.process,
            self.op,
            self.effective_outcome(),
            self.invoke_ns as f64 / 1e9,
            end
        )
    }
}

/// Why a history refused a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryError {
    /// The history already holds its maximum number of operations.
    Full {
        /// The bound it was created with.
        operations_max: usize,
    },
    /// No operation has this id.
    UnknownOp(OpId),
    /// The operation already completed.
    AlreadyComplete(OpId),
    /// The completion time is before the invocation time.
    CompletedBeforeInvoked(OpId),
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HistoryError::Full { operations_max } => {
                write!(f, "history full ({operations_max} operations)")
            }
            HistoryError::UnknownOp(id) => write!(f, "no operation #{id}"),
            HistoryError::AlreadyComplete(id) => write!(f, "operation #{id} already completed"),
            HistoryError::CompletedBeforeInvoked(id) => {
                write!(f, "operation #{id} completed before it was invoked")
            }
        }
    }
}

impl std::error::Error for HistoryError {}

/// A bounded, append-only record of operations in invocation order.
#[derive(Debug, Clone, Default)]
pub struct History {
    operations: Vec<Operation>,
    operations_max: usize,
}

impl History {
    /// An empty history that accepts at most `operations_max` operations.
    pub fn new(operations_max: usize) -> History {
        History {
            operations: Vec::new(),
            operations_max,
        }
    }

    /// Records that `process` invoked `op` at `invoke_ns`; returns its id.
    /// Errors with [`HistoryError::Full`] at the bound.
    pub fn invoke(&mut self, process: u64, op: Op, invoke_ns: u64) -> Result<OpId, HistoryError> {
        if self.operations.len() >= self.operations_max {
            return Err(HistoryError::Full {
                operations_max: self.operations_max,
            });
        }
        let id = self.operations.len();
        self.operations.push(Operation {
            id,
            process,
            op,
            invoke_ns,
            complete_ns: None,
            outcome: None,
        });
        Ok(id)
    }

    /// Records that operation `id` ended with `outcome` at `complete_ns`.
    /// Errors if `id` is unknown, already completed, or `complete_ns` is
    /// before its invocation.
    pub fn complete(
        &mut self,
        id: OpId,
        outcome: Outcome,
        complete_ns: u64,
    ) -> Result<(), HistoryError> {
        let operation = self
            .operations
            .get_mut(id)
            .ok_or(HistoryError::UnknownOp(id))?;
        if operation.outcome.is_some() {
            return Err(HistoryError::AlreadyComplete(id));
        }
        if complete_ns < operation.invoke_ns {
            return Err(HistoryError::CompletedBeforeInvoked(id));
        }
        operation.complete_ns = Some(complete_ns);
        operation.outcome = Some(outcome);
        Ok(())
    }

    /// The operations, in invocation order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// How many operations ended with each outcome: (ok, fail, unknown).
    pub fn outcome_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for operation in &self.operations {
            match operation.effective_outcome() {
                Outcome::Ok(_) => counts.0 += 1,
                Outcome::Fail => counts.1 += 1,
                Outcome::Unknown => counts.2 += 1,
            }
        }
        counts
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_rejects_bad_completions() {
        let mut history = History::new(1);
        let id = history.invoke(1, Op::read("k"), 10).unwrap();
        assert_eq!(
            history.invoke(1, Op::read("k"), 11),
            Err(HistoryError::Full { operations_max: 1 })
        );
        assert_eq!(
            history.complete(id, Outcome::Fail, 5),
            Err(HistoryError::CompletedBeforeInvoked(id))
        );
        history.complete(id, Outcome::Fail, 12).unwrap();
        assert_eq!(
            history.complete(id, Outcome::Fail, 13),
            Err(HistoryError::AlreadyComplete(id))
        );
        assert_eq!(
            history.complete(7, Outcome::Fail, 13),
            Err(HistoryError::UnknownOp(7))
        );
        assert_eq!(history.outcome_counts(), (0, 1, 0));
    }
}
