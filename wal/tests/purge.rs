//! Purge jobs (`Wal::begin_purge` / `Wal::finish_purge`) over the simulated
//! and the real disk: the log keeps working while a job is out, a failed
//! removal leaves the log contiguous on disk and is retried, and a crash at
//! any point recovers.

#![allow(clippy::unwrap_used)]

mod common;

use common::{META, marker, real_files, small, text_entry as entry};
use keel_wal::{FsStorage, SimConfig, SimStorage, Storage, Wal, WalError, recover};

/// Appends entries `from..=to` one by one and syncs.
fn append<S: Storage>(wal: &mut Wal<S>, from: u64, to: u64) {
    for index in from..=to {
        wal.append(&[entry(index)], None).unwrap();
    }
    wal.sync().unwrap();
}

/// Marks a snapshot at `index` and syncs.
fn snapshot<S: Storage>(wal: &mut Wal<S>, index: u64) {
    wal.append_snapshot_marker(&marker(index)).unwrap();
    wal.sync().unwrap();
}

/// A simulated disk holding a log of 4 KiB segments with entries
/// `1..=last` and a snapshot marker at `snapshot_at`.
fn log_with_snapshot(last: u64, snapshot_at: u64) -> (SimStorage, Wal<SimStorage>) {
    let disk = SimStorage::new(SimConfig::default());
    let mut wal = Wal::create(disk.clone(), small(), META).unwrap();
    append(&mut wal, 1, last);
    snapshot(&mut wal, snapshot_at);
    (disk, wal)
}

fn segment_files<S: Storage>(disk: &S) -> Vec<String> {
    let names = disk.list().unwrap();
    names.into_iter().filter(|n| n.ends_with(".wal")).collect()
}

/// Recovers the log from what the disk holds now.
fn recovered_entries(disk: &SimStorage) -> (u64, Vec<u64>) {
    let rec = recover(disk).unwrap();
    let indexes = rec.entries.iter().map(|e| e.index).collect();
    (rec.snapshot.index, indexes)
}

#[test]
fn the_log_is_appended_to_synced_and_cut_while_a_job_is_out() {
    let (disk, mut wal) = log_with_snapshot(100, 80);
    let before = wal.segment_names();
    let job = wal.begin_purge(80).unwrap().unwrap();
    let purged = job.file_names();
    assert!(
        !purged.is_empty() && purged.len() < before.len(),
        "{before:?}"
    );
    assert_eq!(purged[..], before[..purged.len()]);
    // The job's segments left the log at once; their files are still there.
    assert_eq!(wal.segment_names()[..], before[purged.len()..]);
    assert_eq!(segment_files(&disk), before);
    // One job at a time: a second one could leave a gap on a crash.
    assert!(wal.begin_purge(100).unwrap().is_none());
    assert_eq!(wal.purge(100).unwrap(), 0);
    append(&mut wal, 101, 200);
    let outcome = job.run();
    assert!(outcome.is_ok());
    assert_eq!(wal.finish_purge(outcome).unwrap(), purged.len());
    assert!(segment_files(&disk).iter().all(|f| !purged.contains(f)));
    let (snapshot_index, indexes) = recovered_entries(&disk);
    assert_eq!(snapshot_index, 80);
    assert_eq!(indexes, (81..=200).collect::<Vec<_>>());
    // The next job is handed out again.
    snapshot(&mut wal, 190);
    assert!(wal.purge(190).unwrap() > 0);
}

#[test]
fn a_failed_removal_leaves_the_log_contiguous_and_is_retried() {
    let (disk, mut wal) = log_with_snapshot(300, 250);
    let job = wal.begin_purge(250).unwrap().unwrap();
    let purged = job.file_names();
    assert!(purged.len() >= 3, "{purged:?}");
    disk.refuse_removal(&purged[1], true);
    let outcome = job.run();
    assert_eq!(outcome.removed(), 1);
    let err = wal.finish_purge(outcome).unwrap_err();
    assert!(matches!(err, WalError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains(&purged[1]), "{err}");
    // The segments not removed are the log's again, oldest first, and the
    // disk holds a contiguous run that recovers.
    assert_eq!(wal.segment_names()[..purged.len() - 1], purged[1..]);
    assert_eq!(segment_files(&disk)[0], purged[1]);
    assert_eq!(recovered_entries(&disk).1, (251..=300).collect::<Vec<_>>());
    // The log stays usable, and the next purge retries them first.
    append(&mut wal, 301, 310);
    assert!(wal.purge(250).is_err(), "still refused");
    assert_eq!(segment_files(&disk)[0], purged[1]);
    disk.refuse_removal(&purged[1], false);
    assert_eq!(wal.purge(250).unwrap(), purged.len() - 1);
    assert!(segment_files(&disk).iter().all(|f| !purged.contains(f)));
    disk.crash();
    let (_, reopened) = Wal::open(disk.clone(), small()).unwrap();
    assert_eq!(reopened.entries.first().map(|e| e.index), Some(251));
    assert_eq!(reopened.entries.last().map(|e| e.index), Some(310));
}

#[test]
fn a_failed_directory_fsync_is_reported_and_a_crash_brings_the_files_back() {
    let (disk, mut wal) = log_with_snapshot(60, 50);
    let job = wal.begin_purge(50).unwrap().unwrap();
    let purged = job.file_names();
    disk.fail_next_dir_syncs(1);
    let err = wal.finish_purge(job.run()).unwrap_err();
    assert!(err.to_string().contains("fsync directory"), "{err}");
    // Every file was removed, so none goes back to the log; a crash before
    // any later directory fsync restores them, and the log still recovers.
    assert!(wal.segment_names().iter().all(|n| !purged.contains(n)));
    disk.crash();
    assert_eq!(segment_files(&disk)[..purged.len()], purged[..]);
    let (_, rec) = Wal::open(disk.clone(), small()).unwrap();
    assert_eq!(rec.snapshot.index, 50);
    assert_eq!(rec.entries.first().map(|e| e.index), Some(51));
}

#[test]
fn an_outcome_without_a_job_out_is_refused() {
    let (_disk, mut wal) = log_with_snapshot(60, 50);
    let outcome = wal.begin_purge(50).unwrap().unwrap().run();
    let mut other = Wal::create(SimStorage::new(SimConfig::default()), small(), META).unwrap();
    let err = other.finish_purge(outcome).unwrap_err();
    assert!(matches!(err, WalError::InvalidArgument(_)), "{err:?}");
}

#[test]
fn a_job_on_another_thread_removes_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let options = real_files();
    let mut wal = Wal::create(storage.clone(), options.clone(), META).unwrap();
    append(&mut wal, 1, 2000);
    snapshot(&mut wal, 1900);
    let job = wal.begin_purge(1900).unwrap().unwrap();
    let purged = job.file_names();
    assert!(purged.len() >= 2, "{purged:?}");
    let running = std::thread::spawn(move || job.run());
    append(&mut wal, 2001, 2100);
    let removed = wal.finish_purge(running.join().unwrap()).unwrap();
    assert_eq!(removed, purged.len());
    assert!(purged.iter().all(|f| !dir.path().join(f).exists()));
    drop(wal);
    let (_, rec) = Wal::open(storage, options).unwrap();
    assert_eq!(rec.snapshot.index, 1900);
    assert_eq!(
        rec.entries.iter().map(|e| e.index).collect::<Vec<_>>(),
        (1901..=2100).collect::<Vec<_>>()
    );
}
