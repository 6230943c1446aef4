//! Scenario tests of the log over the simulated and the real disk: appends,
//! sync, reopen, segment cuts, purge, overwrites, snapshot markers, torn
//! tails, corruption, failed fsync and a full disk.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::{META, marker, real_files, small};
use keel_kernel::raft::{ConfState, Entry, EntryType, HardState};
use keel_wal::storage::{LOG_BLOCK_BYTES, Storage};
use keel_wal::zero_fill::ZERO_FILL_BYTES;
use keel_wal::{
    FsStorage, Metadata, SimConfig, SimStorage, SnapshotMarker, Ticket, Wal, WalError, WalOptions,
    recover,
};

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term,
        index,
        entry_type: EntryType::Normal,
        data: Bytes::from(format!("entry {index} term {term}").repeat(3)),
    }
}

fn entries(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
    range.map(|i| entry(i, term)).collect()
}

fn disk() -> SimStorage {
    SimStorage::new(SimConfig {
        seed: 5,
        ..SimConfig::default()
    })
}

#[test]
fn synced_appends_survive_a_crash_and_reopen() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    let hs = HardState {
        term: 1,
        vote: 7,
        commit: 2,
    };
    let t = wal.append(&entries(1..=3, 1), Some(&hs)).unwrap();
    assert_eq!(wal.durable_ticket(), Ticket(0));
    assert_eq!(wal.sync().unwrap(), t);
    wal.append(&entries(4..=5, 1), None).unwrap();
    d.crash();
    let (mut wal, rec) = Wal::open(d.clone(), small()).unwrap();
    assert_eq!(rec.metadata, META);
    assert_eq!(rec.hard_state, hs);
    assert!(rec.entries.len() >= 3);
    assert_eq!(rec.entries[..3], entries(1..=3, 1)[..]);
    let next = rec.entries.len() as u64 + 1;
    wal.append(&entries(next..=next + 1, 2), None).unwrap();
    wal.sync().unwrap();
    let rec = recover(&d).unwrap();
    assert_eq!(
        rec.entries.last().map(|e| (e.index, e.term)),
        Some((next + 1, 2))
    );
}

#[test]
fn segments_are_cut_chained_and_purged() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    for i in 1..=200 {
        wal.append(
            &[entry(i, 1)],
            Some(&HardState {
                term: 1,
                vote: 0,
                commit: i - 1,
            }),
        )
        .unwrap();
    }
    wal.sync().unwrap();
    let segments = wal.segment_names();
    assert!(segments.len() > 5, "{segments:?}");
    let rec = recover(&d).unwrap();
    assert_eq!(rec.entries, entries(1..=200, 1));
    assert_eq!(rec.hard_state.commit, 199);

    wal.append_snapshot_marker(&marker(150)).unwrap();
    wal.sync().unwrap();
    let removed = wal.purge(150).unwrap();
    assert!(removed > 0 && removed < segments.len());
    d.crash();
    let (_, rec) = Wal::open(d.clone(), small()).unwrap();
    assert_eq!(rec.snapshot.index, 150);
    assert_eq!(rec.metadata, META);
    assert_eq!(rec.hard_state.commit, 199);
    assert_eq!(rec.entries, entries(151..=200, 1));
}

#[test]
fn a_later_lower_index_overwrites_the_suffix() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=60, 1), None).unwrap();
    wal.append(&entries(20..=25, 2), None).unwrap();
    wal.sync().unwrap();
    let rec = recover(&d).unwrap();
    let mut expected = entries(1..=19, 1);
    expected.extend(entries(20..=25, 2));
    assert_eq!(rec.entries, expected);
    let (mut wal, _) = Wal::open(d.clone(), small()).unwrap();
    assert_eq!(wal.last_index(), 25);
    assert!(matches!(
        wal.append(&entries(27..=27, 2), None),
        Err(WalError::InvalidArgument(_))
    ));
}

