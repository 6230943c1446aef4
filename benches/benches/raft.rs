//! Raft throughput: committed entries per second for a 3-node in-memory
//! cluster driven in one thread (no network, no disk), 64-byte entries
//! proposed in batches of 64. Each iteration proposes one batch at the
//! leader and drives Ready/advance on every node until all three have
//! applied it. Storage is compacted every 64 Ki entries.
//!
//! Run: `cargo bench -p keel-bench --bench raft`.

#![allow(missing_docs, clippy::unwrap_used)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keel_kernel::raft::{Config, MemoryStorage, Message, RawNode};
use std::hint::black_box;

const BATCH: usize = 64;
const ENTRY_BYTES: usize = 64;
const COMPACT_EVERY: u64 = 64 * 1024;

struct Cluster {
    nodes: Vec<RawNode<MemoryStorage>>,
    applied: Vec<u64>,
    inbox: Vec<Message>,
}

impl Cluster {
    fn new() -> Cluster {
        let nodes = (1..=3u64)
            .map(|id| {
                let mut cfg = Config::new(id);
                cfg.max_size_per_msg_bytes = 1024 * 1024;
                cfg.max_inflight_msgs = 256;
                RawNode::new(&cfg, MemoryStorage::new_with_voters(&[1, 2, 3])).unwrap()
            })
            .collect();
        let mut c = Cluster {
            nodes,
            applied: vec![0; 3],
            inbox: Vec::new(),
        };
        c.nodes[0].campaign();
        c.run_until(|c| c.nodes[0].is_leader() && c.applied.iter().all(|a| *a >= 1));
        c
    }

    /// Handles Ready on every node and delivers messages until `done`.
    fn run_until(&mut self, done: impl Fn(&Cluster) -> bool) {
        for _ in 0..10_000 {
            if done(self) {
                return;
            }
            for i in 0..self.nodes.len() {
                self.handle_ready(i);
            }
            for m in std::mem::take(&mut self.inbox) {
                let to = (m.to - 1) as usize;
                self.nodes[to].step(m).unwrap();
            }
        }
        panic!("cluster made no progress");
    }

    fn handle_ready(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if !node.has_ready() {
            return;
        }
        let mut rd = node.ready();
        self.inbox.append(&mut rd.messages);
        let store = node.storage_mut();
        store.append(&rd.entries).unwrap();
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        self.inbox.append(&mut rd.persisted_messages);
        if let Some(last) = rd.committed_entries.last() {
            black_box(&rd.committed_entries);
            self.applied[i] = last.index;
        }
        node.advance();
        let applied = self.applied[i];
        let store = node.storage_mut();
        if applied >= store_snapshot_index(store) + COMPACT_EVERY {
            let cs = node.raft().conf_state();
            let store = node.storage_mut();
            store.create_snapshot(applied, cs, Bytes::new()).unwrap();
            store.compact(applied).unwrap();
        }
    }

    fn propose_batch(&mut self, payload: &Bytes) {
        let batch = std::iter::repeat_n(payload.clone(), BATCH);
        self.nodes[0].propose_batch(batch).unwrap();
        let target = self.nodes[0].raft().log.last_index();
        self.run_until(|c| c.applied.iter().all(|a| *a >= target));
    }
}

fn store_snapshot_index(store: &MemoryStorage) -> u64 {
    use keel_kernel::raft::Storage;
    store.first_index().unwrap() - 1
}

fn bench_raft(c: &mut Criterion) {
    let mut group = c.benchmark_group("raft");
    group.throughput(Throughput::Elements(BATCH as u64));
    let payload = Bytes::from(vec![0xabu8; ENTRY_BYTES]);
    let mut cluster = Cluster::new();
    group.bench_function("3_nodes_commit_batch_64x64B", |b| {
        b.iter(|| cluster.propose_batch(&payload));
    });
    group.finish();
}

criterion_group!(benches, bench_raft);
criterion_main!(benches);
