//! Cycles of the dependency graph, named as Elle names them. The graph's
//! strongly connected components (Tarjan) hold every cycle; each component
//! with a cycle is searched for the most specific one, in this order:
//! `G0` (ww edges only), `G1c` (ww and wr), `G-single` (exactly one rw,
//! the rest ww or wr), `G2-item` (ww, wr and rw), then the same four with
//! real-time edges allowed (`G0-realtime`, ...), which only strict
//! serializability forbids. One anomaly is reported per component.

use std::collections::VecDeque;

use super::graph::{Edge, Graph};
use super::{Findings, Txn};

/// One edge of a cycle: from `from` along `edge` (on `key`).
#[derive(Debug, Clone)]
struct Step {
    from: usize,
    edge: Edge,
    key: Option<String>,
}

const WW: u8 = 1;
const WR: u8 = 2;
const RW: u8 = 4;
const RT: u8 = 8;

/// Bound on the rw edges tried per component when looking for `G-single`.
const SINGLE_ATTEMPTS_MAX: usize = 1_000;

/// The searches, most specific first: name, allowed edges, whether the
/// cycle has exactly one rw edge (the others allowed by the mask).
const SEARCHES: [(&str, u8, bool); 8] = [
    ("G0", WW, false),
    ("G1c", WW | WR, false),
    ("G-single", WW | WR, true),
    ("G2-item", WW | WR | RW, false),
    ("G0-realtime", WW | RT, false),
    ("G1c-realtime", WW | WR | RT, false),
    ("G-single-realtime", WW | WR | RT, true),
    ("G2-item-realtime", WW | WR | RW | RT, false),
];

/// Reports one named cycle per strongly connected component of `graph`.
pub(super) fn report(txns: &[Txn], graph: &Graph, findings: &mut Findings) {
    let everything = vec![true; graph.adjacency.len()];
    for component in components(graph, WW | WR | RW | RT, &everything) {
        let member = membership(graph, &component);
        for (name, mask, single) in SEARCHES {
            let cycle = match single {
                true => single_rw_cycle(graph, &member, &component, mask),
                false => any_cycle(graph, &member, mask),
            };
            if let Some(cycle) = cycle {
                let (ids, text) = explain(txns, graph, &cycle);
                findings.add(name, ids, text);
                break;
            }
        }
    }
}

fn membership(graph: &Graph, nodes: &[usize]) -> Vec<bool> {
    let mut member = vec![false; graph.adjacency.len()];
    for &n in nodes {
        member[n] = true;
    }
    member
}

/// Tarjan's strongly connected components of the subgraph of `member`
/// nodes and `mask` edges, iteratively; only components with a cycle (two
/// nodes or more: the graph has no self-loops).
fn components(graph: &Graph, mask: u8, member: &[bool]) -> Vec<Vec<usize>> {
    const UNSEEN: usize = usize::MAX;
    let n = graph.adjacency.len();
    let (mut index, mut low, mut on_stack) = (vec![UNSEEN; n], vec![0; n], vec![false; n]);
    let (mut stack, mut found, mut next) = (Vec::new(), Vec::new(), 0);
    for root in (0..n).filter(|&r| member[r]) {
        if index[root] != UNSEEN {
            continue;
        }
        let mut calls = vec![(root, 0usize)];
        (index[root], low[root], on_stack[root]) = (next, next, true);
        next += 1;
        stack.push(root);
        while let Some(&(v, i)) = calls.last() {
            if let Some((w, edge, _)) = graph.adjacency[v].get(i) {
                if let Some(top) = calls.last_mut() {
                    top.1 += 1;
                }
                let w = *w;
                if edge.bit() & mask == 0 || !member[w] {
                    continue;
                }
                if index[w] == UNSEEN {
                    (index[w], low[w], on_stack[w]) = (next, next, true);
                    next += 1;
                    stack.push(w);
                    calls.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(u, _)) = calls.last() {
                low[u] = low[u].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    found.push(component);
                }
            }
        }
    }
    found
}

