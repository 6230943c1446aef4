//! Keeps the WAL's next segment prepared off the driver (etcd's file
//! pipeline, [`keel_wal::PrepareJob`]): a segment cut then renames a ready
//! file into place instead of creating, preallocating and zero-filling a
//! 64 MiB file on the async workers while every proposal waits.

use keel_wal::{PrepareOutcome, Storage, Wal};
use tokio::sync::oneshot;
use tokio::sync::oneshot::error::TryRecvError;

/// The prepare job out, if any.
pub(super) struct SegmentPipeline<S: Storage> {
    pending: Option<oneshot::Receiver<PrepareOutcome<S>>>,
}

impl<S: Storage> SegmentPipeline<S> {
    /// A pipeline with no job out.
    pub fn new() -> SegmentPipeline<S> {
        SegmentPipeline { pending: None }
    }

    /// Hands a finished job's outcome to `wal`, then starts a job if the log
    /// wants one (after each cut, and at start). Never blocks. A failed job
    /// is logged: the next cut creates its segment itself.
    pub fn poll(&mut self, wal: &mut Wal<S>) {
        if let Some(pending) = &mut self.pending {
            match pending.try_recv() {
                Err(TryRecvError::Empty) => return,
                Ok(outcome) => {
                    if let Err(err) = wal.finish_prepare(outcome) {
                        tracing::warn!(%err, "preparing the next WAL segment failed; the cut will create it");
                    }
                }
                // The job panicked: the log keeps it out, so cuts create
                // their segments themselves from now on.
                Err(TryRecvError::Closed) => {
                    tracing::error!("the job preparing the next WAL segment died");
                }
            }
            self.pending = None;
        }
        if let Some(job) = wal.begin_prepare() {
            let (done, pending) = oneshot::channel();
            spawn_io(move || {
                let _ = done.send(job.run());
            });
            self.pending = Some(pending);
        }
    }
}

/// Runs `work` on tokio's blocking pool, detached.
#[cfg(not(madsim))]
fn spawn_io(work: impl FnOnce() + Send + 'static) {
    drop(tokio::task::spawn_blocking(work));
}

/// Runs `work` inline under madsim, whose simulated disk does not block
/// (and whose runs must stay deterministic).
#[cfg(madsim)]
fn spawn_io(work: impl FnOnce() + Send + 'static) {
    work();
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
        assert!(pipeline.pending.is_some());
        for _ in 0..5000 {
            pipeline.poll(&mut wal);
            if pipeline.pending.is_none() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(pipeline.pending.is_none(), "the job never finished");
        let names = disk.list().unwrap();
        assert!(names.iter().any(|n| n == NEXT_TEMP_NAME), "{names:?}");
        // Ready now: no other job until a cut.
        assert!(wal.begin_prepare().is_none());
    }
}
