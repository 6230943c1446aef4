//! The TLS pieces together in one process: a CA and leaves made with
//! rcgen, the acceptor on a loopback socket, the peer connector dialing it.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use tokio::net::TcpListener;

use super::client_config::{PeerTrust, peer_client_config};
use super::connector::TlsConnector;
use super::server_config::{CLIENT_ALPN, ServerFiles, server_config};
use super::{Acceptor, ConnInfo, TlsError};

struct Files {
    cert: PathBuf,
    key: PathBuf,
}

fn write(dir: &Path, name: &str, cert: &str, key: &KeyPair) -> Files {
    let files = Files {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&files.cert, cert).unwrap();
    std::fs::write(&files.key, key.serialize_pem()).unwrap();
    files
}

fn leaf_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params
}

/// A CA (its certificate in `ca.pem`) and a function making leaves it signs.
fn ca(dir: &Path) -> (PathBuf, impl Fn(&str, &str) -> Files + '_) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, cert.pem()).unwrap();
    let issuer = Issuer::new(params, key);
    let leaf = move |name: &str, cn: &str| {
        let key = KeyPair::generate().unwrap();
        let cert = leaf_params(cn).signed_by(&key, &issuer).unwrap();
        write(dir, name, &cert.pem(), &key)
    };
    (path, leaf)
}

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
    let (ca_file, leaf) = ca(dir.path());
    let (server, alice) = (leaf("server", "server"), leaf("alice", "alice"));
    let info = handshake(&server, &ca_file, &alice).await.unwrap();
    assert_eq!(info.cert_user.as_deref(), Some("alice"));
    assert!(info.remote_addr.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_from_another_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let (ca_file, leaf) = ca(dir.path());
    let (_, other_leaf) = ca(other.path());
    let server = leaf("server", "server");
    // The intruder trusts the server's CA; the server does not trust it.
    let intruder = other_leaf("intruder", "root");
    assert!(handshake(&server, &ca_file, &intruder).await.is_err());
}

#[test]
fn unusable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_file, leaf) = ca(dir.path());
    let (server, other) = (leaf("server", "server"), leaf("other", "other"));
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
