//! Snapshots in the driver: writing the state's snapshot file when due
//! (schedule: `snapshot_policy.rs`) from a copy-on-write clone of the
//! state, saving a leader's snapshot before installing it, and, once a file
//! is durable, marking it in the WAL, compacting the in-memory log, purging
//! WAL segments below it and removing the older snapshot files. One file is
//! written at a time, off the driver (`snapshot_saver.rs`).
//!
//! Retention: after a snapshot of its own is durable (file and WAL marker)
//! a member keeps only that file. Recovery loads the newest file with a
//! marker, and the WAL segments below it are purged, so an older file
//! could not be replayed forward anyway; followers are sent the newest.
//! While the next file is written, the newest durable one stays (a crash
//! then restarts from it). After a leader's snapshot is installed, the
//! files below the previous snapshot are removed (the previous one stays
//! until the next snapshot of this member's own).

use keel_kernel::apply::StateMachine;
use keel_kernel::raft::{MemoryStorage, Snapshot};
use keel_wal::{SnapshotFiles, SnapshotMarker, Storage, WalError};

use super::Driver;
use crate::blocking::run_blocking;
use crate::node::background::{BackgroundJob, JobState};
use crate::node::bootstrap::state_config;
use crate::node::disk_full::{DISK_FULL_RETRY_MS, is_retryable_full_disk};
use crate::node::settings::NodeSettings;
use crate::node::snapshot_policy::SnapshotPolicy;
use crate::node::snapshot_saver::{SaveResult, Saved, Saving, SnapshotSaver, save_and_map};
use crate::replica::AppliedEvents;

/// The driver's snapshot files, their writer and their schedule.
pub(super) struct SnapshotWork<S: Storage> {
    files: SnapshotFiles<S>,
    /// Writes snapshot files off the driver.
    saver: SnapshotSaver,
    /// Removes snapshot files no longer needed, off the driver (unlinking
    /// a file of hundreds of MiB takes the file system a while).
    remover: BackgroundJob<Result<usize, WalError>>,
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
            remover: BackgroundJob::new(),
            policy: SnapshotPolicy::new(
                settings.snapshot_count,
                settings.snapshot_catchup_entries,
                snapshot_index,
            ),
        }
    }
}

impl<S: Storage> Driver<S> {
    /// Persists a snapshot received from the leader: the file (normally
    /// written already by the transfer, and adopted as it is), then its WAL
    /// marker. The snapshot's data becomes the saved file, mapped in memory,
    /// so Raft keeps that (see `snapshot_saver.rs`).
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
        let previous = self.snapshots.policy.snapshot_index();
        let wal_bytes = self.wal.appended_bytes();
        self.snapshots.policy.taken(index, size_bytes, wal_bytes);
        self.remove_snapshot_files_below(previous);
        self.db_size.snapshotted(size_bytes);
        self.refresh_peers();
        self.shared.status().snapshots_installed += 1;
        tracing::info!(index, size_bytes, "installed snapshot from the leader");
    }

    /// When due (see `snapshot_policy.rs`): clones the applied state (cheap:
    /// the store's index is copy-on-write) under the state lock and starts
    /// encoding the clone into its file in the background; once a file is
    /// durable, finishes that snapshot (see [`Driver::finish_snapshot`]).
    /// One file is written at a time.
    pub(super) async fn maybe_snapshot(&mut self) -> Result<(), WalError> {
        if let Some(done) = self.snapshots.saver.try_finish() {
            self.finish_snapshot(done).await?;
        }
        self.poll_remover();
        if self.snapshots.saver.is_saving() {
            return Ok(());
        }
        if self.snapshots.policy.snapshot_size_bytes().is_none() {
            // Restarted: the newest snapshot is the one Raft holds.
            let raft_snapshot = keel_kernel::raft::Storage::snapshot(self.raw.storage());
            let size_bytes = raft_snapshot.map_or(0, |s| s.data.len() as u64);
            let wal_bytes = self.wal.appended_bytes();
            self.snapshots.policy.restored(size_bytes, wal_bytes);
        }
        let now_ms = self.shared.now_ms();
        let wal_bytes = self.wal.appended_bytes();
        let frozen = {
            let state = self.shared.read_state();
            if !self
                .snapshots
                .policy
                .is_due(state.applied_index(), wal_bytes, now_ms)
            {
                return Ok(());
            }
            state.clone()
        };
        let applied = frozen.applied_index();
        let term = match keel_kernel::raft::Storage::term(self.raw.storage(), applied) {
            Ok(term) => term,
            Err(err) => {
                tracing::warn!(%err, applied, "cannot snapshot: the applied entry's term is unknown");
                return Ok(());
            }
        };
        let marker = SnapshotMarker {
            index: applied,
            term,
            conf_state: self.raw.storage().conf_state().clone(),
        };
        let observer = self.settings.observer.clone();
        let files = &self.snapshots.files;
        self.snapshots.saver.start(files, frozen, marker, observer);
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
            size_bytes,
            elapsed,
        } = saved;
        self.settings.observer.snapshot_saved(elapsed);
        if !self.snapshots.policy.is_newer(index) {
            // A leader's newer snapshot was installed meanwhile.
            return Ok(());
        }
        // Raft keeps the snapshot for lagging followers, read from the file.
        let Some(data) = mapped else {
            // Without the mapped file Raft has nothing to send lagging
            // followers: the snapshot is not recorded (its file has no WAL
            // marker, so a restart passes it over) and is tried again later.
            tracing::warn!(file = %name, index, "snapshot file not mapped back; retrying later");
            let retry_at_ms = self.shared.now_ms().saturating_add(DISK_FULL_RETRY_MS);
            self.snapshots.policy.defer_until(retry_at_ms);
            return Ok(());
        };
        let conf_state = saving.marker.conf_state.clone();
        if let Err(err) = self
            .raw
            .storage_mut()
            .create_snapshot(index, conf_state, data)
        {
            tracing::warn!(%err, index, "cannot record the snapshot in the raft log");
            return Ok(());
        }
        self.db_size.snapshotted(size_bytes);
        self.wal.append_snapshot_marker(&saving.marker)?;
        self.sync_wal().await?;
        let wal_bytes = self.wal.appended_bytes();
        self.snapshots.policy.taken(index, size_bytes, wal_bytes);
        self.compact_log(index);
        self.purges.start(&mut self.wal, index)?;
        self.remove_snapshot_files_below(index);
        tracing::info!(index, size_bytes, file = %name, elapsed_ms = elapsed.as_millis() as u64, "snapshot taken");
        Ok(())
    }

    /// Starts removing the snapshot files below `index` in the background,
    /// unless a removal is still out (the next snapshot then removes what
    /// this one would have). Never blocks.
    fn remove_snapshot_files_below(&mut self, index: u64) {
        self.poll_remover();
        if self.snapshots.remover.is_out() || index == 0 {
            return;
        }
        let files = self.snapshots.files.clone();
        self.snapshots
            .remover
            .start(move || files.remove_older_than(index));
    }

    /// Takes a finished removal's outcome; a failure is logged (the files
    /// stay, and the next snapshot tries again).
    fn poll_remover(&mut self) {
        match self.snapshots.remover.try_take() {
            JobState::Idle | JobState::Running => {}
            JobState::Done(Ok(removed)) => {
                tracing::debug!(removed, "removed snapshot files older than the newest")
            }
            JobState::Done(Err(err)) => {
                tracing::warn!(%err, "removing old snapshot files failed; the next snapshot retries")
            }
            JobState::Died => tracing::error!("the job removing old snapshot files died"),
        }
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
