//! Judging a run: keel-jepsen's checkers on the recorded history, turned
//! into `valid` / `invalid` / `unknown` and a `verdict.json`.

use std::path::Path;

use keel_jepsen::append::{Txn, TxnOutcome};
use keel_jepsen::{History, Verdict, check_linearizable};

use crate::workload::lock::{Hold, check_holds};
use crate::workload::watch::WatchOutput;
use serde::Serialize;
use serde_json::{Value as Json, json};

/// The one-word answer of a run or workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Validity {
    /// The checker found the history correct.
    Valid,
    /// The checker found a violation.
    Invalid,
    /// No answer: the search hit its bound, nothing was checked, or the
    /// run failed.
    Unknown,
}

impl Validity {
    /// `valid`, `invalid` or `unknown`.
    pub fn word(self) -> &'static str {
        match self {
            Validity::Valid => "valid",
            Validity::Invalid => "invalid",
            Validity::Unknown => "unknown",
        }
    }

    /// The process exit code: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }
}

/// A workload's verdict and the details that go into `verdict.json`.
#[derive(Debug, Clone)]
pub struct WorkloadVerdict {
    /// The answer.
    pub validity: Validity,
    /// One line for the console.
    pub summary: String,
    /// The checker's details.
    pub details: Json,
}

/// Checks a register history for linearizability, exploring at most
/// `states_max` states per key. A history with no successful operation is
/// `unknown` (nothing was tested).
pub fn check_register(history: &History, states_max: u64) -> WorkloadVerdict {
    let (ok, fail, unknown) = history.outcome_counts();
    let counts = json!({"ok": ok, "fail": fail, "unknown": unknown});
    if ok == 0 {
        return WorkloadVerdict {
            validity: Validity::Unknown,
            summary: "no operation succeeded: nothing was tested".into(),
            details: json!({"operations": counts}),
        };
    }
    match check_linearizable(history, states_max) {
        Verdict::Linearizable {
            keys,
            operations,
            states,
        } => WorkloadVerdict {
            validity: Validity::Valid,
            summary: format!(
                "linearizable: {keys} keys, {ok} ok / {fail} fail / {unknown} unknown operations"
            ),
            details: json!({"operations": counts, "keys": keys, "searched_operations": operations, "states": states}),
        },
        Verdict::NotLinearizable(failure) => WorkloadVerdict {
            validity: Validity::Invalid,
            summary: format!("not linearizable: key {:?}", failure.key),
            details: json!({"operations": counts, "key": failure.key, "explanation": failure.to_string()}),
        },
        Verdict::Unknown { key, states } => WorkloadVerdict {
            validity: Validity::Unknown,
            summary: format!("search bound hit on key {key:?} after {states} states"),
            details: json!({"operations": counts, "key": key, "states": states}),
        },
    }
}

/// Checks an append history for strict serializability (keel-jepsen's
/// Elle-style checker). No committed transaction: `unknown`.
pub fn check_append(txns: &[Txn]) -> WorkloadVerdict {
    let count = |o| txns.iter().filter(|t| t.outcome == o).count();
    let (ok, fail, unknown) = (
        count(TxnOutcome::Ok),
        count(TxnOutcome::Fail),
        count(TxnOutcome::Unknown),
    );
    let counts = json!({"ok": ok, "fail": fail, "unknown": unknown});
    if ok == 0 {
        return WorkloadVerdict {
            validity: Validity::Unknown,
            summary: "no transaction committed: nothing was tested".into(),
            details: json!({"transactions": counts}),
        };
    }
    let report = keel_jepsen::append::check_append(txns);
    let details = json!({
        "transactions": counts,
        "committed": report.txns_committed,
        "keys": report.keys,
        "edges": report.edges,
        "anomaly_types": report.anomaly_names(),
        "anomalies": report.anomalies.iter().map(|a| json!({"name": a.name, "txns": a.txns, "explanation": a.explanation})).collect::<Vec<_>>(),
    });
    if report.is_valid() {
        return WorkloadVerdict {
            validity: Validity::Valid,
            summary: format!(
                "strict serializable: {} committed transactions on {} keys ({ok} ok / {fail} fail / {unknown} unknown), {} dependency edges, no cycle",
                report.txns_committed, report.keys, report.edges
            ),
            details,
        };
    }
    let shown: Vec<String> = report
        .anomalies
        .iter()
        .take(VIOLATIONS_SHOWN_MAX)
        .map(|a| a.to_string())
        .collect();
    let mut details = details;
    details["explanation"] = Json::String(shown.join("\n"));
    WorkloadVerdict {
        validity: Validity::Invalid,
        summary: format!(
            "{} anomalies: {}",
            report.anomalies.len(),
            report.anomaly_names().join(", ")
        ),
        details,
    }
}

