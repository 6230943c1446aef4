//! `grpc_server_started_total` and `grpc_server_handled_total` as etcd's
//! go-grpc-prometheus interceptors count them (labels `grpc_type`,
//! `grpc_service`, `grpc_method`, `grpc_code`), for calls through tonic
//! ([`GrpcMetricsLayer`]) and through the HTTP/JSON gateway (which in etcd
//! reaches the services over gRPC, so etcd counts those calls too).

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body::{Body as HttpBody, Frame, SizeHint};
use prometheus::{IntCounterVec, Opts, Registry};
use tonic::Code;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

/// The two counters, shared by a member's gRPC server and gateway.
#[derive(Clone, Debug)]
pub struct GrpcMetrics {
    started: IntCounterVec,
    handled: IntCounterVec,
}

/// Go's name of a gRPC code (`codes.Code.String()`), as etcd labels it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// `(grpc_type, grpc_service, grpc_method)` of a gRPC path such as
/// `/etcdserverpb.KV/Range`; `None` for a path that is not `/service/method`.
pub fn call_labels(path: &str) -> Option<(&'static str, &str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let kind = match method {
        "Watch" | "LeaseKeepAlive" => "bidi_stream",
        "Snapshot" | "Observe" => "server_stream",
        _ => "unary",
    };
    Some((kind, service, method))
}

impl GrpcMetrics {
    /// Counters at zero, not yet in any registry.
    ///
    /// Panics: never (the names and labels are constants the `prometheus`
    /// crate accepts; a unit test builds them).
    pub fn new() -> GrpcMetrics {
        Self::build().expect("constant metric names and labels are valid")
    }

    fn build() -> prometheus::Result<GrpcMetrics> {
        let started = IntCounterVec::new(
            Opts::new(
                "grpc_server_started_total",
                "Total number of RPCs started on the server.",
            ),
            &["grpc_type", "grpc_service", "grpc_method"],
        )?;
        let handled = IntCounterVec::new(
            Opts::new(
                "grpc_server_handled_total",
                "Total number of RPCs completed on the server, regardless of success or failure.",
            ),
            &["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
        )?;
        Ok(GrpcMetrics { started, handled })
    }

    /// Adds both counters to `registry`.
    ///
    /// Errors: already registered there.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.started.clone()))?;
        registry.register(Box::new(self.handled.clone()))
    }

    /// Counts a call of `path` (`/etcdserverpb.KV/Range`) starting.
    pub fn started(&self, path: &str) {
        if let Some((kind, service, method)) = call_labels(path) {
            self.started
                .with_label_values(&[kind, service, method])
                .inc();
        }
    }

    /// Counts a call of `path` finishing with `code`.
    pub fn handled(&self, path: &str, code: Code) {
        if let Some((kind, service, method)) = call_labels(path) {
            self.handled
                .with_label_values(&[kind, service, method, code_name(code)])
                .inc();
        }
    }
}

impl Default for GrpcMetrics {
    fn default() -> GrpcMetrics {
        GrpcMetrics::new()
    }
}

/// Counts every call through the tonic server it wraps.
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer(GrpcMetrics);

impl GrpcMetricsLayer {
    /// A layer counting into `metrics`.
    pub fn new(metrics: GrpcMetrics) -> GrpcMetricsLayer {
        GrpcMetricsLayer(metrics)
    }
}

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// A tonic service whose calls are counted.
#[derive(Clone, Debug)]
pub struct Counted<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B> Service<http::Request<B>> for Counted<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future =
        Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send + 'static>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        self.metrics.started(&path);
        let metrics = self.metrics.clone();
        let call = self.inner.call(request);
        Box::pin(async move {
            let response = call.await?;
            // A trailers-only answer (an error before any message) carries
            // its status in the headers; others in the trailers.
            if let Some(code) = grpc_status(response.headers()) {
                metrics.handled(&path, code);
                return Ok(response);
            }
            Ok(response.map(|body| {
                Body::new(CountedBody {
                    inner: body,
                    pending: Some((metrics, path)),
                })
            }))
        })
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(value.parse().ok()?))
}

/// A response body that counts its call when the trailers pass, or as
/// `Canceled` when dropped before them (the client went away).
struct CountedBody {
    inner: Body,
    pending: Option<(GrpcMetrics, String)>,
}

impl CountedBody {
    fn count(&mut self, code: Code) {
        if let Some((metrics, path)) = self.pending.take() {
            metrics.handled(&path, code);
        }
    }
}

impl HttpBody for CountedBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(trailers) = frame.trailers_ref()
        {
            let code = grpc_status(trailers).unwrap_or(Code::Unknown);
            self.count(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CountedBody {
    fn drop(&mut self) {
        self.count(Code::Cancelled);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_go_grpc_prometheus() {
        assert_eq!(
            call_labels("/etcdserverpb.KV/Range"),
            Some(("unary", "etcdserverpb.KV", "Range"))
        );
        assert_eq!(
            call_labels("/etcdserverpb.Watch/Watch"),
            Some(("bidi_stream", "etcdserverpb.Watch", "Watch"))
        );
        assert_eq!(call_labels("/nothing"), None);
        assert_eq!(code_name(Code::Cancelled), "Canceled");
    }

    #[test]
    fn handled_calls_are_counted_by_code() {
        let metrics = GrpcMetrics::new();
        let registry = Registry::new();
        metrics.register(&registry).unwrap();
        metrics.handled("/etcdserverpb.KV/Put", Code::Ok);
        metrics.handled("/etcdserverpb.KV/Put", Code::Ok);
        let families = registry.gather();
        let handled = families
            .iter()
            .find(|f| f.name() == "grpc_server_handled_total")
            .unwrap();
        assert_eq!(handled.get_metric()[0].get_counter().get_value(), 2.0);
    }
}
