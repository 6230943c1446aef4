//! Snapshots in the driver: writing the state's snapshot file every
//! `--snapshot-count` entries (schedule: `snapshot_policy.rs`), saving a
//! leader's snapshot before installing it, and, once a file is durable,
//! marking it in the WAL, compacting the in-memory log and purging WAL
//! segments below it. One file is written at a time, off the driver.

use bytes::Bytes;
use keel_kernel::apply::StateMachine;
use keel_kernel::raft::{MemoryStorage, Snapshot};
use keel_wal::{SnapshotFiles, SnapshotMarker, Storage, WalError};

use super::{Driver, run_blocking};
use crate::node::bootstrap::state_config;
use crate::node::disk_full::{DISK_FULL_RETRY_MS, is_retryable_full_disk};
use crate::node::settings::NodeSettings;
use crate::node::snapshot_buffer::SnapshotBuffer;
use crate::node::snapshot_policy::SnapshotPolicy;
use crate::node::snapshot_saver::{SaveResult, Saved, Saving, SnapshotSaver, save_and_map};
use crate::replica::AppliedEvents;

/// The driver's snapshot files, their writer and their schedule.
pub(super) struct SnapshotWork<S: Storage> {
    files: SnapshotFiles<S>,
    /// Writes snapshot files off the driver.
    saver: SnapshotSaver,
    /// Memory for the next snapshot's encoding, prepared off the driver.
    buffer: SnapshotBuffer,
    policy: SnapshotPolicy,
}

impl<S: Storage> SnapshotWork<S> {
    /// The snapshot work of a member whose newest snapshot is at
    /// `snapshot_index` (0: none).
    pub(super) fn new(
        files: SnapshotFiles<S>,
        settings: &NodeSettings,
        snapshot_index: u64,
    ) -> SnapshotWork<S> {
        SnapshotWork {
            files,
            saver: SnapshotSaver::new(),
            buffer: SnapshotBuffer::new(),
            policy: SnapshotPolicy::new(
                settings.snapshot_count,
                settings.snapshot_catchup_entries,
                snapshot_index,
            ),
        }
    }
}

impl<S: Storage> Driver<S> {
    /// Persists a snapshot received from the leader: the file, then its WAL
    /// marker. The snapshot's data becomes the saved file, mapped in memory,
    /// so Raft keeps that rather than the received copy (see
    /// `snapshot_saver.rs`).
    pub(super) async fn save_snapshot_file(
        &mut self,
        snapshot: &mut Snapshot,
    ) -> Result<(), WalError> {
        // One writer of snapshot files at a time, and markers in order.
        if let Some(done) = self.snapshots.saver.wait().await {
            self.finish_snapshot(done).await?;
        }
        let files = self.snapshots.files.clone();
        let to_save = snapshot.clone();
        let saved = run_blocking(move || save_and_map(&files, &to_save)).await?;
        self.settings.observer.snapshot_saved(saved.elapsed);
        if let Some(data) = saved.mapped {
            snapshot.data = data;
        }
        self.wal.append_snapshot_marker(&SnapshotMarker {
            index: snapshot.metadata.index,
            term: snapshot.metadata.term,
            conf_state: snapshot.metadata.conf_state.clone(),
        })?;
        Ok(())
    }

    /// Replaces the log and the state machine with a leader's snapshot.
    pub(super) fn install_snapshot(&mut self, snapshot: Snapshot) {
        let index = snapshot.metadata.index;
        match StateMachine::restore(state_config(&self.settings), &snapshot.data) {
            Ok(restored) => {
                let revision = restored.store().current_revision();
                self.shared.state.install(restored);
                // Watchers resume from the new store's history.
                let _ = self.shared.events.send(AppliedEvents {
                    revision,
                    events: Vec::new(),
                    restored: true,
                });
            }
            Err(err) => {
                tracing::error!(%err, index, "leader's snapshot does not decode");
                return;
            }
        }
        let size_bytes = snapshot.data.len() as u64;
        if let Err(err) = self.raw.storage_mut().apply_snapshot(snapshot) {
            tracing::warn!(%err, index, "snapshot older than the log");
        }
        self.snapshots.policy.taken(index);
        self.db_size.snapshotted(size_bytes);
        self.refresh_peers();
        self.shared.status().snapshots_installed += 1;
        tracing::info!(index, size_bytes, "installed snapshot from the leader");
    }

