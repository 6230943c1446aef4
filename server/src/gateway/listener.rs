//! One client port for gRPC and HTTP/1.x, as etcd's `cmux` serves it: each
//! accepted connection is classified by its first bytes, peeked without
//! being consumed. The HTTP/2 client preface (`PRI * HTTP/2.0...`) goes to
//! tonic through [`crate::h2_authority`] unchanged; anything else is served
//! as HTTP/1.x by hyper with the gateway's router.
//!
//! On a TLS port the handshake comes first ([`crate::tls::Acceptor`]);
//! the first decrypted bytes are read, classified the same way, and handed
//! back to whichever server takes the connection.

use std::io;
use std::time::Duration;

use axum::Router;
use futures_util::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tonic::transport::server::TcpIncoming;

use crate::h2_authority::FixedAuthorityStream;
use crate::tls::{Acceptor, ServerStream};

/// The HTTP/2 connection preface (RFC 9113 §3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How long a new connection may take to send enough bytes to classify.
const CLASSIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause between peeks while only a prefix of the preface has arrived.
const PEEK_RETRY: Duration = Duration::from_millis(2);

/// HTTP/2 connections accepted but not yet taken by tonic.
const GRPC_QUEUE_CONNECTIONS: usize = 64;

/// The protocol a connection speaks, judged by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 with prior knowledge: gRPC.
    Http2,
    /// Anything else: served as HTTP/1.x.
    Http1,
}

/// Classifies `first_bytes` (a prefix of what the client sent); `None`
/// while they are a proper prefix of the HTTP/2 preface.
pub fn classify(first_bytes: &[u8]) -> Option<Protocol> {
    let seen = first_bytes.len().min(PREFACE.len());
    if first_bytes[..seen] != PREFACE[..seen] {
        Some(Protocol::Http1)
    } else if seen == PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

/// Reads the first bytes of `stream` (a TLS connection, which cannot be
/// peeked) until its protocol is known, then hands them back to it.
///
/// Errors: the client closed the connection or sent too little within
/// [`CLASSIFY_TIMEOUT`].
async fn read_protocol(stream: &mut ServerStream) -> io::Result<Protocol> {
    let deadline = tokio::time::Instant::now() + CLASSIFY_TIMEOUT;
    let mut buf = [0u8; PREFACE.len()];
    let mut filled = 0;
    loop {
        let read = tokio::time::timeout_at(deadline, stream.read(&mut buf[filled..]))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request bytes"))??;
        if read == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        filled += read;
        if let Some(protocol) = classify(&buf[..filled]) {
            stream.unread(&buf[..filled]);
            return Ok(protocol);
        }
    }
}

/// Peeks at `tcp` until its protocol is known.
///
/// Errors: the client closed the connection or sent too little within
/// [`CLASSIFY_TIMEOUT`].
async fn peek_protocol(tcp: &TcpStream) -> io::Result<Protocol> {
    let deadline = tokio::time::Instant::now() + CLASSIFY_TIMEOUT;
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let peeked = tokio::time::timeout_at(deadline, tcp.peek(&mut buf))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no request bytes"))??;
        if peeked == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if let Some(protocol) = classify(&buf[..peeked]) {
            return Ok(protocol);
        }
        tokio::time::sleep(PEEK_RETRY).await;
    }
}

/// A connection handed to tonic.
type GrpcStream = FixedAuthorityStream<ServerStream>;

/// Accepts connections on the bound `listener` and returns the stream of
/// HTTP/2 connections for tonic's `serve_with_incoming_shutdown`; HTTP/1.x
/// connections are served with `http` on their own tasks. With `tls`,
/// every connection completes its handshake first. Accepting stops, and
/// HTTP/1.x connections are closed, once `stop` turns true.
pub fn incoming(
    listener: tokio::net::TcpListener,
    http: Router,
    tls: Option<Acceptor>,
    stop: watch::Receiver<bool>,
) -> impl Stream<Item = io::Result<GrpcStream>> {
    let listener = TcpIncoming::from(listener).with_nodelay(Some(true));
    let (grpc_tx, grpc_rx) = mpsc::channel(GRPC_QUEUE_CONNECTIONS);
    let route = Route {
        grpc: grpc_tx,
        http,
        tls,
        stop,
    };
    tokio::spawn(accept_loop(listener, route));
    futures_util::stream::unfold(grpc_rx, |mut rx| async move {
        rx.recv().await.map(|tcp| (Ok(tcp), rx))
    })
}

/// Where accepted connections go.
#[derive(Clone)]
struct Route {
    grpc: mpsc::Sender<GrpcStream>,
    http: Router,
    tls: Option<Acceptor>,
    stop: watch::Receiver<bool>,
}

async fn accept_loop(mut listener: TcpIncoming, route: Route) {
    let mut stop = route.stop.clone();
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => return,
            accepted = listener.next() => accepted,
        };
        match accepted {
            Some(Ok(tcp)) => {
                tokio::spawn(dispatch(tcp, route.clone()));
            }
            Some(Err(err)) => tracing::debug!(%err, "accept failed"),
            None => return,
        }
    }
}

/// Completes the TLS handshake if any, then hands the connection to tonic
/// or serves it as HTTP/1.x.
async fn dispatch(tcp: TcpStream, route: Route) {
    let classified = match &route.tls {
        None => peek_protocol(&tcp)
            .await
            .map(|protocol| (protocol, ServerStream::plain(tcp))),
        Some(acceptor) => match acceptor.accept(tcp).await {
            Ok(mut stream) => read_protocol(&mut stream)
                .await
                .map(|protocol| (protocol, stream)),
            // The acceptor logged why.
            Err(_) => return,
        },
    };
    match classified {
        Ok((Protocol::Http2, stream)) => {
            let _ = route.grpc.send(FixedAuthorityStream::new(stream)).await;
        }
        Ok((Protocol::Http1, stream)) => serve_http1(stream, route.http, route.stop).await,
        Err(err) => tracing::debug!(%err, "connection closed before its first request"),
    }
}

/// Serves one HTTP/1.x connection until it ends or `stop` turns true.
async fn serve_http1(stream: ServerStream, http: Router, mut stop: watch::Receiver<bool>) {
    let service = TowerToHyperService::new(http);
    let connection =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        served = connection => {
            if let Err(err) = served {
                tracing::debug!(%err, "HTTP/1 connection failed");
            }
        }
        _ = stop.wait_for(|stopped| *stopped) => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_the_preface() {
        assert_eq!(
            classify(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            Some(Protocol::Http2)
        );
        assert_eq!(classify(b"PRI * HT"), None);
        assert_eq!(
            classify(b"POST /v3/kv/range HTTP/1.1"),
            Some(Protocol::Http1)
        );
        assert_eq!(classify(b"PUT"), Some(Protocol::Http1));
        assert_eq!(classify(b"GET /version"), Some(Protocol::Http1));
    }
}
