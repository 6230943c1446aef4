//! The rustls client settings a member dials its `https://` peers with
//! (etcd `TLSInfo.ClientConfig`): its peer certificate as client
//! certificate, peers verified against `--peer-trusted-ca-file`, or with
//! `--peer-auto-tls` and no CA not verified at all (as etcd's
//! self-signed `InsecureSkipVerify`: the traffic is encrypted, the peer is
//! not authenticated).

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use super::server_config::{PEER_ALPN, provider};
use super::{TlsError, pem};

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
    let certs = pem::read_certs(cert_file, "peer certificate file")?;
    let key = pem::read_key(key_file)?;
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|err| TlsError::Rustls {
            context: "TLS protocol versions".to_owned(),
            reason: err.to_string(),
        })?;
    let builder = match trust {
        PeerTrust::Ca(ca) => {
            builder.with_root_certificates(pem::read_roots(ca, "peer trusted CA file")?)
        }
        PeerTrust::SelfSigned => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert)),
    };
    let mut config = builder
        .with_client_auth_cert(certs, key)
        .map_err(|err| TlsError::Rustls {
            context: format!(
                "peer certificate {} with key {}",
                cert_file.display(),
                key_file.display()
            ),
            reason: err.to_string(),
        })?;
    config.alpn_protocols = PEER_ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Accepts any server certificate, but still checks that the server holds
/// its key (the handshake signatures, with the ring provider's
/// algorithms).
#[derive(Debug)]
struct AnyServerCert;

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
