//! Purges the WAL segments a snapshot covers off the driver
//! ([`keel_wal::PurgeJob`]). Removing a written 64 MiB segment took this
//! project's CI disk 8.5-13 ms (the file system frees its extents in the
//! unlink); done inline, every proposal would wait that long once per
//! segment written. (The files the log keeps for reuse are renamed
//! instead, which is quick; see `WalOptions::recycled_segments_max`.)

use keel_wal::{PurgeOutcome, Storage, Wal, WalError};

use super::background::{BackgroundJob, JobState};

/// The purge job out, if any.
pub(super) struct PurgePipeline {
    job: BackgroundJob<PurgeOutcome>,
}

impl PurgePipeline {
    /// A pipeline with no job out.
    pub fn new() -> PurgePipeline {
        PurgePipeline {
            job: BackgroundJob::new(),
        }
    }

    /// Starts removing the segments wholly below `snapshot_index` (durable
    /// in a snapshot file), unless a purge is still out: the next snapshot
    /// then purges what this one would have. Never blocks.
    /// Errors: the log is poisoned or held by a sync job.
    pub fn start<S: Storage>(
        &mut self,
        wal: &mut Wal<S>,
        snapshot_index: u64,
    ) -> Result<(), WalError> {
        self.poll(wal);
        if self.job.is_out() {
            return Ok(());
        }
        if let Some(job) = wal.begin_purge(snapshot_index)? {
            self.job.start(move || job.run());
        }
        Ok(())
    }

    /// Hands a finished job's outcome to `wal`; never blocks. A failure is
    /// logged: the log keeps the segments the job could not remove, and the
    /// next purge retries them.
    pub fn poll<S: Storage>(&mut self, wal: &mut Wal<S>) {
        match self.job.try_take() {
            JobState::Idle | JobState::Running => {}
            JobState::Done(outcome) => match wal.finish_purge(outcome) {
                Ok(removed) => tracing::debug!(removed, "purged WAL segments below the snapshot"),
                Err(err) => {
                    tracing::warn!(%err, "purging WAL segments failed; the next snapshot retries")
                }
            },
            // The log keeps the job out, so nothing is purged from now on.
            JobState::Died => tracing::error!("the job purging WAL segments died"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use keel_kernel::raft::{Entry, EntryType};
    use keel_wal::{Metadata, SimConfig, SimStorage, SnapshotMarker, WalOptions};

    /// A log of 4 KiB segments holding entries 1..=300 and a snapshot at 250.
    fn log_with_snapshot(disk: &SimStorage) -> Wal<SimStorage> {
        let options = WalOptions {
            segment_size_bytes: 4096,
            write_buffer_bytes: 512,
            ..WalOptions::default()
        };
        let mut wal = Wal::create(disk.clone(), options, Metadata::default()).unwrap();
        for index in 1..=300 {
            let data = Bytes::from(vec![1; 100]);
            let entry_type = EntryType::Normal;
            let entry = Entry {
                term: 1,
                index,
                entry_type,
                data,
            };
            wal.append(&[entry], None).unwrap();
        }
        let marker = SnapshotMarker {
            index: 250,
            term: 1,
            ..SnapshotMarker::default()
        };
        wal.append_snapshot_marker(&marker).unwrap();
        wal.sync().unwrap();
        wal
    }

    async fn until_idle(pipeline: &mut PurgePipeline, wal: &mut Wal<SimStorage>) {
        for _ in 0..5000 {
            pipeline.poll(wal);
            if !pipeline.job.is_out() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        panic!("the purge job never finished");
    }

    #[tokio::test]
    async fn segments_below_the_snapshot_are_purged_in_the_background() {
        let disk = SimStorage::new(SimConfig::default());
        let mut wal = log_with_snapshot(&disk);
        let before = wal.segment_names();
        let mut pipeline = PurgePipeline::new();
        pipeline.start(&mut wal, 250).unwrap();
        assert!(pipeline.job.is_out());
        // A second snapshot while the job is out starts nothing.
        pipeline.start(&mut wal, 250).unwrap();
        until_idle(&mut pipeline, &mut wal).await;
        let after = wal.segment_names();
        assert!(after.len() < before.len(), "{before:?}");
        // The oldest files are kept for reuse as later segments.
        let names = disk.list().unwrap();
        let (kept, segments): (Vec<_>, Vec<_>) =
            names.into_iter().partition(|n| n.ends_with(".wal.free"));
        assert_eq!(segments, after);
        assert_eq!(kept.len(), WalOptions::default().recycled_segments_max);
    }

    #[tokio::test]
    async fn a_failed_purge_is_retried_by_the_next_one() {
        let disk = SimStorage::new(SimConfig::default());
        let mut wal = log_with_snapshot(&disk);
        let before = wal.segment_names();
        disk.refuse_removal(&before[0], true);
        let mut pipeline = PurgePipeline::new();
        pipeline.start(&mut wal, 250).unwrap();
        until_idle(&mut pipeline, &mut wal).await;
        assert_eq!(wal.segment_names(), before);
        disk.refuse_removal(&before[0], false);
        pipeline.start(&mut wal, 250).unwrap();
        until_idle(&mut pipeline, &mut wal).await;
        assert!(wal.segment_names().len() < before.len());
    }
}
