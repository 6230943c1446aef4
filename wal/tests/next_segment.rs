//! Scenario tests of the next segment prepared ahead of the cut
//! (`Wal::begin_prepare` / `PrepareJob` / `Wal::finish_prepare`), over the
//! simulated and the real disk.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{META, small};
use keel_kernel::raft::{Entry, EntryType};
use keel_wal::next_segment::NEXT_TEMP_NAME;
use keel_wal::storage::Storage;
use keel_wal::zero_fill::ZERO_FILL_BYTES;
use keel_wal::{FsStorage, SimConfig, SimStorage, Wal, WalError, WalOptions, recover};

fn entries(range: std::ops::RangeInclusive<u64>) -> Vec<Entry> {
    range
        .map(|index| Entry {
            term: 1,
            index,
            entry_type: EntryType::Normal,
            data: Bytes::from(format!("entry {index} ").repeat(6)),
        })
        .collect()
}

fn disk() -> SimStorage {
    SimStorage::new(SimConfig {
        seed: 11,
        ..SimConfig::default()
    })
}

fn prepare<S: Storage>(wal: &mut Wal<S>) {
    let job = wal.begin_prepare().expect("the log wants a next segment");
    wal.finish_prepare(job.run()).unwrap();
}

fn has_prepared_file(d: &SimStorage) -> bool {
    d.list().unwrap().iter().any(|n| n == NEXT_TEMP_NAME)
}

/// Appends one entry at a time, synced, until the log has `segments`
/// segments; returns the last index appended.
fn append_until<S: Storage>(wal: &mut Wal<S>, from: u64, segments: usize) -> u64 {
    let mut index = from;
    while wal.segment_names().len() < segments {
        wal.append(&entries(index..=index), None).unwrap();
        wal.sync().unwrap();
        index += 1;
    }
    index - 1
}

#[test]
fn the_cut_renames_the_prepared_file_into_place() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    prepare(&mut wal);
    assert!(has_prepared_file(&d));
    assert!(wal.begin_prepare().is_none(), "one is ready already");
    let creates_before = d.stats().creates;
    let last = append_until(&mut wal, 1, 2);
    assert_eq!(d.stats().creates, creates_before, "the cut created a file");
    assert!(!has_prepared_file(&d));
    // After the cut the log wants the next one again.
    prepare(&mut wal);
    let last = append_until(&mut wal, last + 1, 3);
    d.crash();
    let (_, rec) = Wal::open(d.clone(), small()).unwrap();
    assert_eq!(rec.entries, entries(1..=last));
    assert!(!has_prepared_file(&d), "open removes the prepared file");
}

#[test]
fn a_job_finishing_after_its_cut_serves_the_next_one() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    let job = wal.begin_prepare().unwrap();
    let last = append_until(&mut wal, 1, 2);
    assert!(wal.begin_prepare().is_none(), "the job is still out");
    wal.finish_prepare(job.run()).unwrap();
    let creates_before = d.stats().creates;
    let last = append_until(&mut wal, last + 1, 3);
    assert_eq!(d.stats().creates, creates_before);
    d.crash();
    assert_eq!(recover(&d).unwrap().entries, entries(1..=last));
}

#[test]
fn a_failed_job_leaves_the_log_usable_and_waits_for_the_cut() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    d.set_capacity_bytes(4096 + 1024);
    let job = wal.begin_prepare().unwrap();
    let err = wal.finish_prepare(job.run()).unwrap_err();
    assert!(err.is_storage_full(), "{err}");
    assert!(!has_prepared_file(&d), "the half-made file is removed");
    assert!(!wal.is_poisoned());
    assert!(wal.begin_prepare().is_none(), "no retry before the cut");
    d.set_capacity_bytes(u64::MAX);
    let last = append_until(&mut wal, 1, 2);
    assert!(wal.begin_prepare().is_some(), "the cut allows a new job");
    assert_eq!(recover(&d).unwrap().entries, entries(1..=last));
}

#[test]
fn finishing_without_a_job_out_is_refused() {
    let mut wal = Wal::create(disk(), small(), META).unwrap();
    let mut other = Wal::create(disk(), small(), META).unwrap();
    let stray = other.begin_prepare().unwrap().run();
    let err = wal.finish_prepare(stray).unwrap_err();
    assert!(matches!(err, WalError::InvalidArgument(_)), "{err}");
    assert!(wal.begin_prepare().is_some(), "the log still wants one");
}

#[test]
fn a_poisoned_log_hands_out_no_job() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=1), None).unwrap();
    d.fail_next_syncs(1);
    assert!(wal.sync().is_err());
    assert!(wal.begin_prepare().is_none());
}

#[test]
fn real_files_cut_into_prepared_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let opts = WalOptions {
        segment_size_bytes: 2 * ZERO_FILL_BYTES,
        write_buffer_bytes: 64 << 10,
        ..WalOptions::default()
    };
    let mut wal = Wal::create(storage.clone(), opts.clone(), META).unwrap();
    let mut next = 1;
    while wal.segment_names().len() < 4 {
        if let Some(job) = wal.begin_prepare() {
            // As the server does: the job runs on another thread.
            let outcome = std::thread::spawn(move || job.run()).join().unwrap();
            wal.finish_prepare(outcome).unwrap();
        }
        let batch = entries(next..=next + 40);
        next += batch.len() as u64;
        wal.append(&batch, None).unwrap();
        wal.sync().unwrap();
    }
    drop(wal);
    let (_, rec) = Wal::open(storage, opts).unwrap();
    assert_eq!(rec.entries, entries(1..=next - 1));
    let names: Vec<String> = dir
        .path()
        .read_dir()
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".wal")), "{names:?}");
}
