//! Purging the segments wholly below a snapshot, off the caller's thread.
//!
//! Removing a written 64 MiB segment took this project's CI disk (ext4)
//! 8.5-13 ms, because the file system frees the file's extents in the
//! unlink; the directory fsync after it took about 0.2 ms. A node driver
//! that purged inline would hold every proposal that long. So
//! [`crate::Wal::begin_purge`] takes the segments out of the log at once
//! and hands out a [`PurgeJob`]; the job removes the files, oldest first,
//! then fsyncs the directory, on whatever thread the owner runs it; and
//! [`crate::Wal::finish_purge`] takes its outcome.
//!
//! What is on disk stays a contiguous run of segments at every moment,
//! which recovery needs (a gap is corruption): removals go oldest first, at
//! most one job is out per log, and a removal that fails gives its segment
//! and every later one of the job back to the log, so the next purge
//! retries them first. A crash during a job leaves some of the oldest
//! segments, all below the snapshot, which recovery reads past.
//!
//! The first files of a job may be kept for reuse instead (at most
//! [`crate::WalOptions::recycled_segments_max`] in all): each is renamed
//! to [`SegmentName::recycled_name`], which recovery never reads, and a
//! later cut writes the next segment over it (see [`crate::next_segment`]).
//! A rename frees no extents, so it is quick, and the reused file needs no
//! zeros written ahead of the log.
//!
//! ```text
//! if let Some(job) = wal.begin_purge(snapshot_index)? {
//!     let outcome = job.run();            // on a blocking thread
//!     let removed = wal.finish_purge(outcome)?;
//! }
//! ```

use crate::error::{Result, WalError};
use crate::segment::SegmentName;
use crate::storage::Storage;

/// Removes segments that a snapshot covers: blocking I/O touching only
/// those files and the directory, so it may run on another thread while the
/// log is appended to, synced and cut. At most one is out per log.
#[derive(Debug)]
pub struct PurgeJob<S: Storage> {
    pub(crate) storage: S,
    /// The segments to remove, oldest first.
    pub(crate) segments: Vec<SegmentName>,
    /// How many of them (the oldest) to keep for reuse rather than remove.
    pub(crate) recycle: usize,
}

/// Result of [`PurgeJob::run`], handed back to [`crate::Wal::finish_purge`].
#[derive(Debug)]
pub struct PurgeOutcome {
    /// How many of the job's segments are gone from the log's files (the
    /// oldest ones): removed, or renamed to be kept for reuse.
    pub(crate) removed: usize,
    /// The job's segments that are still there, oldest first.
    pub(crate) left: Vec<SegmentName>,
    /// Names of the files kept for reuse.
    pub(crate) recycled: Vec<String>,
    /// The first failure: a removal, or the directory fsync after them.
    pub(crate) result: Result<()>,
}

impl<S: Storage> PurgeJob<S> {
    /// Names of the segment files the job removes, oldest first.
    pub fn file_names(&self) -> Vec<String> {
        self.segments.iter().map(SegmentName::file_name).collect()
    }

    /// Removes the job's segment files (or renames the first ones for
    /// reuse), oldest first, stopping at the first failure, then fsyncs the
    /// directory if anything was removed (blocking). A file that is already
    /// gone counts as removed.
    pub fn run(mut self) -> PurgeOutcome {
        let mut result = Ok(());
        let mut removed = 0;
        let mut recycled = Vec::new();
        for name in &self.segments {
            let file = name.file_name();
            let kept = (recycled.len() < self.recycle).then(|| name.recycled_name());
            let (op, done) = match &kept {
                Some(to) => ("rename", self.storage.rename(&file, to)),
                None => ("remove", self.storage.remove(&file)),
            };
            match done {
                Ok(()) => {
                    removed += 1;
                    recycled.extend(kept);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => removed += 1,
                Err(e) => {
                    result = Err(WalError::io(op, &file, None, e));
                    break;
                }
            }
        }
        if removed > 0
            && let Err(e) = self.storage.sync_dir()
            && result.is_ok()
        {
            result = Err(WalError::io("fsync directory", "", None, e));
        }
        let left = self.segments.split_off(removed);
        PurgeOutcome {
            removed,
            left,
            recycled,
            result,
        }
    }
}

impl PurgeOutcome {
    /// How many segment files the job removed or kept for reuse.
    pub fn removed(&self) -> usize {
        self.removed
    }