/// A shortest path from `from` to `to` over `member` nodes and `mask`
/// edges (breadth first), as steps.
fn path(graph: &Graph, from: usize, to: usize, mask: u8, member: &[bool]) -> Option<Vec<Step>> {
    let mut previous: Vec<Option<(usize, usize)>> = vec![None; graph.adjacency.len()];
    let mut queue = VecDeque::from([from]);
    let mut reached = false;
    while let Some(v) = queue.pop_front() {
        if v == to {
            reached = true;
            break;
        }
        for (i, (w, edge, _)) in graph.adjacency[v].iter().enumerate() {
            if edge.bit() & mask != 0 && member[*w] && previous[*w].is_none() && *w != from {
                previous[*w] = Some((v, i));
                queue.push_back(*w);
            }
        }
    }
    if !reached {
        return None;
    }
    let mut steps = Vec::new();
    let mut at = to;
    while let Some((v, i)) = previous[at] {
        let (_, edge, key) = &graph.adjacency[v][i];
        steps.push(Step {
            from: v,
            edge: *edge,
            key: key.clone(),
        });
        at = v;
    }
    steps.reverse();
    Some(steps)
}

/// Any cycle over `member` nodes and `mask` edges.
fn any_cycle(graph: &Graph, member: &[bool], mask: u8) -> Option<Vec<Step>> {
    let component = components(graph, mask, member).into_iter().next()?;
    let inner = membership(graph, &component);
    let a = component[0];
    for (b, edge, key) in &graph.adjacency[a] {
        if edge.bit() & mask == 0 || !inner[*b] {
            continue;
        }
        if let Some(back) = path(graph, *b, a, mask, &inner) {
            let mut cycle = vec![Step {
                from: a,
                edge: *edge,
                key: key.clone(),
            }];
            cycle.extend(back);
            return Some(cycle);
        }
    }
    None
}

/// A cycle with exactly one rw edge, the rest from `mask` (without rw).
fn single_rw_cycle(graph: &Graph, member: &[bool], nodes: &[usize], mask: u8) -> Option<Vec<Step>> {
    let mut attempts = 0;
    for &a in nodes {
        for (b, edge, key) in &graph.adjacency[a] {
            if *edge != Edge::Rw || !member[*b] {
                continue;
            }
            attempts += 1;
            if attempts > SINGLE_ATTEMPTS_MAX {
                return None;
            }
            if let Some(back) = path(graph, *b, a, mask & !RW, member) {
                let mut cycle = vec![Step {
                    from: a,
                    edge: *edge,
                    key: key.clone(),
                }];
                cycle.extend(back);
                return Some(cycle);
            }
        }
    }
    None
}

/// The cycle's transaction ids (in order) and a readable account:
/// `T1 -ww(x)-> T2 -rt-> T1` (real-time chain nodes folded into one `rt`),
/// then each transaction.
fn explain(txns: &[Txn], graph: &Graph, cycle: &[Step]) -> (Vec<usize>, String) {
    let start = cycle.iter().position(|s| s.from < graph.txns).unwrap_or(0);
    let rotated: Vec<&Step> = cycle[start..].iter().chain(&cycle[..start]).collect();
    let mut ids = Vec::new();
    let mut text = String::new();
    for step in &rotated {
        if step.from >= graph.txns {
            continue; // inside a real-time chain: its rt was printed
        }
        let id = txns[step.from].id;
        ids.push(id);
        let key = step
            .key
            .as_ref()
            .map_or_else(String::new, |k| format!("({k})"));
        text += &format!("T{id} -{}{key}-> ", step.edge.name());
    }
    if let Some(first) = ids.first() {
        text += &format!("T{first}");
    }
    for step in rotated.iter().filter(|s| s.from < graph.txns) {
        text += &format!("\n  {}", txns[step.from]);
    }
    (ids, text)
}
