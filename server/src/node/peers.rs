//! Outbound Raft traffic: one sender task per peer, fed by a bounded queue.
//!
//! Each task keeps one gRPC stream open to its peer (`keelpeerpb.Peer/Raft`)
//! and forwards the queue into it, reconnecting with exponential backoff
//! (50 ms up to 1 s) when the stream breaks. A full queue drops messages
//! (Raft retransmits) and reports the peer unreachable. Snapshot messages
//! travel on their own stream in chunks, and their fate is reported back so
//! the leader stops pausing the follower (etcd `ReportSnapshot`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use keel_kernel::raft::{Message, MessageType};
use tokio::sync::{Mutex, mpsc};

use super::removal::is_removed_status;
use crate::observe::Observer;
use crate::transport::TransportLimits;
use crate::transport::dial::PeerDialer;
use crate::transport::probe::probe_forever;
use crate::transport::send::{PeerSender, SendError};

/// Message groups queued per peer before messages are dropped.
pub const PEER_QUEUE_GROUPS_MAX: usize = 1024;
/// Most remotes (senders not in this member's membership) answered at once.
pub const REMOTES_MAX: usize = 16;
/// First reconnect delay.
const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// Longest reconnect delay.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What the peer tasks tell the node driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerEvent {
    /// The peer could not be reached (Raft slows down probing it).
    Unreachable(u64),
    /// A snapshot to the peer was delivered (`true`) or failed.
    SnapshotSent(u64, bool),
    /// The peer refused this member's messages: this member was removed
    /// from the cluster (see `removal.rs`).
    Removed(u64),
}

struct PeerQueue {
    url: String,
    tx: mpsc::Sender<Vec<Bytes>>,
    /// A remote: a sender this member does not know as a member (see
    /// [`Peers::add_remote`]).
    remote: bool,
}

/// The sender side of every peer of one member.
pub struct Peers {
    cluster_id: u64,
    member_id: u64,
    limits: TransportLimits,
    queues: BTreeMap<u64, PeerQueue>,
    events: mpsc::Sender<PeerEvent>,
    dialer: PeerDialer,
    observer: Observer,
    /// This member's first peer URL, announced to every peer.
    sender_peer_url: String,
}

impl Peers {
    /// No peers yet; tasks report to `events`, and the round trips their
    /// probes measure to `observer`.
    pub fn new(
        cluster_id: u64,
        member_id: u64,
        limits: TransportLimits,
        events: mpsc::Sender<PeerEvent>,
        observer: Observer,
    ) -> Peers {
        Peers {
            cluster_id,
            member_id,
            limits,
            queues: BTreeMap::new(),
            events,
            dialer: PeerDialer::plain(),
            observer,
            sender_peer_url: String::new(),
        }
    }

    /// Announces `url` (this member's first advertised peer URL) to every
    /// peer, so one that does not know this member yet answers it.
    pub fn with_sender_peer_url(mut self, url: String) -> Peers {
        self.sender_peer_url = url;
        self
    }

    /// True when messages to `id` have a queue (a member or a remote).
    pub fn knows(&self, id: u64) -> bool {
        self.queues.contains_key(&id)
    }

    /// Answers `id`, a sender this member does not know (it has not
    /// applied the change that added it, e.g. after a restart behind the
    /// cluster), at the peer URL it announced, until the next call to
    /// [`Peers::set_members`]; otherwise it could never acknowledge the
    /// entries that would teach it the new membership. etcd's rafthttp does
    /// the same (`Transport.AddRemote`, from the `X-PeerURLs` header).
    /// Ignored beyond [`REMOTES_MAX`] remotes.
    pub fn add_remote(&mut self, id: u64, url: &str) {
        let remotes = self.queues.values().filter(|q| q.remote).count();
        if id == self.member_id || self.queues.contains_key(&id) || remotes >= REMOTES_MAX {
            return;
        }
        tracing::info!(remote = %format!("{id:x}"), %url, "answering a sender this member does not know yet");
        self.start_task(id, url, true);
    }

