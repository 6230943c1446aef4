//! The filter applied to a socket, and a TCP accept stream of such sockets
//! for tonic's `serve_with_incoming_shutdown`.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::transport::server::Connected;

use super::filter::InboundFilter;

/// Bytes read from the socket per call while the filter is active.
const READ_CHUNK_BYTES: usize = 16 * 1024;

/// A connection whose inbound bytes go through an [`InboundFilter`];
/// outbound bytes are written unchanged. Once the filter steps aside, reads
/// go straight to the socket.
pub struct FixedAuthorityStream<S> {
    inner: S,
    filter: InboundFilter,
    /// Filtered bytes not yet handed to the reader, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<S> FixedAuthorityStream<S> {
    /// Wraps a freshly accepted connection.
    pub fn new(inner: S) -> Self {
        FixedAuthorityStream {
            inner,
            filter: InboundFilter::new(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
        }
    }

    /// Hands filtered bytes to `buf`; false if there are none.
    fn drain_into(&mut self, buf: &mut ReadBuf<'_>) -> bool {
        let available = &self.out[self.out_pos..];
        if available.is_empty() {
            return false;
        }
        let n = available.len().min(buf.remaining());
        buf.put_slice(&available[..n]);
        self.out_pos += n;
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        true
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FixedAuthorityStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.drain_into(buf) || this.eof {
                return Poll::Ready(Ok(()));
            }
            if this.filter.is_passthrough() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            let mut chunk = [0u8; READ_CHUNK_BYTES];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                this.filter.finish(&mut this.out);
                this.eof = true;
                continue;
            }
            this.filter
                .push(chunk_buf.filled(), &mut this.out)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FixedAuthorityStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for FixedAuthorityStream<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}
