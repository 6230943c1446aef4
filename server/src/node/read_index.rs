//! Batching linearizable reads into ReadIndex rounds (Raft thesis §6.4;
//! etcd `linearizableReadLoop`).
//!
//! Reads that arrive while a round is in flight wait for the next one, so any
//! number of concurrent reads costs one round. A round's context is the
//! member id followed by a round counter (16 bytes), unique across the
//! cluster. When the round's [`ReadState`](keel_kernel::raft::ReadState)
//! arrives its reads wait until the member has applied up to the read index.
//! A round that gets no answer within `round_ticks_max` ticks (lost message,
//! leader change) is retried with its reads.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::replica::ServerError;

/// What a waiting read is told: go ahead, or why not.
pub type ReadOutcome = Result<(), ServerError>;

/// A round sent to Raft and not yet answered.
#[derive(Debug)]
struct Round {
    ctx: Bytes,
    started_tick: u64,
    reads: Vec<oneshot::Sender<ReadOutcome>>,
}

/// Linearizable reads waiting for a ReadIndex round or for apply.
#[derive(Debug)]
pub struct ReadBatcher {
    member_id: u64,
    next_round: u64,
    reads_max: usize,
    round_ticks_max: u64,
    /// Reads waiting for the next round.
    pending: Vec<oneshot::Sender<ReadOutcome>>,
    in_flight: Option<Round>,
    /// Reads whose read index is known, waiting for apply, in index order.
    confirmed: VecDeque<(u64, Vec<oneshot::Sender<ReadOutcome>>)>,
    waiting: usize,
}

impl ReadBatcher {
    /// A batcher for `member_id` holding at most `reads_max` reads, retrying
    /// a round after `round_ticks_max` ticks without an answer.
    pub fn new(member_id: u64, reads_max: usize, round_ticks_max: u64) -> ReadBatcher {
        ReadBatcher {
            member_id,
            next_round: 1,
            reads_max,
            round_ticks_max: round_ticks_max.max(1),
            pending: Vec::new(),
            in_flight: None,
            confirmed: VecDeque::new(),
            waiting: 0,
        }
    }

    /// Queues a read for the next round.
    ///
    /// Errors: [`ServerError::TooManyRequests`] (told to the read) when
    /// `reads_max` reads are waiting.
    pub fn push(&mut self, read: oneshot::Sender<ReadOutcome>) {
        if self.waiting >= self.reads_max {
            let _ = read.send(Err(ServerError::TooManyRequests));
            return;
        }
        self.waiting += 1;
        self.pending.push(read);
    }

    /// Starts a round if reads are pending and none is in flight: returns
    /// the context to pass to `RawNode::read_index`.
    pub fn start_round(&mut self, now_tick: u64) -> Option<Bytes> {
        if self.in_flight.is_some() || self.pending.is_empty() {
            return None;
        }
        let mut ctx = Vec::with_capacity(16);
        ctx.extend_from_slice(&self.member_id.to_be_bytes());
        ctx.extend_from_slice(&self.next_round.to_be_bytes());
        self.next_round += 1;
        let ctx = Bytes::from(ctx);
        self.in_flight = Some(Round {
            ctx: ctx.clone(),
            started_tick: now_tick,
            reads: std::mem::take(&mut self.pending),
        });
        Some(ctx)
    }

    /// Records a released read state; reads of the matching round now wait
    /// for `index` to be applied. States of other (older) rounds are ignored.
    pub fn on_read_state(&mut self, ctx: &[u8], index: u64) {
        let matches = self.in_flight.as_ref().is_some_and(|r| r.ctx == ctx);
        if !matches {
            return;
        }
        if let Some(round) = self.in_flight.take() {
            match self.confirmed.back_mut() {
                Some((last, reads)) if *last >= index => reads.extend(round.reads),
                _ => self.confirmed.push_back((index, round.reads)),
            }
        }
    }

    /// Releases every read whose read index is at or below `applied_index`.
    pub fn release(&mut self, applied_index: u64) {
        while let Some((index, _)) = self.confirmed.front() {
            if *index > applied_index {
                break;
            }
            if let Some((_, reads)) = self.confirmed.pop_front() {
                self.waiting -= reads.len();
                for read in reads {
                    let _ = read.send(Ok(()));
                }
            }
        }
    }

