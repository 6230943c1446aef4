//! What the log's scenario test files share.

use keel_wal::{Metadata, WalOptions};

/// The member the test logs belong to.
pub const META: Metadata = Metadata {
    cluster_id: 0xC1,
    node_id: 7,
};

/// Options that make cuts frequent: 4 KiB segments, 512-byte buffer.
#[allow(dead_code)] // not every test file uses it
pub fn small() -> WalOptions {
    WalOptions {
        segment_size_bytes: 4096,
        write_buffer_bytes: 512,
        ..WalOptions::default()
    }
}

/// Options for logs on real files: 64 KiB segments, 4 KiB buffer.
#[allow(dead_code)] // not every test file uses it
pub fn real_files() -> WalOptions {
    WalOptions {
        segment_size_bytes: 64 << 10,
        write_buffer_bytes: 4096,
        ..WalOptions::default()
    }
}

/// A snapshot marker at `index`, term 1, with no configuration.
#[allow(dead_code)] // not every test file uses it
pub fn marker(index: u64) -> keel_wal::SnapshotMarker {
    keel_wal::SnapshotMarker {
        index,
        term: 1,
        ..keel_wal::SnapshotMarker::default()
    }
}

/// Entry `index` of term 1 holding a short text repeated eight times.
#[allow(dead_code)] // not every test file uses it
pub fn text_entry(index: u64) -> keel_kernel::raft::Entry {
    keel_kernel::raft::Entry {
        term: 1,
        index,
        entry_type: keel_kernel::raft::EntryType::Normal,
        data: bytes::Bytes::from(format!("entry {index} ").repeat(8)),
    }
}
