//! The run's shared record: the operation history (keel-jepsen's
//! [`History`], times in nanoseconds since the run started) and, per
//! operation, the member it went to and the error it got. Written out as
//! `history.jsonl`, one JSON object per operation.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use keel_jepsen::{History, Op, OpId, Operation, Outcome, Ret};
use serde_json::{Value as Json, json};

/// What the history does not hold about an operation.
#[derive(Debug, Clone, Default)]
struct Extra {
    member: usize,
    error: Option<String>,
}

#[derive(Debug)]
struct Inner {
    history: History,
    extras: Vec<Extra>,
}

/// Thread-safe recorder shared by the clients.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

impl Recorder {
    /// A recorder whose clock starts now and that holds at most
    /// `operations_max` operations.
    pub fn new(operations_max: usize) -> Recorder {
        Recorder {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                history: History::new(operations_max),
                extras: Vec::new(),
            }),
        }
    }

    /// Nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that `process` invoked `op` on `member`. `None` when the
    /// history is full (the client stops then).
    pub fn invoke(&self, process: u64, member: usize, op: Op) -> Option<OpId> {
        let now = self.now_ns();
        let mut inner = self.lock();
        let id = inner.history.invoke(process, op, now).ok()?;
        inner.extras.push(Extra {
            member,
            error: None,
        });
        Some(id)
    }

    /// Records how operation `id` ended, with the error text if any.
    pub fn complete(&self, id: OpId, outcome: Outcome, error: Option<String>) {
        let now = self.now_ns();
        let mut inner = self.lock();
        if inner.history.complete(id, outcome, now).is_ok()
            && let Some(extra) = inner.extras.get_mut(id)
        {
            extra.error = error;
        }
    }

    /// A copy of the history so far.
    pub fn history(&self) -> History {
        self.lock().history.clone()
    }

    /// Writes `history.jsonl` into `dir`. Errors: the file could not be
    /// written.
    pub fn write_jsonl(&self, path: &Path) -> std::io::Result<()> {
        let inner = self.lock();
        let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
        for (operation, extra) in inner.history.operations().iter().zip(&inner.extras) {
            let line = operation_json(operation, extra);
            writeln!(out, "{line}")?;
        }
        out.flush()
    }
}

fn op_json(op: &Op) -> Json {
    match op {
        Op::Read { key } => json!({"f": "read", "key": key}),
        Op::Write { key, value } => json!({"f": "write", "key": key, "value": value}),
        Op::Cas { key, expected, new } => {
            json!({"f": "cas", "key": key, "expected": expected, "new": new})
        }
        Op::Delete { key } => json!({"f": "delete", "key": key}),
    }
}

fn outcome_json(outcome: &Outcome) -> (&'static str, Json) {
    match outcome {
        Outcome::Ok(Ret::Read(value)) => ("ok", json!({ "value": value })),
        Outcome::Ok(Ret::Write { revision }) => ("ok", json!({ "revision": revision })),
        Outcome::Ok(Ret::Cas { succeeded }) => ("ok", json!({ "succeeded": succeeded })),
        Outcome::Ok(Ret::Delete { deleted }) => ("ok", json!({ "deleted": deleted })),
        Outcome::Fail => ("fail", Json::Null),
        Outcome::Unknown => ("unknown", Json::Null),
    }
}

fn operation_json(operation: &Operation, extra: &Extra) -> Json {
    let (kind, ret) = outcome_json(operation.effective_outcome());
    json!({
        "id": operation.id,
        "process": operation.process,
        "member": extra.member,
        "op": op_json(&operation.op),
        "type": kind,
        "ret": ret,
        "invoke_ns": operation.invoke_ns,
        "complete_ns": operation.complete_ns,
        "error": extra.error,
    })
}
