//! Writes state-machine snapshot files off the driver.
//!
//! When a snapshot is due the driver clones the applied state under its
//! lock: the store's index is copy-on-write (`keel-kernel`'s
//! `mvcc::index`), so that costs pointer copies per chunk of 128 keys, not
//! a copy of the state. A [`SnapshotSaver`] job then encodes the clone on
//! the blocking pool straight into the snapshot file through a bounded
//! buffer ([`SnapshotFiles::save_streaming`]): no put waits behind the
//! encoding, and no second copy of the state is ever held in memory (only
//! the chunks written while the job runs are copied, once each).
//!
//! Once the file is written, the job maps it back in memory
//! ([`SnapshotFiles::saved_data`]): Raft hands those mapped bytes to
//! lagging followers. The driver logs the snapshot's WAL marker once the
//! file is durable; a crash in between leaves a file without a marker,
//! which a restart passes over (`bootstrap.rs`).
//!
//! A leader's snapshot arrives already written: the peer transport streams
//! it into its file in the snapshot directory (`transport/inbox.rs`), and
//! [`save_and_map`] adopts that file instead of writing it again.

use std::time::Duration;

use bytes::Bytes;
use keel_kernel::apply::StateMachine;
use keel_kernel::raft::{Snapshot, SnapshotMetadata};
use keel_wal::{SnapshotFiles, SnapshotMarker, Storage, WalError};
use tokio::time::Instant;

use super::background::{BackgroundJob, JobState};
use crate::observe::Observer;

/// The snapshot being written, as its WAL marker will state it.
pub(super) struct Saving {
    /// Marker to log once the file is durable.
    pub marker: SnapshotMarker,
}

/// A snapshot file written: its name, and its data mapped back in memory.
pub(super) struct Saved {
    /// File name.
    pub name: String,
    /// The snapshot's data, read from the file on demand (`None` if mapping
    /// it failed: the caller keeps the copy it has, if any).
    pub mapped: Option<Bytes>,
    /// Size of the snapshot's data (the encoded state) in bytes.
    pub size_bytes: u64,
    /// How long encoding, writing, syncing and renaming the file took
    /// (mapping it back excluded).
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

    /// Starts encoding `frozen` (a clone of the applied state, taken at the
    /// index and term `marker` states) into a file of `files` on the
    /// blocking pool; `observer` hears when the encoding starts. The caller
    /// starts one only when none is being written.
    pub fn start<S: Storage>(
        &mut self,
        files: &SnapshotFiles<S>,
        frozen: StateMachine,
        marker: SnapshotMarker,
        observer: Observer,
    ) {
        debug_assert!(self.saving.is_none(), "one snapshot file at a time");
        let metadata = SnapshotMetadata {
            index: marker.index,
            term: marker.term,
            conf_state: marker.conf_state.clone(),
        };
        self.saving = Some(Saving { marker });
        let files = files.clone();
        self.job.start(move || {
            observer.snapshot_encoding(metadata.index);
            encode_and_save(&files, &frozen, &metadata)
        });
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

/// Streams `state`'s snapshot into a file of `files` described by
/// `metadata`, then maps its data back (blocking).
/// Errors: storage failures; a file that cannot be mapped back.
fn encode_and_save<S: Storage>(
    files: &SnapshotFiles<S>,
    state: &StateMachine,
    metadata: &SnapshotMetadata,
) -> SaveResult {
    let started = Instant::now();
    let encoder = state.snapshot_encoder();
    let size_bytes = encoder.len_bytes() as u64;
    let name = files.save_streaming(metadata, size_bytes, |out| encoder.write_to(out))?;
    let elapsed = started.elapsed();
    // The data must be readable without a heap copy: it becomes the Raft
    // snapshot that lagging followers are sent.
    let mapped = files.saved_data(&name, encoder.len_bytes())?;
    Ok(Saved {
        name,
        mapped: Some(mapped),
        size_bytes,
        elapsed,
    })
}

/// Makes a leader's `snapshot` durable in `files` and maps its data back
/// (blocking). Normally the transfer already wrote its file (the peer
/// transport receives snapshots into the snapshot directory, see
/// `transport/inbox.rs`): that file is adopted as it is, unread. A
/// snapshot that did not arrive that way, or whose file is not the expected
/// length, is written whole.
/// Errors: storage failures.
pub(super) fn save_and_map<S: Storage>(
    files: &SnapshotFiles<S>,
    snapshot: &Snapshot,
) -> SaveResult {
    let started = Instant::now();
    let (index, term) = (snapshot.metadata.index, snapshot.metadata.term);
    let size_bytes = snapshot.data.len() as u64;
    if files.contains(index, term)? {
        let name = keel_wal::snapshot_file::snapshot_name(term, index);
        match files.saved_data(&name, snapshot.data.len()) {
            Ok(mapped) => {
                return Ok(Saved {
                    name,
                    mapped: Some(mapped),
                    size_bytes,
                    elapsed: started.elapsed(),
                });
            }
            Err(err) => tracing::warn!(%err, "received snapshot file unusable; writing it again"),
        }
    }
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
        size_bytes,
        elapsed,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_kernel::apply::StateMachineConfig;
    use keel_kernel::membership::Cluster;
    use keel_kernel::raft::ConfState;
    use keel_wal::{SimConfig, SimStorage};

    fn state() -> StateMachine {
        StateMachine::new(StateMachineConfig::new(1000), Cluster::empty(7))
    }

    fn marker(index: u64) -> SnapshotMarker {
        SnapshotMarker {
            index,
            term: 3,
            conf_state: ConfState {
                voters: vec![1],
                ..ConfState::default()
            },
        }
    }

    #[tokio::test]
    async fn a_state_is_streamed_into_its_file_and_taken_once() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 2);
        let mut saver = SnapshotSaver::new();
        assert!(saver.try_finish().is_none());
        let state = state();
        saver.start(&files, state.clone(), marker(7), Observer::default());
        assert!(saver.is_saving());
        let (saving, result) = saver.wait().await.unwrap();
        assert_eq!((saving.marker.index, saving.marker.term), (7, 3));
        let saved = result.unwrap();
        assert_eq!(saved.size_bytes, state.snapshot().len() as u64);
        assert_eq!(disk.list().unwrap(), [saved.name]);
        assert_eq!(saved.mapped.as_deref(), Some(&state.snapshot()[..]));
        assert!(!saver.is_saving());
        assert!(saver.wait().await.is_none());
        let loaded = files.load().unwrap().unwrap();
        assert_eq!(loaded.metadata.conf_state, marker(7).conf_state);
        assert_eq!(loaded.data, state.snapshot());
    }

