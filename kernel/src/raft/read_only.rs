//! Linearizable reads without writing to the log: ReadIndex (Raft thesis
//! §6.4). The leader records its commit index for a request, confirms it is
//! still leader by a heartbeat round acknowledged by a quorum (the request
//! context rides on the heartbeats), then releases the read index. The
//! application serves the read once it has applied up to that index.

use super::NodeId;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A released read: the application may serve the read identified by
/// `request_ctx` once its applied index reaches `index`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadState {
    /// The read index (leader's commit index when the request arrived).
    pub index: u64,
    /// The context given to `read_index`.
    pub request_ctx: Bytes,
}

/// One ReadIndex request waiting for its heartbeat round.
#[derive(Clone, Debug)]
pub(crate) struct ReadIndexStatus {
    /// Node that asked (the leader itself or a follower).
    pub(crate) from: NodeId,
    /// Request context (unique per request across the cluster).
    pub(crate) ctx: Bytes,
    /// Commit index when the request arrived.
    pub(crate) index: u64,
    /// Voters that acknowledged the heartbeat round.
    pub(crate) acks: BTreeSet<NodeId>,
}

/// Pending ReadIndex requests in arrival order.
#[derive(Clone, Debug, Default)]
pub(crate) struct ReadOnly {
    pending: BTreeMap<Bytes, ReadIndexStatus>,
    queue: VecDeque<Bytes>,
}

impl ReadOnly {
    /// Records a request (the leader's own ack included); false if a request
    /// with the same context is already pending or `max_pending` is reached.
    pub(crate) fn add_request(
        &mut self,
        leader: NodeId,
        from: NodeId,
        ctx: Bytes,
        index: u64,
        max_pending: usize,
    ) -> bool {
        if self.pending.contains_key(&ctx) || self.queue.len() >= max_pending {
            return false;
        }
        let acks = BTreeSet::from([leader]);
        self.pending.insert(
            ctx.clone(),
            ReadIndexStatus {
                from,
                ctx: ctx.clone(),
                index,
                acks,
            },
        );
        self.queue.push_back(ctx);
        true
    }

    /// Records `id`'s heartbeat acknowledgement of `ctx`; returns the set of
    /// acknowledgers so far, or `None` for an unknown context.
    pub(crate) fn recv_ack(&mut self, id: NodeId, ctx: &[u8]) -> Option<&BTreeSet<NodeId>> {
        let status = self.pending.get_mut(ctx)?;
        status.acks.insert(id);
        Some(&status.acks)
    }

    /// Releases the request `ctx` and every request queued before it (a
    /// later heartbeat round confirms earlier requests too).
    pub(crate) fn advance(&mut self, ctx: &[u8]) -> Vec<ReadIndexStatus> {
        let Some(pos) = self.queue.iter().position(|c| c.as_ref() == ctx) else {
            return Vec::new();
        };
        self.queue
            .drain(..=pos)
            .filter_map(|c| self.pending.remove(&c))
            .collect()
    }

    /// Context of the newest pending request (re-sent with each heartbeat
    /// so a lost round is retried).
    pub(crate) fn last_pending_ctx(&self) -> Option<Bytes> {
        self.queue.back().cloned()
    }

    /// Drops every pending request (leadership changed).
    pub(crate) fn reset(&mut self) {
        self.pending.clear();
        self.queue.clear();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn advance_releases_earlier_requests_too() {
        let mut ro = ReadOnly::default();
        assert!(ro.add_request(1, 1, "a".into(), 5, 8));
        assert!(ro.add_request(1, 2, "b".into(), 6, 8));
        assert!(!ro.add_request(1, 2, "b".into(), 6, 8), "duplicate");
        assert_eq!(ro.recv_ack(2, b"b").map(|s| s.len()), Some(2));
        assert!(ro.recv_ack(2, b"zz").is_none());
        let done = ro.advance(b"b");
        assert_eq!(done.iter().map(|s| s.index).collect::<Vec<_>>(), vec![5, 6]);
        assert!(ro.last_pending_ctx().is_none());
    }

    #[test]
    fn bounded() {
        let mut ro = ReadOnly::default();
        assert!(ro.add_request(1, 1, "a".into(), 1, 1));
        assert!(!ro.add_request(1, 1, "b".into(), 1, 1));
    }
}
