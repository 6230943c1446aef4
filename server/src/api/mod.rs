//! etcd's v3 gRPC services over the [`Replica`] seam (etcd
//! `etcdserver/api/v3rpc`): KV, Watch, Lease, Cluster, Maintenance and Auth.
//!
//! Each service is a thin translation: validate the request as etcd's
//! gRPC layer does (empty keys, txn size, request size), convert it to a
//! kernel request ([`convert`]), propose it or read the applied state
//! through the replica, and convert the answer back with a response header
//! ([`header`]). Errors carry etcd's gRPC codes and messages ([`status`]).
//!
//! The binary mounts everything with [`add_services`].

pub mod auth;
pub mod caller;
pub mod cluster;
pub mod convert;
#[cfg(not(madsim))]
pub mod deadline;
pub mod downgrade;
pub mod election;
mod election_observe;
pub mod header;
pub mod jwt;
pub mod kv;
pub mod learner;
pub mod lease;
pub mod lock;
pub mod maintenance;
pub mod status;
#[cfg(not(madsim))]
pub mod too_large;
pub mod watch;
pub mod watch_gauges;
mod watch_stream;

use keel_kernel::apply::{Request, Response};
use keel_kernel::auth::AuthInfo;
use tonic::Status;
use tonic::transport::Server;
use tonic::transport::server::Router;

pub use caller::{AUTHORIZATION_METADATA_KEY, TOKEN_METADATA_KEY, request_auth};

use keel_kernel::Limits;

use crate::proto::etcdserverpb as pb;
use crate::replica::Replica;

/// The etcd version keel reports (Maintenance.Status, snapshot
/// `version`): clients accept it as an etcd 3.5 server.
pub const ETCD_VERSION: &str = "3.5.0";

/// gRPC framing allowance etcd adds to `--max-request-bytes` for the
/// server's maximum received message size: 512 KiB.
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Limits and timings of the API layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiLimits {
    /// Request limits (etcd `--max-request-bytes`, `--max-txn-ops`), the
    /// same value the node's state machine is configured with.
    pub request: Limits,
    /// Interval of progress notifications to watchers that asked for
    /// them, in milliseconds (etcd: 10 minutes).
    pub watch_progress_notify_interval_ms: u64,
    /// How often a watch stream replays history to watchers that are
    /// behind, in milliseconds (etcd: 100 ms).
    pub watch_sync_interval_ms: u64,
    /// Most watchers on one watch stream.
    pub watch_max_watchers_per_stream: usize,
    /// Events a watcher may have queued before it is caught up from
    /// history instead (bounds the memory of slow watchers).
    pub watch_max_pending_events: usize,
    /// Most events in one watch response (whole revisions are never
    /// split unless the watcher asked for fragments).
    pub watch_max_events_per_response: usize,
    /// Responses buffered per watch or keep-alive stream before the
    /// stream stops reading new events (then catches up from history).
    pub stream_buffer_responses: usize,
    /// Bytes per Maintenance.Snapshot chunk (etcd: 32 KiB).
    pub snapshot_chunk_bytes: usize,
}

impl Default for ApiLimits {
    fn default() -> ApiLimits {
        ApiLimits {
            request: Limits::default(),
            watch_progress_notify_interval_ms: 10 * 60 * 1000,
            watch_sync_interval_ms: 100,
            watch_max_watchers_per_stream: 10_000,
            watch_max_pending_events: 1024,
            watch_max_events_per_response: 1000,
            stream_buffer_responses: 128,
            snapshot_chunk_bytes: 32 * 1024,
        }
    }
}

impl ApiLimits {
    /// Largest gRPC message the server decodes: `max_request_bytes` plus
    /// etcd's 512 KiB gRPC overhead.
    pub fn max_decoding_message_size(&self) -> usize {
        self.max_request_bytes().saturating_add(GRPC_OVERHEAD_BYTES)
    }

    /// `--max-request-bytes` as a `usize` (saturating on 32-bit targets).
    pub fn max_request_bytes(&self) -> usize {
        usize::try_from(self.request.max_request_bytes).unwrap_or(usize::MAX)
    }
}

/// The layers of a [`ClientServer`], outermost first: the deadline (its
/// timer must start with tonic's own), then calls counted
/// ([`crate::gateway::grpc_metrics`]; a call cut by its deadline is counted
/// as started only), then [`too_large::rewrite`] (a request over the
/// message limit answered as etcd answers it, and counted so).
#[cfg(not(madsim))]
pub type ClientLayers = tower_layer::Stack<
    tower::util::MapResponseLayer<ResponseMap>,
    tower_layer::Stack<
        crate::gateway::grpc_metrics::GrpcMetricsLayer,
        tower_layer::Stack<deadline::DeadlineLayer, tower_layer::Identity>,
    >,
>;

/// A rewrite of every response of the client server.
#[cfg(not(madsim))]
pub type ResponseMap = fn(http::Response<tonic::body::Body>) -> http::Response<tonic::body::Body>;

/// The tonic server etcd's API is served by, with [`ClientLayers`].
#[cfg(not(madsim))]
pub type ClientServer = Server<ClientLayers>;

/// The router of a [`ClientServer`].
#[cfg(not(madsim))]
pub type ClientRouter = Router<ClientLayers>;

/// A [`ClientServer`] with tonic's defaults, counting into counters no
/// registry shows.
#[cfg(not(madsim))]
pub fn client_server() -> ClientServer {
    counted_client_server(crate::gateway::GrpcMetrics::new())
}

