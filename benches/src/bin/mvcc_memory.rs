//! Resident memory of the MVCC store holding 1M keys of 64 bytes with
//! 256-byte values, one version each (the 420 MB budget; etcd 3.4
//! publishes about 470 MB for the same data).
//!
//! Loads the keys with ordinary puts in a pseudo-random order (as a real
//! workload would, so the index is not packed by a sorted load), then
//! prints VmRSS and VmHWM from `/proc/self/status` (Linux only), before and
//! after, how long a snapshot encode takes (into fresh memory, twice, and
//! into a buffer touched beforehand, as the node driver once did; it now
//! streams the encoding of a copy-on-write clone into the file), and the
//! memory after a snapshot encode/decode round trip.
//!
//! Run: `cargo run --release -p keel-bench --bin mvcc_memory [KEYS]`
//! (KEYS defaults to 1000000).

#![allow(clippy::unwrap_used)]

use std::time::Instant;

use keel_bench::mix;
use keel_kernel::mvcc::{PutRequest, Store};

const KEY_BYTES: usize = 64;
const VALUE_BYTES: usize = 256;

/// The i-th key: 64 bytes, distinct for distinct i, in scattered order.
fn key(i: u64) -> Vec<u8> {
    let mut key = format!("{:016x}/{:016x}/", mix(i), i).into_bytes();
    key.resize(KEY_BYTES, b'k');
    key
}

fn value(i: u64) -> Vec<u8> {
    (0..VALUE_BYTES as u64 / 8)
        .flat_map(|j| mix(i ^ (j << 40)).to_le_bytes())
        .collect()
}

/// VmRSS and VmHWM in MiB, from /proc/self/status.
fn memory_mib() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kib| kib.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Milliseconds since `start`, for printing.
fn ms(start: Instant) -> String {
    format!("{:.0} ms", start.elapsed().as_secs_f64() * 1e3)
}

/// An empty buffer with room for `len` bytes whose pages are touched (as
/// `keel-server`'s snapshot buffer does).
fn touched_buffer(len: usize) -> Vec<u8> {
    let mut buffer: Vec<u8> = Vec::with_capacity(len);
    for page in buffer.spare_capacity_mut().chunks_mut(4096) {
        page[0].write(0);
    }
    std::hint::black_box(buffer)
}

fn report(label: &str) {
    let (rss, hwm) = memory_mib();
    println!(
        "{label:<32} VmRSS {rss:8.1} MiB ({:6.1} MB)   VmHWM {hwm:8.1} MiB",
        rss * 1.048_576
    );
}

fn main() {
    let keys: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    report("empty process");
    let mut store = Store::new();
    let no_leases = |_: i64| true;
    for i in 0..keys {
        let req = PutRequest {
            key: key(i),
            value: value(i),
            ..PutRequest::default()
        };
        store.put(&req, &no_leases).unwrap();
    }
    println!(
        "loaded {} keys ({} B keys, {} B values), revision {}",
        store.key_count(),
        KEY_BYTES,
        VALUE_BYTES,
        store.current_revision()
    );
    report("after loading");
    // Fresh memory for the buffer is most of an encode's cost on some VMs:
    // the first encode (cold), a second one, and into a buffer sized and
    // touched beforehand on another thread (the node driver's former way).
    for label in ["first", "second"] {
        let start = Instant::now();
        drop(store.encode_snapshot());
        println!("snapshot encode ({label}) took {}", ms(start));
    }
    let start = Instant::now();
    let len = store.snapshot_len_bytes();
    println!("snapshot sizing took {}", ms(start));
    let start = Instant::now();
    let mut buffer = touched_buffer(len);
    println!("touching a buffer of that size took {}", ms(start));
    let start = Instant::now();
    store.encode_snapshot_into(&mut buffer);
    println!("snapshot encode into it took {}", ms(start));
    drop(buffer);
    let snapshot = store.encode_snapshot();
    println!(
        "snapshot size {:.1} MiB",
        snapshot.len() as f64 / (1024.0 * 1024.0)
    );
    drop(store);
    let store = Store::decode_snapshot(&snapshot).unwrap();
    drop(snapshot);
    report("after snapshot restore");
    println!("restored {} keys", store.key_count());
}
