//! keelctl's own TLS dialing, for what etcd-client's tonic settings cannot
//! express: `--insecure-skip-tls-verify` (Go's `tls.Config.InsecureSkipVerify`,
//! which etcdctl sets: the connection is encrypted, the server's
//! certificate is not checked), and the channel of requests etcd-client
//! has no method for (`auth status`).
//!
//! The settings and the dialer are keel-tls's (shared with keel-server's
//! peer dialing): rustls with the ring provider, the same crypto
//! etcd-client's tonic uses; a tower service for tonic's
//! `Endpoint::connect_with_connector`, which is handed an `http://` URI
//! (tonic's own TLS stays out of the way). An endpoint URL without a port
//! is dialed on 2379.

use std::path::Path;
use std::sync::Arc;

use keel_tls::rustls::ClientConfig;
use keel_tls::{Identity, ServerTrust, TlsError};

use crate::error::CtlError;

pub use keel_tls::TlsConnector;

/// What keelctl's TLS connection checks and presents, from `--cacert`,
/// `--cert`, `--key` and `--insecure-skip-tls-verify`.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// `--cacert`: PEM CA bundle the server must chain to.
    pub cacert: Option<String>,
    /// `--cert` and `--key`: PEM client certificate (chain) and its key.
    pub identity: Option<(String, String)>,
    /// `--insecure-skip-tls-verify`: accept any server certificate.
    pub skip_verify: bool,
}

/// The rustls client settings for `files`, offering ALPN `h2` (gRPC).
///
/// # Errors
/// An unreadable or empty PEM file, a CA bundle without a usable
/// certificate, a key that does not fit its certificate (exit 128, as
/// etcdctl's bad TLS files), or no CA at all without `skip_verify`.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, CtlError> {
    let trust = match (&files.cacert, files.skip_verify) {
        (_, true) => ServerTrust::AnyCertificate,
        (Some(ca), false) => ServerTrust::Ca {
            file: Path::new(ca),
            what: "CA file",
        },
        (None, false) => {
            return Err(CtlError::bad_args(
                "TLS without --cacert needs --insecure-skip-tls-verify",
            ));
        }
    };
    let identity = files.identity.as_ref().map(|(cert, key)| Identity {
        cert_file: Path::new(cert),
        key_file: Path::new(key),
        what: "certificate file",
    });
    keel_tls::client_config(trust, identity).map_err(|err| bad_files(files, err))
}

/// `err` as etcdctl-style exit-128 message naming the file.
fn bad_files(files: &TlsFiles, err: TlsError) -> CtlError {
    let message = match err {
        TlsError::Read { path, reason, .. } => format!("open {}: {reason}", path.display()),
        TlsError::Empty { what, path } => format!("{}: no {what} in the file", path.display()),
        TlsError::Anchor { path, reason, .. } => format!("{}: {reason}", path.display()),
        TlsError::Versions { reason } => format!("TLS protocol versions: {reason}"),
        TlsError::Identity { reason } => match &files.identity {
            Some((cert, key)) => format!("tls: {cert} and {key}: {reason}"),
            None => format!("tls: {reason}"),
        },
    };
    CtlError::bad_args(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::EXIT_BAD_ARGS;

    #[test]
    fn bad_files_are_named_in_etcdctls_words() {
        let files = TlsFiles {
            cacert: Some("/nonexistent/ca.pem".to_owned()),
            identity: Some(("c.pem".to_owned(), "k.pem".to_owned())),
            skip_verify: false,
        };
        let Err(err) = client_config(&files) else {
            panic!("a missing CA file was accepted");
        };
        assert_eq!(err.code, EXIT_BAD_ARGS);
        assert!(
            err.message.starts_with("open /nonexistent/ca.pem: "),
            "{err:?}"
        );
        let mismatch = TlsError::Identity {
            reason: "bad key".to_owned(),
        };
        let err = bad_files(&files, mismatch);
        assert_eq!(err.message, "tls: c.pem and k.pem: bad key");
        let no_ca = TlsFiles {
            cacert: None,
            ..files
        };
        let Err(err) = client_config(&no_ca) else {
            panic!("TLS without a CA was accepted");
        };
        assert_eq!(err.code, EXIT_BAD_ARGS);
        let skip = TlsFiles {
            identity: None,
            skip_verify: true,
            ..no_ca
        };
        assert!(client_config(&skip).is_ok());
    }
}
