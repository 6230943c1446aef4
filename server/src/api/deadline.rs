//! Server-side deadline expiry answered as etcd answers it.
//!
//! A client's gRPC deadline reaches the server as the `grpc-timeout`
//! header. grpc-go (etcd) answers a call still running when it expires with
//! `DEADLINE_EXCEEDED` "context deadline exceeded"; tonic's own timeout,
//! which sits outside every layer a server adds, answers `CANCELLED`
//! "Timeout expired", and clients branch on the code (python `etcd3` maps
//! `DEADLINE_EXCEEDED` to its `ConnectionTimeoutError`, Go clients retry
//! differently). [`DeadlineLayer`] runs inside tonic's timeout and expires
//! the call [`DEADLINE_MARGIN`] earlier with etcd's status, so tonic's
//! timer never fires first. Like tonic's, it bounds the call until its
//! response headers: a stream's later messages are not cut.
//!
//! etcd answers one kind of call differently: a write (a Raft proposal)
//! still waiting for apply when its deadline passes is answered
//! `UNAVAILABLE` "etcdserver: request timed out" (`parseProposeCtxErr`).
//! The layer therefore runs the call under
//! [`crate::replica::with_call_expiry`], and the node stops waiting for a
//! proposal just before the layer would answer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tonic::Status;
use tonic::body::Body;
use tower_layer::Layer;
use tower_service::Service;

/// How much earlier than the client's deadline the call is expired: more
/// than tokio's 1 ms timer granularity, so this timer fires no later than
/// tonic's.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(2);

/// grpc-go's message for an expired server-side deadline.
pub const DEADLINE_MESSAGE: &str = "context deadline exceeded";

/// Wraps a gRPC service in [`Deadline`].
#[derive(Clone, Copy, Debug, Default)]
pub struct DeadlineLayer;

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline { inner }
    }
}

/// A gRPC service whose calls answer `DEADLINE_EXCEEDED` once the client's
/// `grpc-timeout` (less [`DEADLINE_MARGIN`]) passes before their response.
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
}

impl<S, B> Service<http::Request<B>> for Deadline<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let timeout = request
            .headers()
            .get("grpc-timeout")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_grpc_timeout);
        let call = self.inner.call(request);
        Box::pin(async move {
            let Some(timeout) = timeout else {
                return call.await;
            };
            let expires = tokio::time::Instant::now() + timeout.saturating_sub(DEADLINE_MARGIN);
            let call = crate::replica::with_call_expiry(expires, call);
            match tokio::time::timeout_at(expires, call).await {
                Ok(answered) => answered,
                Err(_) => Ok(Status::deadline_exceeded(DEADLINE_MESSAGE).into_http()),
            }
        })
    }
}

/// The duration of a `grpc-timeout` header value: at most 8 digits and a
/// unit (`H`ours, `M`inutes, `S`econds, `m`illis, `u`micros, `n`anos), per
/// the gRPC over HTTP/2 spec. `None` for anything else (the call then runs
/// unbounded here; tonic's own timeout still applies).
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    let split = value.len().checked_sub(1)?;
    let (digits, unit) = (value.get(..split)?, value.get(split..)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeouts_parse_as_the_spec_writes_them() {
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_grpc_timeout("250m"), Some(Duration::from_millis(250)));
        assert_eq!(parse_grpc_timeout("7u"), Some(Duration::from_micros(7)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        for bad in ["", "S", "123", "123456789S", "1x", "-1S", "1.5S", "é"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
