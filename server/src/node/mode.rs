//! The driver's mode: serving, stalled on a full disk, or failed.
//!
//! One enum instead of two flags, so each place that must behave
//! differently asks one question: may Raft move ([`Mode::is_running`]), and
//! if not, how is a command refused ([`Mode::refusal`]).

use keel_kernel::apply::ApplyError;

use super::disk_full::Stalled;
use crate::replica::ServerError;

/// What the member's Raft node may do.
pub enum Mode {
    /// Ticks, peer messages and Readies are handled.
    Running,
    /// A Ready waits for disk space; Raft is frozen meanwhile (see
    /// `disk_full.rs`).
    Stalled(Box<Stalled>),
    /// Storage failed: the member stops taking part in Raft for good and
    /// answers every command with this error.
    Failed(ServerError),
}

/// How a command that cannot run is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// For proposals and membership changes.
    pub write: ServerError,
    /// For linearizable reads.
    pub read: ServerError,
}

impl Mode {
    /// True when Raft may tick, step peer messages and produce Readies.
    pub fn is_running(&self) -> bool {
        matches!(self, Mode::Running)
    }

    /// True once storage failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, Mode::Failed(_))
    }

    /// How a command is answered in this mode; `None` while running.
    ///
    /// A failed member answers everything with its failure. A stalled one
    /// refuses writes with etcd's "database space exceeded" (they were
    /// never proposed) and times reads out (Raft is frozen).
    pub fn refusal(&self) -> Option<Refusal> {
        match self {
            Mode::Running => None,
            Mode::Stalled(_) => Some(Refusal {
                write: ServerError::Apply(ApplyError::NoSpace),
                read: ServerError::Timeout,
            }),
            Mode::Failed(err) => Some(Refusal {
                write: err.clone(),
                read: err.clone(),
            }),
        }
    }

    /// Takes the stalled Ready out, leaving the member running.
    pub fn take_stalled(&mut self) -> Option<Stalled> {
        match std::mem::replace(self, Mode::Running) {
            Mode::Stalled(stalled) => Some(*stalled),
            other => {
                *self = other;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_kernel::raft::Ready;

    fn stalled() -> Mode {
        Mode::Stalled(Box::new(Stalled {
            ready: Ready::default(),
            retry_at_ms: 7,
        }))
    }

    #[test]
    fn running_refuses_nothing() {
        assert!(Mode::Running.is_running());
        assert_eq!(Mode::Running.refusal(), None);
    }

    #[test]
    fn stalled_refuses_writes_with_nospace_and_reads_with_timeout() {
        let refusal = stalled().refusal().expect("stalled refuses");
        assert_eq!(refusal.write, ServerError::Apply(ApplyError::NoSpace));
        assert_eq!(refusal.read, ServerError::Timeout);
    }

    #[test]
    fn failed_refuses_everything_with_its_failure() {
        let err = ServerError::Storage("gone".into());
        let mode = Mode::Failed(err.clone());
        assert!(mode.is_failed() && !mode.is_running());
        assert_eq!(
            mode.refusal(),
            Some(Refusal {
                write: err.clone(),
                read: err
            })
        );
    }

    #[test]
    fn take_stalled_only_takes_a_stall() {
        let mut mode = stalled();
        assert!(mode.take_stalled().is_some());
        assert!(mode.is_running());
        let mut failed = Mode::Failed(ServerError::Stopped);
        assert!(failed.take_stalled().is_none());
        assert!(failed.is_failed());
    }
}
