//! Robustness: a node fed arbitrary (mostly malformed or nonsensical)
//! peer messages must never panic, in debug builds included (kernel debug
//! assertions on). Errors are fine; panics are bugs. Messages are
//! generated near the node's real term and log so they reach deep paths.
//!
//! `KEEL_RAFT_SEEDS=N` raises the number of seeds (default 200).

#![allow(missing_docs, clippy::unwrap_used)]

use bytes::Bytes;
use keel_kernel::raft::*;

/// A value near `around` most of the time, sometimes extreme.
fn near(rng: &mut SplitMix64, around: u64) -> u64 {
    match rng.range(0, 10) {
        0 => u64::MAX - rng.range(0, 2),
        1 => MAX_TERM_OR_INDEX + rng.range(0, 2) - 1,
        2 => 0,
        _ => around.saturating_sub(2).saturating_add(rng.range(0, 5)),
    }
}

fn arbitrary_message(rng: &mut SplitMix64, node: &RawNode<MemoryStorage>) -> Message {
    let raft = node.raft();
    let (term, last) = (raft.term, raft.log.last_index());
    let mut m = Message::new(
        MessageType::ALL[rng.range(0, MessageType::ALL.len() as u64) as usize],
        rng.range(0, 6),
        raft.id,
        near(rng, term),
    );
    m.index = near(rng, last);
    m.log_term = near(rng, term);
    m.commit = near(rng, raft.log.committed());
    m.reject = rng.range(0, 2) == 0;
    m.reject_hint = near(rng, last);
    if rng.range(0, 3) == 0 {
        m.context = Bytes::from(vec![rng.range(0, 3) as u8]);
    }
    let contiguous = rng.range(0, 2) == 0;
    for i in 0..rng.range(0, 4) {
        let index = if contiguous {
            m.index.wrapping_add(i + 1)
        } else {
            near(rng, last)
        };
        let cc = rng.range(0, 4) == 0;
        let data = if cc {
            let cc = ConfChange {
                changes: vec![ConfChangeSingle {
                    change_type: ConfChangeType::RemoveNode,
                    node_id: rng.range(0, 5),
                }],
                context: Bytes::new(),
            };
            cc.encode()
        } else {
            Bytes::from_static(b"x")
        };
        let entry_type = if cc {
            EntryType::ConfChange
        } else {
            EntryType::Normal
        };
        m.entries.push(Entry {
            term: near(rng, m.term),
            index,
            entry_type,
            data,
        });
    }
    if m.msg_type == MessageType::Snapshot && rng.range(0, 4) != 0 {
        let voters = vec![1, 2, 3];
        m.snapshot = Some(Snapshot {
            metadata: SnapshotMetadata {
                index: near(rng, last),
                term: near(rng, term),
                conf_state: ConfState {
                    voters,
                    ..ConfState::default()
                },
            },
            data: Bytes::new(),
        });
    }
    m
}

/// Persists and applies a Ready the way a server would.
fn handle_ready(node: &mut RawNode<MemoryStorage>) {
    for _ in 0..16 {
        if !node.has_ready() {
            return;
        }
        let rd = node.ready();
        let store = node.storage_mut();
        if let Some(snap) = rd.snapshot.clone() {
            let _ = store.apply_snapshot(snap);
        }
        let _ = store.append(&rd.entries);
        if let Some(hs) = rd.hard_state {
            store.set_hard_state(hs);
        }
        for e in &rd.committed_entries {
            if e.entry_type == EntryType::ConfChange
                && let Ok(cc) = ConfChange::decode(&e.data)
                && let Ok(cs) = node.apply_conf_change(&cc)
            {
                node.storage_mut().set_conf_state(cs);
            }
        }
        node.advance();
    }
}

fn run_seed(seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let mut nodes: Vec<RawNode<MemoryStorage>> = (1..=3)
        .map(|id| {
            RawNode::new(&Config::new(id), MemoryStorage::new_with_voters(&[1, 2, 3])).unwrap()
        })
        .collect();
    // Make node 1 leader of a small log, delivering messages faithfully.
    nodes[0].campaign();
    for _ in 0..20 {
        let mut msgs = Vec::new();
        for n in nodes.iter_mut() {
            if n.has_ready() {
                let rd = n.ready();
                n.storage_mut().append(&rd.entries).unwrap();
                if let Some(hs) = rd.hard_state {
                    n.storage_mut().set_hard_state(hs);
                }
                msgs.extend(rd.messages);
                msgs.extend(rd.persisted_messages);
                n.advance();
            }
        }
        for m in msgs {
            let _ = nodes[(m.to - 1) as usize].step(m);
        }
        if nodes[0].is_leader() {
            let _ = nodes[0].propose(Bytes::from_static(b"v"));
        }
    }
    for _ in 0..300 {
        let target = rng.range(0, 3) as usize;
        let m = arbitrary_message(&mut rng, &nodes[target]);
        let _ = nodes[target].step(m);
        if rng.range(0, 4) == 0 {
            nodes[target].tick();
        }
        handle_ready(&mut nodes[target]);
    }
}

#[test]
fn arbitrary_peer_messages_never_panic() {
    let seeds: u64 = std::env::var("KEEL_RAFT_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        let result = std::panic::catch_unwind(|| run_seed(seed));
        assert!(
            result.is_ok(),
            "seed {seed} panicked; replay with KEEL_RAFT_SEEDS={} cargo test -p keel-kernel --test raft_step_arbitrary",
            seed + 1
        );
    }
}
