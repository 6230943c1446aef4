//! rustls server settings of one port kind (etcd `TLSInfo.ServerConfig`):
//! the member's certificate, and when a trusted CA is given, client
//! certificates required and verified against it.

use std::path::Path;
use std::sync::Arc;

use keel_tls::{pem, provider};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use super::TlsError;

/// ALPN protocols of the client port, in the server's order of
/// preference. rustls picks the first of these the client offers, so a
/// client offering both (curl, browsers, Go's HTTP client) is served the
/// HTTP/JSON gateway over HTTP/1.1, while gRPC clients, which offer only
/// `h2`, get HTTP/2. Each connection is then routed by its first bytes, as
/// on a plain port.
pub const CLIENT_ALPN: [&[u8]; 2] = [b"http/1.1", b"h2"];

/// ALPN protocols of the peer port: gRPC only.
pub const PEER_ALPN: [&[u8]; 1] = keel_tls::GRPC_ALPN;

/// What a server presents and checks.
pub struct ServerFiles<'a> {
    /// PEM certificate chain, leaf first.
    pub cert_file: &'a Path,
    /// PEM private key of the leaf.
    pub key_file: &'a Path,
    /// PEM CA certificates that client certificates must chain to; `None`
    /// asks clients for no certificate.
    pub trusted_ca_file: Option<&'a Path>,
}

/// Server settings for `files` offering `alpn`.
///
/// Errors: [`TlsError::Read`]/[`TlsError::Empty`] for unreadable files;
/// [`TlsError::Rustls`] for a key that does not fit the certificate or a
/// CA rustls cannot use.
pub fn server_config(
    files: &ServerFiles<'_>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = pem::read_certs(files.cert_file, "certificate file")?;
    let key = pem::read_key(files.key_file)?;
    let rustls_error = |context: String| {
        move |err: rustls::Error| TlsError::Rustls {
            context,
            reason: err.to_string(),
        }
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rustls_error("TLS protocol versions".to_owned()))?;
    let builder = match files.trusted_ca_file {
        Some(ca) => {
            let roots = pem::read_roots(ca, "trusted CA file")?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|err| TlsError::Rustls {
                    context: format!("trusted CA file {}", ca.display()),
                    reason: err.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(rustls_error(format!(
            "certificate {} with key {}",
            files.cert_file.display(),
            files.key_file.display()
        )))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