    /// True if every removal and the directory fsync succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::{SimConfig, SimStorage};

    fn name(sequence: u64) -> SegmentName {
        SegmentName {
            sequence,
            first_index: sequence * 10,
        }
    }

    fn disk_with(sequences: &[u64]) -> SimStorage {
        let disk = SimStorage::new(SimConfig::default());
        for &s in sequences {
            disk.create(&name(s).file_name()).unwrap();
        }
        disk.sync_dir().unwrap();
        disk
    }

    #[test]
    fn a_job_removes_its_segments_durably() {
        let disk = disk_with(&[1, 2, 3]);
        let job = PurgeJob {
            storage: disk.clone(),
            segments: vec![name(1), name(2)],
            recycle: 0,
        };
        assert_eq!(job.file_names(), [name(1).file_name(), name(2).file_name()]);
        let outcome = job.run();
        assert!(outcome.is_ok());
        assert_eq!((outcome.removed(), outcome.left.len()), (2, 0));
        disk.crash();
        assert_eq!(disk.list().unwrap(), [name(3).file_name()]);
    }

    #[test]
    fn a_missing_file_counts_as_removed() {
        let disk = disk_with(&[1, 3]);
        let outcome = PurgeJob {
            storage: disk.clone(),
            segments: vec![name(1), name(2), name(3)],
            recycle: 0,
        }
        .run();
        assert!(outcome.is_ok());
        assert_eq!(outcome.removed(), 3);
        assert!(disk.list().unwrap().is_empty());
    }

    #[test]
    fn a_failed_removal_stops_the_job_and_leaves_the_rest() {
        let disk = disk_with(&[1, 2, 3, 4]);
        let job = PurgeJob {
            storage: disk.clone(),
            segments: vec![name(1), name(2), name(3)],
            recycle: 0,
        };
        disk.refuse_removal(&name(2).file_name(), true);
        let outcome = job.run();
        let err = outcome.result.as_ref().unwrap_err().to_string();
        assert!(err.contains(&name(2).file_name()), "{err}");
        assert_eq!(outcome.removed(), 1);
        assert_eq!(outcome.left, [name(2), name(3)]);
        // What was removed was made durable: no gap after a crash.
        disk.crash();
        let expected: Vec<String> = [2, 3, 4].map(|s| name(s).file_name()).into();
        assert_eq!(disk.list().unwrap(), expected);
    }

    #[test]
    fn a_failed_directory_fsync_is_reported_after_the_removals() {
        let disk = disk_with(&[1, 2]);
        disk.fail_next_dir_syncs(1);
        let outcome = PurgeJob {
            storage: disk.clone(),
            segments: vec![name(1)],
            recycle: 0,
        }
        .run();
        assert!(!outcome.is_ok());
        assert_eq!(outcome.removed(), 1);
        let err = outcome.result.unwrap_err().to_string();
        assert!(err.contains("fsync directory"), "{err}");
    }

    #[test]
    fn a_job_keeps_its_oldest_segments_for_reuse_durably() {
        let disk = disk_with(&[1, 2, 3, 4]);
        let outcome = PurgeJob {
            storage: disk.clone(),
            segments: vec![name(1), name(2), name(3)],
            recycle: 2,
        }
        .run();
        assert!(outcome.is_ok());
        assert_eq!(outcome.removed(), 3);
        assert_eq!(
            outcome.recycled,
            [name(1).recycled_name(), name(2).recycled_name()]
        );
        disk.crash();
        let mut expected = vec![
            name(4).file_name(),
            name(1).recycled_name(),
            name(2).recycled_name(),
        ];
        expected.sort();
        assert_eq!(disk.list().unwrap(), expected);
    }
}
