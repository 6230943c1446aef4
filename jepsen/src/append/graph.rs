//! The dependency graph of the committed transactions (Adya's, as Elle
//! infers it from list-append histories):
//!
//! - `ww`: T1's append to a key is followed in its version order by T2's;
//! - `wr`: T2 read a key whose last element (of others) T1 appended;
//! - `rw`: T1 read a key, and T2 appended the next element of its version
//!   order after that read (an anti-dependency);
//! - `rt`: T1 completed before T2 was invoked (real-time order, strict
//!   serializability).
//!
//! Real-time order has up to n² pairs; it is kept linear by chain nodes:
//! every `ok` transaction points to its own chain node, chain nodes are
//! linked in completion order, and each transaction is pointed to by the
//! chain node of the last completion before its invocation. T1 reaches T2
//! through the chain exactly when T1 completed before T2 was invoked.

use super::internal::Read;
use super::versions::VersionOrder;
use super::{Txn, TxnOutcome};

/// The kind of a dependency edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Edge {
    /// Write-write.
    Ww,
    /// Write-read.
    Wr,
    /// Read-write (anti-dependency).
    Rw,
    /// Real-time order (possibly through chain nodes).
    Rt,
}

impl Edge {
    /// The edge's bit in an allowed-edges mask.
    pub fn bit(self) -> u8 {
        match self {
            Edge::Ww => 1,
            Edge::Wr => 2,
            Edge::Rw => 4,
            Edge::Rt => 8,
        }
    }

    /// Its name in explanations.
    pub fn name(self) -> &'static str {
        match self {
            Edge::Ww => "ww",
            Edge::Wr => "wr",
            Edge::Rw => "rw",
            Edge::Rt => "rt",
        }
    }
}

/// The graph: nodes `0..txns` are the checked transactions (by slice
/// index), nodes from `txns` on are real-time chain nodes.
#[derive(Debug, Default)]
pub(super) struct Graph {
    /// Number of transaction nodes.
    pub txns: usize,
    /// Committed transactions (ok, or unknown with an element seen).
    pub committed: usize,
    /// Outgoing edges per node, with the key for ww/wr/rw edges.
    pub adjacency: Vec<Vec<(usize, Edge, Option<String>)>>,
}

impl Graph {
    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.adjacency.iter().map(Vec::len).sum()
    }

    fn add(&mut self, from: usize, to: usize, edge: Edge, key: Option<&str>) {
        if from != to {
            self.adjacency[from].push((to, edge, key.map(str::to_owned)));
        }
    }
}

/// Builds the graph of `txns` from the committed `reads` and the inferred
/// version `order`.
pub(super) fn build(txns: &[Txn], reads: &[Read], order: &VersionOrder) -> Graph {
    let mut graph = Graph {
        txns: txns.len(),
        committed: 0,
        adjacency: vec![Vec::new(); txns.len()],
    };
    let mut committed: Vec<bool> = txns.iter().map(|t| t.outcome == TxnOutcome::Ok).collect();
    write_write(txns, order, &mut graph, &mut committed);
    read_edges(txns, reads, order, &mut graph);
    real_time(txns, &committed, &mut graph);
    graph.committed = committed.iter().filter(|c| **c).count();
    graph
}

fn write_write(txns: &[Txn], order: &VersionOrder, graph: &mut Graph, committed: &mut [bool]) {
    for (key, list) in &order.orders {
        let mut previous: Option<usize> = None;
        for &element in list {
            let Some(writer) = order.writer(key, element) else {
                continue;
            };
            if txns[writer.txn].outcome == TxnOutcome::Fail {
                continue; // G1a, reported already
            }
            committed[writer.txn] = true;
            if let Some(p) = previous {
                graph.add(p, writer.txn, Edge::Ww, Some(key));
            }
            previous = Some(writer.txn);
        }
    }
}

fn read_edges(txns: &[Txn], reads: &[Read], order: &VersionOrder, graph: &mut Graph) {
    for read in reads {
        if !order.is_prefix(&read.key, &read.full) {
            continue; // incompatible-order, reported already
        }
        let committed = |e| {
            order
                .writer(&read.key, e)
                .filter(|w| txns[w.txn].outcome != TxnOutcome::Fail)
        };
        let last = read.external.last().and_then(|&e| committed(e));
        if last.is_some_and(|w| !w.last && w.txn != read.txn) {
            continue; // G1b, reported already; it has no version of its own
        }
        if let Some(writer) = last {
            graph.add(writer.txn, read.txn, Edge::Wr, Some(&read.key));
        }
        let next = order
            .orders
            .get(&read.key)
            .and_then(|list| list.get(read.external.len()));
        if let Some(writer) = next.and_then(|&e| committed(e)) {
            graph.add(read.txn, writer.txn, Edge::Rw, Some(&read.key));
        }
    }
}

fn real_time(txns: &[Txn], committed: &[bool], graph: &mut Graph) {
    let mut completions: Vec<(u64, usize)> = txns
        .iter()
        .enumerate()
        .filter(|(t, txn)| committed[*t] && txn.outcome == TxnOutcome::Ok)
        .filter_map(|(t, txn)| txn.complete_ns.map(|c| (c, t)))
        .collect();
    completions.sort_unstable();
    let base = graph.txns;
    graph.adjacency.resize(base + completions.len(), Vec::new());
    for (j, &(_, t)) in completions.iter().enumerate() {
        graph.add(t, base + j, Edge::Rt, None);
        if j + 1 < completions.len() {
            graph.add(base + j, base + j + 1, Edge::Rt, None);
        }
    }
    for (t, txn) in txns.iter().enumerate() {
        if !committed[t] {
            continue;
        }
        let before = completions.partition_point(|&(c, _)| c < txn.invoke_ns);
        if before > 0 {
            graph.add(base + before - 1, t, Edge::Rt, None);
        }
    }
}
