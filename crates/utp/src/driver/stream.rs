//! [`UtpStream`]: one uTP connection as `AsyncRead + AsyncWrite`.
use super::{connection_io_error, Shared};
use crate::connection::ConnectionStats;
use crate::endpoint::ConnectionHandle;
use crate::error::{ReadError, WriteError};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A uTP connection. Dropping it closes the write side after the data
/// already written; the endpoint finishes the close in the background.
pub struct UtpStream {
    shared: Arc<Shared>,
    handle: ConnectionHandle,
    peer: SocketAddr,
}

impl std::fmt::Debug for UtpStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtpStream")
            .field("peer", &self.peer)
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl UtpStream {
    pub(super) fn new(shared: Arc<Shared>, handle: ConnectionHandle, peer: SocketAddr) -> Self {
        UtpStream {
            shared,
            handle,
            peer,
        }
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }

    /// The local UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The connection's counters (RTT, window, delay, retransmissions…).
    pub fn stats(&self) -> Option<ConnectionStats> {
        self.shared
            .lock()
            .endpoint
            .connection(self.handle)
            .map(|c| c.stats())
    }

    fn stopped() -> io::Error {
        io::Error::new(io::ErrorKind::NotConnected, "utp: driver stopped")
    }
}

impl AsyncRead for UtpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let now = self.shared.now();
        let mut g = self.shared.lock();
        // Only as much of the buffer is initialised as there is to copy:
        // `read_buf` hands a fresh, uninitialised buffer each call, and
        // zeroing all of it every time cost more than the copy.
        let ready = g
            .endpoint
            .connection(self.handle)
            .map_or(0, |c| c.readable_bytes());
        let dst = buf.initialize_unfilled_to(ready.max(1).min(buf.remaining()));
        match g.endpoint.read(self.handle, now, dst) {
            Ok(n) => {
                buf.advance(n);
                if g.endpoint.has_pending_transmit() {
                    self.shared.notify.notify_one();
                }
                Poll::Ready(Ok(()))
            }
            Err(ReadError::WouldBlock) => {
                if g.stopped {
                    return Poll::Ready(Err(Self::stopped()));
                }
                if let Some(w) = g.wakers.get_mut(&self.handle) {
                    w.read = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Err(ReadError::Closed(e)) => Poll::Ready(Err(connection_io_error(e))),
            Err(_) => Poll::Ready(Err(Self::stopped())),
        }
    }
}

impl AsyncWrite for UtpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let now = self.shared.now();
        let mut g = self.shared.lock();
        match g.endpoint.write(self.handle, now, data) {
            Ok(0) if !data.is_empty() => {
                if g.stopped {
                    return Poll::Ready(Err(Self::stopped()));
                }
                if let Some(w) = g.wakers.get_mut(&self.handle) {
                    w.write = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Ok(n) => {
                drop(g);
                self.shared.notify.notify_one();
                Poll::Ready(Ok(n))
            }
            Err(WriteError::Closed(e)) => Poll::Ready(Err(connection_io_error(e))),
            Err(e) => Poll::Ready(Err(io::Error::new(io::ErrorKind::BrokenPipe, e))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let now = self.shared.now();
        self.shared.lock().endpoint.close(self.handle, now);
        self.shared.notify.notify_one();
        Poll::Ready(Ok(()))
    }
}

impl Drop for UtpStream {
    fn drop(&mut self) {
        let now = self.shared.now();
        {
            let mut g = self.shared.lock();
            g.endpoint.release(self.handle, now);
            g.wakers.remove(&self.handle);
            g.streams -= 1;
        }
        self.shared.notify.notify_one();
    }
}
