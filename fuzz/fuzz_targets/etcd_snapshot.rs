//! Arbitrary bytes as an etcd v3 snapshot (a bbolt database): keel-snapshot's
//! read-only bbolt reader and the etcd conversion must return a status, the
//! converted state or an error, never panic, loop or read out of bounds.
//! The input is used without the appended SHA-256 (what `--skip-hash-check`
//! reads), so the fuzzer reaches the page walk instead of the hash check.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run etcd_snapshot -- -max_total_time=600`
//! (seed it with `snapshot/tests/data/etcd-3.4.db`, an etcd 3.4.23 snapshot).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = keel_snapshot::etcd::status::status(data);
    let _ = keel_snapshot::etcd::convert::to_parts(data);
});
