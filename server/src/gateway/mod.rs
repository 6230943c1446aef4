//! etcd's HTTP/JSON gateway, `/version`, `/health` and `/metrics`, served
//! on the client port beside gRPC (etcd `embed/serve.go`: `cmux` splits one
//! listener; grpc-gateway v1 translates JSON to the gRPC services).
//!
//! - [`listener`]: one port, HTTP/2 (gRPC) and HTTP/1.x connections told
//!   apart by their first bytes.
//! - [`routes`]: `POST /v3/...` (and `/v3beta/...`) calling the same
//!   service implementations as the gRPC server, with the `Authorization`
//!   header as the token.
//! - [`call`], [`json`], [`errors`]: bodies in grpc-gateway's JSON mapping,
//!   streams as one JSON object per line, errors in its shape.
//! - [`health`]: `/version`, `/health`; [`metrics`]: `/metrics`, with the
//!   histograms of [`timings`]; [`metrics_listener`]: `/metrics` and
//!   `/health` alone on `--listen-metrics-urls`.
//!
//! Over TLS ([`crate::tls`]) the handshake comes first, then the same
//! routing on the decrypted bytes.
//!
//! Not served: HTTP/2 JSON (HTTP/2 gateway requests go to gRPC; over TLS
//! a client offering both HTTP/1.1 and HTTP/2 is given HTTP/1.1), and
//! etcd's v2 API.

pub mod call;
pub mod errors;
pub mod grpc_metrics;
pub mod health;
pub mod json;
pub mod listener;
pub mod metrics;
pub mod metrics_listener;
pub mod probes;
pub mod routes;
pub mod timings;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use tokio::sync::watch;

use crate::api::ApiLimits;
use crate::api::ClientRouter;
use crate::api::lease::LeaseIds;
use crate::replica::Replica;
use errors::plain_error;
pub use grpc_metrics::GrpcMetrics;
pub use metrics::Metrics;
pub use metrics_listener::{metrics_router, serve_metrics};
use routes::Services;

/// The HTTP router [`router`] builds.
pub type GatewayRouter = Router;

/// Why serving stopped: the address could not be bound, or tonic failed.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP router of one member: `/v3/...`, `/v3beta/...`, `/version`,
/// `/health`, `/metrics`; everything else answers Go's `404 page not
/// found`. Every answer carries etcd's CORS headers.
///
/// `lease_ids` must be the generator the member's gRPC services use, and
/// `metrics` the member's registry, whose gRPC counters its gRPC server
/// counts into (see [`crate::api::counted_client_server`]); `/metrics`
/// shows it.
pub fn router<B: Replica>(
    replica: B,
    limits: ApiLimits,
    lease_ids: LeaseIds,
    metrics: Arc<Metrics>,
) -> Router {
    let grpc_metrics = metrics.grpc().clone();
    let services = Arc::new(Services::new(replica, limits, lease_ids, grpc_metrics));
    let v3 = routes::v3_routes(Arc::clone(&services));
    let probes = probes::probe_routes(Arc::clone(&services));
    let state = (Arc::clone(&services), metrics);
    let plain = Router::new()
        .route(
            "/version",
            get(health::version).fallback(routes::method_not_allowed),
        )
        .route(
            "/health",
            get(health::health::<B>).fallback(routes::method_not_allowed),
        )
        .route("/metrics", get(scrape::<B>))
        .with_state(state);
    Router::new()
        .nest("/v3", v3.clone())
        .nest("/v3beta", v3)
        .merge(plain)
        .merge(probes)
        .fallback(page_not_found)
        .layer(axum::middleware::map_response(cors_headers))
}

/// `GET /metrics`: the member's current values in Prometheus text format.
async fn scrape<B: Replica>(
    State((services, metrics)): State<(Arc<Services<B>>, Arc<Metrics>)>,
) -> Response {
    metrics.refresh(&services);
    metrics.render()
}

/// Go's `http.ServeMux` answer to a path nothing handles.
async fn page_not_found() -> Response {
    plain_error(StatusCode::NOT_FOUND, "404 page not found")
}

/// The headers etcd's client handler adds to every answer.
async fn cors_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert(
        "access-control-allow-methods",
        HeaderValue::from_static("POST, GET, OPTIONS, PUT, DELETE"),
    );
    headers.insert(
        "access-control-allow-headers",
        HeaderValue::from_static("accept, content-type, authorization"),
    );
    response
}

/// Serves gRPC (`grpc`) and HTTP/1.x (`http`) on the bound `socket` until
/// `signal` (see [`listener`]); over TLS when `tls` is given (each
/// connection's handshake first, then the same routing).
///
/// Errors: tonic fails.
pub async fn serve(
    grpc: ClientRouter,
    http: Router,
    (socket, tls): (tokio::net::TcpListener, Option<crate::tls::Acceptor>),
    signal: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let incoming = listener::incoming(socket, http, tls, stop_rx);
    let signal = async move {
        signal.await;
        let _ = stop_tx.send(true);
    };
    grpc.serve_with_incoming_shutdown(incoming, signal).await?;
    Ok(())
}
