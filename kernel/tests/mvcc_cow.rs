//! Copy-on-write clones of the MVCC store: a clone (a snapshot's frozen
//! view) and its original share the index's chunks, and a write to either
//! never shows in the other. Also a measurement, ignored by default, of
//! what cloning and streaming a 1M-key store cost:
//! `cargo test --release -p keel-kernel --test mvcc_cow -- --ignored --nocapture`.

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use keel_kernel::mvcc::{CompactionRequest, DeleteRangeRequest, PutRequest, Store};

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("/registry/pods/{:08}", i).into_bytes()
}

fn put(store: &mut Store, key: Vec<u8>, value: Vec<u8>) {
    let req = PutRequest {
        key,
        value,
        ..PutRequest::default()
    };
    store.put(&req, &|_| true).unwrap();
}

/// `keys` keys in scattered order, so chunks split as under real load.
fn loaded(keys: u64) -> Store {
    let mut store = Store::new();
    let mut rng = Rng(7);
    for _ in 0..keys {
        let i = rng.next() % (keys * 2);
        put(&mut store, key(i), i.to_le_bytes().to_vec());
    }
    store
}

/// A mix of overwrites, new keys, deletes and a compaction, the same for
/// the same seed.
fn churn(store: &mut Store, seed: u64, ops: u64, keys: u64) {
    let mut rng = Rng(seed);
    for n in 0..ops {
        let i = rng.next() % (keys * 3);
        match rng.next() % 10 {
            0 => {
                let req = DeleteRangeRequest {
                    key: key(i),
                    ..DeleteRangeRequest::default()
                };
                store.delete_range(&req).unwrap();
            }
            1 if n == ops / 2 => {
                let revision = store.current_revision() - 10;
                let req = CompactionRequest {
                    revision,
                    physical: false,
                };
                store.compact(&req).unwrap();
            }
            _ => put(
                store,
                key(i),
                seed.to_le_bytes().repeat(1 + (n % 5) as usize),
            ),
        }
    }
}

#[test]
fn writes_to_the_original_do_not_reach_a_clone_nor_the_reverse() {
    let keys = 5_000;
    let mut original = loaded(keys);
    let before = original.encode_snapshot();
    let mut frozen = original.clone();
    // The same writes on a store that was never cloned.
    let mut twin = Store::decode_snapshot(&before).unwrap();
    churn(&mut original, 1, 3_000, keys);
    churn(&mut twin, 1, 3_000, keys);
    assert_eq!(frozen.encode_snapshot(), before, "the clone moved");
    assert_eq!(original.encode_snapshot(), twin.encode_snapshot());
    original.check_invariants().unwrap();
    frozen.check_invariants().unwrap();
    // And the reverse: writing the clone leaves the original alone.
    let after = original.encode_snapshot();
    churn(&mut frozen, 2, 3_000, keys);
    let mut twin = Store::decode_snapshot(&before).unwrap();
    churn(&mut twin, 2, 3_000, keys);
    assert_eq!(original.encode_snapshot(), after, "the original moved");
    assert_eq!(frozen.encode_snapshot(), twin.encode_snapshot());
    frozen.check_invariants().unwrap();
}

#[test]
fn a_streamed_encoding_equals_the_buffered_one() {
    let mut store = loaded(3_000);
    churn(&mut store, 3, 1_000, 3_000);
    let mut streamed = Vec::new();
    store.write_snapshot(&mut streamed).unwrap();
    assert_eq!(streamed, store.encode_snapshot());
    assert_eq!(streamed.len(), store.snapshot_len_bytes());
    let restored = Store::decode_snapshot(&streamed).unwrap();
    assert_eq!(restored.encode_snapshot(), streamed);
}

/// Prints what a snapshot's frozen view costs at 1M keys (16-byte keys,
/// 256-byte values, as issue 26's load): the clone taken under the state
/// lock, then the first writes after it (each copies its chunk), and the
/// streamed encoding. Asserts only that the clone is unaffected.
#[test]
#[ignore = "a measurement: run with --ignored --nocapture, in release"]
fn clone_cost_at_one_million_keys() {
    let keys = 1_000_000u64;
    let mut store = Store::new();
    let mut rng = Rng(11);
    for _ in 0..keys {
        let i = rng.next();
        let key = format!("{:016x}", i).into_bytes();
        put(&mut store, key, vec![b'v'; 256]);
    }
    let started = Instant::now();
    let frozen = store.clone();
    println!(
        "clone of {} keys: {:?}",
        store.key_count(),
        started.elapsed()
    );
    let started = Instant::now();
    for _ in 0..10_000 {
        let key = format!("{:016x}", rng.next()).into_bytes();
        put(&mut store, key, vec![b'w'; 256]);
    }
    println!(
        "10k puts after the clone (copying the chunks they touch): {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let mut sink = CountingSink(0);
    frozen
        .write_snapshot(std::io::BufWriter::with_capacity(4 << 20, &mut sink))
        .unwrap();
    println!(
        "streamed encoding of the clone ({} MiB): {:?}",
        sink.0 >> 20,
        started.elapsed()
    );
    assert_eq!(frozen.key_count() as u64 + 10_000, store.key_count() as u64);
}

/// Counts bytes, keeps none.
struct CountingSink(u64);

impl std::io::Write for CountingSink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len() as u64;
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