    /// Puts the in-flight round's reads back in the queue if it has waited
    /// `round_ticks_max` ticks, or at once when `force` (leader change).
    pub fn retry_stale(&mut self, now_tick: u64, force: bool) {
        let stale = self.in_flight.as_ref().is_some_and(|r| {
            force || now_tick.saturating_sub(r.started_tick) >= self.round_ticks_max
        });
        if stale && let Some(round) = self.in_flight.take() {
            self.pending.extend(round.reads);
        }
    }

    /// Tells every waiting read `error` (no leader for long, shutdown).
    pub fn fail_all(&mut self, error: &ServerError) {
        let rounds = self.in_flight.take().map(|r| r.reads);
        let confirmed = std::mem::take(&mut self.confirmed)
            .into_iter()
            .flat_map(|(_, reads)| reads);
        for read in std::mem::take(&mut self.pending)
            .into_iter()
            .chain(rounds.into_iter().flatten())
            .chain(confirmed)
        {
            let _ = read.send(Err(error.clone()));
        }
        self.waiting = 0;
    }

    /// Reads waiting in any stage.
    pub fn waiting(&self) -> usize {
        self.waiting
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn read(b: &mut ReadBatcher) -> oneshot::Receiver<ReadOutcome> {
        let (tx, rx) = oneshot::channel();
        b.push(tx);
        rx
    }

    #[test]
    fn concurrent_reads_share_one_round_and_wait_for_apply() {
        let mut b = ReadBatcher::new(9, 100, 10);
        let mut r1 = read(&mut b);
        let mut r2 = read(&mut b);
        let ctx = b.start_round(0).unwrap();
        assert_eq!(&ctx[..8], &9u64.to_be_bytes());
        assert!(b.start_round(0).is_none(), "one round at a time");
        let mut r3 = read(&mut b);
        b.on_read_state(&ctx, 5);
        b.release(4);
        assert!(
            r1.try_recv().is_err(),
            "not applied up to the read index yet"
        );
        b.release(5);
        assert_eq!(r1.try_recv().unwrap(), Ok(()));
        assert_eq!(r2.try_recv().unwrap(), Ok(()));
        assert!(r3.try_recv().is_err(), "r3 came after the round started");
        let ctx2 = b.start_round(1).unwrap();
        assert_ne!(ctx, ctx2);
        b.on_read_state(&ctx2, 5);
        b.release(5);
        assert_eq!(r3.try_recv().unwrap(), Ok(()));
        assert_eq!(b.waiting(), 0);
    }

    #[test]
    fn unanswered_round_is_retried_and_old_answers_ignored() {
        let mut b = ReadBatcher::new(1, 100, 3);
        let mut r = read(&mut b);
        let old = b.start_round(0).unwrap();
        b.retry_stale(2, false);
        assert!(b.start_round(2).is_none(), "not stale yet");
        b.retry_stale(3, false);
        let new = b.start_round(3).unwrap();
        b.on_read_state(&old, 1);
        b.release(10);
        assert!(
            r.try_recv().is_err(),
            "the old round's answer is not ours any more"
        );
        b.on_read_state(&new, 2);
        b.release(2);
        assert_eq!(r.try_recv().unwrap(), Ok(()));
    }

    #[test]
    fn bounded_and_failable() {
        let mut b = ReadBatcher::new(1, 2, 3);
        let mut r1 = read(&mut b);
        let _ = b.start_round(0);
        let mut r2 = read(&mut b);
        let mut r3 = read(&mut b);
        assert_eq!(r3.try_recv().unwrap(), Err(ServerError::TooManyRequests));
        b.fail_all(&ServerError::NoLeader);
        assert_eq!(r1.try_recv().unwrap(), Err(ServerError::NoLeader));
        assert_eq!(r2.try_recv().unwrap(), Err(ServerError::NoLeader));
        assert_eq!(b.waiting(), 0);
    }
}
