//! Running a whole member: the node driver, the etcd API on the client
//! addresses and the peer transport on the peer addresses. Used by the
//! `keel` binary, the in-process cluster tests and the madsim smoke test.
//!
//! As etcd does (`embed.StartEtcd` binds every listener before
//! `etcdserver.NewServer` replays the WAL), a member binds all its sockets
//! first, then boots, then serves: a client that connects while the member
//! replays its log or waits for a leader is queued by the kernel and served
//! once the member is ready, instead of being refused.

use std::net::SocketAddr;
use std::pin::Pin;

use keel_wal::Storage;
use tokio::sync::{mpsc, watch};
use tonic::transport::Server;
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

/// How long a stopping member lets in-flight client requests finish after
/// it stopped accepting (etcd waits up to its request timeout; long-lived
/// watch streams would otherwise hold a stop that long).
pub const CLIENT_DRAIN_MS: u64 = 2_000;

/// A running member: node driver plus its gRPC servers.
pub struct Member {
    node: Node,
    /// Stops the client servers (they stop accepting, then drain).
    client_shutdown: watch::Sender<bool>,
    /// Stops the peer servers, last.
    peer_shutdown: watch::Sender<bool>,
    client_servers: Vec<tokio::task::JoinHandle<()>>,
    server_errors: mpsc::Receiver<String>,
    /// Where servers started later report their failure.
    #[cfg_attr(madsim, allow(dead_code))]
    error_tx: mpsc::Sender<String>,
    #[cfg_attr(madsim, allow(dead_code))]
    api_limits: ApiLimits,
    #[cfg_attr(madsim, allow(dead_code))]
    metrics: MemberMetrics,
}

/// One member's metrics registry, shared by all its client addresses and
/// metrics listeners; madsim builds serve no `/metrics`.
#[cfg(not(madsim))]
type MemberMetrics = std::sync::Arc<crate::gateway::Metrics>;
/// One member's metrics registry; madsim builds serve no `/metrics`.
#[cfg(madsim)]
#[derive(Debug, Clone, Default)]
struct MemberMetrics {
    _none: (),
}

/// The member's metrics registry, its node's durations reported into it
/// (`settings.observer`).
///
/// Errors: [`BootError::Metrics`] when the registry cannot be built (a bug).
#[cfg(not(madsim))]
fn member_metrics(settings: &mut NodeSettings) -> Result<MemberMetrics, BootError> {
    let grpc = crate::gateway::GrpcMetrics::new();
    let metrics =
        crate::gateway::Metrics::new(&grpc).map_err(|err| BootError::Metrics(err.to_string()))?;
    settings.observer = metrics.observer();
    Ok(std::sync::Arc::new(metrics))
}