#[test]
fn a_snapshot_marker_lets_the_log_jump_ahead() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=5, 1), None).unwrap();
    let marker = SnapshotMarker {
        index: 100,
        term: 3,
        conf_state: ConfState {
            voters: vec![7],
            ..ConfState::default()
        },
    };
    wal.append_snapshot_marker(&marker).unwrap();
    assert!(matches!(
        wal.append(&entries(100..=100, 3), None),
        Err(WalError::InvalidArgument(_))
    ));
    wal.append(&entries(101..=103, 3), None).unwrap();
    wal.sync().unwrap();
    let rec = recover(&d).unwrap();
    assert_eq!(rec.snapshot, marker);
    assert_eq!(rec.entries, entries(101..=103, 3));
    let older = SnapshotMarker {
        index: 50,
        ..SnapshotMarker::default()
    };
    assert!(matches!(
        wal.append_snapshot_marker(&older),
        Err(WalError::InvalidArgument(_))
    ));
}

#[test]
fn open_at_an_older_marker_returns_the_entries_after_it() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=10, 1), None).unwrap();
    wal.append_snapshot_marker(&marker(4)).unwrap();
    wal.append_snapshot_marker(&marker(8)).unwrap();
    wal.sync().unwrap();
    let (_, rec) = Wal::open_at(d.clone(), small(), Some(4)).unwrap();
    assert_eq!((rec.snapshot.index, rec.entries), (4, entries(5..=10, 1)));
    let (_, rec) = Wal::open_at(d.clone(), small(), Some(0)).unwrap();
    assert_eq!(rec.entries.len(), 10);
    assert!(matches!(
        Wal::open_at(d.clone(), small(), Some(5)),
        Err(WalError::InvalidArgument(_))
    ));
    // A gap right after the chosen marker is refused.
    wal.append_snapshot_marker(&marker(30)).unwrap();
    wal.append(&entries(31..=31, 1), None).unwrap();
    wal.sync().unwrap();
    let err = Wal::open_at(d.clone(), small(), Some(8)).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn open_choosing_sees_every_marker_and_follows_the_chosen_one() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=10, 1), None).unwrap();
    for index in [4, 8] {
        wal.append_snapshot_marker(&marker(index)).unwrap();
    }
    wal.sync().unwrap();
    let mut seen = Vec::new();
    let (_, rec) = Wal::open_choosing(d.clone(), small(), |markers| {
        seen = markers.iter().map(|m| m.index).collect();
        Ok(Some(4))
    })
    .unwrap();
    assert_eq!(seen, [4, 8]);
    assert_eq!((rec.snapshot.index, rec.entries), (4, entries(5..=10, 1)));
    let (_, rec) = Wal::open_choosing(d.clone(), small(), |_| Ok(None)).unwrap();
    assert_eq!(rec.snapshot.index, 8);
    let refused = Wal::open_choosing(d.clone(), small(), |_| {
        Err(WalError::InvalidArgument("no snapshot wanted".into()))
    });
    assert!(matches!(refused, Err(WalError::InvalidArgument(m)) if m == "no snapshot wanted"));
}

#[test]
fn a_torn_tail_is_cut_and_kept_as_broken() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=3, 1), None).unwrap();
    wal.sync().unwrap();
    let name = wal.segment_names().pop().unwrap();
    let data = d.read_all(&name).unwrap();
    let end = data.iter().rposition(|b| *b != 0).unwrap();
    // Tear the last record: zero its last bytes.
    let f = d.open(&name).unwrap();
    d.write_at(&f, end as u64 - 9, &[0; 10]).unwrap();
    d.sync(&f).unwrap();
    let (mut wal, rec) = Wal::open(d.clone(), small()).unwrap();
    assert_eq!(rec.entries, entries(1..=2, 1));
    assert!(d.list().unwrap().contains(&format!("{name}.broken")));
    wal.append(&entries(3..=4, 2), None).unwrap();
    wal.sync().unwrap();
    d.crash();
    let rec = recover(&d).unwrap();
    assert_eq!(rec.entries.len(), 4);
    assert_eq!(rec.entries[3].term, 2);
}

