//! Arbitrary bytes as a directory of WAL segments: recovery must return
//! entries or an error, never panic, never loop; when the log opens, it must
//! accept an append and recover it afterwards.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run wal_recovery -- -max_total_time=600`

#![no_main]

use bytes::Bytes;
use keel_fuzz::split_files;
use keel_kernel::raft::{Entry, EntryType};
use keel_wal::{SimConfig, SimStorage, Wal, WalOptions, recover};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let disk = SimStorage::with_files(SimConfig::default(), split_files(data));
    let read_only = recover(&disk);
    let options = WalOptions {
        segment_size_bytes: 4096,
        write_buffer_bytes: 1024,
        ..WalOptions::default()
    };
    let Ok((mut wal, recovered)) = Wal::open(disk.clone(), options) else {
        return;
    };
    assert_eq!(
        read_only.ok().map(|r| r.entries),
        Some(recovered.entries.clone())
    );
    for pair in recovered.entries.windows(2) {
        assert_eq!(pair[1].index, pair[0].index + 1);
    }
    let next = Entry {
        term: recovered.hard_state.term,
        index: wal.last_index() + 1,
        entry_type: EntryType::Normal,
        data: Bytes::from_static(b"fuzz"),
    };
    wal.append(std::slice::from_ref(&next), None)
        .expect("append after a successful open");
    wal.sync().expect("sync on a fault-free disk");
    let after = recover(&disk).expect("recovery of a log this process just wrote");
    assert_eq!(after.entries.last(), Some(&next));
});