/// No registry under madsim: the node keeps its default observer.
#[cfg(madsim)]
fn member_metrics(_settings: &mut NodeSettings) -> Result<MemberMetrics, BootError> {
    Ok(MemberMetrics::default())
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
        Member::start_tls(settings, storage, listeners, ServeTls::default()).await
    }

    /// As [`Member::start`], serving the addresses `tls` lists over TLS
    /// (see [`crate::tls::MemberTls`]; the peer dialer is in `settings`).
    ///
    /// Errors: see [`BootError`].
    pub async fn start_tls<S: Storage>(
        mut settings: NodeSettings,
        storage: NodeStorage<S>,
        listeners: Listeners,
        tls: ServeTls,
    ) -> Result<Member, BootError> {
        let bound = BoundListeners::bind(&listeners, &tls).await?;
        let metrics = member_metrics(&mut settings)?;
        let started = Node::launch(settings, storage, listeners.transport_limits).await?;
        Ok(Member::serve(started, bound, listeners.api_limits, metrics))
    }

    fn serve(
        (node, peer_service): (Node, PeerService),
        bound: BoundListeners,
        api_limits: ApiLimits,
        metrics: MemberMetrics,
    ) -> Member {
        let (peer_shutdown, peer_shutdown_rx) = watch::channel(false);
        let (client_shutdown, client_shutdown_rx) = watch::channel(false);
        let (error_tx, server_errors) = mpsc::channel(16);
        let mut client_servers = Vec::with_capacity(bound.client.len());
        for (socket, tls) in bound.peer {
            let router = Server::builder().add_service(peer_service.clone().into_server());
            spawn_server(
                socket,
                "peer",
                peer_shutdown_rx.clone(),
                error_tx.clone(),
                serve_peers(router, tls),
            );
        }
        // One member's gRPC calls are counted together, on every address.
        for (socket, tls) in bound.client {
            #[cfg(not(madsim))]
            let mut server = api::counted_client_server(metrics.grpc().clone());
            #[cfg(madsim)]
            let mut server = Server::builder();
            let lease_ids = api::lease::LeaseIds::new(
                crate::replica::Replica::status(&node.handle()).member_id,
            );
            let router = api::add_services_sharing(
                &mut server,
                node.handle(),
                api_limits,
                lease_ids.clone(),
            );
            #[cfg(not(madsim))]
            let router = (
                router,
                crate::gateway::router(node.handle(), api_limits, lease_ids, metrics.clone()),
            );
            let mut published = node.published();
            // As etcd, clients are served once the member's name and client
            // URLs are published through Raft (`ReadyNotify`), so `member
            // list` never shows a serving member without them. Until then
            // the bound socket holds arriving connections in its backlog.
            let serve_when_published = move |socket, signal| async move {
                if published.wait_for(|done| *done).await.is_err() {
                    return Ok(());
                }
                serve_clients(router, (socket, tls), signal).await
            };
            client_servers.push(spawn_server(
                socket,
                "client",
                client_shutdown_rx.clone(),
                error_tx.clone(),
                serve_when_published,
            ));
        }
        Member {
            node,
            client_shutdown,
            peer_shutdown,
            client_servers,
            server_errors,
            error_tx,
            api_limits,
            metrics,
        }
    }

    /// Serves `/metrics` and `/health` alone, over plain HTTP, on `addrs`
    /// (`--listen-metrics-urls`) until the member stops; a server that
    /// fails later reports through [`Member::server_error`].
    ///
    /// Errors: [`BootError::Listen`] naming the first address that cannot
    /// be bound (nothing is served then).
    #[cfg(not(madsim))]
    pub async fn serve_metrics(&self, addrs: &[SocketAddr]) -> Result<(), BootError> {
        let mut sockets = Vec::with_capacity(addrs.len());
        for &addr in addrs {
            sockets.push(bind(addr, "metrics").await?);
        }
        for socket in sockets {
            let router = crate::gateway::metrics_router(
                self.handle(),
                self.api_limits,
                std::sync::Arc::clone(&self.metrics),
            );
            spawn_server(
                socket,
                "metrics",
                self.client_shutdown.subscribe(),
                self.error_tx.clone(),
                move |socket, signal| crate::gateway::serve_metrics(router, socket, signal),
            );
        }
        Ok(())
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

    /// Resolves once the member stopped because it was removed from the
    /// cluster; its servers must then be stopped ([`Member::stop`]).
    pub fn removed(&self) -> impl Future<Output = ()> + Send + 'static {
        self.node.removed()
    }

    /// Resolves with the reason once the member failed for good (its log
    /// lost acknowledged entries); its servers must then be stopped.
    pub fn failed(&self) -> impl Future<Output = String> + Send + 'static {
        self.node.failed()
    }

    /// Stops gracefully (SIGTERM/SIGINT, etcd `Etcd.Close`): the client
    /// servers stop accepting; a leader with other voters hands leadership
    /// to the most up-to-date one ([`super::shutdown`]); in-flight client
    /// requests get [`CLIENT_DRAIN_MS`] to finish; the driver syncs the WAL
    /// and fails what still waits; the peer servers stop last. Every step
    /// is bounded.
    pub async fn stop(self) {
        let _ = self.client_shutdown.send(true);
        self.node.transfer_leadership_on_shutdown().await;
        let drain = futures_util::future::join_all(self.client_servers);
        let drain_bound = std::time::Duration::from_millis(CLIENT_DRAIN_MS);
        if tokio::time::timeout(drain_bound, drain).await.is_err() {
            tracing::info!("client requests still in flight after the drain; they fail");
        }
        self.node.stop().await;
        let _ = self.peer_shutdown.send(true);
    }
}

/// Why a gRPC server stopped: its address could not be bound, or tonic
/// failed.
type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// Serves the etcd API on `socket` until `signal`: gRPC, and the HTTP/JSON
/// gateway with `/version`, `/health` and `/metrics` on the same port
/// ([`crate::gateway::serve`]). gRPC connections go through
/// [`crate::h2_authority`], so clients that send a URL as `:authority`
/// (etcdctl 3.4's `endpoint status`) are served as etcd serves them.
#[cfg(not(madsim))]
async fn serve_clients(
    (router, http): (api::ClientRouter, crate::gateway::GatewayRouter),
    (socket, tls): (Socket, Tls),
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    crate::gateway::serve(router, http, (socket, tls), signal).await
}

/// Serves the etcd API on `socket` until `signal`: under madsim the
/// simulated network carries requests, not HTTP/2 bytes, so there is
/// nothing to repair.
#[cfg(madsim)]
async fn serve_clients(
    router: Router,
    (socket, _tls): (Socket, Tls),
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    router.serve_with_shutdown(socket, signal).await?;
    Ok(())
}

/// Serves the peer transport on a bound socket until the signal, over
/// TLS when `tls` is given.
#[cfg(not(madsim))]
fn serve_peers(
    router: Router,
    tls: Tls,
) -> impl FnOnce(Socket, Signal) -> ServeFuture + Send + 'static {
    move |socket, signal| {
        Box::pin(async move {
            if let Some(acceptor) = tls {
                let incoming = crate::tls::acceptor::incoming(socket, acceptor);
                router
                    .serve_with_incoming_shutdown(incoming, signal)
                    .await?;
                return Ok(());
            }
            let incoming =
                tonic::transport::server::TcpIncoming::from(socket).with_nodelay(Some(true));
            router
                .serve_with_incoming_shutdown(incoming, signal)
                .await?;
            Ok(())
        })
    }
}