#[test]
fn corruption_in_a_sealed_segment_names_file_and_offset() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=100, 1), None).unwrap();
    wal.sync().unwrap();
    let first = wal.segment_names()[0].clone();
    d.flip_bit(&first, 8 * 200 + 3).unwrap();
    let err = recover(&d).unwrap_err();
    match &err {
        WalError::Corrupt { file, offset, .. } => {
            assert_eq!((file.as_str(), *offset / 8), (first.as_str(), *offset / 8))
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains(&first), "{err}");
}

#[test]
fn corruption_before_a_later_write_of_the_last_segment_is_an_error() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=5, 1), None).unwrap();
    wal.sync().unwrap();
    let name = wal.segment_names().pop().unwrap();
    let second_unit_at = keel_wal::recovery::scan(&d, None).unwrap().tail.valid_end;
    wal.append(&entries(6..=7, 1), None).unwrap();
    wal.sync().unwrap();
    drop(wal);
    let intact = d.read_all(&name).unwrap();
    d.flip_bit(&name, 8 * 120).unwrap();
    assert!(matches!(
        Wal::open(d.clone(), small()),
        Err(WalError::Corrupt { .. })
    ));
    // Damage inside the last write unit, even with more of that unit after
    // it, is taken for a torn write: the log cannot tell it from a write
    // whose sectors reached the disk out of order (see `record::is_torn`).
    let f = d.open(&name).unwrap();
    d.write_at(&f, 0, &intact).unwrap();
    d.sync(&f).unwrap();
    d.flip_bit(&name, 8 * (second_unit_at + 20)).unwrap();
    let (_, rec) = Wal::open(d.clone(), small()).unwrap();
    assert_eq!(rec.entries.last().map(|e| e.index), Some(5));
}

#[test]
fn a_missing_or_foreign_segment_is_refused() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=200, 1), None).unwrap();
    wal.sync().unwrap();
    let names = wal.segment_names();
    assert!(names.len() >= 3);
    // A segment from another log with the same name breaks the CRC chain.
    let other = disk();
    let mut wal2 = Wal::create(
        other.clone(),
        small(),
        Metadata {
            cluster_id: 9,
            node_id: 9,
        },
    )
    .unwrap();
    wal2.append(&entries(1..=200, 1), None).unwrap();
    wal2.sync().unwrap();
    let foreign = other.read_all(&names[1]).unwrap();
    let f = d.open(&names[1]).unwrap();
    d.write_at(&f, 0, &foreign).unwrap();
    let err = recover(&d).unwrap_err();
    assert!(
        err.to_string().contains("crc chain broken") && err.to_string().contains(&names[1]),
        "{err}"
    );
    d.remove(&names[1]).unwrap();
    let err = recover(&d).unwrap_err();
    assert!(err.to_string().contains("missing segment"), "{err}");
}

#[test]
fn empty_directory_and_double_create_are_refused() {
    let d = disk();
    assert!(matches!(recover(&d), Err(WalError::Directory(_))));
    Wal::create(d.clone(), small(), META).unwrap();
    assert!(matches!(
        Wal::create(d.clone(), small(), META),
        Err(WalError::Directory(_))
    ));
    let bad = WalOptions {
        segment_size_bytes: 10,
        ..small()
    };
    assert!(matches!(
        Wal::create(disk(), bad, META),
        Err(WalError::InvalidArgument(_))
    ));
}

#[test]
fn a_failed_fsync_poisons_the_log() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=2, 1), None).unwrap();
    d.fail_next_syncs(1);
    assert!(matches!(wal.sync(), Err(WalError::Io { op: "fsync", .. })));
    assert!(matches!(
        wal.append(&entries(3..=3, 1), None),
        Err(WalError::Poisoned(_))
    ));
    assert!(matches!(wal.sync(), Err(WalError::Poisoned(_))));
}

