//! The client side against a real rustls server on loopback: whom each
//! trust setting accepts, the default port, and errors naming the file.

use std::path::Path;
use std::sync::Arc;

use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::test_pki::{CertFiles, Pki, self_signed};
use crate::{Identity, ServerTrust, TlsConnector, TlsError, client_config, pem, provider};

/// A server presenting `server` on a loopback port, answering one
/// connection's handshake with the byte 7; its port.
async fn serve_once(server: &CertFiles) -> u16 {
    let certs = pem::read_certs(&server.cert, "certificate file").unwrap();
    let key = pem::read_key(&server.key).unwrap();
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        if let Ok(mut tls) = acceptor.accept(tcp).await {
            let _ = tls.write_all(&[7]).await;
            let _ = tls.flush().await;
        }
    });
    port
}

/// Dials `uri` with `trust` and reads the server's byte.
async fn dial(connector: TlsConnector, uri: &str) -> std::io::Result<u8> {
    let io = connector.connect(uri.parse().unwrap()).await?;
    let mut tls = io.into_inner();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.read_u8().await
}

fn ca_trust(ca: &Path) -> ServerTrust<'_> {
    ServerTrust::Ca {
        file: ca,
        what: "CA file",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ca_trusts_its_leaves_only() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let trusted = pki.leaf("server", "server");
    let stranger = self_signed(dir.path(), "stranger", "server");
    let connector = TlsConnector::new(client_config(ca_trust(&pki.ca), None).unwrap());

    let port = serve_once(&trusted).await;
    let uri = format!("http://127.0.0.1:{port}");
    assert_eq!(dial(connector.clone(), &uri).await.unwrap(), 7);

    let port = serve_once(&stranger).await;
    let err = dial(connector, &format!("http://localhost:{port}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnknownIssuer"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_certificate_accepts_a_self_signed_server() {
    let dir = tempfile::tempdir().unwrap();
    let stranger = self_signed(dir.path(), "stranger", "someone");
    let config = client_config(ServerTrust::AnyCertificate, None).unwrap();
    let port = serve_once(&stranger).await;
    let uri = format!("http://127.0.0.1:{port}");
    assert_eq!(dial(TlsConnector::new(config), &uri).await.unwrap(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_uri_without_a_port_dials_the_default_port() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let server = pki.leaf("server", "server");
    let config = client_config(ca_trust(&pki.ca), None).unwrap();
    let port = serve_once(&server).await;
    let connector = TlsConnector::new(config).with_default_port(port);
    assert_eq!(
        dial(connector.clone(), "http://127.0.0.1").await.unwrap(),
        7
    );
    let err = connector
        .connect("/no/host".parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn the_default_port_is_etcds() {
    let config = client_config(ServerTrust::AnyCertificate, None).unwrap();
    let connector = TlsConnector::new(config);
    assert!(format!("{connector:?}").contains("default_port: 2379"));
}

#[test]
fn unusable_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path(), "test");
    let (client, other) = (pki.leaf("client", "client"), pki.leaf("other", "other"));
    let missing = dir.path().join("missing.pem");
    let with = |cert: &Path, key: &Path| {
        let identity = Identity {
            cert_file: cert,
            key_file: key,
            what: "certificate file",
        };
        client_config(ca_trust(&pki.ca), Some(identity)).unwrap_err()
    };
    let err = client_config(ca_trust(&missing), None).unwrap_err();
    assert!(
        matches!(&err, TlsError::Read { what: "CA file", path, .. } if *path == missing),
        "{err}"
    );
    let err = with(&client.key, &client.key);
    assert!(
        matches!(&err, TlsError::Empty { what: "certificate", path } if *path == client.key),
        "{err}"
    );
    let err = with(&client.cert, &client.cert);
    assert!(
        matches!(&err, TlsError::Empty { what: "private key", path } if *path == client.cert),
        "{err}"
    );
    let err = with(&client.cert, &other.key);
    assert!(matches!(err, TlsError::Identity { .. }), "{err}");
    assert!(client_config(ca_trust(&pki.ca), None).is_ok());
    let identity = Identity {
        cert_file: &client.cert,
        key_file: &client.key,
        what: "certificate file",
    };
    assert!(client_config(ca_trust(&pki.ca), Some(identity)).is_ok());
}
