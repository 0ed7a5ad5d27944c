//! [`MseStream`]: a byte stream after the MSE handshake (feature `tokio`).
//! It first yields the BitTorrent bytes the handshake already received,
//! then decrypts what it reads in place, in the caller's buffer; what it
//! writes is encrypted into one reused buffer in a single pass (RC4 cannot
//! encrypt the caller's `&[u8]` in place) and written from there. With
//! plaintext selected, or for a plain BitTorrent connection, it passes
//! through.

use super::handshake::{MseOutcome, Rc4Pair};
use super::Crypto;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Size of the buffer encrypted bytes wait in for the socket.
const WRITE_BUF: usize = 128 * 1024;

/// What protects a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Plain BitTorrent: no MSE handshake.
    None,
    /// An MSE handshake, then a plaintext payload stream (libtorrent's
    /// `plaintext_encrypted`): the torrent is hidden, the data is not.
    Plaintext,
    /// An MSE handshake and an RC4-encrypted payload stream.
    Rc4,
}

/// A stream after the MSE handshake (or a plain one). See the module docs.
pub struct MseStream<S> {
    inner: S,
    encryption: Encryption,
    skey: Option<[u8; 20]>,
    /// BitTorrent bytes received with the handshake, served first.
    pre: Vec<u8>,
    pre_pos: usize,
    cipher: Option<Rc4Pair>,
    /// Encrypted bytes accepted from the caller and not yet written:
    /// `wbuf[wpos..wlen]`. Allocated on the first encrypted write.
    wbuf: Vec<u8>,
    wpos: usize,
    wlen: usize,
}

impl<S> std::fmt::Debug for MseStream<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MseStream")
            .field("encryption", &self.encryption)
            .field("pending_write", &(self.wlen - self.wpos))
            .finish_non_exhaustive()
    }
}

impl<S> MseStream<S> {
    /// A plain BitTorrent connection (no MSE): everything passes through.
    pub fn plain(inner: S) -> Self {
        Self::with(inner, Encryption::None, None, Vec::new(), None)
    }

    /// The stream after a completed handshake.
    pub fn from_outcome(inner: S, outcome: MseOutcome) -> Self {
        let encryption = match outcome.crypto {
            Crypto::Rc4 => Encryption::Rc4,
            Crypto::Plaintext => Encryption::Plaintext,
        };
        Self::with(
            inner,
            encryption,
            Some(outcome.skey),
            outcome.payload,
            outcome.cipher,
        )
    }

    /// `bytes` were read from `inner` already and come first (a listener
    /// that peeked at a plain handshake).
    pub fn plain_with_received(inner: S, bytes: Vec<u8>) -> Self {
        Self::with(inner, Encryption::None, None, bytes, None)
    }

    fn with(
        inner: S,
        encryption: Encryption,
        skey: Option<[u8; 20]>,
        pre: Vec<u8>,
        cipher: Option<Rc4Pair>,
    ) -> Self {
        MseStream {
            inner,
            encryption,
            skey,
            pre,
            pre_pos: 0,
            cipher,
            wbuf: Vec::new(),
            wpos: 0,
            wlen: 0,
        }
    }

    /// What protects this connection.
    pub fn encryption(&self) -> Encryption {
        self.encryption
    }

    /// The torrent the MSE handshake was for (SKEY); `None` without MSE.
    pub fn skey(&self) -> Option<[u8; 20]> {
        self.skey
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> MseStream<S> {
    /// Writes out the pending encrypted bytes.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wpos < self.wlen {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.wbuf[self.wpos..self.wlen]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.wpos += n;
        }
        self.wpos = 0;
        self.wlen = 0;
        Poll::Ready(Ok(()))
    }

    /// Encrypts as much of `bufs` as fits into the (drained) write buffer.
    fn accept(&mut self, bufs: &[io::IoSlice<'_>]) -> usize {
        let Some(c) = self.cipher.as_mut() else {
            return 0;
        };
        if self.wbuf.is_empty() {
            self.wbuf = vec![0; WRITE_BUF];
        }
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(WRITE_BUF - n);
            c.send.apply_to(&b[..take], &mut self.wbuf[n..n + take]);
            n += take;
            if n == WRITE_BUF {
                break;
            }
        }
        self.wpos = 0;
        self.wlen = n;
        n
    }

    fn poll_write_encrypted(
        &mut self,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.poll_drain(cx))?;
        let n = self.accept(bufs);
        // Start writing at once; what the socket does not take now goes
        // with the next call (the bytes are ours from here on).
        if let Poll::Ready(Err(e)) = self.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(n))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for MseStream<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pre_pos < this.pre.len() {
            let n = (this.pre.len() - this.pre_pos).min(buf.remaining());
            buf.put_slice(&this.pre[this.pre_pos..this.pre_pos + n]);
            this.pre_pos += n;
            if this.pre_pos == this.pre.len() {
                this.pre = Vec::new();
                this.pre_pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if let Some(c) = this.cipher.as_mut() {
            c.recv.apply(&mut buf.filled_mut()[before..]);
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MseStream<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cipher.is_none() {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        this.poll_write_encrypted(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cipher.is_none() {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        this.poll_write_encrypted(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.cipher.is_some() || self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