    /// Dials peers through `dialer` (TLS for `https://` peer URLs).
    pub fn with_dialer(mut self, dialer: PeerDialer) -> Peers {
        self.dialer = dialer;
        self
    }

    /// Makes the set of peers `members` (id -> first peer URL, this member
    /// excluded): starts tasks for new peers or changed URLs, stops tasks of
    /// peers that left (dropping a queue ends its task). Remotes are
    /// dropped: one still unknown is added again at its next message.
    pub fn set_members(&mut self, members: &BTreeMap<u64, String>) {
        self.queues
            .retain(|id, queue| !queue.remote && members.get(id) == Some(&queue.url));
        for (&id, url) in members {
            if id == self.member_id || self.queues.contains_key(&id) {
                continue;
            }
            self.start_task(id, url, false);
        }
    }

    fn start_task(&mut self, id: u64, url: &str, remote: bool) {
        let (tx, rx) = mpsc::channel(PEER_QUEUE_GROUPS_MAX);
        let task = PeerTask {
            url: url.to_owned(),
            cluster_id: self.cluster_id,
            from: self.member_id,
            to: id,
            limits: self.limits,
            events: self.events.clone(),
            dialer: self.dialer.clone(),
            observer: self.observer.clone(),
            sender_peer_url: self.sender_peer_url.clone(),
        };
        tokio::spawn(task.run(Arc::new(Mutex::new(rx))));
        let url = url.to_owned();
        self.queues.insert(id, PeerQueue { url, tx, remote });
    }

    /// Queues `messages` for their destinations (in order per destination).
    /// Snapshot messages go out on their own stream. Returns the peers whose
    /// queue was full or unknown (report them unreachable).
    pub fn send(&mut self, messages: Vec<Message>) -> Vec<u64> {
        let mut groups: BTreeMap<u64, Vec<Bytes>> = BTreeMap::new();
        for message in messages {
            if message.msg_type == MessageType::Snapshot {
                self.send_snapshot(message);
                continue;
            }
            groups
                .entry(message.to)
                .or_default()
                .push(Bytes::from(message.encode()));
        }
        let mut unreachable = Vec::new();
        for (to, group) in groups {
            let delivered = self
                .queues
                .get(&to)
                .is_some_and(|queue| queue.tx.try_send(group).is_ok());
            if !delivered {
                unreachable.push(to);
            }
        }
        unreachable
    }

    fn send_snapshot(&self, mut message: Message) {
        let to = message.to;
        let events = self.events.clone();
        let (Some(queue), Some(snapshot)) = (self.queues.get(&to), message.snapshot.as_mut())
        else {
            // Raft keeps the follower paused until it hears the outcome of
            // every Snapshot message, so a failure is reported with an
            // awaited send (never dropped on a full channel).
            tokio::spawn(async move {
                let _ = events.send(PeerEvent::SnapshotSent(to, false)).await;
            });
            return;
        };
        let data = std::mem::take(&mut snapshot.data);
        let (index, term) = (snapshot.metadata.index, snapshot.metadata.term);
        let encoded = Bytes::from(message.encode());
        let (url, ids, limits) = (
            queue.url.clone(),
            (self.cluster_id, self.member_id, to),
            self.limits,
        );
        let dialer = self.dialer.clone();
        tokio::spawn(async move {
            let result = async {
                let mut sender = PeerSender::connect_with(&dialer, &url, ids, limits).await?;
                sender.send_snapshot(index, term, encoded, data).await
            }
            .await;
            let ok = match result {
                Ok(_) => true,
                Err(err) => {
                    tracing::warn!(to = %format!("{to:x}"), index, %err, "sending snapshot failed");
                    false
                }
            };
            if ok {
                tracing::info!(to = %format!("{to:x}"), index, "sent snapshot");
            }
            let _ = events.send(PeerEvent::SnapshotSent(to, ok)).await;
        });
    }
}

