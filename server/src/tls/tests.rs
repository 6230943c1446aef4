//! The TLS pieces together in one process: a CA and leaves made with
//! keel-tls's test PKI, the acceptor on a loopback socket, the peer connector dialing it.

use std::path::Path;

use keel_tls::test_pki::{CertFiles as Files, Pki};
use tokio::net::TcpListener;

use super::client_config::{PeerTrust, peer_client_config};
use super::connector::TlsConnector;
use super::server_config::{CLIENT_ALPN, ServerFiles, server_config};
use super::{Acceptor, ConnInfo, TlsError};

/// Serves one handshake with client certificates checked against `ca`
/// and CN auth on, dialed with `client`; what the acceptor made of it.
async fn handshake(server: &Files, ca: &Path, client: &Files) -> std::io::Result<ConnInfo> {
    let files = ServerFiles {
        cert_file: &server.cert,
        key_file: &server.key,
        trusted_ca_file: Some(ca),
    };
    let acceptor = Acceptor::new(server_config(&files, &CLIENT_ALPN).unwrap(), true, "client");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("https://{}", listener.local_addr().unwrap());
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let stream = acceptor.accept(tcp).await?;
        Ok::<_, std::io::Error>(stream.info().clone())
    });
    let config = peer_client_config(&client.cert, &client.key, PeerTrust::Ca(ca)).unwrap();
    let dialed = TlsConnector::new(config)
        .connect(uri.parse().unwrap())
        .await;
    let info = served.await.unwrap();
    drop(dialed);
    info
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_verified_client_certificate_names_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let (server, alice) = (pki.leaf("server", "server"), pki.leaf("alice", "alice"));
    let info = handshake(&server, &pki.ca, &alice).await.unwrap();
    assert_eq!(info.cert_user.as_deref(), Some("alice"));
    assert!(info.remote_addr.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let other_pki = Pki::new(other.path(), "other");
    let server = pki.leaf("server", "server");
    // The intruder trusts the server's CA; the server does not trust it.
    let intruder = other_pki.leaf("intruder", "root");
    assert!(handshake(&server, &pki.ca, &intruder).await.is_err());
}

#[test]
fn unusable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let ca_file = pki.ca.clone();
    let (server, other) = (pki.leaf("server", "server"), pki.leaf("other", "other"));
    let missing = dir.path().join("missing.pem");
    fn files<'a>(cert: &'a Path, key: &'a Path, ca: &'a Path) -> ServerFiles<'a> {
        ServerFiles {
            cert_file: cert,
            key_file: key,
            trusted_ca_file: Some(ca),
        }
    }
    let err = server_config(&files(&missing, &server.key, &ca_file), &CLIENT_ALPN).unwrap_err();
    assert!(matches!(err, TlsError::Read { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    let err = server_config(&files(&server.key, &server.key, &ca_file), &CLIENT_ALPN).unwrap_err();
    assert!(matches!(err, TlsError::Empty { .. }), "{err}");
    let err =
        server_config(&files(&server.cert, &server.cert, &ca_file), &CLIENT_ALPN).unwrap_err();
    assert!(matches!(err, TlsError::Empty { .. }), "{err}");
    let err = server_config(&files(&server.cert, &other.key, &ca_file), &CLIENT_ALPN).unwrap_err();
    assert!(matches!(err, TlsError::Rustls { .. }), "{err}");
}
