//! Waiters for proposed requests: a client's proposal registers here under
//! its request id, and the node driver completes it with the [`ApplyResult`]
//! once the entry is applied (etcd `pkg/wait`).
//!
//! Request ids are unique per member: the low 16 bits of the member id in the
//! high 16 bits, a counter seeded from the clock below (etcd `idutil`), so an
//! id never matches a waiter of another member or of an earlier run.

use std::collections::BTreeMap;

use keel_kernel::apply::ApplyResult;
use tokio::sync::oneshot;

use crate::replica::ServerError;

/// The answer a waiter gets.
pub type Outcome = Result<ApplyResult, ServerError>;

/// Bits of a request id taken by the counter.
const COUNTER_BITS: u32 = 48;

/// Generates request ids: `(member_id & 0xffff) << 48 | counter`.
#[derive(Debug)]
pub struct RequestIds {
    prefix: u64,
    counter: u64,
}

impl RequestIds {
    /// Ids for `member_id`, the counter starting at `seed_ms << 8` (wall
    /// clock milliseconds at start, so a restart does not reuse recent ids).
    pub fn new(member_id: u64, seed_ms: u64) -> RequestIds {
        RequestIds {
            prefix: (member_id & 0xffff) << COUNTER_BITS,
            counter: (seed_ms << 8) & ((1 << COUNTER_BITS) - 1),
        }
    }

    /// The next id; never 0 (0 means "nobody waits").
    pub fn next_id(&mut self) -> u64 {
        self.counter = (self.counter + 1) & ((1 << COUNTER_BITS) - 1);
        let id = self.prefix | self.counter;
        if id == 0 { self.next_id() } else { id }
    }
}

/// Pending proposals keyed by request id, at most `waiters_max` at once.
#[derive(Debug)]
pub struct Proposals {
    waiters: BTreeMap<u64, oneshot::Sender<Outcome>>,
    waiters_max: usize,
    /// Waiters that ended without an apply result (see
    /// [`Proposals::failed_total`]).
    failed_total: u64,
}

impl Proposals {
    /// An empty registry holding at most `waiters_max` waiters.
    pub fn new(waiters_max: usize) -> Proposals {
        debug_assert!(waiters_max > 0, "at least one waiter must fit");
        Proposals {
            waiters: BTreeMap::new(),
            waiters_max,
            failed_total: 0,
        }
    }

    /// Registers a waiter for request `id`; the receiver gets the outcome.
    ///
    /// Errors: [`ServerError::TooManyRequests`] when `waiters_max` are
    /// waiting already (nothing is registered).
    pub fn register(&mut self, id: u64) -> Result<oneshot::Receiver<Outcome>, ServerError> {
        debug_assert!(id != 0, "request id 0 means nobody waits");
        if self.waiters.len() >= self.waiters_max {
            return Err(ServerError::TooManyRequests);
        }
        let (tx, rx) = oneshot::channel();
        let previous = self.waiters.insert(id, tx);
        debug_assert!(previous.is_none(), "request ids are unique");
        Ok(rx)
    }

    /// Completes the waiter of `id` if there is one; returns whether there
    /// was. An `Err` outcome counts as a failed proposal.
    pub fn complete(&mut self, id: u64, outcome: Outcome) -> bool {
        match self.waiters.remove(&id) {
            Some(tx) => {
                if outcome.is_err() {
                    self.failed_total += 1;
                }
                // The client may have given up (timeout); nothing to do then.
                let _ = tx.send(outcome);
                true
            }
            None => false,
        }
    }

    /// Forgets the waiter of `id` (its client timed out, or the proposal
    /// could not be queued); counts as a failed proposal.
    pub fn cancel(&mut self, id: u64) {
        if self.waiters.remove(&id).is_some() {
            self.failed_total += 1;
        }
    }

    /// Completes every waiter with `error` (leader change, shutdown,
    /// storage failure); each counts as a failed proposal.
    pub fn fail_all(&mut self, error: &ServerError) {
        self.failed_total += self.waiters.len() as u64;
        for (_, tx) in std::mem::take(&mut self.waiters) {
            let _ = tx.send(Err(error.clone()));
        }
    }

    /// Number of waiters.
    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    /// True when nobody waits.
    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Proposals that ended without an apply result since the member
    /// started: refused or dropped by Raft, failed at a leader change or
    /// storage failure, timed out (etcd's `proposals_failed_total`). A
    /// request the state machine applied and refused is not one.
    pub fn failed_total(&self) -> u64 {
        self.failed_total
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use keel_kernel::apply::{Response, ResponseHeader};

    fn result(id: u64) -> ApplyResult {
        ApplyResult {
            index: 7,
            term: 2,
            request_id: id,
            header: ResponseHeader::default(),
            result: Ok(Response::Done),
            events: Vec::new(),
            conf_change: None,
            local_changes: Vec::new(),
        }
    }

    #[test]
    fn ids_carry_the_member_prefix_and_never_repeat() {
        let mut ids = RequestIds::new(0xabcd_1234, 1_000);
        let a = ids.next_id();
        let b = ids.next_id();
        assert_ne!(a, b);
        assert_eq!(a >> 48, 0x1234);
        let mut other = RequestIds::new(0x5678, 1_000);
        assert_ne!(other.next_id() >> 48, a >> 48);
    }

    #[test]
    fn complete_reaches_only_the_matching_waiter() {
        let mut p = Proposals::new(4);
        let mut rx1 = p.register(1).unwrap();
        let mut rx2 = p.register(2).unwrap();
        assert!(p.complete(2, Ok(result(2))));
        assert!(!p.complete(3, Ok(result(3))), "unknown ids are ignored");
        assert_eq!(rx2.try_recv().unwrap().unwrap().request_id, 2);
        assert!(rx1.try_recv().is_err(), "waiter 1 still waits");
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn bounded_and_failed_together() {
        let mut p = Proposals::new(2);
        let mut rx1 = p.register(1).unwrap();
        let mut rx2 = p.register(2).unwrap();
        assert_eq!(p.register(3).unwrap_err(), ServerError::TooManyRequests);
        p.fail_all(&ServerError::ProposalDropped);
        assert_eq!(rx1.try_recv().unwrap(), Err(ServerError::ProposalDropped));
        assert_eq!(rx2.try_recv().unwrap(), Err(ServerError::ProposalDropped));
        assert!(p.is_empty());
        p.register(3).unwrap();
        p.cancel(3);
        assert!(p.is_empty());
        assert_eq!(p.failed_total(), 3, "two dropped, one canceled");
    }

    #[test]
    fn only_proposals_without_a_result_count_as_failed() {
        let mut p = Proposals::new(4);
        let _rx1 = p.register(1).unwrap();
        let _rx2 = p.register(2).unwrap();
        assert!(p.complete(1, Ok(result(1))));
        assert_eq!(p.failed_total(), 0);
        assert!(p.complete(2, Err(ServerError::NoLeader)));
        assert!(!p.complete(2, Err(ServerError::NoLeader)), "already done");
        p.cancel(9);
        assert_eq!(p.failed_total(), 1, "unknown ids count nothing");
    }
}
