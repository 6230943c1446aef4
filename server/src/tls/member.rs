//! Everything TLS a member needs, built once at start from its
//! [`Config`]: the acceptor of each `https://` listen address and the
//! dialer for `https://` peers (etcd `embed.configureClientListeners`,
//! `configurePeerListeners`, `TLSInfo.ClientConfig`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use url::Url;

use super::TlsError;
use super::acceptor::Acceptor;
use super::auto::self_cert;
use super::client_config::{PeerTrust, peer_client_config};
use super::connector::TlsConnector;
use super::server_config::{CLIENT_ALPN, PEER_ALPN, ServerFiles, server_config};
use crate::config::{Config, TlsInfo, bind_addr};
use crate::transport::dial::PeerDialer;

/// The acceptor of every TLS listen address, by address; addresses not
/// listed are served in the clear.
#[derive(Debug, Clone, Default)]
pub struct ServeTls {
    /// `https://` addresses of `--listen-client-urls`.
    pub client: BTreeMap<SocketAddr, Acceptor>,
    /// `https://` addresses of `--listen-peer-urls`.
    pub peer: BTreeMap<SocketAddr, Acceptor>,
}

/// A member's TLS: what it serves and how it dials peers.
#[derive(Debug, Clone, Default)]
pub struct MemberTls {
    /// Acceptors of the TLS listen addresses.
    pub serve: ServeTls,
    /// How the member dials its peers (put it in
    /// [`crate::node::NodeSettings::peer_dialer`]).
    pub dialer: PeerDialer,
}

/// A certificate and its key, given or generated.
struct CertFiles {
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl MemberTls {
    /// Reads (or with auto TLS generates) the certificates `config` names
    /// and builds the acceptors and the peer dialer.
    ///
    /// Errors: [`TlsError`] naming the file that is missing, unreadable
    /// or unusable, or the certificate that cannot be generated; and
    /// [`TlsError::Settings`] when peers would be dialed over TLS without a
    /// CA to verify them (`--peer-cert-file` without
    /// `--peer-trusted-ca-file`).
    pub fn load(config: &Config) -> Result<MemberTls, TlsError> {
        let years = config.tls.self_signed_cert_validity_years;
        let fixtures = config.data_dir.join("fixtures");
        let client_cert = resolve(
            &config.tls.client,
            &fixtures.join("client"),
            &config.listen_client_urls,
            years,
            "client",
        )?;
        let peer_cert = resolve(
            &config.tls.peer,
            &fixtures.join("peer"),
            &config.listen_peer_urls,
            years,
            "peer",
        )?;
        let mut tls = MemberTls::default();
        if let Some(files) = &client_cert {
            let cert_user = config.tls.client.client_cert_auth;
            let acceptor = acceptor(
                &config.tls.client,
                files,
                &CLIENT_ALPN,
                (cert_user, "client"),
            )?;
            tls.serve.client = https_addrs(
                &config.listen_client_urls,
                &acceptor,
                "--listen-client-urls",
            );
        }
        if let Some(files) = &peer_cert {
            let acceptor = acceptor(&config.tls.peer, files, &PEER_ALPN, (false, "peer"))?;
            tls.serve.peer = https_addrs(&config.listen_peer_urls, &acceptor, "--listen-peer-urls");
            if let Some(dialer) = dialer(&config.tls.peer, files, dials_https_peers(config))? {
                tls.dialer = dialer;
            }
        }
        Ok(tls)
    }
}

/// The certificate of one side: the files given, or with auto TLS a
/// self-signed one under `fixtures` for the hosts of `urls`; `None`
/// without either.
fn resolve(
    info: &TlsInfo,
    fixtures: &Path,
    urls: &[Url],
    validity_years: u32,
    kind: &'static str,
) -> Result<Option<CertFiles>, TlsError> {
    if let (Some(cert), Some(key)) = (&info.cert_file, &info.key_file) {
        if info.auto_tls {
            tracing::warn!(kind, "ignoring auto TLS since certs given");
        }
        return Ok(Some(CertFiles {
            cert_file: cert.clone(),
            key_file: key.clone(),
        }));
    }
    if !info.auto_tls {
        return Ok(None);
    }
    let generated = self_cert(fixtures, urls, validity_years)?;
    Ok(Some(CertFiles {
        cert_file: generated.cert_file,
        key_file: generated.key_file,
    }))
}

/// The acceptor serving `files` with `info`'s client certificate check;
/// `cert_user` and `kind` as in [`Acceptor::new`].
fn acceptor(
    info: &TlsInfo,
    files: &CertFiles,
    alpn: &[&[u8]],
    (cert_user, kind): (bool, &'static str),
) -> Result<Acceptor, TlsError> {
    let server_files = ServerFiles {
        cert_file: &files.cert_file,
        key_file: &files.key_file,
        trusted_ca_file: info.trusted_ca_file.as_deref(),
    };
    let config = server_config(&server_files, alpn)?;
    Ok(Acceptor::new(config, cert_user, kind))
}

/// The bind addresses of the `https://` URLs among `urls`, each with
/// `acceptor`. (The URLs were checked when the configuration was read.)
fn https_addrs(
    urls: &[Url],
    acceptor: &Acceptor,
    flag: &'static str,
) -> BTreeMap<SocketAddr, Acceptor> {
    urls.iter()
        .filter(|url| url.scheme() == "https")
        .filter_map(|url| bind_addr(flag, url).ok())
        .map(|addr| (addr, acceptor.clone()))
        .collect()
}

/// True when this member serves or dials `https://` peer URLs.
fn dials_https_peers(config: &Config) -> bool {
    let https = |url: &Url| url.scheme() == "https";
    config.listen_peer_urls.iter().any(https)
        || config.initial_cluster.values().flatten().any(https)
}

/// The dialer presenting the peer certificate `files`, trusting the peer
/// CA, or with auto TLS and no CA, any certificate (as etcd); `None`
/// when there is no CA and no `https://` peer (`needed` false).
///
/// Errors: as [`peer_client_config`]; [`TlsError::Settings`] when `https://`
/// peers would be dialed with no CA to verify them.
fn dialer(info: &TlsInfo, files: &CertFiles, needed: bool) -> Result<Option<PeerDialer>, TlsError> {
    let trust = match (&info.trusted_ca_file, info.auto_tls && !info.has_cert()) {
        (Some(ca), _) => PeerTrust::Ca(ca),
        (None, true) => PeerTrust::SelfSigned,
        (None, false) if !needed => return Ok(None),
        (None, false) => {
            return Err(TlsError::Settings(
                "--peer-cert-file with https:// peers needs --peer-trusted-ca-file to verify the peers' certificates".to_owned(),
            ));
        }
    };
    let config = peer_client_config(&files.cert_file, &files.key_file, trust)?;
    // A peer URL without a port is dialed on 443, as Go's HTTP client
    // (etcd's rafthttp) does for `https://`.
    let connector = TlsConnector::new(config).with_default_port(keel_tls::HTTPS_PORT);
    Ok(Some(PeerDialer::with_tls(connector)))
}
