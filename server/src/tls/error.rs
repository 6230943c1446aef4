//! Why TLS could not be set up at start.

use std::path::PathBuf;

/// Why a member's TLS settings could not be loaded; each names the file or
/// flag concerned. Reported at start, before any socket is served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key or CA file cannot be read or is not PEM.
    #[error("keel: cannot read {what} {path}: {reason}")]
    Read {
        /// What the file should hold ("certificate file", "key file", ...).
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O or PEM error.
        reason: String,
    },
    /// A PEM file holds no item of the expected kind.
    #[error("keel: {path} holds no {what} (expected PEM)")]
    Empty {
        /// What was expected ("certificate", "private key").
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate, key or CA (a key that does not
    /// match its certificate, an unsupported key type, a bad CA).
    #[error("keel: {context}: {reason}")]
    Rustls {
        /// Which settings were being built.
        context: String,
        /// rustls' reason.
        reason: String,
    },
    /// The settings cannot work together (e.g. `https://` peers and a peer
    /// certificate, but no CA to verify the peers with).
    #[error("keel: {0}")]
    Settings(String),
    /// A self-signed certificate could not be generated or stored.
    #[error("keel: cannot generate a self-signed certificate in {dir}: {reason}")]
    Generate {
        /// The fixtures directory.
        dir: PathBuf,
        /// What failed.
        reason: String,
    },
}

/// keel-tls's errors (reading PEM files, building client settings) in
/// keel's words, the same as when keel-server read the files itself.
impl From<keel_tls::TlsError> for TlsError {
    fn from(err: keel_tls::TlsError) -> TlsError {
        use keel_tls::TlsError as Shared;
        match err {
            Shared::Read { what, path, reason } => TlsError::Read { what, path, reason },
            Shared::Empty { what, path } => TlsError::Empty { what, path },
            Shared::Anchor { what, path, reason } => TlsError::Rustls {
                context: format!("{what} {}", path.display()),
                reason,
            },
            Shared::Versions { reason } => TlsError::Rustls {
                context: "TLS protocol versions".to_owned(),
                reason,
            },
            Shared::Identity { reason } => TlsError::Rustls {
                context: "client certificate and key".to_owned(),
                reason,
            },
        }
    }
}
