//! Reusing purged segments' files (`WalOptions::recycled_segments_max`): a
//! purge keeps them, a later cut writes the next segment over one, and
//! recovery stops where the new records end although the file's old records
//! follow them: after a clean stop, after a crash that tears the last write,
//! on the simulated and on the real disk.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{META, marker, real_files, text_entry as entry};
use keel_kernel::raft::Entry;
use keel_wal::{FsStorage, SimConfig, SimStorage, Storage, Wal, WalOptions};

/// 16 KiB segments, so a direct write (whole 4 KiB blocks) leaves old
/// bytes after it, and a 512-byte buffer, so writes also go through the
/// page cache.
fn options() -> WalOptions {
    WalOptions {
        segment_size_bytes: 16 << 10,
        write_buffer_bytes: 512,
        ..WalOptions::default()
    }
}

fn append<S: Storage>(wal: &mut Wal<S>, from: u64, to: u64) {
    for index in from..=to {
        wal.append(&[entry(index)], None).unwrap();
    }
}

fn recycled<S: Storage>(disk: &S) -> Vec<String> {
    let names = disk.list().unwrap();
    names
        .into_iter()
        .filter(|n| n.ends_with(".wal.free"))
        .collect()
}

/// A log on `disk` with entries `1..=800`, a snapshot at 780 and a purge
/// that kept two files for reuse, one of which is prepared as the next
/// segment. Returns the log and the old content of the prepared file.
fn log_on_a_recycled_file<S: Storage>(disk: &S, options: WalOptions) -> (Wal<S>, Bytes) {
    let mut wal = Wal::create(disk.clone(), options, META).unwrap();
    append(&mut wal, 1, 800);
    wal.append_snapshot_marker(&marker(780)).unwrap();
    wal.sync().unwrap();
    assert!(wal.purge(780).unwrap() >= 3);
    let kept = recycled(disk);
    assert_eq!(kept.len(), 2, "{kept:?}");
    let job = wal.begin_prepare().unwrap();
    wal.finish_prepare(job.run()).unwrap();
    let left = recycled(disk);
    assert_eq!(left.len(), 1);
    let reused = kept.iter().find(|k| !left.contains(k)).unwrap();
    let old = disk.read_all("next.wal.tmp").unwrap();
    assert!(!kept.is_empty() && !reused.is_empty());
    (wal, Bytes::copy_from_slice(&old))
}

/// Appends from `next` until the log cuts a segment, then `extra` more;
/// returns the next index.
fn append_through_a_cut<S: Storage>(wal: &mut Wal<S>, mut next: u64, extra: u64) -> u64 {
    let segments = wal.segment_names().len();
    while wal.segment_names().len() == segments {
        append(wal, next, next);
        next += 1;
    }
    append(wal, next, next + extra - 1);
    next + extra
}

fn indexes(entries: &[Entry]) -> Vec<u64> {
    entries.iter().map(|e| e.index).collect()
}

#[test]
fn a_cut_reuses_a_kept_file_and_recovery_stops_before_its_old_records() {
    let disk = SimStorage::new(SimConfig::default());
    let (mut wal, old) = log_on_a_recycled_file(&disk, options());
    let next = append_through_a_cut(&mut wal, 801, 5);
    wal.sync().unwrap();
    let active = wal.segment_names().pop().unwrap();
    drop(wal);
    // The new segment's tail still holds the old file's records.
    let data = disk.read_all(&active).unwrap();
    assert_eq!(data.len(), old.len());
    assert_eq!(data[8192..], old[8192..]);
    assert!(old[8192..].iter().any(|b| *b != 0));
    disk.crash();
    let (mut wal, rec) = Wal::open(disk.clone(), options()).unwrap();
    assert_eq!(indexes(&rec.entries), (781..next).collect::<Vec<_>>());
    assert!(disk.list().unwrap().iter().all(|n| !n.ends_with(".broken")));
    // Appends continue over the old records, and recover again.
    append(&mut wal, next, next + 9);
    wal.sync().unwrap();
    drop(wal);
    disk.crash();
    let (_, rec) = Wal::open(disk.clone(), options()).unwrap();
    assert_eq!(indexes(&rec.entries), (781..next + 10).collect::<Vec<_>>());
}

#[test]
fn a_torn_write_into_a_reused_file_loses_only_what_was_not_synced() {
    for seed in 0..40 {
        let disk = SimStorage::new(SimConfig {
            seed,
            ..SimConfig::default()
        });
        let (mut wal, _) = log_on_a_recycled_file(&disk, options());
        let synced = append_through_a_cut(&mut wal, 801, 3);
        wal.sync().unwrap();
        // Unsynced appends: some reach the page cache, the last one may be
        // torn by the crash.
        append(&mut wal, synced, synced + 11);
        drop(wal);
        disk.crash();
        let (mut wal, rec) = Wal::open(disk.clone(), options()).unwrap();
        let got = indexes(&rec.entries);
        assert!(got.len() >= (synced - 781) as usize, "seed {seed}: {got:?}");
        assert_eq!(got, (781..781 + got.len() as u64).collect::<Vec<_>>());
        // The repaired log takes appends and recovers them.
        let next = 781 + got.len() as u64;
        append(&mut wal, next, next + 4);
        wal.sync().unwrap();
        drop(wal);
        disk.crash();
        let (_, rec) = Wal::open(disk.clone(), options()).unwrap();
        assert_eq!(
            indexes(&rec.entries),
            (781..next + 5).collect::<Vec<_>>(),
            "seed {seed}"
        );
    }
}

#[test]
fn real_files_are_reused_and_recovered() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let options = WalOptions {
        segment_size_bytes: 16 << 10,
        ..real_files()
    };
    let (mut wal, old) = log_on_a_recycled_file(&storage, options.clone());
    let next = append_through_a_cut(&mut wal, 801, 5);
    wal.sync().unwrap();
    let active = wal.segment_names().pop().unwrap();
    drop(wal);
    let data = std::fs::read(dir.path().join(&active)).unwrap();
    assert_eq!(data[8192..], old[8192..]);
    let (_, rec) = Wal::open(storage, options).unwrap();
    assert_eq!(indexes(&rec.entries), (781..next).collect::<Vec<_>>());
}

#[test]
fn without_reuse_a_purge_removes_every_file() {
    let disk = SimStorage::new(SimConfig::default());
    let options = WalOptions {
        recycled_segments_max: 0,
        ..options()
    };
    let mut wal = Wal::create(disk.clone(), options, META).unwrap();
    append(&mut wal, 1, 800);
    wal.append_snapshot_marker(&marker(780)).unwrap();
    wal.sync().unwrap();
    assert!(wal.purge(780).unwrap() >= 3);
    assert!(recycled(&disk).is_empty());
}
