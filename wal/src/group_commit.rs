//! Group commit without threads: appends return a [`Ticket`]; one fsync makes
//! every append up to a ticket durable. The fsync is a [`SyncJob`] that can
//! run outside the lock guarding the [`crate::Wal`] (on another task, or a
//! blocking-pool thread in the server), so the next batch is encoded and
//! written while the current one is being fsynced:
//!
//! ```text
//! let job = wal.begin_sync()?;        // writes buffered records, no fsync
//! // release the lock; other appenders keep calling wal.append(..)
//! let outcome = job.map(|j| j.run()); // the fsync
//! wal.finish_sync(outcome)?;          // publishes the durable ticket
//! ```
//!
//! `begin_sync` writes through the page cache, which costs a copy and makes
//! the fsync write the pages back. An owner that appends nothing while the
//! job runs (the node driver) uses [`crate::Wal::begin_exclusive_sync`]
//! instead: the job then also writes the records, with direct I/O on real
//! files (see `storage/direct.rs`), and the log refuses appends until
//! `finish_sync`.

use crate::error::{Result, WalError};
use crate::storage::Storage;
use crate::zero_fill;

/// Position of an append in the order of appends (1, 2, 3, ...). An append is
/// durable once [`crate::Wal::durable_ticket`] is at least its ticket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Ticket(pub u64);

/// One pending fsync of the segment being written. Cheap to move to another
/// task; holds its own handle to the file.
#[derive(Debug)]
pub struct SyncJob<S: Storage> {
    pub(crate) storage: S,
    pub(crate) file: S::File,
    pub(crate) file_name: String,
    pub(crate) ticket: Ticket,
    /// The segment's sequence and how far into it the job makes the file
    /// durable (the log's end when the job was handed out).
    pub(crate) durable_end: (u64, u64),
    /// Records (and zeros ahead of them) the job writes before its fsync.
    pub(crate) write: Option<LogWrite>,
}

/// The write an exclusive [`SyncJob`] makes before its fsync: `records` at
/// `offset`, then zeros over `zeros` (see [`crate::zero_fill`]), with
/// [`Storage::write_log_at`].
#[derive(Debug)]
pub(crate) struct LogWrite {
    pub offset: u64,
    pub records: Vec<u8>,
    pub zeros: Option<(u64, u64)>,
}

/// Result of [`SyncJob::run`], handed back to [`crate::Wal::finish_sync`].
#[derive(Debug)]
pub struct SyncOutcome {
    pub(crate) ticket: Ticket,
    /// As [`SyncJob::durable_end`].
    pub(crate) durable_end: (u64, u64),
    pub(crate) result: Result<()>,
}

impl<S: Storage> SyncJob<S> {
    /// The ticket that becomes durable when this job succeeds.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// Performs the job's write, if any, then the fsync (blocking). Never
    /// touches the log's in-memory state, so it may run concurrently with
    /// appends (those of a [`crate::Wal::begin_sync`] job).
    pub fn run(self) -> SyncOutcome {
        let result = self.write().and_then(|()| {
            // Planted bug (off by default, for the simulator to find): the
            // batch is acknowledged as durable without its fsync.
            if cfg!(feature = "planted-bug-ack-before-fsync") {
                return Ok(());
            }
            self.storage
                .sync(&self.file)
                .map_err(|e| WalError::io("fsync", &self.file_name, None, e))
        });
        SyncOutcome {
            ticket: self.ticket,
            durable_end: self.durable_end,
            result,
        }
    }

    fn write(&self) -> Result<()> {
        let Some(write) = &self.write else {
            return Ok(());
        };
        let (storage, file) = (&self.storage, &self.file);
        let at_offset = |offset| move |e| WalError::io("write", &self.file_name, Some(offset), e);
        storage
            .write_log_at(file, write.offset, &write.records)
            .map_err(at_offset(write.offset))?;
        if let Some((from, to)) = write.zeros {
            zero_fill::write_zeros(from, to, |at, zeros| storage.write_log_at(file, at, zeros))
                .map_err(at_offset(from))?;
        }
        Ok(())
    }
}

impl SyncOutcome {
    /// The ticket the job covered.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// True if the fsync succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Ticket bookkeeping: appended ≥ written ≥ durable.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Tickets {
    /// Last ticket handed out.
    pub appended: Ticket,
    /// Last ticket whose records were handed to the storage (no fsync yet).
    pub written: Ticket,
    /// Last ticket known durable.
    pub durable: Ticket,
}

impl Tickets {
    pub fn next(&mut self) -> Ticket {
        self.appended = Ticket(self.appended.0 + 1);
        self.appended
    }

    pub fn mark_written(&mut self) {
        self.written = self.appended;
    }

    pub fn mark_durable(&mut self, ticket: Ticket) {
        debug_assert!(ticket <= self.written);
        self.durable = self.durable.max(ticket);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::storage::{SimConfig, SimStorage};

    #[test]
    fn tickets_advance_in_order_and_durable_never_goes_back() {
        let mut t = Tickets::default();
        assert_eq!((t.next(), t.next()), (Ticket(1), Ticket(2)));
        t.mark_written();
        t.mark_durable(Ticket(2));
        t.mark_durable(Ticket(1));
        assert_eq!((t.written, t.durable), (Ticket(2), Ticket(2)));
    }

    #[test]
    fn a_job_reports_the_failure_of_its_fsync() {
        let disk = SimStorage::new(SimConfig::default());
        let file = disk.create("f").unwrap();
        let job = |ticket| SyncJob {
            storage: disk.clone(),
            file: file.clone(),
            file_name: "f".into(),
            ticket,
            durable_end: (0, 0),
            write: None,
        };
        let ok = job(Ticket(3)).run();
        assert!(ok.is_ok() && ok.ticket() == Ticket(3));
        disk.fail_next_syncs(1);
        let failed = job(Ticket(4)).run();
        assert!(!failed.is_ok());
        assert!(failed.result.unwrap_err().to_string().contains("fsync f"));
    }
}
