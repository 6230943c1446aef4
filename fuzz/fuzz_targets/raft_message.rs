//! Arbitrary bytes as Raft peer messages: `Message::decode` must return a
//! message or an error, never panic; every decoded message is stepped into a
//! follower and a campaigning node of a 3-voter configuration, whose Ready/advance loop
//! must stay within its debug assertions (this target builds with them on).
//!
//! Input: a sequence of `u16` little-endian lengths, each followed by that
//! many bytes of one encoded message (truncated input ends the sequence).
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run raft_message -- -max_total_time=600`

#![no_main]

use keel_kernel::raft::{Config, MemoryStorage, Message, RawNode};
use libfuzzer_sys::fuzz_target;

/// Messages taken from one input at most, so a run stays short.
const MESSAGES_MAX: usize = 64;

fn node(id: u64) -> RawNode<MemoryStorage> {
    let config = Config::new(id);
    let storage = MemoryStorage::new_with_voters(&[1, 2, 3]);
    RawNode::new(&config, storage).expect("valid default config")
}

/// Splits `data` into length-prefixed message encodings.
fn frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while out.len() < MESSAGES_MAX && data.len() >= 2 {
        let len = u16::from_le_bytes([data[0], data[1]]) as usize;
        let rest = &data[2..];
        let take = len.min(rest.len());
        out.push(&rest[..take]);
        data = &rest[take..];
    }
    out
}

/// Persists and applies whatever the node produced, as a driver would.
fn drain(node: &mut RawNode<MemoryStorage>) {
    for _ in 0..8 {
        if !node.has_ready() {
            return;
        }
        let ready = node.ready();
        if let Some(snapshot) = ready.snapshot.clone() {
            let _ = node.storage_mut().apply_snapshot(snapshot);
        }
        let _ = node.storage_mut().append(&ready.entries);
        if let Some(hard_state) = ready.hard_state {
            node.storage_mut().set_hard_state(hard_state);
        }
        node.advance();
    }
}

fuzz_target!(|data: &[u8]| {
    let mut follower = node(1);
    let mut candidate = node(2);
    candidate.campaign();
    drain(&mut candidate);
    for frame in frames(data) {
        let Ok(message) = Message::decode(frame) else {
            continue;
        };
        for target in [&mut follower, &mut candidate] {
            let mut m = message.clone();
            m.to = target.raft().id;
            let _ = target.step(m);
            target.tick();
            drain(target);
        }
    }
});
