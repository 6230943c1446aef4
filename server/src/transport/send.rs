//! The send side of the peer transport: a gRPC client to one peer.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tonic::transport::Channel;

use super::TransportLimits;
use super::batch::{MessageTooLarge, split_into_batches};
use super::dial::{DialError, PeerDialer};
use super::snapshot::{SnapshotHeader, cut_chunks};
use crate::proto::keelpeerpb::peer_client::PeerClient;
use crate::proto::keelpeerpb::{ProbeRequest, RaftAck, RaftBatch, SnapshotAck};

/// Why sending to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The peer URL is not a valid endpoint or the connection failed.
    #[error("keel: cannot connect to peer {url}: {source}")]
    Connect {
        /// The peer URL.
        url: String,
        /// What went wrong.
        source: DialError,
    },
    /// The peer answered with an error status (it rejected the stream).
    #[error("keel: peer rejected the stream: {0}")]
    Rejected(#[from] tonic::Status),
    /// A message is too large to be carried.
    #[error(transparent)]
    TooLarge(#[from] MessageTooLarge),
}

/// A connection from member `from` to member `to` of one cluster.
#[derive(Debug, Clone)]
pub struct PeerSender {
    client: PeerClient<Channel>,
    cluster_id: u64,
    from: u64,
    to: u64,
    limits: TransportLimits,
    /// This member's peer URL, announced on the first batch of each Raft
    /// stream (empty: not announced).
    sender_peer_url: String,
}

impl PeerSender {
    /// Connects to a peer URL such as `http://10.0.0.2:2380` in the clear.
    ///
    /// Errors: [`SendError::Connect`] for a malformed URL or a failed connection.
    pub async fn connect(
        url: &str,
        cluster_id: u64,
        from: u64,
        to: u64,
        limits: TransportLimits,
    ) -> Result<PeerSender, SendError> {
        PeerSender::connect_with(&PeerDialer::plain(), url, (cluster_id, from, to), limits).await
    }

    /// Connects to a peer URL through `dialer` (TLS for `https://`);
    /// `ids` is (cluster id, sending member id, receiving member id).
    ///
    /// Errors: [`SendError::Connect`] for a malformed URL, a failed
    /// connection or TLS handshake.
    pub async fn connect_with(
        dialer: &PeerDialer,
        url: &str,
        (cluster_id, from, to): (u64, u64, u64),
        limits: TransportLimits,
    ) -> Result<PeerSender, SendError> {
        let channel = dialer
            .connect(url)
            .await
            .map_err(|source| SendError::Connect {
                url: url.to_owned(),
                source,
            })?;
        let client = PeerClient::new(channel)
            .max_decoding_message_size(limits.grpc_message_size_bytes_max())
            .max_encoding_message_size(limits.grpc_message_size_bytes_max());
        Ok(PeerSender {
            client,
            cluster_id,
            from,
            to,
            limits,
            sender_peer_url: String::new(),
        })
    }

    /// Announces `url` (this member's first advertised peer URL) on the
    /// first batch of every Raft stream, so a peer that has not applied
    /// this member's addition yet can answer it (see `RaftBatch`).
    pub fn with_sender_peer_url(mut self, url: String) -> PeerSender {
        self.sender_peer_url = url;
        self
    }

    /// Sends `messages` (encoded Raft messages, in order) on one stream, cut
    /// into batches within the limits, and waits for the peer's receipt.
    ///
    /// Errors: [`SendError::TooLarge`] before anything is sent if one message
    /// is over the limit; [`SendError::Rejected`] if the peer refused a batch.
    pub async fn send_raft(&mut self, messages: Vec<Bytes>) -> Result<RaftAck, SendError> {
        let batches = split_into_batches(messages, &self.limits)?;
        let (cluster_id, from, to) = (self.cluster_id, self.from, self.to);
        let stream = futures_util::stream::iter(batches).map(move |messages| RaftBatch {
            cluster_id,
            from,
            to,
            messages,
            sender_peer_url: String::new(),
        });
        Ok(self.client.raft(stream).await?.into_inner())
    }

    /// Streams groups of messages as they come (the node driver's per-peer
    /// queue), batching each group; ends when `groups` ends. A message over
    /// the size limit is dropped with a warning: Raft tolerates lost messages
    /// and the receiver would reject the whole stream.
    ///
    /// Errors: [`SendError::Rejected`] if the peer refused a batch or the
    /// connection broke.
    pub async fn stream_raft<S>(&mut self, groups: S) -> Result<RaftAck, SendError>
    where
        S: Stream<Item = Vec<Bytes>> + Send + 'static,
    {
        let (cluster_id, from, to, limits) = (self.cluster_id, self.from, self.to, self.limits);
        let batches = groups.flat_map(move |group| {
            let size_bytes_max = limits.message_size_bytes_max;
            let group: Vec<Bytes> = group
                .into_iter()
                .filter(|m| {
                    let fits = m.len() <= size_bytes_max;
                    if !fits {
                        tracing::warn!(
                            to,
                            size_bytes = m.len(),
                            "dropped raft message over the size limit"
                        );
                    }
                    fits
                })
                .collect();
            #[cfg(madsim)]
            let group = super::sim_faults::apply(group);
            let batches = split_into_batches(group, &limits).unwrap_or_default();
            futures_util::stream::iter(batches)
        });
        let mut announce = Some(self.sender_peer_url.clone());
        let stream = batches.map(move |messages| RaftBatch {
            cluster_id,
            from,
            to,
            messages,
            sender_peer_url: announce.take().unwrap_or_default(),
        });
        Ok(self.client.raft(stream).await?.into_inner())
    }

    /// Sends one snapshot (`message` is the encoded Raft message announcing
    /// it, `data` the state-machine snapshot) in chunks, and waits for the
    /// peer to confirm it received and verified every byte.
    ///
    /// Errors: [`SendError::Rejected`] if the peer refused the snapshot.
    pub async fn send_snapshot(
        &mut self,
        index: u64,
        term: u64,
        message: Bytes,
        data: Bytes,
    ) -> Result<SnapshotAck, SendError> {
        let header = SnapshotHeader {
            cluster_id: self.cluster_id,
            from: self.from,
            to: self.to,
            index,
            term,
        };
        let chunks = cut_chunks(header, message, data, self.limits.snapshot_chunk_size_bytes);
        let stream = futures_util::stream::iter(chunks);
        Ok(self.client.snapshot(stream).await?.into_inner())
    }

    /// Sends one probe and waits for its answer on this connection;
    /// returns the round trip.
    ///
    /// Errors: [`SendError::Rejected`] if the peer refused the probe (another
    /// cluster, a keel without probes) or the connection broke.
    pub async fn probe(&mut self) -> Result<std::time::Duration, SendError> {
        let request = ProbeRequest {
            cluster_id: self.cluster_id,
        };
        let started = tokio::time::Instant::now();
        self.client.probe(request).await?;
        Ok(started.elapsed())
    }
}
