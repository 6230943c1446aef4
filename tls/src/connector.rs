//! TCP + TLS to a server, as a tower service for tonic's
//! `Endpoint::connect_with_connector`. Callers hand tonic an `http://` URI
//! for an `https://` URL: the TLS is this connector's, and a tonic built
//! with TLS of its own (as when etcd-client's `tls` feature joins the
//! build) refuses an `https://` URI it has no TLS settings for.

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

/// etcd's client port (IANA), the port keelctl dials when an endpoint
/// URL names none.
pub const ETCD_CLIENT_PORT: u16 = 2379;

/// The HTTPS port, what Go's HTTP client dials for an `https://` URL
/// without a port.
pub const HTTPS_PORT: u16 = 443;

/// Dials URIs over TCP + TLS with one client config; cheap to clone.
#[derive(Clone)]
pub struct TlsConnector {
    config: Arc<ClientConfig>,
    default_port: u16,
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConnector")
            .field("default_port", &self.default_port)
            .finish_non_exhaustive()
    }
}

/// A TLS connection in hyper's I/O traits.
pub type TlsIo = TokioIo<TlsStream<TcpStream>>;

impl TlsConnector {
    /// A connector presenting and checking what `config` says, dialing
    /// [`ETCD_CLIENT_PORT`] when a URI names no port.
    pub fn new(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector {
            config,
            default_port: ETCD_CLIENT_PORT,
        }
    }

    /// The same connector, dialing `port` when a URI names none.
    pub fn with_default_port(self, port: u16) -> TlsConnector {
        TlsConnector {
            default_port: port,
            ..self
        }
    }

    /// Connects to `uri`'s host and port (the default port when none) and
    /// completes the handshake, naming the host (IP address or DNS name)
    /// as the server to verify.
    ///
    /// Errors: `uri` has no host, the host is not a valid server name, the
    /// TCP connection fails, or the handshake fails (untrusted
    /// certificate, refused client certificate, a peer that does not
    /// speak TLS).
    pub async fn connect(&self, uri: Uri) -> io::Result<TlsIo> {
        let host = uri
            .host()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "URL without a host"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(self.default_port);
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
