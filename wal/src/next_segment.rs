//! The next segment, made ready before the cut needs it (etcd's file
//! pipeline).
//!
//! Creating a segment at the cut costs the caller a create, a preallocation,
//! an fsync, a rename and a directory fsync, and then the new file's first
//! zero-fill (which converts its first extents, so the fsync after it also
//! commits the file system's journal; see [`crate::zero_fill`]). A
//! [`PrepareJob`] does the expensive part ahead of time, on whatever thread
//! the owner of the log runs it: it creates [`NEXT_TEMP_NAME`], preallocates
//! it to the segment size, zero-fills its first chunk and fsyncs it. The cut
//! then only writes the opening records into it, fsyncs it, renames it into
//! place and fsyncs the directory: the order of [`crate::segment::create`],
//! so a segment under its final name still always starts with a durable
//! header.
//!
//! When a purge kept an old segment's file for reuse (see
//! [`crate::purge`]), the job renames that file to [`NEXT_TEMP_NAME`]
//! instead: it is already allocated and written throughout, so it needs no
//! preallocation and no zeros, and appends into it never change its extents.
//! Its old records stay behind the new ones; their segment tag tells
//! recovery they are not part of the log (see [`crate::record`]).
//!
//! The prepared file has no sequence or first index yet, so a job that
//! finishes after the cut it was meant for serves the next one. A crash
//! leaves at most a `*.wal.tmp` file, which opening the log removes.
//!
//! ```text
//! if let Some(job) = wal.begin_prepare() {   // when the log wants one
//!     let outcome = job.run();               // on a blocking thread
//!     wal.finish_prepare(outcome)?;          // a failure only means the
//! }                                          // cut creates the file itself
//! ```

use crate::error::{Result, WalError};
use crate::segment::SegmentName;
use crate::storage::Storage;
use crate::zero_fill;

/// Name of the prepared next segment (it ends in
/// [`crate::segment::TEMP_SUFFIX`], so opening a log removes a leftover).
pub const NEXT_TEMP_NAME: &str = "next.wal.tmp";

/// Where the log's next segment stands.
#[derive(Debug)]
pub(crate) enum NextSegment<F> {
    /// Nothing prepared and no job out: [`crate::Wal::begin_prepare`] hands
    /// out a job.
    Wanted,
    /// A job is out; [`crate::Wal::finish_prepare`] takes its outcome.
    Preparing,
    /// A prepared file waits for the cut.
    Ready(Prepared<F>),
    /// The last job failed: no other until the next cut (which creates its
    /// segment itself), so a full disk is not retried on every sync.
    Failed,
}

/// Makes the next segment ready: blocking I/O, touching only
/// [`NEXT_TEMP_NAME`], so it may run on another thread while the log is
/// appended to and synced. At most one is out per log.
#[derive(Debug)]
pub struct PrepareJob<S: Storage> {
    pub(crate) storage: S,
    pub(crate) size_bytes: u64,
    /// A purged segment's file to reuse, if the log kept one.
    pub(crate) recycled: Option<String>,
}

/// A file ready to become the next segment.
#[derive(Debug)]
pub(crate) struct Prepared<F> {
    pub(crate) file: F,
    /// Its first bytes hold zeros or old records: writing there changes no
    /// extent (see [`crate::zero_fill`]).
    pub(crate) written_bytes: u64,
}

/// Result of [`PrepareJob::run`], handed back to
/// [`crate::Wal::finish_prepare`].
#[derive(Debug)]
pub struct PrepareOutcome<S: Storage> {
    pub(crate) result: Result<Prepared<S::File>>,
}

impl<S: Storage> PrepareJob<S> {
    /// Renames the purged segment's file the log kept for reuse, if any and
    /// if it has the segment size, to [`NEXT_TEMP_NAME`]; otherwise creates
    /// [`NEXT_TEMP_NAME`] (replacing a leftover), preallocates it to the
    /// segment size, zero-fills its first chunk and fsyncs it. Blocking. On
    /// failure the half-made file is removed (best effort), so a full disk
    /// gets its space back.
    pub fn run(self) -> PrepareOutcome<S> {
        PrepareOutcome {
            result: self.prepared(),
        }
    }

