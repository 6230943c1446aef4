//! An accepted connection as the servers see it: plain TCP or TLS over
//! TCP, with bytes already read from it (to learn its protocol) handed
//! back first, and what tonic passes to the services about it
//! ([`ConnInfo`], in each request's extensions).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tonic::transport::server::Connected;

/// What the services learn about the connection a request came on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address, when the socket knows it.
    pub remote_addr: Option<SocketAddr>,
    /// With `--client-cert-auth`, the common name of the client's
    /// verified certificate: the user a request without a token stands
    /// for (etcd's CN auth). `None` on plain connections.
    pub cert_user: Option<String>,
}

enum Inner {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// An accepted connection, plain or TLS.
pub struct ServerStream {
    inner: Inner,
    /// Bytes read ahead, served before the socket's, from `unread_pos`.
    unread: Vec<u8>,
    unread_pos: usize,
    info: ConnInfo,
}

impl ServerStream {
    /// A plain TCP connection.
    pub fn plain(tcp: TcpStream) -> ServerStream {
        let info = ConnInfo {
            remote_addr: tcp.peer_addr().ok(),
            cert_user: None,
        };
        ServerStream::new(Inner::Plain(tcp), info)
    }

    /// A TLS connection whose handshake is done; `cert_user` as in
    /// [`ConnInfo::cert_user`].
    pub fn tls(tls: TlsStream<TcpStream>, cert_user: Option<String>) -> ServerStream {
        let info = ConnInfo {
            remote_addr: tls.get_ref().0.peer_addr().ok(),
            cert_user,
        };
        ServerStream::new(Inner::Tls(Box::new(tls)), info)
    }

    fn new(inner: Inner, info: ConnInfo) -> ServerStream {
        ServerStream {
            inner,
            unread: Vec::new(),
            unread_pos: 0,
            info,
        }
    }

    /// What the services learn about this connection.
    pub fn info(&self) -> &ConnInfo {
        &self.info
    }

    /// Hands `bytes` (read from this stream) back: the next reads return
    /// them before anything else. Only once, before any other read.
    pub fn unread(&mut self, bytes: &[u8]) {
        debug_assert!(self.unread_pos == self.unread.len());
        self.unread = bytes.to_vec();
        self.unread_pos = 0;
    }

    fn inner_pin(&mut self) -> Pin<&mut dyn AsyncReadWrite> {
        match &mut self.inner {
            Inner::Plain(tcp) => Pin::new(tcp),
            Inner::Tls(tls) => Pin::new(tls.as_mut()),
        }
    }
}

/// Both directions of a socket, as one object.
trait AsyncReadWrite: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncReadWrite for T {}

impl AsyncRead for ServerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let pending = &this.unread[this.unread_pos..];
        if !pending.is_empty() {
            let n = pending.len().min(buf.remaining());
            buf.put_slice(&pending[..n]);
            this.unread_pos += n;
            return Poll::Ready(Ok(()));
        }
        this.inner_pin().poll_read(cx, buf)
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.inner_pin().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.inner_pin().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(tcp) => tcp.is_write_vectored(),
            Inner::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner_pin().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner_pin().poll_shutdown(cx)
    }
}

impl Connected for ServerStream {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}
