//! The receive side of the peer transport: the `keelpeerpb.Peer` gRPC service.

use std::sync::Arc;

use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use keel_kernel::raft::ConfChange;

use super::conf_change::answer_conf_change;
use super::inbox::{FileInbox, SnapshotInbox};
use super::lease::{LeaseAuthority, answer_renew, answer_time_to_live};
use super::receive_snapshot::{SNAPSHOT_RECEIVES_MAX, receive_snapshot};
use super::{Inbound, TransportLimits};
use crate::proto::keelpeerpb::peer_server::{Peer, PeerServer};
use crate::proto::keelpeerpb::{
    ConfChangeForward, ConfChangeReply, LeaseRenewReply, LeaseRenewRequest, LeaseTimeToLiveReply,
    LeaseTimeToLiveRequest, MembersReply, MembersRequest, PeerMember, ProbeReply, ProbeRequest,
    RaftAck, RaftBatch, SnapshotAck, SnapshotChunk,
};

/// Longest wait for the ReadIndex barrier before a Members answer: a
/// joiner asks again (see `node::join`), so the answer must come before
/// its own timeout.
pub const MEMBERS_BARRIER_MS: u64 = 1_000;

/// Longest peer URL a sender may announce on its Raft stream.
const SENDER_PEER_URL_BYTES_MAX: usize = 1024;

/// The tonic server wrapping [`PeerService`], as `Server::add_service` takes it.
/// (madsim's generated server type carries an interceptor parameter that
/// tonic's defaults away; this alias names the same thing in both builds.)
#[cfg(not(madsim))]
pub type PeerGrpcServer = PeerServer<PeerService>;
/// The tonic server wrapping [`PeerService`], as `Server::add_service` takes it.
#[cfg(madsim)]
pub type PeerGrpcServer = PeerServer<PeerService, tonic::codegen::IdentityInterceptor>;

/// Accepts Raft batches and snapshots addressed to this member and forwards
/// them, in arrival order per stream, to the node driver's bounded channel.
///
/// Rejections end the stream with a gRPC status: `FAILED_PRECONDITION` for a
/// sender from another cluster, `INVALID_ARGUMENT` for a batch addressed to
/// another member, over the limits, or a malformed snapshot stream,
/// `UNAVAILABLE` when the node driver has stopped, `RESOURCE_EXHAUSTED`
/// when [`SNAPSHOT_RECEIVES_MAX`] snapshots are being received already.
/// Snapshots are written into the [`SnapshotInbox`] given with
/// [`PeerService::with_snapshot_inbox`] as they arrive (a member's
/// snapshot directory; by default [`FileInbox::hand_on`]). Forwarded lease requests
/// are answered by the [`LeaseAuthority`] given with
/// [`PeerService::with_lease_authority`] (`UNIMPLEMENTED` without one).
#[derive(Clone)]
pub struct PeerService {
    cluster_id: u64,
    member_id: u64,
    limits: TransportLimits,
    inbound: mpsc::Sender<Inbound>,
    leases: Option<Arc<dyn LeaseAuthority>>,
    inbox: Arc<dyn SnapshotInbox>,
    /// One permit per snapshot transfer received at a time.
    receives: Arc<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for PeerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerService")
            .field("cluster_id", &self.cluster_id)
            .field("member_id", &self.member_id)
            .field("limits", &self.limits)
            .field("leases", &self.leases.is_some())
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

impl PeerService {
    /// A service for member `member_id` of cluster `cluster_id` that delivers
    /// into `inbound` (its capacity bounds how far peers can run ahead of the
    /// node driver).
    pub fn new(
        cluster_id: u64,
        member_id: u64,
        limits: TransportLimits,
        inbound: mpsc::Sender<Inbound>,
    ) -> Self {
        debug_assert!(member_id != 0, "member id 0 means 'none' in Raft");
        PeerService {
            cluster_id,
            member_id,
            limits,
            inbound,
            leases: None,
            inbox: Arc::new(FileInbox::hand_on()),
            receives: Arc::new(tokio::sync::Semaphore::new(SNAPSHOT_RECEIVES_MAX)),
        }
    }

    /// Writes received snapshots into `inbox` (a member's: its snapshot
    /// directory, see [`FileInbox::for_member`]).
    pub fn with_snapshot_inbox(mut self, inbox: Arc<dyn SnapshotInbox>) -> Self {
        self.inbox = inbox;
        self
    }