#[test]
fn a_full_disk_is_reported_and_synced_data_kept() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=5, 1), None).unwrap();
    wal.sync().unwrap();
    d.set_capacity_bytes(4096 + 1024);
    let mut result = Ok(Ticket(0));
    for i in 6..=500 {
        result = wal.append(&[entry(i, 1)], None).and_then(|_| wal.sync());
        if result.is_err() {
            break;
        }
    }
    let err = result.unwrap_err();
    assert!(err.is_storage_full(), "{err}");
    d.crash();
    d.set_capacity_bytes(u64::MAX);
    let rec = recover(&d).unwrap();
    assert!(rec.entries.len() >= 5);
    assert_eq!(rec.entries[..5], entries(1..=5, 1)[..]);
}

/// A full disk found while cutting a segment leaves the log usable: the
/// half-made segment is removed, and once space is freed the same batch is
/// appended again (entries already written are overwritten) and recovers
/// exactly once, in order.
#[test]
fn a_full_disk_at_a_cut_leaves_the_log_usable_for_a_retry() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    wal.append(&entries(1..=5, 1), None).unwrap();
    wal.sync().unwrap();
    d.set_capacity_bytes(4096 + 1024);
    let hs = HardState {
        term: 1,
        vote: 7,
        commit: 3,
    };
    let mut failed_at = None;
    for first in (6..=400).step_by(4) {
        let batch = entries(first..=first + 3, 1);
        match wal.append(&batch, Some(&hs)).and_then(|_| wal.sync()) {
            Ok(_) => {}
            Err(err) => {
                assert!(err.is_storage_full(), "{err}");
                failed_at = Some(first);
                break;
            }
        }
    }
    let first = failed_at.expect("the disk never filled up");
    assert!(!wal.is_poisoned());
    assert!(
        d.list().unwrap().iter().all(|name| !name.ends_with(".tmp")),
        "{:?}",
        d.list().unwrap()
    );
    // Still full: the retry fails the same way, still without poisoning.
    let batch = entries(first..=first + 3, 1);
    assert!(wal.append(&batch, Some(&hs)).unwrap_err().is_storage_full());
    assert!(!wal.is_poisoned());
    d.set_capacity_bytes(u64::MAX);
    wal.append(&batch, Some(&hs)).unwrap();
    wal.append(&entries(first + 4..=first + 5, 1), None)
        .unwrap();
    wal.sync().unwrap();
    assert!(wal.segment_names().len() >= 2);
    d.crash();
    let rec = recover(&d).unwrap();
    assert_eq!(rec.entries, entries(1..=first + 5, 1));
    assert_eq!(rec.hard_state, hs);
}

/// Zeros are written one chunk ahead of the last record (so fsyncs of
/// group commits do not convert fallocated extents): once per chunk, not
/// per flush, so the log writes at most its own bytes plus one chunk, plus
/// the block each sync rewrites (log writes cover whole blocks).
#[test]
fn the_segment_is_zero_filled_a_chunk_ahead_of_the_records() {
    let d = disk();
    let options = WalOptions {
        segment_size_bytes: 8 * ZERO_FILL_BYTES,
        write_buffer_bytes: 4096,
        ..WalOptions::default()
    };
    let mut wal = Wal::create(d.clone(), options, META).unwrap();
    let before = d.stats().written_bytes;
    wal.append(&entries(1..=1, 1), None).unwrap();
    wal.sync().unwrap();
    let first = d.stats().written_bytes - before;
    assert!(first >= ZERO_FILL_BYTES - 4096, "{first}");
    let (mut log_bytes, mut syncs) = (0, 1);
    for i in 2..=40_000 {
        let e = entry(i, 1);
        log_bytes += e.data.len() as u64 + 40;
        wal.append(&[e], None).unwrap();
        if i % 16 == 0 {
            wal.sync().unwrap();
            syncs += 1;
        }
    }
    wal.sync().unwrap();
    let written = d.stats().written_bytes - before;
    assert!(log_bytes > 2 * ZERO_FILL_BYTES, "{log_bytes}");
    assert!(
        written <= 2 * log_bytes + ZERO_FILL_BYTES + (syncs + 1) * 2 * LOG_BLOCK_BYTES,
        "{written} for {log_bytes}"
    );
    d.crash();
    assert_eq!(recover(&d).unwrap().entries, entries(1..=40_000, 1));
}

