//! Calling a gRPC service implementation from an HTTP request: the body is
//! read within a limit and decoded ([`super::json`]), the HTTP headers a
//! grpc-gateway forwards become gRPC metadata, and the answer is written
//! back as JSON, a stream of JSON lines, or an error ([`super::errors`]).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use http_body_util::{BodyExt, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status, Streaming};

use super::errors::{error_response, http_status, stream_error_line};
use super::json;
use crate::api::AUTHORIZATION_METADATA_KEY;

/// Prefix of HTTP headers grpc-gateway forwards as gRPC metadata without
/// it (`Grpc-Metadata-Token: t` → `token: t`).
const METADATA_HEADER_PREFIX: &str = "grpc-metadata-";

/// Header grpc-gateway adds to forwarded answers (etcd 3.4 sends it).
const GRPC_METADATA_CONTENT_TYPE: &str = "grpc-metadata-content-type";

/// The request body, at most `limit_bytes` long.
///
/// Errors: a longer body → `RESOURCE_EXHAUSTED` (what etcd's gRPC layer
/// answers an oversized message with); a broken connection → `UNKNOWN`.
pub async fn read_body(body: Body, limit_bytes: usize) -> Result<Bytes, Status> {
    match Limited::new(body, limit_bytes).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(Status::resource_exhausted(format!(
                "grpc: received message larger than max ({limit_bytes} bytes)"
            )))
        }
        Err(err) => Err(Status::unknown(format!("reading the request body: {err}"))),
    }
}

/// A gRPC request carrying `message` and the metadata grpc-gateway forwards
/// from `headers`: `Authorization` as `authorization` (etcd reads the
/// token there, see [`crate::api::caller`]) and every `Grpc-Metadata-*`
/// header without its prefix. Headers that are not valid metadata are
/// left out.
pub fn grpc_request<T>(headers: &HeaderMap, message: T) -> GrpcRequest<T> {
    let mut request = GrpcRequest::new(message);
    let metadata = request.metadata_mut();
    for (name, value) in headers {
        let key = if name == header::AUTHORIZATION {
            AUTHORIZATION_METADATA_KEY
        } else if let Some(key) = name.as_str().strip_prefix(METADATA_HEADER_PREFIX) {
            key
        } else {
            continue;
        };
        let (Ok(key), Ok(value)) = (
            AsciiMetadataKey::from_bytes(key.as_bytes()),
            AsciiMetadataValue::try_from(value.as_bytes()),
        ) else {
            continue;
        };
        metadata.append(key, value);
    }
    request
}

/// A successful JSON answer (`200`, `application/json`).
pub fn json_response(body: Vec<u8>) -> Response {
    let mut response = (StatusCode::OK, Body::from(body)).into_response();
    set_json_headers(response.headers_mut());
    response
}

fn set_json_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(
        GRPC_METADATA_CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
}