    /// Answers forwarded lease requests with `authority` (the node).
    pub fn with_lease_authority(mut self, authority: Arc<dyn LeaseAuthority>) -> Self {
        self.leases = Some(authority);
        self
    }

    fn lease_authority(&self, cluster_id: u64) -> Result<&dyn LeaseAuthority, Status> {
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "keel: cluster ID mismatch (local {:x}, remote {cluster_id:x})",
                self.cluster_id
            )));
        }
        self.leases
            .as_deref()
            .ok_or_else(|| Status::unimplemented("keel: this member does not serve leases"))
    }

    /// Wraps the service for a tonic server, accepting gRPC messages as large
    /// as the limits allow.
    pub fn into_server(self) -> PeerGrpcServer {
        let size_bytes_max = self.limits.grpc_message_size_bytes_max();
        PeerServer::new(self).max_decoding_message_size(size_bytes_max)
    }

    fn check_route(&self, cluster_id: u64, from: u64, to: u64) -> Result<(), Status> {
        if cluster_id != self.cluster_id {
            tracing::warn!(
                local = self.cluster_id,
                remote = cluster_id,
                from,
                "rejected peer from another cluster"
            );
            return Err(Status::failed_precondition(format!(
                "keel: cluster ID mismatch (local {:x}, remote {cluster_id:x})",
                self.cluster_id
            )));
        }
        if to != self.member_id || from == 0 || from == self.member_id {
            return Err(Status::invalid_argument(format!(
                "keel: message from member {from:x} to member {to:x} reached member {:x}",
                self.member_id
            )));
        }
        Ok(())
    }

    fn check_batch(&self, batch: &RaftBatch) -> Result<(), Status> {
        self.check_route(batch.cluster_id, batch.from, batch.to)?;
        if batch.sender_peer_url.len() > SENDER_PEER_URL_BYTES_MAX {
            return Err(Status::invalid_argument(format!(
                "keel: announced peer URL of {} bytes exceeds the limit of {SENDER_PEER_URL_BYTES_MAX} bytes",
                batch.sender_peer_url.len()
            )));
        }
        if batch.messages.len() > self.limits.batch_messages_max {
            return Err(Status::invalid_argument(format!(
                "keel: batch of {} raft messages exceeds the limit of {}",
                batch.messages.len(),
                self.limits.batch_messages_max
            )));
        }
        if let Some(big) = batch
            .messages
            .iter()
            .find(|m| m.len() > self.limits.message_size_bytes_max)
        {
            return Err(Status::invalid_argument(format!(
                "keel: raft message of {} bytes exceeds the limit of {} bytes",
                big.len(),
                self.limits.message_size_bytes_max
            )));
        }
        Ok(())
    }

    /// Refuses a member removed from the cluster with the status that
    /// makes it stop (etcd's rafthttp answers it `410 Gone`).
    fn check_not_removed(&self, from: u64) -> Result<(), Status> {
        match &self.leases {
            Some(authority) if authority.is_removed_here(from) => {
                tracing::warn!(from = %format!("{from:x}"), "refused raft messages from a removed member");
                Err(crate::node::removal::removed_status())
            }
            _ => Ok(()),
        }
    }

    async fn deliver(&self, item: Inbound) -> Result<(), Status> {
        self.inbound
            .send(item)
            .await
            .map_err(|_| Status::unavailable("keel: member is stopping"))
    }
}

#[tonic::async_trait]
impl Peer for PeerService {
    /// Delivers each accepted batch as one [`Inbound::Raft`]; answers with the
    /// totals when the sender closes the stream. The loop ends when the sender
    /// closes the stream or on the first rejected batch.
    async fn raft(
        &self,
        request: Request<Streaming<RaftBatch>>,
    ) -> Result<Response<RaftAck>, Status> {
        let mut stream = request.into_inner();
        let mut ack = RaftAck::default();
        let mut sender_peer_url: Option<Arc<str>> = None;
        while let Some(batch) = stream.message().await? {
            self.check_batch(&batch)?;
            self.check_not_removed(batch.from)?;
            ack.batches += 1;
            ack.messages += batch.messages.len() as u64;
            if !batch.sender_peer_url.is_empty() {
                sender_peer_url = Some(Arc::from(batch.sender_peer_url.as_str()));
            }
            if !batch.messages.is_empty() {
                self.deliver(Inbound::Raft {
                    from: batch.from,
                    messages: batch.messages,
                    sender_peer_url: sender_peer_url.clone(),
                })
                .await?;
            }
        }
        Ok(Response::new(ack))
    }