    fn prepared(&self) -> Result<Prepared<S::File>> {
        if let Some(name) = &self.recycled
            && let Some(file) = reuse(&self.storage, name, self.size_bytes)?
        {
            return Ok(Prepared {
                file,
                written_bytes: self.size_bytes,
            });
        }
        let file = prepare(&self.storage, self.size_bytes)?;
        Ok(Prepared {
            file,
            written_bytes: zeroed_bytes(self.size_bytes),
        })
    }
}

impl<S: Storage> PrepareOutcome<S> {
    /// True if the next segment is ready.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Renames `recycled` to [`NEXT_TEMP_NAME`] and opens it: `None` if it is
/// gone or not `size_bytes` long (then [`prepare`] replaces it).
fn reuse<S: Storage>(storage: &S, recycled: &str, size_bytes: u64) -> Result<Option<S::File>> {
    match storage.rename(recycled, NEXT_TEMP_NAME) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        other => other.map_err(|e| WalError::io("rename", recycled, None, e))?,
    }
    let file = storage
        .open(NEXT_TEMP_NAME)
        .map_err(io_error("open", None))?;
    let len = storage.len(&file).map_err(io_error("stat", None))?;
    Ok((len == size_bytes).then_some(file))
}

fn prepare<S: Storage>(storage: &S, size_bytes: u64) -> Result<S::File> {
    // A file already at NEXT_TEMP_NAME is stale: a kept file `reuse`
    // renamed there but found of the wrong size, or a leftover of a job
    // that failed to clean up after itself.
    match storage.remove(NEXT_TEMP_NAME) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(io_error("remove", None)(e));
        }
        _ => {}
    }
    let file = storage
        .create(NEXT_TEMP_NAME)
        .map_err(io_error("create", None))?;
    let filled = fill(storage, &file, size_bytes);
    if filled.is_err() {
        let _ = storage.remove(NEXT_TEMP_NAME);
    }
    filled.map(|()| file)
}

/// Preallocates, zero-fills the first chunk and fsyncs `file`.
fn fill<S: Storage>(storage: &S, file: &S::File, size_bytes: u64) -> Result<()> {
    storage
        .preallocate(file, size_bytes)
        .map_err(io_error("preallocate", None))?;
    zero_fill::write_zeros(0, zeroed_bytes(size_bytes), |at, zeros| {
        storage.write_log_at(file, at, zeros)
    })
    .map_err(io_error("write", Some(0)))?;
    storage.sync(file).map_err(io_error("fsync", None))
}

/// Bytes at the start of a prepared file of `size_bytes` that hold zeros.
pub(crate) fn zeroed_bytes(size_bytes: u64) -> u64 {
    zero_fill::fill_end(0, size_bytes)
}

/// Turns the prepared `file` into segment `name` holding `opening` (already
/// framed records): writes them, fsyncs, renames the file into place and
/// fsyncs the directory; durable when this returns.
/// Errors: any storage failure, naming the file; the file is then removed
/// (best effort: under its final name if the rename happened).
pub(crate) fn install<S: Storage>(
    storage: &S,
    file: &S::File,
    name: &SegmentName,
    opening: &[u8],
) -> Result<()> {
    let final_name = name.file_name();
    write_and_rename(storage, file, &final_name, opening)?;
    storage.sync_dir().map_err(|e| {
        // Undo the rename so a later attempt (with another first index)
        // cannot leave two segments with the same sequence.
        let _ = storage.remove(&final_name);
        WalError::io("fsync directory", "", None, e)
    })
}

fn write_and_rename<S: Storage>(
    storage: &S,
    file: &S::File,
    final_name: &str,
    opening: &[u8],
) -> Result<()> {
    let written = storage
        .write_at(file, 0, opening)
        .map_err(io_error("write", Some(0)))
        .and_then(|()| storage.sync(file).map_err(io_error("fsync", None)))
        .and_then(|()| {
            storage
                .rename(NEXT_TEMP_NAME, final_name)
                .map_err(io_error("rename", None))
        });
    if written.is_err() {
        let _ = storage.remove(NEXT_TEMP_NAME);
    }
    written
}

