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

use crate::error::{Result, WalError};
use crate::storage::Storage;

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
}

/// Result of [`SyncJob::run`], handed back to [`crate::Wal::finish_sync`].
#[derive(Debug)]
pub struct SyncOutcome {
    pub(crate) ticket: Ticket,
    pub(crate) result: Result<()>,
}

impl<S: Storage> SyncJob<S> {
    /// The ticket that becomes durable when this job succeeds.
    pub fn ticket(&self) -> Ticket {
        self.ticket
    }

    /// Performs the fsync (blocking). Never touches the log's in-memory
    /// state, so it may run concurrently with appends.
    pub fn run(self) -> SyncOutcome {
        let result = self
            .storage
            .sync(&self.file)
            .map_err(|e| WalError::io("fsync", &self.file_name, None, e));
        SyncOutcome {
            ticket: self.ticket,
            result,
        }
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
        };
        let ok = job(Ticket(3)).run();
        assert!(ok.is_ok() && ok.ticket() == Ticket(3));
        disk.fail_next_syncs(1);
        let failed = job(Ticket(4)).run();
        assert!(!failed.is_ok());
        assert!(failed.result.unwrap_err().to_string().contains("fsync f"));
    }
}