    /// Receives one snapshot into the inbox chunk by chunk (see
    /// `receive_snapshot.rs`: one chunk in memory at a time), then delivers
    /// it, its data mapped from the file, as one [`Inbound::Snapshot`]
    /// after the sender closed the stream cleanly.
    async fn snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<SnapshotAck>, Status> {
        let _permit = self.receives.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "keel: already receiving {SNAPSHOT_RECEIVES_MAX} snapshots; retry later"
            ))
        })?;
        let check_route =
            |chunk: &SnapshotChunk| self.check_route(chunk.cluster_id, chunk.from, chunk.to);
        let snapshot = receive_snapshot(
            self.inbox.clone(),
            self.limits.snapshot_size_bytes_max,
            check_route,
            request.into_inner(),
        )
        .await?;
        let received_bytes = snapshot.data.len() as u64;
        tracing::info!(
            from = snapshot.from,
            index = snapshot.index,
            received_bytes,
            "received snapshot"
        );
        self.deliver(Inbound::Snapshot(snapshot)).await?;
        Ok(Response::new(SnapshotAck { received_bytes }))
    }

    /// Renews a lease for a follower's client if this member leads.
    async fn lease_renew(
        &self,
        request: Request<LeaseRenewRequest>,
    ) -> Result<Response<LeaseRenewReply>, Status> {
        let request = request.into_inner();
        let authority = self.lease_authority(request.cluster_id)?;
        answer_renew(authority, &request).await.map(Response::new)
    }

    /// Reports a lease's remaining TTL for a follower's client if this member leads.
    async fn lease_time_to_live(
        &self,
        request: Request<LeaseTimeToLiveRequest>,
    ) -> Result<Response<LeaseTimeToLiveReply>, Status> {
        let request = request.into_inner();
        let authority = self.lease_authority(request.cluster_id)?;
        answer_time_to_live(authority, &request).map(Response::new)
    }

    /// Proposes a membership change a follower forwarded, if this member
    /// leads, and answers once it is applied or refused.
    async fn conf_change(
        &self,
        request: Request<ConfChangeForward>,
    ) -> Result<Response<ConfChangeReply>, Status> {
        let request = request.into_inner();
        let authority = self.lease_authority(request.cluster_id)?;
        let change = ConfChange::decode(&request.conf_change)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let pending = authority.propose_conf_change_here(change);
        let reply = answer_conf_change(pending, authority.request_timeout()).await;
        Ok(Response::new(reply))
    }

    /// Lists the members for a joining member, after a ReadIndex barrier
    /// of at most [`MEMBERS_BARRIER_MS`] when one completes (the reply says
    /// whether it did; see `node::join`).
    async fn members(
        &self,
        _request: Request<MembersRequest>,
    ) -> Result<Response<MembersReply>, Status> {
        let authority = self.lease_authority(self.cluster_id)?;
        let barrier = std::time::Duration::from_millis(MEMBERS_BARRIER_MS);
        let read = authority.members_for_joiner(barrier).await;
        let members = read
            .members
            .into_iter()
            .map(|m| PeerMember {
                id: m.id,
                name: m.name,
                peer_urls: m.peer_urls,
                client_urls: m.client_urls,
                is_learner: m.is_learner,
            })
            .collect();
        Ok(Response::new(MembersReply {
            cluster_id: self.cluster_id,
            members,
            linearizable: read.linearizable,
            applied_index: read.applied_index,
        }))
    }

    /// Answers a peer's round-trip probe at once; `FAILED_PRECONDITION`
    /// for a sender from another cluster.
    async fn probe(&self, request: Request<ProbeRequest>) -> Result<Response<ProbeReply>, Status> {
        let cluster_id = request.into_inner().cluster_id;
        if cluster_id != self.cluster_id {
            return Err(Status::failed_precondition(format!(
                "keel: probe from cluster {cluster_id:x}, this member belongs to {:x}",
                self.cluster_id
            )));
        }
        Ok(Response::new(ProbeReply {}))
    }
}
