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
//! * `mvcc/put_cache_resident`, `mvcc/range_cache_resident`: the same
//!   operations on a separate store of 4096 keys (compacted every 4096
//!   puts, so one or two versions per key as in `mvcc/put`), small enough
//!   to stay in cache: the code cost with the cache misses gone.
//! * `mvcc/dependent_load`: the machine's floor, measured in the same run:
//!   one load whose address depends on the previous one, at random over a
//!   heap as large as the store's (a pointer chase through 64-byte lines).
//!   A random single-key read needs at least two such loads one after the
//!   other (the index leaf that holds the key, then the key's record), so
//!   no unbatched read is faster than two of them.
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
use keel_bench::mix;
use keel_kernel::mvcc::{CompactionRequest, PutRequest, RangeRequest, RangeResponse, Store};

const KEYS: u64 = 1_000_000;
const KEY_BYTES: usize = 64;
const VALUE_BYTES: usize = 256;
const HOT_KEYS: u64 = 4096;
/// Bytes the pointer chase of `mvcc/dependent_load` walks: about the
/// store's heap for 1M keys.
const CHASE_BYTES: usize = 400 << 20;
/// Bytes of a cache line: the chase reads one word per line.
const LINE_BYTES: usize = 64;

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

/// A store holding keys `0..keys` (see [`write_key`]), one version each.
fn loaded_store(keys: u64) -> Store {
    let mut store = Store::new();
    let mut req = PutRequest {
        value: vec![7; VALUE_BYTES],
        ..PutRequest::default()
    };
    for i in 0..keys {
        write_key(&mut req.key, i);
        store.put(&req, &|_| true).unwrap();
    }
    store
}

/// Overwrites of pseudo-random existing keys among `0..keys`, compacting
/// every `keys` puts outside the timed region.
struct Puts {
    req: PutRequest,
    keys: u64,
    n: u64,
    since_compaction: u64,
}

impl Puts {
    /// Puts of 256-byte values over keys `0..keys`.
    fn new(keys: u64) -> Puts {
        Puts {
            req: PutRequest {
                value: vec![9; VALUE_BYTES],
                ..PutRequest::default()
            },
            keys,
            n: 0,
            since_compaction: 0,
        }
    }

    /// Runs `iters` puts on `store`; returns the time they took.
    fn run(&mut self, store: &mut Store, iters: u64) -> Duration {
        let mut timed = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            if self.since_compaction >= self.keys {
                let revision = store.current_revision();
                store
                    .compact(&CompactionRequest {
                        revision,
                        physical: false,
                    })
                    .unwrap();
                self.since_compaction = 0;
            }
            let chunk = left.min(self.keys - self.since_compaction);
            let start = Instant::now();
            for _ in 0..chunk {
                self.n += 1;
                write_key(&mut self.req.key, mix(self.n) % self.keys);
                black_box(store.put(&self.req, &|_| true).unwrap());
            }
            timed += start.elapsed();
            self.since_compaction += chunk;
            left -= chunk;
        }
        timed
    }
}

/// Single-key ranges of pseudo-random keys among `0..keys`, as apply
/// serves them.
struct Ranges {
    req: RangeRequest,
    keys: u64,
    n: u64,
}

impl Ranges {
    /// Ranges over keys `0..keys`, continuing the pseudo-random sequence
    /// after its `n`-th element.
    fn new(keys: u64, n: u64) -> Ranges {
        Ranges {
            req: RangeRequest::default(),
            keys,
            n,
        }
    }

    /// Reads the next pseudo-random key from `store`.
    fn one(&mut self, store: &Store) -> RangeResponse {
        self.n += 1;
        write_key(&mut self.req.key, mix(self.n) % self.keys);
        let response = store.range(&self.req).unwrap();
        debug_assert_eq!(response.kvs.len(), 1);
        response
    }
}

/// A random cyclic walk over `bytes` of memory, one word per cache line:
/// the first word of each line holds the index of the next line's first
/// word, and every line is visited once per cycle (Sattolo's shuffle), so
/// each load's address depends on the previous load and the hardware cannot
/// run ahead.
fn pointer_chase(bytes: usize) -> Vec<usize> {
    const WORDS_PER_LINE: usize = LINE_BYTES / size_of::<usize>();
    let lines = bytes / LINE_BYTES;
    let mut order: Vec<usize> = (0..lines).collect();
    for i in (1..lines).rev() {
        let j = (mix(i as u64) % i as u64) as usize;
        order.swap(i, j);
    }
    let mut chase = vec![0usize; lines * WORDS_PER_LINE];
    for (i, &line) in order.iter().enumerate() {
        let next = order[(i + 1) % lines];
        chase[line * WORDS_PER_LINE] = next * WORDS_PER_LINE;
    }
    chase
}

fn bench_mvcc(c: &mut Criterion) {
    let mut store = loaded_store(KEYS);
    let mut group = c.benchmark_group("mvcc");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));

    let mut puts = Puts::new(KEYS);
    group.bench_function("put", |b| {
        b.iter_custom(|iters| puts.run(&mut store, iters))
    });
    store.set_events_prev_kv(false);
    group.bench_function("put_events_without_prev_kv", |b| {
        b.iter_custom(|iters| puts.run(&mut store, iters))
    });
    store.set_events_prev_kv(true);

    let mut ranges = Ranges::new(KEYS, puts.n);
    group.bench_function("range_single_key", |b| {
        b.iter(|| black_box(ranges.one(&store)))
    });
    let mut hot_ranges = Ranges::new(HOT_KEYS, ranges.n);
    group.bench_function("range_single_key_hot", |b| {
        b.iter(|| black_box(hot_ranges.one(&store)))
    });
    drop(store);

    let mut small_store = loaded_store(HOT_KEYS);
    let mut small_puts = Puts::new(HOT_KEYS);
    group.bench_function("put_cache_resident", |b| {
        b.iter_custom(|iters| small_puts.run(&mut small_store, iters))
    });
    group.bench_function("range_cache_resident", |b| {
        b.iter(|| black_box(hot_ranges.one(&small_store)))
    });

    // Built on first use (400 MB, a few seconds): not when a filter skips it.
    let mut chase: Option<Vec<usize>> = None;
    let mut at = 0;
    group.bench_function("dependent_load", |b| {
        let chase = chase.get_or_insert_with(|| pointer_chase(CHASE_BYTES));
        b.iter(|| {
            at = chase[at];
            at
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