/// Checks the lock workload's holds: `invalid` when two clients held the
/// lock at the same time (with how often), `unknown` without any hold.
pub fn check_lock(holds: &[Hold]) -> WorkloadVerdict {
    let report = check_holds(holds);
    let details = serde_json::to_value(&report).unwrap_or(Json::Null);
    let (validity, summary) = match (report.holds, report.overlapping_pairs) {
        (0, _) => (Validity::Unknown, "no client ever held the lock".to_owned()),
        (n, 0) => (
            Validity::Valid,
            format!("mutual exclusion held over {n} holds"),
        ),
        (n, pairs) => (
            Validity::Invalid,
            format!(
                "mutual exclusion failed: {} of {n} holds ({:.1} %) overlapped another ({pairs} pairs)",
                report.holds_overlapping,
                report.overlap_rate * 100.0
            ),
        ),
    };
    WorkloadVerdict {
        validity,
        summary,
        details,
    }
}

/// Violations listed in `verdict.json` at most.
const VIOLATIONS_SHOWN_MAX: usize = 20;

/// Checks the watch workload with keel-jepsen's watch checks: `invalid`
/// with the first violations, `unknown` when no write was acknowledged or
/// no watcher received anything.
pub fn check_watch(output: &WatchOutput) -> WorkloadVerdict {
    let events: usize = output.logs.iter().map(|l| l.events.len()).sum();
    let counts = json!({
        "watchers": output.logs.len(),
        "events": events,
        "committed_writes": output.committed.len(),
    });
    if output.committed.is_empty() || events == 0 {
        return WorkloadVerdict {
            validity: Validity::Unknown,
            summary: "no acknowledged write or no event received: nothing was tested".into(),
            details: counts,
        };
    }
    let violations = keel_jepsen::check_watches(&output.logs, &output.committed);
    if violations.is_empty() {
        return WorkloadVerdict {
            validity: Validity::Valid,
            summary: format!(
                "{} watchers, {events} events, {} acknowledged writes: ordered, unique, no gaps, agreed",
                output.logs.len(),
                output.committed.len()
            ),
            details: counts,
        };
    }
    let shown: Vec<String> = violations
        .iter()
        .take(VIOLATIONS_SHOWN_MAX)
        .map(|v| v.to_string())
        .collect();
    WorkloadVerdict {
        validity: Validity::Invalid,
        summary: format!("{} watch violations, first: {}", violations.len(), shown[0]),
        details: json!({"counts": counts, "violations": violations.len(), "explanation": shown.join("\n")}),
    }
}

/// Writes `verdict` (plus `extra` fields) as pretty JSON to `path`.
/// Errors: the file could not be written.
pub fn write_verdict(
    path: &Path,
    workload: &str,
    verdict: &WorkloadVerdict,
    extra: Json,
) -> std::io::Result<()> {
    let document = json!({
        "workload": workload,
        "verdict": verdict.validity,
        "summary": verdict.summary,
        "details": verdict.details,
        "run": extra,
    });
    let text = serde_json::to_string_pretty(&document).map_err(std::io::Error::other)?;
    std::fs::write(path, text + "\n")
}