/// One peer's sender loop.
struct PeerTask {
    url: String,
    cluster_id: u64,
    from: u64,
    to: u64,
    limits: TransportLimits,
    events: mpsc::Sender<PeerEvent>,
    dialer: PeerDialer,
    observer: Observer,
    sender_peer_url: String,
}

impl PeerTask {
    async fn run(self, queue: Arc<Mutex<mpsc::Receiver<Vec<Bytes>>>>) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let ids = (self.cluster_id, self.from, self.to);
            match PeerSender::connect_with(&self.dialer, &self.url, ids, self.limits).await {
                Ok(sender) => {
                    let mut sender = sender.with_sender_peer_url(self.sender_peer_url.clone());
                    backoff = BACKOFF_MIN;
                    let probes = probe_forever(sender.clone(), self.to, self.observer.clone());
                    let stream = futures_util::stream::unfold(queue.clone(), |queue| async move {
                        let next = queue.lock().await.recv().await;
                        next.map(|group| (group, queue))
                    });
                    // Probes run on the same connection while it streams;
                    // `biased`: no random branch order, so simulations replay.
                    let streamed = tokio::select! {
                        biased;
                        streamed = sender.stream_raft(stream) => streamed,
                        never = probes => match never {},
                    };
                    match streamed {
                        // The queue was closed: this peer left or the node stopped.
                        Ok(_) => return,
                        Err(SendError::Rejected(status)) if is_removed_status(&status) => {
                            let _ = self.events.send(PeerEvent::Removed(self.to)).await;
                            return;
                        }
                        Err(err) => {
                            tracing::debug!(to = %format!("{:x}", self.to), %err, "peer stream broke");
                        }
                    }
                }
                Err(err) => {
                    tracing::debug!(to = %format!("{:x}", self.to), %err, "cannot reach peer");
                }
            }
            if self
                .events
                .send(PeerEvent::Unreachable(self.to))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF_MAX);
            // Messages queued while disconnected are stale: Raft resends.
            let mut rx = queue.lock().await;
            loop {
                match rx.try_recv() {
                    Ok(_) => continue,
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => return,
                }
            }
        }
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    fn peers() -> (Peers, mpsc::Receiver<PeerEvent>) {
        let (events, rx) = mpsc::channel(64);
        let peers = Peers::new(
            1,
            1,
            TransportLimits::default(),
            events,
            Observer::default(),
        );
        (peers, rx)
    }

    /// An unreachable URL: the tasks only retry in the background.
    fn url(id: u64) -> String {
        format!("http://127.0.0.1:{}", 1 + id)
    }

    #[tokio::test]
    async fn a_remote_is_answered_until_the_next_membership_change() {
        let (mut peers, _events) = peers();
        peers.set_members(&BTreeMap::from([(2, url(2))]));
        peers.add_remote(9, &url(9));
        assert!(peers.knows(9) && peers.knows(2));
        peers.add_remote(2, &url(99));
        assert_eq!(
            peers.queues[&2].url,
            url(2),
            "a member is not replaced by a remote"
        );
        peers.set_members(&BTreeMap::from([(2, url(2)), (3, url(3))]));
        assert!(!peers.knows(9), "remotes go at a membership change");
        assert!(peers.knows(3));
        peers.add_remote(1, &url(1));
        assert!(!peers.knows(1), "this member is never its own remote");
    }

    #[tokio::test]
    async fn remotes_are_bounded() {
        let (mut peers, _events) = peers();
        for id in 0..REMOTES_MAX as u64 + 5 {
            peers.add_remote(100 + id, &url(id));
        }
        let remotes = peers.queues.values().filter(|q| q.remote).count();
        assert_eq!(remotes, REMOTES_MAX);
    }
}
