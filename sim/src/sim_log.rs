//! The event log as the simulation's tasks share it, stamped with
//! simulated time since the run started.

use std::sync::{Arc, Mutex, PoisonError};

use madsim::time::Instant;

use crate::event_log::EventLog;

/// Most entries a run's event log keeps.
pub const LOG_ENTRIES_MAX: usize = 2_000;

/// A handle to the run's event log; clones share it.
#[derive(Clone)]
pub struct SharedLog {
    log: Arc<Mutex<EventLog>>,
    start: Instant,
}

impl SharedLog {
    /// An empty log whose clock starts now.
    pub fn new() -> SharedLog {
        SharedLog {
            log: Arc::new(Mutex::new(EventLog::new(LOG_ENTRIES_MAX))),
            start: Instant::now(),
        }
    }

    /// Simulated nanoseconds since the run started.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Simulated milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        self.now_ns() / 1_000_000
    }

    /// Appends `text`, stamped now.
    pub fn push(&self, text: impl Into<String>) {
        let at_ms = self.now_ms();
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(at_ms, text);
    }

    /// A copy of the log so far.
    pub fn snapshot(&self) -> EventLog {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Default for SharedLog {
    fn default() -> SharedLog {
        SharedLog::new()
    }
}