/// Serves the peer transport on a simulated address until the signal.
#[cfg(madsim)]
fn serve_peers(
    router: Router,
    _tls: Tls,
) -> impl FnOnce(Socket, Signal) -> ServeFuture + Send + 'static {
    move |addr, signal| {
        Box::pin(async move {
            router.serve_with_shutdown(addr, signal).await?;
            Ok(())
        })
    }
}

/// Resolves when the member stops its servers.
type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;
/// A server run to its end.
type ServeFuture = Pin<Box<dyn Future<Output = Result<(), ServeError>> + Send>>;

fn spawn_server<F>(
    socket: Socket,
    kind: &'static str,
    mut shutdown: watch::Receiver<bool>,
    errors: mpsc::Sender<String>,
    serve: impl FnOnce(Socket, Signal) -> F + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    F: Future<Output = Result<(), ServeError>> + Send + 'static,
{
    let signal: Signal = Box::pin(async move {
        let _ = shutdown.wait_for(|stop| *stop).await;
    });
    let addr = local_addr(&socket);
    tokio::spawn(async move {
        tracing::info!(%addr, kind, "serving");
        if let Err(err) = serve(socket, signal).await {
            let message = format!("keel: cannot serve {kind} traffic on {addr}: {err}");
            tracing::error!("{message}");
            let _ = errors.send(message).await;
        }
    })
}

/// A bound listening socket: a real TCP listener, or under madsim the
/// address the simulated server binds when it starts.
#[cfg(not(madsim))]
type Socket = tokio::net::TcpListener;
/// A bound listening socket: a real TCP listener, or under madsim the
/// address the simulated server binds when it starts.
#[cfg(madsim)]
type Socket = SocketAddr;

#[cfg(not(madsim))]
fn local_addr(socket: &Socket) -> String {
    socket
        .local_addr()
        .map_or_else(|err| format!("?({err})"), |addr| addr.to_string())
}

#[cfg(madsim)]
fn local_addr(socket: &Socket) -> String {
    socket.to_string()
}

/// The TLS side of a listening address: its acceptor, or `None` to serve
/// it in the clear.
#[cfg(not(madsim))]
type Tls = Option<crate::tls::Acceptor>;
/// Under madsim every address is served in the clear.
#[cfg(madsim)]
type Tls = Option<std::convert::Infallible>;

/// The TLS acceptors of a member's listening addresses.
#[cfg(not(madsim))]
pub use crate::tls::member::ServeTls;

/// Under madsim nothing is served over TLS.
#[cfg(madsim)]
#[derive(Debug, Clone, Default)]
pub struct ServeTls {
    _plain: (),
}

#[cfg(not(madsim))]
fn tls_of(
    addrs: &std::collections::BTreeMap<SocketAddr, crate::tls::Acceptor>,
    addr: SocketAddr,
) -> Tls {
    addrs.get(&addr).cloned()
}

/// Every socket of a member, bound before it boots, with its TLS side.
struct BoundListeners {
    client: Vec<(Socket, Tls)>,
    peer: Vec<(Socket, Tls)>,
}

impl BoundListeners {
    /// Binds every client and peer address of `listeners`.
    ///
    /// Errors: [`BootError::Listen`] naming the first address that cannot
    /// be bound (in use, not local, no permission).
    async fn bind(listeners: &Listeners, tls: &ServeTls) -> Result<BoundListeners, BootError> {
        #[cfg(madsim)]
        let (client_tls, peer_tls) = {
            let _ = tls;
            (
                |_: SocketAddr| -> Tls { None },
                |_: SocketAddr| -> Tls { None },
            )
        };
        #[cfg(not(madsim))]
        let (client_tls, peer_tls) = (
            |addr| tls_of(&tls.client, addr),
            |addr| tls_of(&tls.peer, addr),
        );
        let mut bound = BoundListeners {
            client: Vec::with_capacity(listeners.client_addrs.len()),
            peer: Vec::with_capacity(listeners.peer_addrs.len()),
        };
        for &addr in &listeners.client_addrs {
            bound
                .client
                .push((bind(addr, "client").await?, client_tls(addr)));
        }
        for &addr in &listeners.peer_addrs {
            bound.peer.push((bind(addr, "peer").await?, peer_tls(addr)));
        }
        Ok(bound)
    }
}

/// How long an address in use is retried: a member stopped and started
/// again in one process (tests, an embedding program) may still be closing
/// its previous listener for a moment.
#[cfg(not(madsim))]
pub const ADDR_IN_USE_RETRY_MS: u64 = 2_000;

#[cfg(not(madsim))]
async fn bind(addr: SocketAddr, kind: &'static str) -> Result<Socket, BootError> {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(ADDR_IN_USE_RETRY_MS);
    loop {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(socket) => return Ok(socket),
            Err(err)
                if err.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(err) => {
                return Err(BootError::Listen {
                    kind,
                    addr,
                    reason: err.to_string(),
                });
            }
        }
    }
}

/// Under madsim the simulated server binds when it starts serving.
#[cfg(madsim)]
async fn bind(addr: SocketAddr, _kind: &'static str) -> Result<Socket, BootError> {
    Ok(addr)
}
