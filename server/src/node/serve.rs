//! Running a whole member: the node driver, the etcd API on the client
//! addresses and the peer transport on the peer addresses. Used by the
//! `keel` binary, the in-process cluster tests and the madsim smoke test.

use std::net::SocketAddr;

use keel_wal::Storage;
use tokio::sync::{mpsc, watch};
use tonic::transport::Server;
#[cfg(madsim)]
use tonic::transport::server::Router;

use super::{BootError, Node, NodeHandle, NodeSettings, NodeStorage};
use crate::api::{self, ApiLimits};
use crate::transport::TransportLimits;
use crate::transport::receive::PeerService;

/// Where a member listens and with which limits.
#[derive(Debug, Clone)]
pub struct Listeners {
    /// Addresses serving the etcd API.
    pub client_addrs: Vec<SocketAddr>,
    /// Addresses serving the peer transport.
    pub peer_addrs: Vec<SocketAddr>,
    /// Limits of the API layer.
    pub api_limits: ApiLimits,
    /// Limits of the peer transport.
    pub transport_limits: TransportLimits,
}

/// A running member: node driver plus its gRPC servers.
pub struct Member {
    node: Node,
    shutdown: watch::Sender<bool>,
    server_errors: mpsc::Receiver<String>,
}

impl Member {
    /// Boots the member from `storage` (asking its peers for the cluster
    /// when it joins with `--initial-cluster-state existing`, see
    /// [`Node::launch`]) and starts serving on `listeners`.
    ///
    /// Errors: see [`BootError`]. A server that cannot bind reports through
    /// [`Member::server_error`].
    pub async fn start<S: Storage>(
        settings: NodeSettings,
        storage: NodeStorage<S>,
        listeners: Listeners,
    ) -> Result<Member, BootError> {
        let started = Node::launch(settings, storage, listeners.transport_limits).await?;
        Ok(Member::serve(started, listeners))
    }

    fn serve((node, peer_service): (Node, PeerService), listeners: Listeners) -> Member {
        let (shutdown, shutdown_rx) = watch::channel(false);
        let (error_tx, server_errors) = mpsc::channel(16);
        for addr in listeners.peer_addrs {
            let router = Server::builder().add_service(peer_service.clone().into_server());
            spawn_server(
                addr,
                "peer",
                shutdown_rx.clone(),
                error_tx.clone(),
                move |addr, signal| async move {
                    router.serve_with_shutdown(addr, signal).await?;
                    Ok(())
                },
            );
        }
        // One member's gRPC calls are counted together, on every address.
        #[cfg(not(madsim))]
        let grpc_metrics = crate::gateway::GrpcMetrics::new();
        for addr in listeners.client_addrs {
            #[cfg(not(madsim))]
            let mut server = api::counted_client_server(grpc_metrics.clone());
            #[cfg(madsim)]
            let mut server = Server::builder();
            let lease_ids = api::lease::LeaseIds::new(
                crate::backend::Backend::status(&node.handle()).member_id,
            );
            let router = api::add_services_sharing(
                &mut server,
                node.handle(),
                listeners.api_limits,
                lease_ids.clone(),
            );
            #[cfg(not(madsim))]
            let router = (
                router,
                crate::gateway::router(
                    node.handle(),
                    listeners.api_limits,
                    lease_ids,
                    grpc_metrics.clone(),
                ),
            );
            let mut published = node.published();
            // As etcd, clients are served once the member's name and client
            // URLs are published through Raft, so `member list` never shows
            // a serving member without them.
            let serve_when_published = move |addr, signal| async move {
                if published.wait_for(|done| *done).await.is_err() {
                    return Ok(());
                }
                serve_clients(router, addr, signal).await
            };
            spawn_server(
                addr,
                "client",
                shutdown_rx.clone(),
                error_tx.clone(),
                serve_when_published,
            );
        }
        Member {
            node,
            shutdown,
            server_errors,
        }
    }

    /// The node's handle.
    pub fn handle(&self) -> NodeHandle {
        self.node.handle()
    }

    /// Waits for a server to fail (e.g. its address is in use) and returns
    /// why; pending forever while all servers run.
    pub async fn server_error(&mut self) -> String {
        match self.server_errors.recv().await {
            Some(error) => error,
            None => std::future::pending().await,
        }
    }

    /// Stops the servers and the node driver.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        self.node.stop().await;
    }
}

/// Why a gRPC server stopped: its address could not be bound, or tonic
/// failed.
type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the etcd API on `addr` until `signal`: gRPC, and the HTTP/JSON
/// gateway with `/version`, `/health` and `/metrics` on the same port
/// ([`crate::gateway::serve`]). gRPC connections go through
/// [`crate::h2_authority`], so clients that send a URL as `:authority`
/// (etcdctl 3.4's `endpoint status`) are served as etcd serves them.
#[cfg(not(madsim))]
async fn serve_clients(
    (router, http): (
        api::ClientRouter,
        prometheus::Result<crate::gateway::GatewayRouter>,
    ),
    addr: SocketAddr,
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    crate::gateway::serve(router, http?, addr, signal).await
}

/// Serves the etcd API on `addr` until `signal`: under madsim the simulated
/// network carries requests, not HTTP/2 bytes, so there is nothing to
/// repair.
#[cfg(madsim)]
async fn serve_clients(
    router: Router,
    addr: SocketAddr,
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    router.serve_with_shutdown(addr, signal).await?;
    Ok(())
}

fn spawn_server<F>(
    addr: SocketAddr,
    kind: &'static str,
    mut shutdown: watch::Receiver<bool>,
    errors: mpsc::Sender<String>,
    serve: impl FnOnce(SocketAddr, std::pin::Pin<Box<dyn Future<Output = ()> + Send>>) -> F
    + Send
    + 'static,
) where
    F: Future<Output = Result<(), ServeError>> + Send + 'static,
{
    let signal: std::pin::Pin<Box<dyn Future<Output = ()> + Send>> = Box::pin(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    tokio::spawn(async move {
        tracing::info!(%addr, kind, "serving");
        if let Err(err) = serve(addr, signal).await {
            let message = format!("keel: cannot serve {kind} traffic on {addr}: {err}");
            tracing::error!("{message}");
            let _ = errors.send(message).await;
        }
    });
}
