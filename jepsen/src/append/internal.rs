//! Internal consistency of committed transactions, and the reads the rest
//! of the checker uses. A read after the transaction's own appends to the
//! same key must end with exactly those appends, on top of what the
//! transaction saw from others (its external read); two reads of a key
//! must agree. A violation is Elle's `internal` anomaly.

use std::collections::HashMap;

use super::{Element, Findings, Mop, Txn, TxnOutcome};

/// One committed read of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Read {
    /// Index of the reading transaction in the checked slice.
    pub txn: usize,
    /// The key.
    pub key: String,
    /// What the read returned (it may end with the reader's own appends).
    pub full: Vec<Element>,
    /// The part written by others: `full` without the reader's own
    /// trailing appends.
    pub external: Vec<Element>,
}

/// What a transaction knows of one key while it runs.
#[derive(Default)]
struct KeyState {
    /// The external value, once a read revealed it.
    external: Option<Vec<Element>>,
    /// The transaction's own appends so far.
    own: Vec<Element>,
}

/// Every consistent read of every `ok` transaction; inconsistent ones are
/// reported as `internal` and left out.
pub(super) fn committed_reads(txns: &[Txn], findings: &mut Findings) -> Vec<Read> {
    let mut reads = Vec::new();
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome == TxnOutcome::Ok {
            txn_reads(t, txn, &mut reads, findings);
        }
    }
    reads
}

fn txn_reads(t: usize, txn: &Txn, reads: &mut Vec<Read>, findings: &mut Findings) {
    let mut keys: HashMap<&str, KeyState> = HashMap::new();
    for mop in &txn.mops {
        match mop {
            Mop::Append { key, element } => keys.entry(key).or_default().own.push(*element),
            Mop::Read { value: None, .. } => {}
            Mop::Read {
                key,
                value: Some(full),
            } => {
                let state = keys.entry(key).or_default();
                match external_of(state, full) {
                    Some(external) => {
                        state.external = Some(external.clone());
                        reads.push(Read {
                            txn: t,
                            key: key.clone(),
                            full: full.clone(),
                            external,
                        });
                    }
                    None => findings.add(
                        "internal",
                        vec![txn.id],
                        format!("T{} read {key} {full:?}, which its own earlier steps cannot explain: {txn}", txn.id),
                    ),
                }
            }
        }
    }
}

/// The external part of `full`, if `full` agrees with what the transaction
/// already knows of the key.
fn external_of(state: &KeyState, full: &[Element]) -> Option<Vec<Element>> {
    let own = state.own.as_slice();
    match &state.external {
        Some(external) => {
            let expected: Vec<Element> = external.iter().chain(own).copied().collect();
            (expected == full).then(|| external.clone())
        }
        None => full.strip_suffix(own).map(<[Element]>::to_vec),
    }
}
