//! How one request is sent and what is compared of its answer.

use std::future::Future;
use std::time::Duration;

use tonic::{Code, Status};

/// Bound on one request (a lock that cannot be taken waits forever).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What a request came to, as compared between etcd and keel: allowed, or
/// refused with a gRPC code and message, or a watch created then canceled
/// with a reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Ok,
    /// Refused with this status.
    Refused(Code, String),
    /// A watch create answered `created` and `canceled` with this reason.
    WatchCanceled(String),
    /// No answer within [`CALL_TIMEOUT`].
    Timeout,
}

impl Outcome {
    /// The outcome of a unary call.
    pub fn of<T>(result: Result<T, Status>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(status) => Outcome::Refused(status.code(), status.message().to_string()),
        }
    }
}

/// `message` with `token` in its `token` metadata.
pub fn authed<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = token.parse().expect("a token is ASCII");
        request.metadata_mut().insert("token", value);
    }
    request
}

/// The answer of a setup call; panics on a refusal.
pub fn must<T>(result: Result<tonic::Response<T>, Status>) -> T {
    match result {
        Ok(response) => response.into_inner(),
        Err(status) => panic!("setup request refused: {status:?}"),
    }
}

/// Runs `call` within [`CALL_TIMEOUT`].
pub async fn bounded<F: Future<Output = Outcome>>(call: F) -> Outcome {
    tokio::time::timeout(CALL_TIMEOUT, call)
        .await
        .unwrap_or(Outcome::Timeout)
}