fn io_error(op: &'static str, offset: Option<u64>) -> impl Fn(std::io::Error) -> WalError {
    move |e| WalError::io(op, NEXT_TEMP_NAME, offset, e)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::{SimConfig, SimStorage};

    fn name() -> SegmentName {
        SegmentName {
            sequence: 3,
            first_index: 70,
        }
    }

    #[test]
    fn a_prepared_file_is_allocated_zeroed_and_durable() {
        let disk = SimStorage::new(SimConfig::default());
        disk.create(NEXT_TEMP_NAME).unwrap(); // a failed job's leftover
        let job = PrepareJob {
            storage: disk.clone(),
            size_bytes: 8192,
            recycled: None,
        };
        assert!(job.run().is_ok());
        // The job leaves the name to the cut's directory fsync.
        assert!(disk.durable_content(NEXT_TEMP_NAME).is_none());
        disk.sync_dir().unwrap();
        let data = disk.durable_content(NEXT_TEMP_NAME).unwrap();
        assert_eq!(data.len(), 8192);
        assert!(data.iter().all(|b| *b == 0));
    }

    #[test]
    fn installing_writes_the_opening_and_renames_durably() {
        let disk = SimStorage::new(SimConfig::default());
        let file = prepare(&disk, 4096).unwrap();
        install(&disk, &file, &name(), b"opening!").unwrap();
        disk.crash();
        assert_eq!(disk.list().unwrap(), vec![name().file_name()]);
        let data = disk.read_all(&name().file_name()).unwrap();
        assert_eq!((&data[..8], data.len()), (&b"opening!"[..], 4096));
    }

    #[test]
    fn a_full_disk_fails_the_job_and_frees_the_file() {
        let disk = SimStorage::new(SimConfig {
            capacity_bytes: 100,
            ..SimConfig::default()
        });
        let outcome = PrepareJob {
            storage: disk.clone(),
            size_bytes: 4096,
            recycled: None,
        }
        .run();
        let err = outcome.result.unwrap_err();
        assert!(err.is_storage_full(), "{err}");
        assert!(err.to_string().contains(NEXT_TEMP_NAME), "{err}");
        assert!(disk.list().unwrap().is_empty());
    }

    #[test]
    fn a_failed_install_removes_the_file() {
        let disk = SimStorage::new(SimConfig::default());
        let file = prepare(&disk, 4096).unwrap();
        disk.fail_next_syncs(1);
        let err = install(&disk, &file, &name(), b"opening!").unwrap_err();
        assert!(err.to_string().contains("fsync"), "{err}");
        assert!(disk.list().unwrap().is_empty());
    }

    /// Runs a job reusing a durable `old.wal.free` of `len_bytes` old
    /// bytes for segments of 8 KiB; returns the disk and what it prepared.
    fn prepare_over_recycled(
        len_bytes: usize,
    ) -> (SimStorage, Prepared<crate::storage::sim::SimFile>) {
        let disk = SimStorage::new(SimConfig::default());
        let file = disk.create("old.wal.free").unwrap();
        disk.write_at(&file, 0, &vec![0xAB; len_bytes]).unwrap();
        disk.sync(&file).unwrap();
        disk.sync_dir().unwrap();
        let outcome = PrepareJob {
            storage: disk.clone(),
            size_bytes: 8192,
            recycled: Some("old.wal.free".to_string()),
        }
        .run();
        (disk, outcome.result.unwrap())
    }

    #[test]
    fn a_recycled_file_of_the_segment_size_is_reused_as_it_is() {
        let (disk, prepared) = prepare_over_recycled(8192);
        assert_eq!(prepared.written_bytes, 8192);
        assert_eq!(disk.list().unwrap(), [NEXT_TEMP_NAME]);
        // No zeros written: the old bytes are still there.
        let before = disk.stats();
        let data = disk.read_all(NEXT_TEMP_NAME).unwrap();
        assert!(data.iter().all(|b| *b == 0xAB));
        assert_eq!((before.written_bytes, before.creates), (8192, 1));
    }

    #[test]
    fn a_recycled_file_of_another_size_gives_way_to_a_new_one() {
        let (disk, prepared) = prepare_over_recycled(4096);
        assert_eq!(prepared.written_bytes, zeroed_bytes(8192));
        let data = disk.read_all(NEXT_TEMP_NAME).unwrap();
        assert_eq!(data.len(), 8192);
        assert!(data.iter().all(|b| *b == 0));
    }
}
