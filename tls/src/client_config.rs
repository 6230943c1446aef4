//! rustls client settings from PEM files (etcd `TLSInfo.ClientConfig`):
//! whom the client trusts, which certificate it presents, ALPN `h2`.

use std::path::Path;
use std::sync::Arc;

use rustls::ClientConfig;

use crate::insecure::AnyServerCert;
use crate::{GRPC_ALPN, TlsError, pem, provider};

/// How the client checks the server's certificate.
#[derive(Debug, Clone, Copy)]
pub enum ServerTrust<'a> {
    /// The server's certificate must chain to a CA certificate of `file`
    /// and name the host dialed; `what` names the file in errors
    /// ("trusted CA file").
    Ca {
        /// PEM CA bundle.
        file: &'a Path,
        /// What the file is, for errors.
        what: &'static str,
    },
    /// Any certificate is accepted, though the server must still prove it
    /// holds its key: Go's `InsecureSkipVerify` (keelctl's
    /// `--insecure-skip-tls-verify`, etcd's self-signed peers). Encrypted,
    /// not authenticated.
    AnyCertificate,
}

/// A client certificate (chain) and its key, as PEM files.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// PEM certificate chain, leaf first.
    pub cert_file: &'a Path,
    /// PEM private key of the leaf.
    pub key_file: &'a Path,
    /// What the certificate file is, for errors ("peer certificate file").
    pub what: &'static str,
}

/// Client settings trusting as `trust` says and presenting `identity` (no
/// client certificate when `None`), offering ALPN `h2` (gRPC).
///
/// Errors: [`TlsError::Read`]/[`TlsError::Empty`] for an unreadable or
/// empty file; [`TlsError::Anchor`] for a CA certificate rustls cannot
/// use; [`TlsError::Identity`] for a key that does not fit its
/// certificate; [`TlsError::Versions`] if the provider has no safe
/// protocol version.
pub fn client_config(
    trust: ServerTrust<'_>,
    identity: Option<Identity<'_>>,
) -> Result<Arc<ClientConfig>, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Versions {
            reason: err.to_string(),
        })?;
    let builder = match trust {
        ServerTrust::Ca { file, what } => {
            builder.with_root_certificates(pem::read_roots(file, what)?)
        }
        ServerTrust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert { provider })),
    };
    let mut config = match identity {
        Some(identity) => {
            let certs = pem::read_certs(identity.cert_file, identity.what)?;
            let key = pem::read_key(identity.key_file)?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|err| TlsError::Identity {
                    reason: err.to_string(),
                })?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = GRPC_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