    #[tokio::test]
    async fn a_full_disk_is_reported() {
        let disk = SimStorage::new(SimConfig::default());
        disk.set_capacity_bytes(3);
        let files = SnapshotFiles::new(disk.clone(), 2);
        let mut saver = SnapshotSaver::new();
        saver.start(&files, state(), marker(7), Observer::default());
        let (_, result) = saver.wait().await.unwrap();
        assert!(result.err().unwrap().is_storage_full());
        assert!(disk.list().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_received_snapshot_file_is_adopted_unread() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 2);
        let metadata = SnapshotMetadata {
            index: 9,
            term: 2,
            ..SnapshotMetadata::default()
        };
        let mut receiver = files.receive(&metadata, 5).unwrap();
        receiver.write(b"state").unwrap();
        let (name, _) = receiver.commit().unwrap();
        let written = disk.list().unwrap();
        // Data the transfer did not write would be written again; the
        // adopted file keeps the received bytes.
        let snapshot = Snapshot {
            metadata,
            data: Bytes::from_static(b"other"),
        };
        let saved = save_and_map(&files, &snapshot).unwrap();
        assert_eq!(saved.name, name);
        assert_eq!(saved.mapped.as_deref(), Some(&b"state"[..]));
        assert_eq!(disk.list().unwrap(), written);
        // A file of another length is not adopted but rewritten.
        let longer = Snapshot {
            data: Bytes::from_static(b"longer state"),
            ..snapshot
        };
        let saved = save_and_map(&files, &longer).unwrap();
        assert_eq!(saved.mapped.as_deref(), Some(&b"longer state"[..]));
    }

    #[tokio::test]
    async fn a_leaders_snapshot_is_saved_whole_and_mapped_back() {
        let disk = SimStorage::new(SimConfig::default());
        let files = SnapshotFiles::new(disk.clone(), 2);
        let snapshot = Snapshot {
            metadata: SnapshotMetadata {
                index: 9,
                term: 2,
                ..SnapshotMetadata::default()
            },
            data: Bytes::from_static(b"state"),
        };
        let saved = save_and_map(&files, &snapshot).unwrap();
        assert_eq!(saved.mapped.as_deref(), Some(&b"state"[..]));
        assert_eq!(files.load().unwrap().unwrap(), snapshot);
    }
}