#[test]
fn bad_entries_are_refused_without_writing_anything() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    assert!(matches!(
        wal.append(&entries(2..=2, 1), None),
        Err(WalError::InvalidArgument(_))
    ));
    assert!(matches!(
        wal.append(&[entry(1, 1), entry(3, 1)], None),
        Err(WalError::InvalidArgument(_))
    ));
    assert!(matches!(
        wal.append(&[entry(0, 1)], None),
        Err(WalError::InvalidArgument(_))
    ));
    assert_eq!(wal.appended_ticket(), Ticket(0));
    wal.append(&entries(1..=1, 1), None).unwrap();
    wal.sync().unwrap();
    assert_eq!(recover(&d).unwrap().entries, entries(1..=1, 1));
}

#[test]
fn sync_jobs_overlap_with_appends() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    let t1 = wal.append(&entries(1..=2, 1), None).unwrap();
    let job = wal.begin_sync().unwrap().unwrap();
    assert_eq!(job.ticket(), t1);
    // The next batch is appended while the fsync of the first is pending.
    let t2 = wal.append(&entries(3..=4, 1), None).unwrap();
    let outcome = job.run();
    assert!(outcome.is_ok());
    assert_eq!(wal.finish_sync(Some(outcome)).unwrap(), t1);
    assert!(wal.durable_ticket() < t2);
    assert_eq!(wal.sync().unwrap(), t2);
    assert!(wal.begin_sync().unwrap().is_none());
    assert_eq!(wal.finish_sync(None).unwrap(), t2);
}

/// The write-unit flag of each record in segment `name`, in order (see
/// `keel_wal::record::STARTS_WRITE_UNIT`).
fn unit_flags(d: &SimStorage, name: &str, sequence: u64) -> Vec<bool> {
    use keel_wal::record::{Decoded, decode, segment_tag};
    let data = d.read_all(name).unwrap();
    let (mut offset, mut crc, mut flags) = (0, 0, Vec::new());
    while let Decoded::Record(r) = decode(&data, offset, segment_tag(sequence), crc) {
        flags.push(r.starts_unit);
        (offset, crc) = (r.next_offset, r.crc);
    }
    flags
}

/// A record starts a write unit only if every byte before it was durable
/// when it was encoded: records written while an overlapping sync is still
/// out belong to that sync's unit, so a crash that loses sectors of the
/// first write but keeps the second reads as a torn tail.
#[test]
fn records_written_while_a_sync_is_out_do_not_start_a_unit() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    let opening = unit_flags(&d, &wal.segment_names()[0], 0).len();
    wal.append(&entries(1..=1, 1), None).unwrap();
    let first = wal.begin_sync().unwrap().unwrap();
    wal.append(&entries(2..=2, 1), None).unwrap();
    let second = wal.begin_sync().unwrap().unwrap();
    wal.finish_sync(Some(first.run())).unwrap();
    wal.finish_sync(Some(second.run())).unwrap();
    wal.append(&entries(3..=3, 1), None).unwrap();
    wal.sync().unwrap();
    let flags = unit_flags(&d, &wal.segment_names()[0], 0);
    assert_eq!(flags[opening..], [true, false, true]);
}

/// An exclusive sync job writes the records itself; the log refuses
/// appends, syncs and purges until its outcome is back, and a failed job
/// poisons it.
#[test]
fn an_exclusive_sync_job_holds_the_log_until_finished() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    let t1 = wal.append(&entries(1..=3, 1), None).unwrap();
    let job = wal.begin_exclusive_sync().unwrap().unwrap();
    assert_eq!(job.ticket(), t1);
    let held = |r: Result<_, WalError>| matches!(r, Err(WalError::InvalidArgument(_)));
    assert!(held(wal.append(&entries(4..=4, 1), None).map(|_| ())));
    assert!(held(wal.begin_sync().map(|_| ())));
    assert!(held(wal.purge(0).map(|_| ())));
    assert_eq!(wal.finish_sync(Some(job.run())).unwrap(), t1);
    assert!(wal.begin_exclusive_sync().unwrap().is_none());
    wal.append(&entries(4..=6, 1), None).unwrap();
    d.fail_next_syncs(1);
    let job = wal.begin_exclusive_sync().unwrap().unwrap();
    assert!(wal.finish_sync(Some(job.run())).is_err());
    assert!(wal.is_poisoned());
    d.crash();
    assert_eq!(recover(&d).unwrap().entries, entries(1..=3, 1));
    // A job dropped unrun took its records with it: the log refuses to go on.
    let (mut wal, _) = Wal::open(d.clone(), small()).unwrap();
    wal.append(&entries(4..=4, 1), None).unwrap();
    drop(wal.begin_exclusive_sync().unwrap().unwrap());
    assert!(wal.finish_sync(None).is_err());
    assert!(wal.is_poisoned());
}