/// A [`ClientServer`] counting its calls into `metrics`.
#[cfg(not(madsim))]
pub fn counted_client_server(metrics: crate::gateway::GrpcMetrics) -> ClientServer {
    let rewrite: ResponseMap = too_large::rewrite;
    Server::builder()
        .layer(deadline::DeadlineLayer)
        .layer(crate::gateway::grpc_metrics::GrpcMetricsLayer::new(metrics))
        .layer(tower::util::MapResponseLayer::new(rewrite))
}

/// Mounts etcd's services (KV, Watch, Lease, Cluster, Maintenance, Auth,
/// `v3lockpb.Lock` and `v3electionpb.Election`) served by `replica` on `server`, each decoding messages up to
/// [`ApiLimits::max_decoding_message_size`]. Add further services (peer
/// transport, health) to the returned router and serve it.
pub fn add_services<B: Replica, L: Clone>(
    server: &mut Server<L>,
    replica: B,
    limits: ApiLimits,
) -> Router<L> {
    let lease_ids = lease::LeaseIds::new(replica.status().member_id);
    add_services_sharing(server, replica, limits, lease_ids)
}

/// [`add_services`] granting lease ids from `lease_ids`, shared with other
/// servers of the same member (the HTTP/JSON gateway).
pub fn add_services_sharing<B: Replica, L: Clone>(
    server: &mut Server<L>,
    replica: B,
    limits: ApiLimits,
    lease_ids: lease::LeaseIds,
) -> Router<L> {
    use crate::proto::v3electionpb::election_server::ElectionServer;
    use crate::proto::v3lockpb::lock_server::LockServer;
    use pb::auth_server::AuthServer;
    use pb::cluster_server::ClusterServer;
    use pb::kv_server::KvServer;
    use pb::lease_server::LeaseServer;
    use pb::maintenance_server::MaintenanceServer;
    use pb::watch_server::WatchServer;
    let max = limits.max_decoding_message_size();
    server
        .add_service(
            KvServer::new(kv::KvService::new(replica.clone(), limits))
                .max_decoding_message_size(max),
        )
        .add_service(
            WatchServer::new(watch::WatchService::new(replica.clone(), limits))
                .max_decoding_message_size(max),
        )
        .add_service(
            LeaseServer::new(lease::LeaseService::new(
                replica.clone(),
                limits,
                lease_ids.clone(),
            ))
            .max_decoding_message_size(max),
        )
        .add_service(
            ClusterServer::new(cluster::ClusterService::new(replica.clone()))
                .max_decoding_message_size(max),
        )
        .add_service(
            MaintenanceServer::new(maintenance::MaintenanceService::new(
                replica.clone(),
                limits,
            ))
            .max_decoding_message_size(max),
        )
        .add_service(
            AuthServer::new(auth::AuthService::new(replica.clone())).max_decoding_message_size(max),
        )
        .add_service(
            LockServer::new(lock::LockService::new(replica.clone(), lease_ids.clone()))
                .max_decoding_message_size(max),
        )
        .add_service(
            ElectionServer::new(election::ElectionService::new(replica, lease_ids))
                .max_decoding_message_size(max),
        )
}

/// Proposes `request` for `auth` and returns the state machine's answer
/// with the store revision after it (the response header's revision).
///
/// Errors: the node's ([`status::server_error`]) or the state machine's
/// refusal ([`status::apply_error`]).
pub async fn propose<B: Replica>(
    replica: &B,
    request: Request,
    auth: AuthInfo,
) -> Result<(Response, i64), Status> {
    let applied = replica.propose(request, Some(auth)).await?;
    let revision = applied.header.revision;
    let response = applied.result.map_err(|err| status::apply_error(&err))?;
    Ok((response, revision))
}

/// The status for an answer of the wrong kind (a bug: the state machine
/// answers each request kind with its own response kind).
pub fn unexpected(response: &Response) -> Status {
    Status::internal(format!("etcdserver: unexpected response {response:?}"))
}

/// A server-streaming response body: what a stream task sends into a
/// bounded channel, in order, ending when the task drops its sender.
pub type ResponseStream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The response stream reading from `receiver`, returned once the stream
/// task has produced its first item.
///
/// gRPC sends a streaming call's response headers when the handler
/// returns. grpc-go, and so etcd, sends them with the first message, and
/// clients rely on it: the `etcd-client` crate's `watch()` returns when
/// the headers arrive, so against etcd a watcher exists once `watch()`
/// returns, and a put made next is delivered to it. Returning only after
/// the first item keeps that order. A first item that is an error is
/// returned as the call's status (a trailers-only response, as grpc-go
/// answers an error before any message); a task that ends without an item
/// gives an empty stream.
///
/// Errors: the first item's status.
pub async fn response_stream<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<Result<T, Status>>,
) -> Result<ResponseStream<T>, Status> {
    let first = receiver.recv().await.transpose()?;
    let rest = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    });
    let first = futures_util::stream::iter(first.map(Ok));
    Ok(Box::pin(futures_util::StreamExt::chain(first, rest)))
}

#[cfg(all(test, not(madsim)))]
#[allow(clippy::unwrap_used)]
mod auth_tests;
#[cfg(all(test, not(madsim)))]
#[allow(clippy::unwrap_used)]
mod lease_auth_tests;
#[cfg(all(test, not(madsim)))]
#[allow(clippy::unwrap_used)]
mod node_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod test_replica;
#[cfg(all(test, not(madsim)))]
#[allow(clippy::unwrap_used)]
mod tests;
#[cfg(all(test, not(madsim)))]
#[allow(clippy::unwrap_used)]
mod watch_random;
