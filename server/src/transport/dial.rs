//! How a member opens a gRPC channel to a peer URL: in the clear for
//! `http://`, over TLS for `https://` when the member has peer TLS
//! settings (`--peer-cert-file`, `--peer-auto-tls`). The peer transport,
//! the join-time member query and forwarded lease requests all dial
//! through one [`PeerDialer`]. Under madsim every URL is dialed on the
//! simulated network in the clear.
//!
//! Source address: a member that listens for peers on a loopback address
//! (`--listen-peer-urls http://127.0.0.11:2380`) dials its loopback peers
//! (peer URLs whose host is a loopback IP) FROM that address, instead of
//! the OS's choice (127.0.0.1 for every loopback destination). A member
//! listening for peers on loopback can only have peers on this host, so
//! the address is always usable; it lets something between members on one
//! host (keel-jepsen's TCP proxies, docs/jepsen.md) tell which member a
//! peer connection comes from. Any other listen or destination address
//! keeps the OS's choice, as does an `https://` peer (its TLS connector
//! opens the TCP connection) and the simulated network.

use std::net::{IpAddr, SocketAddr};

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
    /// Loopback IPs this member listens for peers on, in flag order: the
    /// first of a destination's family is the source of a dial to a
    /// loopback peer (see the module doc).
    loopback_sources: Vec<IpAddr>,
}

impl std::fmt::Debug for PeerDialer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        #[cfg(not(madsim))]
        let tls = self.tls.is_some();
        #[cfg(madsim)]
        let tls = false;
        f.debug_struct("PeerDialer")
            .field("tls", &tls)
            .field("loopback_sources", &self.loopback_sources)
            .finish()
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
        PeerDialer {
            tls: Some(tls),
            loopback_sources: Vec::new(),
        }
    }

    /// This dialer, dialing loopback peers from the loopback addresses
    /// among `listen_peer_addrs` (the bound `--listen-peer-urls`): a dial
    /// to a peer URL whose host is a loopback IP binds its socket to the
    /// first of them of the same family (IPv4 or IPv6) before connecting.
    /// Addresses that are not loopback (including `0.0.0.0`) are ignored;
    /// with none left the OS chooses every source, as before.
    pub fn with_loopback_sources(mut self, listen_peer_addrs: &[SocketAddr]) -> PeerDialer {
        self.loopback_sources = listen_peer_addrs
            .iter()
            .map(SocketAddr::ip)
            .filter(IpAddr::is_loopback)
            .collect();
        self
    }

    /// The source IP of a dial to `url`: this member's loopback listen IP
    /// of the destination's family when the destination is a loopback IP
    /// literal; `None` (the OS chooses) otherwise.
    pub fn source_for(&self, url: &str) -> Option<IpAddr> {
        let destination = loopback_host(url)?;
        self.loopback_sources
            .iter()
            .copied()
            .find(|source| source.is_ipv4() == destination.is_ipv4())
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
        #[cfg(not(madsim))]
        let endpoint = endpoint.local_address(self.source_for(url));
        Ok(endpoint.connect().await?)
    }
}

/// The host of `url` (`scheme://host:port/...`) when it is a loopback IP
/// literal (`127.0.0.0/8`, `[::1]`); `None` for names, other addresses and
/// URLs that do not parse.
fn loopback_host(url: &str) -> Option<IpAddr> {
    let authority = url.split_once("://")?.1.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => host,
        _ => authority,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().ok().filter(IpAddr::is_loopback)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> SocketAddr {
        text.parse().expect("socket address")
    }

    #[test]
    fn loopback_peers_are_dialed_from_the_loopback_listen_ip() {
        let dialer = PeerDialer::plain()
            .with_loopback_sources(&[addr("0.0.0.0:2380"), addr("127.0.0.11:2380")]);
        let ip = |text: &str| Some(text.parse::<IpAddr>().expect("ip"));
        assert_eq!(
            dialer.source_for("http://127.0.0.12:2380"),
            ip("127.0.0.11")
        );
        assert_eq!(dialer.source_for("http://127.9.9.9:1/x"), ip("127.0.0.11"));
        assert_eq!(dialer.source_for("http://[::1]:2380"), None);
        assert_eq!(dialer.source_for("http://10.0.0.2:2380"), None);
        assert_eq!(dialer.source_for("http://localhost:2380"), None);
        assert_eq!(dialer.source_for("not a url"), None);
    }

    #[test]
    fn members_not_listening_on_loopback_keep_the_os_choice() {
        let dialer = PeerDialer::plain().with_loopback_sources(&[addr("10.0.0.1:2380")]);
        assert_eq!(dialer.source_for("http://127.0.0.12:2380"), None);
        let ipv6 = PeerDialer::plain().with_loopback_sources(&[addr("[::1]:2380")]);
        assert_eq!(
            ipv6.source_for("http://[::1]:2380"),
            Some("::1".parse().expect("ip"))
        );
        assert_eq!(ipv6.source_for("http://127.0.0.1:2380"), None);
    }
}
