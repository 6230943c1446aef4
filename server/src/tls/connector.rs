//! TCP + TLS to an `https://` peer URL, as a tower service for tonic's
//! `Endpoint::connect_with_connector`, which `transport::dial` hands an
//! `http://` URI (tonic may be built with TLS of its own in a workspace build).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Dials `https://host:port` URIs over TLS with one client config.
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
    /// A connector presenting and checking what `config` says.
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// Connects to `uri`'s host and port (443 when none) and completes
    /// the handshake, naming the host (IP address or DNS name) as the
    /// server to verify.
    ///
    /// Errors: `uri` has no host, the host is not a valid server name,
    /// the TCP connection fails, or the handshake fails (untrusted
    /// certificate, refused client certificate).
    pub async fn connect(&self, uri: Uri) -> io::Result<TlsIo> {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URL without a host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(443);
        let name = ServerName::try_from(host.clone())
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
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
