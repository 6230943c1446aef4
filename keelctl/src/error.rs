//! Errors and exit codes, as etcdctl 3.4 reports them
//! (etcdctl/ctlv3/command/error.go): `Error: <message>` on stderr and one of
//! etcdctl's exit codes.

use std::fmt;

/// A general failure (etcdctl's `ExitError`), e.g. an error from the server.
pub const EXIT_ERROR: u8 = 1;
/// Cannot reach or authenticate to the cluster (`ExitBadConnection`).
pub const EXIT_BAD_CONNECTION: u8 = 2;
/// Malformed input read from stdin, e.g. a txn line (`ExitInvalidInput`).
pub const EXIT_INVALID_INPUT: u8 = 3;
/// A valid flag with an unsupported value (`ExitBadFeature`).
pub const EXIT_BAD_FEATURE: u8 = 4;
/// A watch or keep-alive ended by the server (`ExitInterrupted`).
pub const EXIT_INTERRUPTED: u8 = 5;
/// Wrong arguments for the command (`ExitBadArgs`).
pub const EXIT_BAD_ARGS: u8 = 128;

/// A failed command: what `Error:` prints and the process's exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtlError {
    /// Exit code (one of the `EXIT_*` constants).
    pub code: u8,
    /// The message printed after `Error: `.
    pub message: String,
}

impl CtlError {
    /// An error with exit code `code`.
    pub fn new(code: u8, message: impl Into<String>) -> CtlError {
        CtlError {
            code,
            message: message.into(),
        }
    }

    /// Wrong arguments (exit 128).
    pub fn bad_args(message: impl Into<String>) -> CtlError {
        CtlError::new(EXIT_BAD_ARGS, message)
    }

    /// Unsupported value of a valid flag (exit 4).
    pub fn bad_feature(message: impl Into<String>) -> CtlError {
        CtlError::new(EXIT_BAD_FEATURE, message)
    }

    /// A general failure (exit 1).
    pub fn error(message: impl Into<String>) -> CtlError {
        CtlError::new(EXIT_ERROR, message)
    }

    /// Malformed input on stdin (exit 3).
    pub fn invalid_input(message: impl Into<String>) -> CtlError {
        CtlError::new(EXIT_INVALID_INPUT, message)
    }

    /// An output format a command does not print (exit 4), worded as
    /// etcdctl's `printerUnsupported`.
    pub fn unsupported_format(format: &str) -> CtlError {
        CtlError::bad_feature(format!("{format} not supported as output format"))
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CtlError {}

/// The message etcdctl prints for a client error: a gRPC status prints its
/// description only (etcd's `rpctypes` errors, e.g. `etcdserver: mvcc:
/// required revision has been compacted`); a connection that never came up
/// prints `context deadline exceeded`, as etcdctl's dial does.
pub fn client_message(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => grpc_message(status),
        etcd_client::Error::TransportError(_) => "context deadline exceeded".to_owned(),
        other => other.to_string(),
    }
}

fn grpc_message(status: &tonic_status::Status) -> String {
    use tonic_status::Code;
    let message = status.message();
    match status.code() {
        // A member that cannot be reached (etcd-client: `tcp connect error`,
        // `transport error`); etcdctl retries until its deadline and says so.
        // Unavailable errors from etcd itself start with `etcdserver:`.
        Code::Unavailable if !message.starts_with("etcdserver:") => transport_failure(status),
        Code::Unknown if message.contains("transport") => transport_failure(status),
        // Plain HTTP/2 to a TLS port: the server's answer is no HTTP/2.
        _ if message.starts_with("h2 protocol error") => transport_failure(status),
        // A connection the server closed during the handshake (plain
        // HTTP/2 to a TLS port).
        Code::Cancelled if message == "operation was canceled" => transport_failure(status),
        Code::DeadlineExceeded if message.is_empty() => "context deadline exceeded".to_owned(),
        _ => message.to_owned(),
    }
}

/// etcdctl's `context deadline exceeded`; when TLS is what failed (an
/// untrusted certificate, a refused client certificate, a peer that does
/// not speak TLS or HTTP/2), the cause follows in parentheses.
fn transport_failure(status: &tonic_status::Status) -> String {
    let mut causes = vec![status.message().to_owned()];
    let mut source = std::error::Error::source(status);
    while let Some(error) = source {
        causes.push(error.to_string());
        source = error.source();
    }
    let about_tls = |cause: &&String| {
        let lower = cause.to_lowercase();
        ["certificate", "tls", "handshake", "h2 protocol", "alert"]
            .iter()
            .any(|word| lower.contains(word))
    };
    match causes.iter().rev().find(about_tls) {
        Some(cause) => format!("context deadline exceeded ({cause})"),
        None => "context deadline exceeded".to_owned(),
    }
}

/// tonic's status type, as etcd-client re-exports it through its errors.
mod tonic_status {
    pub use tonic::{Code, Status};
}

impl From<etcd_client::Error> for CtlError {
    fn from(error: etcd_client::Error) -> CtlError {
        CtlError::error(client_message(&error))
    }
}