/// Serves one unary call: decodes `body` (at most `limit_bytes`) as `Req`,
/// calls `call` with it and `headers`' metadata, answers the response as
/// JSON or the error as etcd's gateway does.
pub async fn unary<Req, Resp, F, Fut>(
    headers: HeaderMap,
    body: Body,
    limit_bytes: usize,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize,
    F: FnOnce(GrpcRequest<Req>) -> Fut,
    Fut: Future<Output = Result<GrpcResponse<Resp>, Status>>,
{
    let answer = async {
        let message: Req = json::decode(&read_body(body, limit_bytes).await?)?;
        let response = call(grpc_request(&headers, message)).await?;
        json::encode(response.get_ref())
    };
    match answer.await {
        Ok(body) => json_response(body),
        Err(status) => error_response(&status),
    }
}

/// Serves one server-streaming call (Maintenance.Snapshot): as [`unary`],
/// but the answer is [`streamed`].
pub async fn server_stream<Req, Resp, S, F, Fut>(
    headers: HeaderMap,
    body: Body,
    limit_bytes: usize,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default,
    Resp: Serialize + Send + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(GrpcRequest<Req>) -> Fut,
    Fut: Future<Output = Result<GrpcResponse<S>, Status>>,
{
    let message: Req = match read_body(body, limit_bytes)
        .await
        .and_then(|bytes| json::decode(&bytes))
    {
        Ok(message) => message,
        Err(status) => return error_response(&status),
    };
    match call(grpc_request(&headers, message)).await {
        Ok(response) => streamed(response.into_inner()),
        Err(status) => stream_failed(&status),
    }
}

/// Serves one call of a bidirectional stream (Watch, LeaseKeepAlive) as
/// grpc-gateway does: the body is one JSON request, sent as the stream's
/// only message, and the responses are [`streamed`] until the service ends
/// the stream or the HTTP client goes away.
///
/// A body that is not a request answers `UNKNOWN` (etcd 3.4: HTTP 500,
/// code 2).
pub async fn bidi_stream<Req, Resp, S, F, Fut>(
    headers: HeaderMap,
    body: Body,
    limit_bytes: usize,
    call: F,
) -> Response
where
    Req: DeserializeOwned + Default + prost::Message + Send + 'static,
    Resp: Serialize + Send + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
    F: FnOnce(GrpcRequest<Streaming<Req>>) -> Fut,
    Fut: Future<Output = Result<GrpcResponse<S>, Status>>,
{
    let requests = match read_body(body, limit_bytes)
        .await
        .and_then(|bytes| json::decode::<Req>(&bytes))
        .and_then(|message| one_message(&message, limit_bytes))
    {
        Ok(requests) => requests,
        Err(status) => return error_response(&Status::unknown(status.message())),
    };
    match call(grpc_request(&headers, requests)).await {
        Ok(response) => streamed(response.into_inner()),
        Err(status) => stream_failed(&status),
    }
}

/// A request stream holding `message` only, then ending (as grpc-gateway's
/// `CloseSend` after the body).
///
/// Errors: a message over 4 GiB → `RESOURCE_EXHAUSTED` (bodies are far
/// smaller).
fn one_message<Req>(message: &Req, max_bytes: usize) -> Result<Streaming<Req>, Status>
where
    Req: prost::Message + Default + Send + 'static,
{
    use tonic::codec::Codec;
    let payload = message.encode_to_vec();
    let length = u32::try_from(payload.len())
        .map_err(|_| Status::resource_exhausted("request message over 4 GiB"))?;
    // gRPC's length-prefixed message: uncompressed flag, big-endian length.
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(0);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&payload);
    let body = http_body_util::Full::new(Bytes::from(frame));
    let decoder = tonic_prost::ProstCodec::<Req, Req>::default().decoder();
    Ok(Streaming::new_request(decoder, body, None, Some(max_bytes)))
}

/// A response whose body is one `{"result":...}` line per message of
/// `stream`, ending after the stream or after its first error, reported as
/// an `{"error":{...}}` line.
pub fn streamed<Resp, S>(stream: S) -> Response
where
    Resp: Serialize + Send + 'static,
    S: Stream<Item = Result<Resp, Status>> + Send + 'static,
{
    let lines =
        futures_util::stream::unfold((Box::pin(stream), false), |(mut stream, done)| async move {
            if done {
                return None;
            }
            let line = match stream.next().await? {
                Ok(message) => {
                    json::result_line(&message).map_err(|status| stream_error_line(&status))
                }
                Err(status) => Err(stream_error_line(&status)),
            };
            let failed = line.is_err();
            let bytes = Bytes::from(line.unwrap_or_else(|error| error));
            Some((Ok::<_, Infallible>(bytes), (stream, failed)))
        });
    let mut response = (StatusCode::OK, Body::from_stream(lines)).into_response();
    set_json_headers(response.headers_mut());
    response
}

/// The answer to a streaming call that failed before its first message:
/// the code's HTTP status and one error line (grpc-gateway v1
/// `handleForwardResponseStreamError` before any header was written).
fn stream_failed(status: &Status) -> Response {
    let mut response = (
        http_status(status.code()),
        Body::from(stream_error_line(status)),
    )
        .into_response();
    set_json_headers(response.headers_mut());
    response
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn authorization_and_grpc_metadata_headers_become_metadata() {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("tok"));
        headers.insert("grpc-metadata-token", HeaderValue::from_static("t2"));
        headers.insert("x-other", HeaderValue::from_static("no"));
        let request = grpc_request(&headers, ());
        assert_eq!(request.metadata().get("authorization").unwrap(), "tok");
        assert_eq!(request.metadata().get("token").unwrap(), "t2");
        assert!(request.metadata().get("x-other").is_none());
    }

    #[tokio::test]
    async fn oversized_body_is_resource_exhausted() {
        let status = read_body(Body::from(vec![b' '; 100]), 10)
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    }

    #[tokio::test]
    async fn one_message_stream_yields_the_message_then_ends() {
        use crate::proto::etcdserverpb as pb;
        let request = pb::LeaseKeepAliveRequest { id: 7 };
        let mut stream = one_message(&request, 1024).unwrap();
        assert_eq!(stream.message().await.unwrap(), Some(request));
        assert_eq!(stream.message().await.unwrap(), None);
    }
}
