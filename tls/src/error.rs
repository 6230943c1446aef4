//! Why TLS client settings could not be built.

use std::path::PathBuf;

/// Why certificates could not be read or client settings built; each
/// names the file concerned. Callers word these for their own users
/// (keel-server's start errors, keelctl's exit-128 messages).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file cannot be read or is not PEM.
    #[error("cannot read {what} {path}: {reason}")]
    Read {
        /// What the file should hold ("certificate file", "key file", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O or PEM error.
        reason: String,
    },
    /// A PEM file holds no item of the expected kind.
    #[error("{path} holds no {what} (expected PEM)")]
    Empty {
        /// What was expected: "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// A certificate of a CA file cannot serve as a trust anchor.
    #[error("{what} {path}: {reason}")]
    Anchor {
        /// What the file is ("trusted CA file", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// rustls' reason.
        reason: String,
    },
    /// The provider offers no safe protocol version (not with ring).
    #[error("TLS protocol versions: {reason}")]
    Versions {
        /// rustls' reason.
        reason: String,
    },
    /// rustls refused the client certificate and key (a key that does not
    /// fit its certificate, an unsupported key type).
    #[error("client certificate and key: {reason}")]
    Identity {
        /// rustls' reason.
        reason: String,
    },
}
