//! keelctl's own TLS dialing, for what etcd-client's tonic settings cannot
//! express: `--insecure-skip-tls-verify` (Go's `tls.Config.InsecureSkipVerify`,
//! which etcdctl sets: the connection is encrypted, the server's
//! certificate is not checked), and the channel of requests etcd-client
//! has no method for (`auth status`).
//!
//! rustls with the ring provider, the same crypto etcd-client's tonic uses;
//! a tower service for tonic's `Endpoint::connect_with_connector`, which is
//! handed an `http://` URI (tonic's own TLS stays out of the way).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::error::CtlError;

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
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| CtlError::bad_args(format!("TLS protocol versions: {e}")))?;
    let builder = if files.skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert { provider }))
    } else {
        let Some(ca) = &files.cacert else {
            return Err(CtlError::bad_args(
                "TLS without --cacert needs --insecure-skip-tls-verify",
            ));
        };
        builder.with_root_certificates(roots(ca)?)
    };
    let mut config = match &files.identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(certs(cert)?, private_key(key)?)
            .map_err(|e| CtlError::bad_args(format!("tls: {cert} and {key}: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// rustls' ring provider (what etcd-client's tonic and keel use; rustls
/// 0.23.48 deprecates it only for its lack of post-quantum key exchange).
#[allow(deprecated)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &str) -> Result<Vec<CertificateDer<'static>>, CtlError> {
    let bad = |e: &dyn std::fmt::Display| CtlError::bad_args(format!("open {path}: {e}"));
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(&e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(&e))?;
    if certs.is_empty() {
        return Err(CtlError::bad_args(format!(
            "{path}: no certificate in the file"
        )));
    }
    Ok(certs)
}

fn private_key(path: &str) -> Result<PrivateKeyDer<'static>, CtlError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| CtlError::bad_args(format!("open {path}: {e}")))
}

fn roots(path: &str) -> Result<RootCertStore, CtlError> {
    let mut roots = RootCertStore::empty();
    for cert in certs(path)? {
        roots
            .add(cert)
            .map_err(|e| CtlError::bad_args(format!("{path}: {e}")))?;
    }
    Ok(roots)
}

/// Accepts any server certificate (`--insecure-skip-tls-verify`), but
/// still checks the handshake signatures, so the server holds the key of
/// the certificate it showed.
#[derive(Debug)]
struct AnyServerCert {
    provider: Arc<CryptoProvider>,
}

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
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Dials `http://host:port` URIs (tonic's view) as TCP + TLS with one
/// rustls config.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector").finish_non_exhaustive()
    }
}

/// A TLS connection in hyper's I/O traits.
pub type TlsIo = TokioIo<TlsStream<TcpStream>>;

impl TlsConnector {
    /// A connector with `config`'s trust and client certificate.
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// Connects to `uri`'s host and port (2379 when none: etcd's client
    /// port) and completes the handshake, naming the host as the server.
    ///
    /// # Errors
    /// No host, a host that is no server name, a failed TCP connection or
    /// a failed handshake (untrusted certificate, refused client
    /// certificate, a peer that does not speak TLS).
    pub async fn connect(&self, uri: Uri) -> io::Result<TlsIo> {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URL without a host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(2379);
        let name = ServerName::try_from(host.clone())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tcp = TcpStream::connect((host.as_str(), port)).await?;
        tcp.set_nodelay(true)?;
        let connector = tokio_rustls::TlsConnector::from(Arc::clone(&self.config));
        let tls = connector.connect(name, tcp).await?;
        Ok(TokioIo::new(tls))
    }
}

impl tower_service::Service<Uri> for TlsConnector {
    type Response = TlsIo;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsIo>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect(uri).await })
    }
}
