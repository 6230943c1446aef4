//! Damaged, truncated and foreign files are refused with their reason,
//! keel's and etcd's formats alike, and nothing is left in the data
//! directory; the bbolt reader and the status code never panic on any
//! bytes (proptest over random and mutated files).

use std::path::Path;

use keel_kernel::apply::{StateMachine, StateMachineConfig};
use keel_kernel::membership::Cluster;
use keel_snapshot::{RestoreOptions, SnapshotError, restore, status_of};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

/// etcd 3.4.23's `snapshot save` output (see `src/etcd/convert.rs`).
const ETCD_DB: &[u8] = include_bytes!("data/etcd-3.4.db");

/// A keel snapshot as keel's Maintenance.Snapshot streams it: padded to
/// 512 bytes, SHA-256 appended.
fn keel_file() -> Vec<u8> {
    let mut bytes = StateMachine::new(StateMachineConfig::new(1000), Cluster::empty(9)).snapshot();
    bytes.resize(bytes.len().next_multiple_of(512), 0);
    let hash = Sha256::digest(&bytes);
    bytes.extend_from_slice(&hash);
    bytes
}

/// Restores `bytes` into a fresh directory; the error, and checks that no
/// data directory was left behind.
fn restore_bytes(bytes: &[u8], skip_hash_check: bool) -> Result<(), SnapshotError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.db");
    std::fs::write(&file, bytes).expect("write");
    let data_dir = dir.path().join("restored");
    let opts = RestoreOptions {
        data_dir: data_dir.clone(),
        skip_hash_check,
        ..RestoreOptions::new()
    };
    let result = restore(&file, &opts).map(|_| ());
    if result.is_err() {
        assert!(
            !data_dir.exists(),
            "a failed restore left {}",
            data_dir.display()
        );
    }
    result
}

#[test]
fn good_files_restore() {
    restore_bytes(ETCD_DB, false).expect("the etcd file");
    restore_bytes(&keel_file(), false).expect("the keel file");
}

#[test]
fn a_truncated_etcd_file_is_refused() {
    let cut = &ETCD_DB[..ETCD_DB.len() - 4096 - 32];
    assert!(matches!(
        restore_bytes(cut, false),
        Err(SnapshotError::MissingHash)
    ));
    let err = restore_bytes(cut, true).expect_err("truncated");
    assert!(matches!(err, SnapshotError::CorruptBolt(_)), "{err}");
}

#[test]
fn a_damaged_etcd_file_fails_its_hash() {
    let mut bytes = ETCD_DB.to_vec();
    bytes[3 * 4096 + 100] ^= 0xff;
    let err = restore_bytes(&bytes, false).expect_err("damaged");
    assert!(err.to_string().starts_with("expected sha256 "), "{err}");
}

#[test]
fn a_truncated_or_damaged_keel_file_is_refused() {
    let good = keel_file();
    let err = restore_bytes(&good[..good.len() - 1], true).expect_err("cut");
    assert!(
        matches!(
            err,
            SnapshotError::CorruptKeel(_) | SnapshotError::Truncated(_)
        ),
        "{err}"
    );
    let mut damaged = good.clone();
    damaged[40] ^= 1;
    assert!(matches!(
        restore_bytes(&damaged, false),
        Err(SnapshotError::HashMismatch { .. })
    ));
    let err = restore_bytes(&damaged, true).expect_err("damaged");
    assert!(
        matches!(
            err,
            SnapshotError::CorruptKeel(_) | SnapshotError::Truncated(_)
        ),
        "{err}"
    );
    let err = restore_bytes(&good[..30], true).expect_err("cut in the header");
    assert!(matches!(err, SnapshotError::Truncated(_)), "{err}");
}

#[test]
fn other_files_are_not_snapshots() {
    let mut text = b"hello, this is not a database".repeat(20);
    text.resize(512, b' ');
    assert!(matches!(
        restore_bytes(&text, true),
        Err(SnapshotError::NotASnapshot)
    ));
    assert_eq!(
        status_of(&text).expect_err("text").to_string(),
        "invalid database: neither a keel snapshot nor an etcd v3 snapshot"
    );
}

#[test]
fn a_used_data_dir_is_refused_and_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.db");
    std::fs::write(&file, ETCD_DB).expect("write");
    let data_dir = dir.path().join("used");
    std::fs::create_dir(&data_dir).expect("mkdir");
    std::fs::write(data_dir.join("precious"), b"x").expect("write");
    let opts = RestoreOptions {
        data_dir: data_dir.clone(),
        ..RestoreOptions::new()
    };
    let err = restore(&file, &opts).expect_err("used dir");
    assert!(matches!(err, SnapshotError::DataDirExists(_)), "{err}");
    assert!(data_dir.join("precious").exists());
}

#[test]
fn bad_membership_options_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("in.db");
    std::fs::write(&file, ETCD_DB).expect("write");
    let opts = RestoreOptions {
        data_dir: dir.path().join("d"),
        name: "nobody".to_owned(),
        ..RestoreOptions::new()
    };
    let err = restore(&file, &opts).expect_err("name not in the cluster");
    assert!(
        err.to_string()
            .contains("couldn't find local name \"nobody\""),
        "{err}"
    );
    let opts = RestoreOptions {
        data_dir: dir.path().join("d"),
        initial_advertise_peer_urls: vec!["http://10.0.0.1:2380".to_owned()],
        ..RestoreOptions::new()
    };
    let err = restore(&file, &opts).expect_err("urls differ");
    assert!(
        err.to_string()
            .contains("missing from --initial-advertise-peer-urls"),
        "{err}"
    );
    assert!(!Path::new(&dir.path().join("d")).exists());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any bytes: an answer or an error, never a panic.
    #[test]
    fn status_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..20_000)) {
        let _ = status_of(&bytes);
        let _ = keel_snapshot::etcd::convert::to_parts(&bytes);
    }

    /// The real etcd file with bytes overwritten anywhere (hash check
    /// skipped so the damage reaches the reader): never a panic.
    #[test]
    fn the_reader_never_panics_on_a_mutated_etcd_file(
        edits in proptest::collection::vec((0usize..24_576, any::<u8>()), 1..16)
    ) {
        let mut bytes = ETCD_DB[..24_576].to_vec();
        for (at, value) in edits {
            bytes[at] = value;
        }
        let _ = status_of(&bytes);
        let _ = keel_snapshot::etcd::convert::to_parts(&bytes);
    }
}
