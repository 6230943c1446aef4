//! Membership changes proposed by this member, waiting to be applied.
//!
//! A change is answered when an applied entry carries the same change
//! (accepted or refused by `keel_kernel::membership`), or failed when the
//! member loses its waiters (stop, storage failure, full disk).

use keel_kernel::raft::ConfChange;
use tokio::sync::oneshot;

use crate::replica::ServerError;

/// Membership changes waiting at once.
pub const CONF_CHANGES_MAX: usize = 16;

/// Where a membership change's outcome goes.
pub type ConfReply = oneshot::Sender<Result<(), ServerError>>;

/// The bounded set of waiting membership changes.
#[derive(Default)]
pub struct ConfWaiters {
    waiting: Vec<(ConfChange, ConfReply)>,
}

impl ConfWaiters {
    /// True when [`CONF_CHANGES_MAX`] changes wait already.
    pub fn is_full(&self) -> bool {
        self.waiting.len() >= CONF_CHANGES_MAX
    }

    /// Waits for `change` to be applied; the caller checked
    /// [`ConfWaiters::is_full`] first (a full set refuses the change with
    /// `TooManyRequests`).
    pub fn push(&mut self, change: ConfChange, reply: ConfReply) {
        if self.is_full() {
            let _ = reply.send(Err(ServerError::TooManyRequests));
            return;
        }
        self.waiting.push((change, reply));
    }

    /// Answers the waiter of `change`, if any, with `outcome`.
    pub fn complete(&mut self, change: &ConfChange, outcome: Result<(), ServerError>) {
        if let Some(position) = self.waiting.iter().position(|(c, _)| c == change) {
            let (_, reply) = self.waiting.swap_remove(position);
            let _ = reply.send(outcome);
        }
    }

    /// Answers every waiter with `err`.
    pub fn fail_all(&mut self, err: &ServerError) {
        for (_, reply) in self.waiting.drain(..) {
            let _ = reply.send(Err(err.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_kernel::raft::{ConfChangeSingle, ConfChangeType};

    fn change(node_id: u64) -> ConfChange {
        ConfChange {
            changes: vec![ConfChangeSingle {
                change_type: ConfChangeType::AddNode,
                node_id,
            }],
            ..ConfChange::default()
        }
    }

    #[test]
    fn the_matching_waiter_gets_the_outcome() {
        let mut waiters = ConfWaiters::default();
        let (tx1, mut rx1) = oneshot::channel();
        let (tx2, mut rx2) = oneshot::channel();
        waiters.push(change(1), tx1);
        waiters.push(change(2), tx2);
        waiters.complete(&change(2), Ok(()));
        assert_eq!(rx2.try_recv(), Ok(Ok(())));
        assert!(rx1.try_recv().is_err(), "the other change still waits");
        waiters.fail_all(&ServerError::Stopped);
        assert_eq!(rx1.try_recv(), Ok(Err(ServerError::Stopped)));
    }

    #[test]
    fn a_full_set_refuses_more_changes() {
        let mut waiters = ConfWaiters::default();
        let mut receivers = Vec::new();
        for id in 0..CONF_CHANGES_MAX as u64 {
            let (tx, rx) = oneshot::channel();
            waiters.push(change(id), tx);
            receivers.push(rx);
        }
        assert!(waiters.is_full());
        let (tx, mut rx) = oneshot::channel();
        waiters.push(change(99), tx);
        assert_eq!(rx.try_recv(), Ok(Err(ServerError::TooManyRequests)));
    }
}
