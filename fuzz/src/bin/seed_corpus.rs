//! Writes seed inputs for `wal_recovery` into `corpus/wal_recovery/` (run
//! from `fuzz/`): real logs of a few shapes (one segment, several segments,
//! overwrites, snapshot markers, a torn tail, a segment written over a
//! purged segment's file), split into the input format.

use bytes::Bytes;
use keel_fuzz::join_files;
use keel_kernel::raft::{Entry, EntryType, HardState};
use keel_wal::segment::SegmentName;
use keel_wal::storage::Storage;
use keel_wal::{Metadata, SimConfig, SimStorage, SnapshotMarker, Wal, WalOptions};

fn log(entries: u64, overwrite: bool, marker: bool, crash_seed: Option<u64>) -> Vec<u8> {
    let disk = SimStorage::new(SimConfig {
        seed: crash_seed.unwrap_or(0),
        ..SimConfig::default()
    });
    let options = WalOptions {
        segment_size_bytes: 4096,
        write_buffer_bytes: 1024,
        ..WalOptions::default()
    };
    let mut wal = Wal::create(
        disk.clone(),
        options,
        Metadata {
            cluster_id: 1,
            node_id: 2,
        },
    )
    .expect("create");
    let entry = |index, term| Entry {
        term,
        index,
        entry_type: EntryType::Normal,
        data: Bytes::from(vec![index as u8; 40]),
    };
    for i in 1..=entries {
        wal.append(
            &[entry(i, 1)],
            Some(&HardState {
                term: 1,
                vote: 2,
                commit: i,
            }),
        )
        .expect("append");
    }
    if overwrite && entries > 3 {
        wal.append(&[entry(entries - 2, 2)], None)
            .expect("overwrite");
    }
    if marker {
        wal.append_snapshot_marker(&SnapshotMarker {
            index: entries / 2,
            term: 1,
            ..SnapshotMarker::default()
        })
        .expect("marker");
    }
    if crash_seed.is_some() {
        wal.append(&[entry(wal.last_index() + 1, 3)], None)
            .expect("append");
        disk.crash();
    } else {
        wal.sync().expect("sync");
    }
    segments_of(&disk)
}

/// A log whose last segment was written over a purged segment's file, so
/// its records are followed by the old ones.
fn recycled_log() -> Vec<u8> {
    let disk = SimStorage::new(SimConfig::default());
    let options = WalOptions {
        segment_size_bytes: 8192,
        write_buffer_bytes: 512,
        ..WalOptions::default()
    };
    let mut wal = Wal::create(disk.clone(), options, Metadata::default()).expect("create");
    let entry = |index| Entry {
        term: 1,
        index,
        entry_type: EntryType::Normal,
        data: Bytes::from(vec![index as u8; 60]),
    };
    let append_to = |wal: &mut Wal<SimStorage>, last: u64| {
        while wal.last_index() < last {
            let next = wal.last_index() + 1;
            wal.append(&[entry(next)], None).expect("append");
        }
        wal.sync().expect("sync");
    };
    append_to(&mut wal, 400);
    wal.append_snapshot_marker(&SnapshotMarker {
        index: 390,
        term: 1,
        ..SnapshotMarker::default()
    })
    .expect("marker");
    wal.sync().expect("sync");
    wal.purge(390).expect("purge");
    let job = wal.begin_prepare().expect("a kept file to prepare");
    wal.finish_prepare(job.run()).expect("prepare");
    let segments = wal.segment_names().len();
    while wal.segment_names().len() == segments {
        let last = wal.last_index() + 1;
        append_to(&mut wal, last);
    }
    let last = wal.last_index() + 3;
    append_to(&mut wal, last);
    segments_of(&disk)
}

/// The disk's segments in the input format.
fn segments_of(disk: &SimStorage) -> Vec<u8> {
    let mut files = Vec::new();
    for name in disk.list().expect("list") {
        if let Some(segment) = SegmentName::parse(&name) {
            let mut content = disk.read_all(&name).expect("read").to_vec();
            // Trim the zero-filled preallocation to keep seeds small.
            let end = content.iter().rposition(|b| *b != 0).map_or(0, |p| p + 8) & !7;
            content.truncate(end.min(content.len()));
            files.push((segment, content));
        }
    }
    join_files(&files)
}

fn main() -> std::io::Result<()> {
    let dir = std::path::Path::new("corpus/wal_recovery");
    std::fs::create_dir_all(dir)?;
    let seeds = [
        log(3, false, false, None),
        log(40, true, false, None),
        log(60, false, true, None),
        log(80, true, true, None),
        log(10, false, false, Some(1)),
        log(50, true, true, Some(2)),
        recycled_log(),
    ];
    for (i, seed) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i}")), seed)?;
    }
    println!("wrote {} seeds to {}", seeds.len(), dir.display());
    Ok(())
}
