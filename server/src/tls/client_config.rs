//! The rustls client settings a member dials its `https://` peers with
//! (etcd `TLSInfo.ClientConfig`): its peer certificate as client
//! certificate, peers verified against `--peer-trusted-ca-file`, or with
//! `--peer-auto-tls` and no CA not verified at all (as etcd's
//! self-signed `InsecureSkipVerify`: the traffic is encrypted, the peer is
//! not authenticated). Built by keel-tls, shared with keelctl.

use std::path::Path;
use std::sync::Arc;

use keel_tls::{Identity, ServerTrust, client_config};
use rustls::ClientConfig;

use super::TlsError;

/// How a member checks the peers it dials.
pub enum PeerTrust<'a> {
    /// Peers' certificates must chain to the CA certificates of this file.
    Ca(&'a Path),
    /// Any certificate is accepted (`--peer-auto-tls` without a CA).
    SelfSigned,
}

/// Client settings presenting `cert_file`/`key_file` and checking peers
/// as `trust` says; ALPN `h2`.
///
/// Errors: [`TlsError::Read`]/[`TlsError::Empty`] for unreadable files;
/// [`TlsError::Rustls`] for a key that does not fit its certificate.
pub fn peer_client_config(
    cert_file: &Path,
    key_file: &Path,
    trust: PeerTrust<'_>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let trust = match trust {
        PeerTrust::Ca(file) => ServerTrust::Ca {
            file,
            what: "peer trusted CA file",
        },
        PeerTrust::SelfSigned => ServerTrust::AnyCertificate,
    };
    let identity = Identity {
        cert_file,
        key_file,
        what: "peer certificate file",
    };
    client_config(trust, Some(identity)).map_err(|err| match err {
        keel_tls::TlsError::Identity { reason } => TlsError::Rustls {
            context: format!(
                "peer certificate {} with key {}",
                cert_file.display(),
                key_file.display()
            ),
            reason,
        },
        err => err.into(),
    })
}
