//! Strict serializability of list-append transactions, checked the way
//! Jepsen's Elle checks its list-append workload (Kingsbury & Alvaro,
//! "Elle: Inferring Isolation Anomalies from Experimental Observations",
//! VLDB 2020).
//!
//! Every key holds a list; a transaction reads some keys and appends unique
//! elements to others. Because each element is appended once and a read
//! returns the whole list, a read reveals the order of every append before
//! it. The checker:
//!
//! 1. checks every committed transaction against itself ([`internal`]): a
//!    read after its own appends must end with them (`internal`);
//! 2. infers each key's version order from its longest read and checks the
//!    reads against it ([`versions`]): `duplicate-elements`,
//!    `incompatible-order`, `duplicate-appends`, `unwritten-element`,
//!    aborted reads (`G1a`), intermediate reads (`G1b`), and `lost-append`
//!    (an acknowledged append that a read begun after it never saw);
//! 3. builds the dependency graph ([`graph`]): write-write (`ww`),
//!    write-read (`wr`) and read-write anti-dependencies (`rw`) from the
//!    version orders, plus real-time order (`rt`: one transaction completed
//!    before the other was invoked) for strict serializability;
//! 4. reports the cycles of that graph ([`cycles`]), named as Elle names
//!    them: `G0` (ww only), `G1c` (ww and wr), `G-single` (exactly one rw),
//!    `G2-item` (more rw), each with `-realtime` when the cycle needs a
//!    real-time edge.
//!
//! Outcomes: an `ok` transaction took effect once; a `fail`ed one certainly
//! did not (an element of it seen in a read is `G1a`); an `unknown` one may
//! have: its appends count as committed when a read saw one of them, and it
//! has no completion time (no real-time edge leaves it).

mod cycles;
mod graph;
mod internal;
mod versions;

#[cfg(test)]
mod tests;

use std::fmt;

/// An element appended to a key's list; the workload makes every element
/// unique per key.
pub type Element = u64;

/// One step of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mop {
    /// Append `element` to the list at `key`.
    Append {
        /// The key.
        key: String,
        /// The element appended.
        element: Element,
    },
    /// Read the list at `key`: `Some` once the transaction committed (an
    /// absent key reads as the empty list), `None` while unknown.
    Read {
        /// The key.
        key: String,
        /// The list read.
        value: Option<Vec<Element>>,
    },
}

impl Mop {
    /// An append of `element` to `key`.
    pub fn append(key: &str, element: Element) -> Mop {
        Mop::Append {
            key: key.into(),
            element,
        }
    }

    /// A read of `key` that returned `value` (`None`: not known).
    pub fn read(key: &str, value: Option<Vec<Element>>) -> Mop {
        Mop::Read {
            key: key.into(),
            value,
        }
    }

    /// The key the step touches.
    pub fn key(&self) -> &str {
        match self {
            Mop::Append { key, .. } | Mop::Read { key, .. } => key,
        }
    }
}

impl fmt::Display for Mop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mop::Append { key, element } => write!(f, "append {key} {element}"),
            Mop::Read { key, value: None } => write!(f, "read {key} ?"),
            Mop::Read {
                key,
                value: Some(list),
            } => write!(f, "read {key} {list:?}"),
        }
    }
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnOutcome {
    /// Committed; its reads carry their values.
    Ok,
    /// Certainly not committed.
    Fail,
    /// May or may not have committed.
    Unknown,
}

/// One transaction of a list-append history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Its number in the history (printed in anomalies).
    pub id: usize,
    /// The client process that ran it.
    pub process: u64,
    /// Its steps, in order.
    pub mops: Vec<Mop>,
    /// When it was invoked, nanoseconds.
    pub invoke_ns: u64,
    /// When it completed (`None` for an unknown outcome).
    pub complete_ns: Option<u64>,
    /// How it ended.
    pub outcome: TxnOutcome,
}

impl fmt::Display for Txn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mops: Vec<String> = self.mops.iter().map(Mop::to_string).collect();
        let end = self
            .complete_ns
            .map_or_else(|| "?".to_owned(), |ns| format!("{:.3}s", ns as f64 / 1e9));
        write!(
            f,
            "T{} p{} {:?} [{}] {:.3}s..{end}",
            self.id,
            self.process,
            self.outcome,
            mops.join(", "),
            self.invoke_ns as f64 / 1e9
        )
    }
}

/// One anomaly the checker found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anomaly {
    /// Elle's name for it (`G0`, `G1c`, `G-single`, `G2-item`, their
    /// `-realtime` forms, `G1a`, `G1b`, `internal`, `incompatible-order`,
    /// `duplicate-elements`, `duplicate-appends`, `unwritten-element`,
    /// `lost-append`).
    pub name: String,
    /// The transactions involved (their ids), in cycle order for a cycle.
    pub txns: Vec<usize>,
    /// A readable account: the cycle's edges or the reads in question.
    pub explanation: String,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.explanation)
    }
}

/// Bound on the anomalies one check reports.
pub const ANOMALIES_MAX: usize = 100;

/// What [`check_append`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppendReport {
    /// Every anomaly (at most [`ANOMALIES_MAX`]); empty: strict
    /// serializable.
    pub anomalies: Vec<Anomaly>,
    /// Committed transactions (ok, and unknown ones seen to commit).
    pub txns_committed: usize,
    /// Keys with at least one append or read.
    pub keys: usize,
    /// Dependency edges (ww, wr, rw, and rt including its chain nodes).
    pub edges: usize,
}

impl AppendReport {
    /// Whether no anomaly was found.
    pub fn is_valid(&self) -> bool {
        self.anomalies.is_empty()
    }

    /// The distinct anomaly names found, sorted.
    pub fn anomaly_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.anomalies.iter().map(|a| a.name.clone()).collect();
        names.sort();
        names.dedup();
        names
    }
}

/// Anomalies found so far, bounded by [`ANOMALIES_MAX`].
#[derive(Debug, Default)]
pub(crate) struct Findings {
    anomalies: Vec<Anomaly>,
}

impl Findings {
    /// Records an anomaly unless the bound is reached.
    pub(crate) fn add(&mut self, name: &str, txns: Vec<usize>, explanation: String) {
        if self.anomalies.len() < ANOMALIES_MAX {
            self.anomalies.push(Anomaly {
                name: name.to_owned(),
                txns,
                explanation,
            });
        }
    }
}

/// Checks a list-append history for strict serializability (see the module
/// documentation). `txns` in any order; each transaction's `id` names it in
/// the report.
pub fn check_append(txns: &[Txn]) -> AppendReport {
    let mut findings = Findings::default();
    let reads = internal::committed_reads(txns, &mut findings);
    let order = versions::infer(txns, &reads, &mut findings);
    let graph = graph::build(txns, &reads, &order);
    cycles::report(txns, &graph, &mut findings);
    AppendReport {
        anomalies: findings.anomalies,
        txns_committed: graph.committed,
        keys: order.keys(),
        edges: graph.edge_count(),
    }
}
