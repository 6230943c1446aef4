//! How a member opens a gRPC channel to a peer URL: in the clear for
//! `http://`, over TLS for `https://` when the member has peer TLS
//! settings (`--peer-cert-file`, `--peer-auto-tls`). The peer transport,
//! the join-time member query and forwarded lease requests all dial
//! through one [`PeerDialer`]. Under madsim every URL is dialed on the
//! simulated network in the clear.

use tonic::transport::{Channel, Endpoint};

/// Why a channel to a peer could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    /// The URL is malformed or the connection (or its handshake) failed.
    #[error(transparent)]
    Transport(#[from] tonic::transport::Error),
    /// An `https://` peer URL, but this member has no peer TLS settings.
    #[error(
        "peer URL {0} uses HTTPS but this member has no peer TLS settings (--peer-cert-file, --peer-key-file or --peer-auto-tls)"
    )]
    NoTls(String),
}

/// Opens channels to peers; cheap to clone.
#[derive(Clone, Default)]
pub struct PeerDialer {
    #[cfg(not(madsim))]
    tls: Option<crate::tls::connector::TlsConnector>,
}

impl std::fmt::Debug for PeerDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(not(madsim))]
        let tls = self.tls.is_some();
        #[cfg(madsim)]
        let tls = false;
        f.debug_struct("PeerDialer").field("tls", &tls).finish()
    }
}

impl PeerDialer {
    /// A dialer without TLS: `http://` URLs only.
    pub fn plain() -> PeerDialer {
        PeerDialer::default()
    }

    /// A dialer that dials `https://` URLs with `tls`.
    #[cfg(not(madsim))]
    pub fn with_tls(tls: crate::tls::connector::TlsConnector) -> PeerDialer {
        PeerDialer { tls: Some(tls) }
    }

    /// A connected channel to the peer at `url`.
    ///
    /// Errors: [`DialError::Transport`] for a malformed URL or a failed
    /// connection or handshake; [`DialError::NoTls`] for an `https://` URL
    /// without peer TLS settings.
    pub async fn connect(&self, url: &str) -> Result<Channel, DialError> {
        #[cfg(not(madsim))]
        if let Some(authority) = url.strip_prefix("https://") {
            let Some(tls) = &self.tls else {
                return Err(DialError::NoTls(url.to_owned()));
            };
            // Our connector does the TLS; tonic is handed an `http://` URI,
            // because a tonic built with its own TLS feature (as it is when
            // etcd-client's `tls` joins the build) refuses an `https://`
            // URI it has no TLS settings for.
            let endpoint = Endpoint::from_shared(format!("http://{authority}"))?;
            return Ok(endpoint.connect_with_connector(tls.clone()).await?);
        }
        let endpoint = Endpoint::from_shared(url.to_owned())?;
        Ok(endpoint.connect().await?)
    }
}
