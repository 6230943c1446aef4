//! The TLS handshake of one accepted connection (etcd
//! `transport.NewListener` with a TLS config), and for the peer port a
//! stream of handshaken connections for tonic.
//!
//! A connection that fails its handshake (plain HTTP or gRPC on a TLS
//! port, an untrusted, expired or missing client certificate) is logged
//! and closed; the listener keeps serving. A plain HTTP/1.x request is
//! told why first, in the words of Go's `net/http` server: `400 Bad
//! Request`, "Client sent an HTTP request to an HTTPS server." (etcd 3.4
//! closes such a connection without an answer; curl then reports an empty
//! reply, which says less.)

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use rustls::ServerConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tonic::transport::server::TcpIncoming;

use super::identity::common_name;
use super::stream::ServerStream;

/// How long a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections queued before tonic takes them.
const QUEUE_CONNECTIONS: usize = 64;

/// The first byte of a TLS handshake record (RFC 8446 §5.1).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// The answer to plain HTTP on a TLS port (Go `net/http`'s words).
const PLAIN_HTTP_ANSWER: &[u8] =
    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

/// The TLS side of one port kind: server settings, and whether a
/// verified client certificate's common name names the user.
#[derive(Clone)]
pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    cert_user: bool,
    kind: &'static str,
}

impl std::fmt::Debug for Acceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acceptor")
            .field("kind", &self.kind)
            .field("cert_user", &self.cert_user)
            .finish_non_exhaustive()
    }
}

impl Acceptor {
    /// An acceptor with `config`; `cert_user` makes the common name of a
    /// verified client certificate the connection's user (the client
    /// port with `--client-cert-auth`); `kind` ("client", "peer") names
    /// the port in logs.
    pub fn new(config: Arc<ServerConfig>, cert_user: bool, kind: &'static str) -> Acceptor {
        Acceptor {
            inner: tokio_rustls::TlsAcceptor::from(config),
            cert_user,
            kind,
        }
    }

    /// Completes the handshake on `tcp` within [`HANDSHAKE_TIMEOUT`].
    ///
    /// Errors: the client is not speaking TLS, fails the handshake (its
    /// certificate is missing, untrusted or expired; no common protocol),
    /// or is too slow. The error is logged as a rejected connection.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<ServerStream> {
        let remote = tcp.peer_addr().ok();
        let handshake = async {
            refuse_plain_http(&tcp).await?;
            self.inner.accept(tcp).await
        };
        let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "handshake timed out",
                ))
            });
        match outcome {
            Ok(tls) => {
                let user = self.cert_user_of(&tls);
                Ok(ServerStream::tls(tls, user))
            }
            Err(err) => {
                log_rejected(self.kind, remote, &err);
                Err(err)
            }
        }
    }

    fn cert_user_of(&self, tls: &tokio_rustls::server::TlsStream<TcpStream>) -> Option<String> {
        if !self.cert_user {
            return None;
        }
        let leaf = tls.get_ref().1.peer_certificates()?.first()?;
        common_name(leaf)
    }
}

/// Answers a plain HTTP/1.x request as Go does and fails; anything else
/// that is not a TLS handshake fails in the handshake itself.
async fn refuse_plain_http(tcp: &TcpStream) -> io::Result<()> {
    let mut first = [0u8; 1];
    let peeked = tcp.peek(&mut first).await?;
    if peeked == 0 || first[0] == TLS_HANDSHAKE_RECORD || !first[0].is_ascii_uppercase() {
        return Ok(());
    }
    if first[0] == b'P' && looks_like_http2(tcp).await {
        return Ok(());
    }
    let _ = tcp.try_write(PLAIN_HTTP_ANSWER);
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "client sent an HTTP request to an HTTPS server",
    ))
}

/// True when the connection starts with `PRI` (the HTTP/2 preface of a
/// plain gRPC client), which gets no HTTP/1 answer.
async fn looks_like_http2(tcp: &TcpStream) -> bool {
    let mut head = [0u8; 3];
    matches!(tcp.peek(&mut head).await, Ok(3) if &head == b"PRI")
}

fn log_rejected(kind: &'static str, remote: Option<SocketAddr>, err: &io::Error) {
    let remote = remote.map_or_else(|| "?".to_owned(), |addr| addr.to_string());
    tracing::warn!(kind, %remote, %err, "rejected connection: TLS handshake failed");
}

/// Accepts connections on `listener`, completes their handshakes on
/// their own tasks and yields the handshaken ones (for tonic's
/// `serve_with_incoming_shutdown`). Accepting stops when the stream is
/// dropped.
pub fn incoming(
    listener: TcpListener,
    acceptor: Acceptor,
) -> impl Stream<Item = io::Result<ServerStream>> {
    let listener = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (tx, rx) = mpsc::channel(QUEUE_CONNECTIONS);
    tokio::spawn(accept_loop(listener, acceptor, tx));
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|stream| (Ok(stream), rx))
    })
}

async fn accept_loop(
    mut listener: TcpIncoming,
    acceptor: Acceptor,
    handshaken: mpsc::Sender<ServerStream>,
) {
    loop {
        let accepted = tokio::select! {
            _ = handshaken.closed() => return,
            accepted = listener.next() => accepted,
        };
        match accepted {
            Some(Ok(tcp)) => {
                let (acceptor, handshaken) = (acceptor.clone(), handshaken.clone());
                tokio::spawn(async move {
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = handshaken.send(stream).await;
                    }
                });
            }
            Some(Err(err)) => tracing::debug!(%err, "accept failed"),
            None => return,
        }
    }
}
