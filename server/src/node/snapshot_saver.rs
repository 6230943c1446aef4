//! Writes state-machine snapshot files off the driver.
//!
//! Once the file is written, the job maps it back in memory
//! ([`SnapshotFiles::saved_data`]) so the driver can hand Raft the mapped
//! bytes and free the heap copy of the state: otherwise a member would hold
//! its state twice, once live and once encoded for lagging followers.
//!
//! A snapshot file holds the whole state: 324 MiB for 1M keys of 64 bytes
//! with 256-byte values, which this project's CI disk took 1.2-2.1 s to
//! write, fsync and rename (the longer runs also removed the oldest file
//! beyond the last five). Written inline, that long a stall would keep
//! every proposal waiting and stop the leader's heartbeats, so followers
//! would elect another leader. The driver hands the file to a
//! [`SnapshotSaver`] instead and logs the snapshot's WAL marker once the
//! file is durable; a crash in between leaves a file without a marker,
//! which a restart passes over (`bootstrap.rs`).

use std::time::Duration;

use bytes::Bytes;
use keel_kernel::raft::Snapshot;
use keel_wal::{SnapshotFiles, SnapshotMarker, Storage, WalError};
use tokio::time::Instant;

use super::background::{BackgroundJob, JobState};

/// The snapshot being written, as its WAL marker will state it.
pub(super) struct Saving {
    /// Marker to log once the file is durable.
    pub marker: SnapshotMarker,
    /// Size of the encoded state in bytes.
    pub size_bytes: u64,
}

/// A snapshot file written: its name, and its data mapped back in memory
/// (`None` if mapping it failed: the heap copy is kept then).
pub(super) struct Saved {
    /// File name.
    pub name: String,
    /// The snapshot's data, read from the file on demand.
    pub mapped: Option<Bytes>,
    /// How long writing, syncing and renaming the file took (mapping it
    /// back excluded).
    pub elapsed: Duration,
}

/// What a save ended with.
pub(super) type SaveResult = Result<Saved, WalError>;

/// At most one snapshot file being written.
pub(super) struct SnapshotSaver {
    job: BackgroundJob<SaveResult>,
    saving: Option<Saving>,
}

impl SnapshotSaver {
    /// No file being written.
    pub fn new() -> SnapshotSaver {
        SnapshotSaver {
            job: BackgroundJob::new(),
            saving: None,
        }
    }

    /// True while a file is being written (or written, not yet taken).
    pub fn is_saving(&self) -> bool {
        self.saving.is_some()
    }

    /// Starts writing `snapshot` into `files` on the blocking pool. The
    /// caller starts one only when none is being written.
    pub fn start<S: Storage>(&mut self, files: &SnapshotFiles<S>, snapshot: Snapshot) {
        debug_assert!(self.saving.is_none(), "one snapshot file at a time");
        let meta = &snapshot.metadata;
        self.saving = Some(Saving {
            marker: SnapshotMarker {
                index: meta.index,
                term: meta.term,
                conf_state: meta.conf_state.clone(),
            },
            size_bytes: snapshot.data.len() as u64,
        });
        let files = files.clone();
        self.job.start(move || save_and_map(&files, &snapshot));
    }

    /// The file written and the save's result, once it finished; never
    /// blocks.
    pub fn try_finish(&mut self) -> Option<(Saving, SaveResult)> {
        let state = self.job.try_take();
        self.take(state)
    }

    /// Waits until the file being written, if any, is done.
    pub async fn wait(&mut self) -> Option<(Saving, SaveResult)> {
        let state = self.job.wait().await;
        self.take(state)
    }

    fn take(&mut self, state: JobState<SaveResult>) -> Option<(Saving, SaveResult)> {
        let result = match state {
            JobState::Idle | JobState::Running => return None,
            JobState::Done(result) => result,
            JobState::Died => Err(WalError::InvalidArgument(
                "the job writing the snapshot file died".to_string(),
            )),
        };
        self.saving.take().map(|saving| (saving, result))
    }
}

/// Writes `snapshot` into `files` and maps its data back (blocking).
pub(super) fn save_and_map<S: Storage>(
    files: &SnapshotFiles<S>,
    snapshot: &Snapshot,
) -> SaveResult {
    let started = Instant::now();
    let name = files.save(snapshot)?;
    let elapsed = started.elapsed();
    let mapped = match files.saved_data(&name, snapshot.data.len()) {
        Ok(data) => Some(data),
        Err(err) => {
            tracing::warn!(%err, "cannot map the snapshot file back; keeping its data in memory");
            None
        }
    };
    Ok(Saved {
        name,
        mapped,
        elapsed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use keel_kernel::raft::SnapshotMetadata;
    use keel_wal::{SimConfig, SimStorage};

    fn snapshot(index: u64) -> Snapshot {
        Snapshot {
            metadata: SnapshotMetadata {
                index,
                term: 3,
                ..SnapshotMetadata::default()
            },
            data: Bytes::from_static(b"state"),
        }
    }

    #[tokio::test]
    async fn a_file_is_written_in_the_background_and_taken_once() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 2);
        let mut saver = SnapshotSaver::new();
        assert!(saver.try_finish().is_none());
        saver.start(&files, snapshot(7));
        assert!(saver.is_saving());
        let (saving, result) = saver.wait().await.unwrap();
        assert_eq!((saving.marker.index, saving.marker.term), (7, 3));
        assert_eq!(saving.size_bytes, 5);
        let saved = result.unwrap();
        assert_eq!(disk.list().unwrap(), [saved.name]);
        assert_eq!(saved.mapped.as_deref(), Some(&b"state"[..]));
        assert!(!saver.is_saving());
        assert!(saver.wait().await.is_none());
        assert_eq!(files.load().unwrap().unwrap(), snapshot(7));
    }

    #[tokio::test]
    async fn a_full_disk_is_reported() {
        let disk = SimStorage::new(SimConfig::default());
        disk.set_capacity_bytes(3);
        let files = SnapshotFiles::new(disk.clone(), 2);
        let mut saver = SnapshotSaver::new();
        saver.start(&files, snapshot(7));
        let (_, result) = saver.wait().await.unwrap();
        assert!(result.err().unwrap().is_storage_full());
        assert!(disk.list().unwrap().is_empty());
    }
}
