//! Each key's version order, inferred from its longest committed read (a
//! read returns the whole list, so it orders every append it contains),
//! and the anomalies visible on single reads: duplicate elements, reads
//! that are not prefixes of the longest one (`incompatible-order`),
//! elements nobody appended (`unwritten-element`) or a failed transaction
//! appended (`G1a`, aborted read), reads ending in another transaction's
//! non-final append to the key (`G1b`, intermediate read), an element
//! appended twice (`duplicate-appends`), and acknowledged appends that a
//! read begun after their transaction completed never saw (`lost-append`).

use std::collections::{HashMap, HashSet};

use super::internal::Read;
use super::{Element, Findings, Mop, Txn, TxnOutcome};

/// Who appended an element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Writer {
    /// Index of the appending transaction in the checked slice.
    pub txn: usize,
    /// Whether it was that transaction's last append to the key.
    pub last: bool,
}

/// The inferred version order of every key and the writer of every element.
#[derive(Debug, Default)]
pub(super) struct VersionOrder {
    /// Per key, the longest committed read: the order of its appends.
    pub orders: HashMap<String, Vec<Element>>,
    writers: HashMap<(String, Element), Writer>,
    keys: HashSet<String>,
}

impl VersionOrder {
    /// Keys any transaction touched.
    pub fn keys(&self) -> usize {
        self.keys.len()
    }

    /// The writer of `element` at `key`, if any transaction appended it.
    pub fn writer(&self, key: &str, element: Element) -> Option<Writer> {
        self.writers.get(&(key.to_owned(), element)).copied()
    }

    /// Whether `list` is a prefix of `key`'s version order.
    pub fn is_prefix(&self, key: &str, list: &[Element]) -> bool {
        self.orders
            .get(key)
            .is_some_and(|order| order.starts_with(list))
    }
}

/// Infers the version orders from `reads` and reports the single-read
/// anomalies.
pub(super) fn infer(txns: &[Txn], reads: &[Read], findings: &mut Findings) -> VersionOrder {
    let mut order = VersionOrder::default();
    collect_writers(txns, &mut order, findings);
    for read in reads {
        let longest = order.orders.entry(read.key.clone()).or_default();
        if read.full.len() > longest.len() {
            *longest = read.full.clone();
        }
    }
    check_duplicates(txns, reads, findings);
    check_prefixes(txns, reads, &order, findings);
    check_writers(txns, reads, &order, findings);
    check_lost(txns, reads, &order, findings);
    order
}

fn collect_writers(txns: &[Txn], order: &mut VersionOrder, findings: &mut Findings) {
    for (t, txn) in txns.iter().enumerate() {
        let mut last_append: HashMap<&str, usize> = HashMap::new();
        for (m, mop) in txn.mops.iter().enumerate() {
            order.keys.insert(mop.key().to_owned());
            if let Mop::Append { key, .. } = mop {
                last_append.insert(key, m);
            }
        }
        for (m, mop) in txn.mops.iter().enumerate() {
            let Mop::Append { key, element } = mop else {
                continue;
            };
            let writer = Writer {
                txn: t,
                last: last_append.get(key.as_str()) == Some(&m),
            };
            if let Some(first) = order.writers.insert((key.clone(), *element), writer) {
                let ids = vec![txns[first.txn].id, txn.id];
                let text = format!(
                    "{element} appended to {key} twice, by T{} and T{}",
                    ids[0], ids[1]
                );
                findings.add("duplicate-appends", ids, text);
            }
        }
    }
}

fn check_duplicates(txns: &[Txn], reads: &[Read], findings: &mut Findings) {
    for read in reads {
        let mut seen = HashSet::new();
        if let Some(element) = read.full.iter().find(|e| !seen.insert(**e)) {
            let reader = &txns[read.txn];
            let text = format!(
                "T{} read {} {:?}: {element} twice",
                reader.id, read.key, read.full
            );
            findings.add("duplicate-elements", vec![reader.id], text);
        }
    }
}

fn check_prefixes(txns: &[Txn], reads: &[Read], order: &VersionOrder, findings: &mut Findings) {
    let mut reported = HashSet::new();
    for read in reads {
        if order.is_prefix(&read.key, &read.full) || !reported.insert(read.key.as_str()) {
            continue;
        }
        let longest = order.orders.get(&read.key).cloned().unwrap_or_default();
        let text = format!(
            "T{} read {} {:?}, not a prefix of the longest read {longest:?}",
            txns[read.txn].id, read.key, read.full
        );
        findings.add("incompatible-order", vec![txns[read.txn].id], text);
    }
}

/// Aborted, unwritten and intermediate reads (reported once per element).
fn check_writers(txns: &[Txn], reads: &[Read], order: &VersionOrder, findings: &mut Findings) {
    let mut reported: HashSet<(&str, Element)> = HashSet::new();
    for read in reads {
        let reader = &txns[read.txn];
        for &element in &read.full {
            let writer = order.writer(&read.key, element);
            let name = match writer {
                None => "unwritten-element",
                Some(w) if txns[w.txn].outcome == TxnOutcome::Fail => "G1a",
                Some(_) => continue,
            };
            if reported.insert((read.key.as_str(), element)) {
                let by =
                    writer.map_or_else(String::new, |w| format!(" by failed T{}", txns[w.txn].id));
                let text = format!(
                    "T{} read {} {:?}: {element} was appended{by}",
                    reader.id, read.key, read.full
                );
                let mut ids = vec![reader.id];
                ids.extend(writer.map(|w| txns[w.txn].id));
                let text = match writer {
                    None => text.replace("was appended", "was never appended"),
                    Some(_) => text,
                };
                findings.add(name, ids, text);
            }
        }
        let Some(&last) = read.external.last() else {
            continue;
        };
        if let Some(w) = order.writer(&read.key, last)
            && !w.last
            && w.txn != read.txn
        {
            let text = format!(
                "T{} read {} {:?}, ending in {last}, which T{} followed with another append to {}",
                reader.id, read.key, read.full, txns[w.txn].id, read.key
            );
            findings.add("G1b", vec![txns[w.txn].id, reader.id], text);
        }
    }
}

/// An `ok` append missing from the version order although a committed read
/// of its key began after the appending transaction completed.
fn check_lost(txns: &[Txn], reads: &[Read], order: &VersionOrder, findings: &mut Findings) {
    let mut latest_read: HashMap<&str, usize> = HashMap::new();
    for read in reads {
        let latest = latest_read.entry(&read.key).or_insert(read.txn);
        if txns[read.txn].invoke_ns > txns[*latest].invoke_ns {
            *latest = read.txn;
        }
    }
    for txn in txns.iter().filter(|t| t.outcome == TxnOutcome::Ok) {
        let Some(complete_ns) = txn.complete_ns else {
            continue;
        };
        for mop in &txn.mops {
            let Mop::Append { key, element } = mop else {
                continue;
            };
            let Some(&r) = latest_read.get(key.as_str()) else {
                continue;
            };
            let seen = order.orders.get(key).is_some_and(|o| o.contains(element));
            if !seen && txns[r].invoke_ns > complete_ns {
                let text = format!(
                    "T{} appended {element} to {key} and completed before T{} began, which read {key} without it",
                    txn.id, txns[r].id
                );
                findings.add("lost-append", vec![txn.id, txns[r].id], text);
            }
        }
    }
}
