//! The Watch service (etcd `etcdserverpb.Watch`): a bidirectional stream
//! of create/cancel/progress requests and watch responses; each stream is
//! served by one [`WatchStream`] task.
//!
//! Guarantees as etcd's API documents them: a `created` response first;
//! events ordered by revision, each revision's events in one response
//! (split only for watchers that asked for `fragment`); history replay
//! from `start_revision`; compacted watchers get `compact_revision` and are
//! canceled; `progress_notify` and RequestProgress send empty responses
//! whose header revision every event up to has been sent.
//!
//! The call returns (and its response headers go out) only with the first
//! response, as from etcd: see [`super::response_stream`].

use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

pub use super::watch_stream::{INVALID_WATCH_ID, WatchStream, fragments};
use super::{ApiLimits, ResponseStream, caller::request_caller, response_stream};
use crate::proto::etcdserverpb as pb;
use crate::replica::Replica;

/// The Watch service over a replica.
#[derive(Clone, Debug)]
pub struct WatchService<B> {
    replica: B,
    limits: ApiLimits,
}

impl<B: Replica> WatchService<B> {
    /// A Watch service over `replica` within `limits`.
    pub fn new(replica: B, limits: ApiLimits) -> WatchService<B> {
        WatchService { replica, limits }
    }
}

#[tonic::async_trait]
impl<B: Replica> pb::watch_server::Watch for WatchService<B> {
    type WatchStream = ResponseStream<pb::WatchResponse>;

    async fn watch(
        &self,
        request: GrpcRequest<Streaming<pb::WatchRequest>>,
    ) -> Result<GrpcResponse<Self::WatchStream>, Status> {
        super::learner::refuse_on_learner(&self.replica)?;
        // A bad token does not fail the stream: every create on it is
        // refused instead (etcd `isWatchPermitted` runs per create).
        let auth = request_caller(&self.replica, &request);
        let (sender, receiver) = tokio::sync::mpsc::channel(self.limits.stream_buffer_responses);
        let stream = WatchStream::new(self.replica.clone(), self.limits, auth, sender);
        tokio::spawn(stream.run(request.into_inner()));
        Ok(GrpcResponse::new(response_stream(receiver).await?))
    }
}
