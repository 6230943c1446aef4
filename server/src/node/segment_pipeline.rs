//! Keeps the WAL's next segment prepared off the driver (etcd's file
//! pipeline, [`keel_wal::PrepareJob`]): a segment cut then renames a ready
//! file into place instead of creating, preallocating and zero-filling a
//! 64 MiB file on the async workers while every proposal waits.

use keel_wal::{PrepareOutcome, Storage, Wal};

use super::background::{BackgroundJob, JobState};

/// The prepare job out, if any.
pub(super) struct SegmentPipeline<S: Storage> {
    job: BackgroundJob<PrepareOutcome<S>>,
}

impl<S: Storage> SegmentPipeline<S> {
    /// A pipeline with no job out.
    pub fn new() -> SegmentPipeline<S> {
        SegmentPipeline {
            job: BackgroundJob::new(),
        }
    }

    /// Hands a finished job's outcome to `wal`, then starts a job if the log
    /// wants one (after each cut, and at start). Never blocks. A failed job
    /// is logged: the next cut creates its segment itself.
    pub fn poll(&mut self, wal: &mut Wal<S>) {
        match self.job.try_take() {
            JobState::Running => return,
            JobState::Idle => {}
            JobState::Done(outcome) => {
                if let Err(err) = wal.finish_prepare(outcome) {
                    tracing::warn!(%err, "preparing the next WAL segment failed; the cut will create it");
                }
            }
            // The log keeps the job out, so cuts create their segments
            // themselves from now on.
            JobState::Died => tracing::error!("the job preparing the next WAL segment died"),
        }
        if let Some(job) = wal.begin_prepare() {
            self.job.start(move || job.run());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use keel_wal::next_segment::NEXT_TEMP_NAME;
    use keel_wal::{Metadata, SimConfig, SimStorage, WalOptions};

    #[tokio::test]
    async fn the_next_segment_is_prepared_in_the_background() {
        let disk = SimStorage::new(SimConfig::default());
        let mut wal =
            Wal::create(disk.clone(), WalOptions::default(), Metadata::default()).unwrap();
        let mut pipeline = SegmentPipeline::new();
        pipeline.poll(&mut wal);
        assert!(pipeline.job.is_out());
        for _ in 0..5000 {
            pipeline.poll(&mut wal);
            if !pipeline.job.is_out() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(!pipeline.job.is_out(), "the job never finished");
        let names = disk.list().unwrap();
        assert!(names.iter().any(|n| n == NEXT_TEMP_NAME), "{names:?}");
        // Ready now: no other job until a cut.
        assert!(wal.begin_prepare().is_none());
    }
}
