//! MVCC store throughput on a store already holding 1M keys (64-byte keys,
//! 256-byte values, one version each), single thread:
//!
//! * `mvcc/put`: overwrite a pseudo-randomly chosen existing key (a new
//!   version, its events with prev_kv included, as apply runs it by
//!   default). The store is compacted every 1M puts outside the timed
//!   region, so history does not pile up.
//! * `mvcc/put_events_without_prev_kv`: the same with
//!   `Store::set_events_prev_kv(false)` (a server with no watcher asking
//!   for prev_kv).
//! * `mvcc/range_single_key`: read one pseudo-randomly chosen key.
//! * `mvcc/range_single_key_hot`: the same over a 4096-key working set
//!   (cache-resident index paths), to separate cache misses from code cost.
//!
//! Goals from the issue: >= 1,000,000 puts/s and >= 2,000,000 ranges/s.
//!
//! Huge pages: a random lookup in a ~400 MB heap misses the TLB at each
//! step, so on Linux the benchmark re-runs itself with glibc's malloc
//! asked to back its heap with transparent huge pages, as the `keel`
//! binary does (`keel_server::huge_pages`: glibc >= 2.35, THP set to
//! `madvise` or `always`). Set `KEEL_HUGE_PAGES=0` to measure with 4 KiB
//! pages.
//!
//! Run: `cargo bench -p keel-bench --bench mvcc`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group};
use keel_kernel::mvcc::{CompactionRequest, PutRequest, RangeRequest, Store};

const KEYS: u64 = 1_000_000;
const KEY_BYTES: usize = 64;
const VALUE_BYTES: usize = 256;
const HOT_KEYS: u64 = 4096;

/// splitmix64: a fixed pseudo-random sequence.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Writes the i-th key (64 bytes, distinct per i) into `out`.
fn write_key(out: &mut Vec<u8>, i: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.clear();
    for word in [mix(i), i] {
        out.extend(
            (0..16)
                .rev()
                .map(|n| HEX[((word >> (n * 4)) & 0xf) as usize]),
        );
        out.push(b'/');
    }
    out.resize(KEY_BYTES, b'k');
}

fn loaded_store() -> Store {
    let mut store = Store::new();
    let mut req = PutRequest {
        value: vec![7; VALUE_BYTES],
        ..PutRequest::default()
    };
    for i in 0..KEYS {
        write_key(&mut req.key, i);
        store.put(&req, &|_| true).unwrap();
    }
    store
}

/// Overwrites of pseudo-random existing keys, compacting every 1M puts
/// outside the timed region.
struct Puts {
    req: PutRequest,
    n: u64,
    since_compaction: u64,
}

impl Puts {
    /// Runs `iters` puts on `store`; returns the time they took.
    fn run(&mut self, store: &mut Store, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.since_compaction >= KEYS {
                let revision = store.current_revision();
                store
                    .compact(&CompactionRequest {
                        revision,
                        physical: false,
                    })
                    .unwrap();
                self.since_compaction = 0;
            }
            let chunk = left.min(KEYS - self.since_compaction);
            let start = Instant::now();
            for _ in 0..chunk {
                self.n += 1;
                write_key(&mut self.req.key, mix(self.n) % KEYS);
                black_box(store.put(&self.req, &|_| true).unwrap());
            }
            timed += start.elapsed();
            self.since_compaction += chunk;
            left -= chunk;
        }
        timed
    }
}

fn bench_mvcc(c: &mut Criterion) {
    let mut store = loaded_store();
    let mut group = c.benchmark_group("mvcc");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    let mut puts = Puts {
        req: PutRequest {
            value: vec![9; VALUE_BYTES],
            ..PutRequest::default()
        },
        n: 0,
        since_compaction: 0,
    };
    group.bench_function("put", |b| {
        b.iter_custom(|iters| puts.run(&mut store, iters))
    });
    store.set_events_prev_kv(false);
    group.bench_function("put_events_without_prev_kv", |b| {
        b.iter_custom(|iters| puts.run(&mut store, iters))
    });
    store.set_events_prev_kv(true);
    let mut n = puts.n;

    let mut range = RangeRequest::default();
    group.bench_function("range_single_key", |b| {
        b.iter(|| {
            n += 1;
            write_key(&mut range.key, mix(n) % KEYS);
            let response = store.range(&range).unwrap();
            debug_assert_eq!(response.kvs.len(), 1);
            black_box(response)
        })
    });
    group.bench_function("range_single_key_hot", |b| {
        b.iter(|| {
            n += 1;
            write_key(&mut range.key, mix(n) % HOT_KEYS);
            black_box(store.range(&range).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench_mvcc);

fn main() {
    if let Some(err) = keel_server::huge_pages::reexec_with_huge_pages() {
        eprintln!("mvcc bench: running without huge pages ({err})");
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
