//! Member-to-member transport over gRPC (`keelpeerpb.Peer`).
//!
//! Raft messages cross the wire as opaque byte strings encoded by keel-kernel,
//! batched per destination ([`batch`]); state-machine snapshots travel as
//! ordered, checksummed chunks ([`snapshot`]), which the receiver writes
//! into a file as they arrive ([`receive_snapshot`], [`inbox`]). The receive side
//! ([`receive::PeerService`]) checks cluster and member ids and the limits in
//! [`TransportLimits`], then hands what arrived to the node driver through a
//! bounded channel of [`Inbound`] items, so a slow driver slows its senders
//! down instead of growing a queue. The send side is [`send::PeerClient`],
//! dialing through [`dial::PeerDialer`] (TLS for `https://` peers).
//! Followers forward lease keep-alives and TTL queries to the leader
//! ([`lease`]). Each member probes the round trip to its peers ([`probe`]).

pub mod batch;
pub mod conf_change;
pub mod dial;
pub mod inbox;
pub mod lease;
pub mod probe;
pub mod receive;
pub mod receive_snapshot;
pub mod send;
#[cfg(madsim)]
pub mod sim_faults;
pub mod snapshot;

use bytes::Bytes;

/// Something a peer delivered, for the node driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// Raft messages from one peer, in the order it sent them.
    Raft {
        /// Sending member id.
        from: u64,
        /// Encoded Raft messages.
        messages: Vec<Bytes>,
        /// The peer URL the sender announced on its stream, if it did: a
        /// member that does not know the sender answers it there.
        sender_peer_url: Option<std::sync::Arc<str>>,
    },
    /// A complete snapshot whose size and checksum were verified, durable
    /// in the receiving member's snapshot directory.
    Snapshot(ReceivedSnapshot),
}

/// A state-machine snapshot received in full from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedSnapshot {
    /// Sending member id (the leader).
    pub from: u64,
    /// Raft index of the last entry the snapshot covers.
    pub index: u64,
    /// Raft term of that entry.
    pub term: u64,
    /// The encoded Raft message announcing the snapshot (keel-kernel encoding).
    pub message: Bytes,
    /// The snapshot bytes, mapped from the file the transfer wrote
    /// (file-backed pages, not a heap copy; see [`inbox`]).
    pub data: Bytes,
}

/// Bounds on what one member sends to or accepts from another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportLimits {
    /// Most Raft messages in one batch.
    pub batch_messages_max: usize,
    /// Target size of one batch in bytes; a single larger message travels alone.
    pub batch_size_bytes_max: usize,
    /// Largest single encoded Raft message accepted, in bytes.
    pub message_size_bytes_max: usize,
    /// Largest snapshot accepted, in bytes.
    pub snapshot_size_bytes_max: u64,
    /// Size of the snapshot chunks a sender cuts, in bytes.
    pub snapshot_chunk_size_bytes: usize,
}

impl Default for TransportLimits {
    /// 4096 messages or 4 MiB per batch, messages up to 16 MiB (well above
    /// etcd's 1.5 MiB request limit plus entry framing), snapshots up to 8 GiB
    /// (etcd's largest recommended backend) in 1 MiB chunks.
    fn default() -> Self {
        TransportLimits {
            batch_messages_max: 4096,
            batch_size_bytes_max: 4 * 1024 * 1024,
            message_size_bytes_max: 16 * 1024 * 1024,
            snapshot_size_bytes_max: 8 * 1024 * 1024 * 1024,
            snapshot_chunk_size_bytes: 1024 * 1024,
        }
    }
}

impl TransportLimits {
    /// Largest gRPC frame either side must accept under these limits: a full
    /// batch or one maximal message, plus room for protobuf framing.
    pub fn grpc_message_size_bytes_max(&self) -> usize {
        let payload = self.batch_size_bytes_max.max(self.message_size_bytes_max);
        let chunk = self
            .snapshot_chunk_size_bytes
            .saturating_add(self.message_size_bytes_max);
        // Each message costs at most 1 tag byte + 10 length bytes of framing.
        payload
            .max(chunk)
            .saturating_add(self.batch_messages_max.saturating_mul(11))
            .saturating_add(1024)
    }
}