/// Group commits on real files write whole blocks with direct I/O: many
/// small synced batches, across segment cuts and a reopen (whose first
/// write reads its head block back from the disk), recover in full.
#[test]
fn real_files_small_group_commits_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let opts = WalOptions {
        segment_size_bytes: 16 << 10,
        write_buffer_bytes: 1 << 20,
        ..WalOptions::default()
    };
    let mut wal = Wal::create(storage.clone(), opts.clone(), META).unwrap();
    let mut next = 1;
    for round in 0..300u64 {
        let batch = entries(next..=next + round % 7, 1);
        next += batch.len() as u64;
        wal.append(&batch, None).unwrap();
        wal.sync().unwrap();
        if round == 150 {
            drop(wal);
            let (reopened, rec) = Wal::open(storage.clone(), opts.clone()).unwrap();
            assert_eq!(rec.entries, entries(1..=next - 1, 1));
            wal = reopened;
        }
    }
    assert!(wal.segment_names().len() > 3);
    drop(wal);
    let (_, rec) = Wal::open(storage, opts).unwrap();
    assert_eq!(rec.entries, entries(1..=next - 1, 1));
    assert!(dir.path().read_dir().unwrap().all(|f| {
        let name = f.unwrap().file_name().into_string().unwrap();
        !name.ends_with(".broken")
    }));
}

#[test]
fn real_files_round_trip_with_mmap_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FsStorage::open(dir.path()).unwrap();
    let opts = real_files();
    let mut wal = Wal::create(storage.clone(), opts.clone(), META).unwrap();
    wal.append(
        &entries(1..=5000, 1),
        Some(&HardState {
            term: 1,
            vote: 7,
            commit: 1000,
        }),
    )
    .unwrap();
    wal.sync().unwrap();
    assert!(wal.segment_names().len() > 3);
    drop(wal);
    let (mut wal, rec) = Wal::open(storage.clone(), opts.clone()).unwrap();
    assert_eq!(rec.entries, entries(1..=5000, 1));
    assert_eq!(rec.hard_state.commit, 1000);
    wal.append_snapshot_marker(&marker(4000)).unwrap();
    wal.sync().unwrap();
    assert!(wal.purge(4000).unwrap() > 0);
    let (_, rec) = Wal::open(storage, opts).unwrap();
    assert_eq!(rec.entries, entries(4001..=5000, 1));
}

#[test]
fn appended_bytes_counts_every_record_from_open() {
    let d = disk();
    let mut wal = Wal::create(d.clone(), small(), META).unwrap();
    assert_eq!(wal.appended_bytes(), 0);
    let batch = entries(1..=20, 1);
    let data_bytes: u64 = batch.iter().map(|e| e.data.len() as u64).sum();
    wal.append(&batch, None).unwrap();
    let after_entries = wal.appended_bytes();
    assert!(
        after_entries > data_bytes,
        "{after_entries} bytes counted for {data_bytes} bytes of entry data"
    );
    wal.append_snapshot_marker(&marker(10)).unwrap();
    assert!(
        wal.appended_bytes() > after_entries,
        "the marker is counted"
    );
    wal.sync().unwrap();
    let (wal, _) = Wal::open(d, small()).unwrap();
    assert_eq!(wal.appended_bytes(), 0, "a reopened log counts afresh");
}