    /// When due (see `snapshot_policy.rs`): encodes the state, hands it to
    /// Raft (for followers that need it) and starts writing its file in the
    /// background; once a file is durable, finishes that snapshot (see
    /// [`Driver::finish_snapshot`]). One file is written at a time.
    pub(super) async fn maybe_snapshot(&mut self) -> Result<(), WalError> {
        if let Some(done) = self.snapshots.saver.try_finish() {
            self.finish_snapshot(done).await?;
        }
        if self.snapshots.saver.is_saving() {
            return Ok(());
        }
        let now_ms = self.shared.now_ms();
        let (applied, data) = {
            let state = self.shared.read_state();
            let applied = state.applied_index();
            if !self.snapshots.policy.is_due(applied, now_ms) {
                return Ok(());
            }
            // Encode into memory prepared off the driver (see
            // `snapshot_buffer.rs`); until it is ready, the next Ready asks again.
            let Some(buffer) = self.snapshots.buffer.take(|| state.snapshot_len_bytes()) else {
                return Ok(());
            };
            (applied, Bytes::from(state.snapshot_into(buffer)))
        };
        let conf_state = self.raw.storage().conf_state().clone();
        let size_bytes = data.len() as u64;
        match self
            .raw
            .storage_mut()
            .create_snapshot(applied, conf_state, data)
        {
            Ok(snapshot) => self.snapshots.saver.start(&self.snapshots.files, snapshot),
            Err(err) => tracing::warn!(%err, applied, "cannot snapshot"),
        }
        self.db_size.snapshotted(size_bytes);
        Ok(())
    }

    /// Once a snapshot file is durable: marks the snapshot in the WAL,
    /// compacts the in-memory log (keeping `snapshot_catchup_entries` for
    /// slow followers) and starts purging the WAL segments below it. A full
    /// disk that refused the file raises NOSPACE and the snapshot is tried
    /// again later.
    async fn finish_snapshot(
        &mut self,
        (saving, result): (Saving, SaveResult),
    ) -> Result<(), WalError> {
        let index = saving.marker.index;
        let saved = match result {
            Ok(saved) => saved,
            Err(err) => {
                if !is_retryable_full_disk(&err, &self.wal) {
                    return Err(err);
                }
                tracing::error!(%err, index, "disk full: no snapshot taken; NOSPACE alarm raised");
                self.shared.status().disk_full = true;
                let retry_at_ms = self.shared.now_ms() + DISK_FULL_RETRY_MS;
                self.snapshots.policy.defer_until(retry_at_ms);
                return Ok(());
            }
        };
        let Saved {
            name,
            mapped,
            elapsed,
        } = saved;
        self.settings.observer.snapshot_saved(elapsed);
        if let Some(data) = mapped {
            // Raft keeps the snapshot for lagging followers: from now on
            // it reads it from the file, and the heap copy is freed.
            self.raw.storage_mut().replace_snapshot_data(index, data);
        }
        if !self.snapshots.policy.is_newer(index) {
            // A leader's newer snapshot was installed meanwhile.
            return Ok(());
        }
        self.wal.append_snapshot_marker(&saving.marker)?;
        self.sync_wal().await?;
        self.snapshots.policy.taken(index);
        self.compact_log(index);
        self.purges.start(&mut self.wal, index)?;
        tracing::info!(index, size_bytes = saving.size_bytes, file = %name, "snapshot taken");
        Ok(())
    }

    /// Drops the in-memory log below a snapshot at `index`, keeping the
    /// catch-up entries.
    fn compact_log(&mut self, index: u64) {
        let first_index = first_index_or_zero(self.raw.storage());
        let Some(compact_to) = self.snapshots.policy.compact_to(index, first_index) else {
            return;
        };
        if let Err(err) = self.raw.storage_mut().compact(compact_to) {
            tracing::warn!(%err, compact_to, "cannot compact the raft log");
        }
    }
}

/// First index of the in-memory log, 0 if unknown.
fn first_index_or_zero(storage: &MemoryStorage) -> u64 {
    keel_kernel::raft::Storage::first_index(storage).unwrap_or(0)
}
