//! `--listen-metrics-urls`: extra plain-HTTP listeners serving only
//! `/metrics` and `/health`, so a monitoring system can scrape a member
//! without reaching its client port (etcd v3.4 `embed/etcd.go`
//! `serveMetrics`, which mounts `etcdhttp.HandleMetricsHealth`: the same
//! two handlers as on the client port). Everything else answers Go's
//! `404 page not found`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::errors::plain_error;
use super::metrics::Metrics;
use super::routes::{Services, method_not_allowed};
use super::{ServeError, health};
use crate::api::ApiLimits;
use crate::api::lease::LeaseIds;
use crate::replica::Replica;

/// Pause after a failed accept.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

/// The router of a metrics address: `GET /metrics` and `GET /health` of the
/// member behind `replica`, counted and rendered by its `metrics`.
pub fn metrics_router<B: Replica>(replica: B, limits: ApiLimits, metrics: Arc<Metrics>) -> Router {
    let member_id = replica.status().member_id;
    // `/health` only reads; its services never grant leases.
    let lease_ids = LeaseIds::new(member_id);
    let grpc = metrics.grpc().clone();
    let services = Arc::new(Services::new(replica, limits, lease_ids, grpc));
    Router::new()
        .route(
            "/health",
            get(health::health::<B>).fallback(method_not_allowed),
        )
        .route("/metrics", get(super::scrape::<B>))
        .with_state((services, metrics))
        .fallback(page_not_found)
}

/// Go's `http.ServeMux` answer to a path nothing handles.
async fn page_not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// Serves `router` over HTTP/1.x on the bound `socket` until `signal`.
///
/// Errors: none today (a failed accept or connection is logged and
/// skipped); the type matches the other servers'.
pub async fn serve_metrics(
    router: Router,
    socket: TcpListener,
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::select! {
        () = signal => {}
        never = accept_loop(&socket, &router, &stop_rx) => match never {},
    }
    let _ = stop_tx.send(true);
    Ok(())
}

/// Accepts connections forever, each served on its own task.
async fn accept_loop(
    socket: &TcpListener,
    router: &Router,
    stop: &watch::Receiver<bool>,
) -> Infallible {
    loop {
        match socket.accept().await {
            Ok((tcp, _)) => {
                tokio::spawn(serve_connection(tcp, router.clone(), stop.clone()));
            }
            Err(err) => {
                tracing::debug!(%err, "metrics listener: accept failed");
                // A failing accept (out of descriptors) must not spin.
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

/// Serves one HTTP/1.x connection until it ends or `stop` turns true.
async fn serve_connection(tcp: TcpStream, router: Router, mut stop: watch::Receiver<bool>) {
    let service = TowerToHyperService::new(router);
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
    tokio::select! {
        served = connection => {
            if let Err(err) = served {
                tracing::debug!(%err, "metrics listener: connection failed");
            }
        }
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}
