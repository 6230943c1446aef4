//! Errors as etcd's grpc-gateway (v1, `runtime/errors.go`) writes them: a
//! gRPC status becomes `{"error":msg,"message":msg,"code":n}` with the HTTP
//! status `HTTPStatusFromCode` maps the code to; inside a stream, after the
//! response started, `{"error":{"grpc_code":..,"http_code":..,"message":..,
//! "http_status":..}}` as one line (`handleForwardResponseStreamError`).

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic::{Code, Status};

/// The HTTP status grpc-gateway v1 answers a gRPC `code` with
/// (`runtime.HTTPStatusFromCode`).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::Cancelled => StatusCode::REQUEST_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => {
            StatusCode::BAD_REQUEST
        }
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// grpc-gateway v1's `errorBody`, in its field order.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    message: &'a str,
    code: i32,
}

/// grpc-gateway v1's `internal.StreamError`, in its field order.
#[derive(Serialize)]
struct StreamError<'a> {
    grpc_code: i32,
    http_code: u16,
    message: &'a str,
    http_status: &'a str,
}

#[derive(Serialize)]
struct StreamErrorChunk<'a> {
    error: StreamError<'a>,
}

/// The JSON body of a unary call that failed with `status` (etcd 3.4:
/// `{"error":"etcdserver: key is not provided","message":"etcdserver: key
/// is not provided","code":3}`).
pub fn error_body(status: &Status) -> Vec<u8> {
    let body = ErrorBody {
        error: status.message(),
        message: status.message(),
        code: status.code() as i32,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The response for a unary call that failed with `status`: its mapped
/// HTTP status and [`error_body`], as `application/json`.
///
/// The response carries the gRPC code as an extension ([`grpc_code`]).
pub fn error_response(status: &Status) -> Response {
    let mut response = (
        http_status(status.code()),
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(error_body(status)),
    )
        .into_response();
    response.extensions_mut().insert(status.code());
    response
}

/// The gRPC code a gateway answer stands for: the one [`error_response`]
/// recorded, else `OK` (streams are counted when they start).
pub fn grpc_code(response: &Response) -> Code {
    response
        .extensions()
        .get::<Code>()
        .copied()
        .unwrap_or(Code::Ok)
}

/// One newline-terminated line reporting `status` inside a streamed
/// response (grpc-gateway v1's stream error chunk).
pub fn stream_error_line(status: &Status) -> Vec<u8> {
    let http = http_status(status.code());
    let chunk = StreamErrorChunk {
        error: StreamError {
            grpc_code: status.code() as i32,
            http_code: http.as_u16(),
            message: status.message(),
            http_status: http.canonical_reason().unwrap_or(""),
        },
    };
    let mut line = serde_json::to_vec(&chunk).unwrap_or_default();
    line.push(b'\n');
    line
}

/// A plain-text answer as Go's `http.Error` writes it (etcd's answers to a
/// wrong method or an unknown `/v3/` path): `text/plain`, the text and a
/// newline.
pub fn plain_error(code: StatusCode, text: &str) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{text}\n"),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn unary_error_has_etcds_shape() {
        let body = error_body(&Status::invalid_argument("etcdserver: key is not provided"));
        assert_eq!(
            String::from_utf8_lossy(&body),
            r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
        );
    }

    #[test]
    fn codes_map_as_grpc_gateway_maps_them() {
        assert_eq!(http_status(Code::OutOfRange), StatusCode::BAD_REQUEST);
        assert_eq!(http_status(Code::NotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            http_status(Code::Unavailable),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            http_status(Code::FailedPrecondition),
            StatusCode::BAD_REQUEST
        );
    }

    #[test]
    fn stream_error_is_one_line() {
        let line = stream_error_line(&Status::unknown("unexpected EOF"));
        assert_eq!(
            String::from_utf8_lossy(&line),
            "{\"error\":{\"grpc_code\":2,\"http_code\":500,\"message\":\"unexpected EOF\",\"http_status\":\"Internal Server Error\"}}\n"
        );
    }
}
