//! The socket side of a peer task: reading into its buffer and the
//! writer that drains its queued output.
use super::*;
use std::os::fd::{AsFd, OwnedFd};
use tokio::io::unix::AsyncFd;

/// Reads once into `buf` (growing it by at most [`READ_CHUNK`]).
pub(super) async fn read_some<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut bytes::BytesMut,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 16 * 1024 {
        buf.reserve(READ_CHUNK);
    }
    rd.read_buf(buf).await
}

/// One item of a peer's output queue.
pub(super) enum Out {
    /// Bytes to write; the flag marks block payload.
    Bytes(Bytes, bool),
    /// A block's payload sent from its files (`sendfile`).
    File(shoal_storage::FileBlock),
}

impl Out {
    /// Bytes it puts on the wire.
    pub(super) fn len(&self) -> usize {
        match self {
            Out::Bytes(b, _) => b.len(),
            Out::File(f) => f.len() as usize,
        }
    }
}

/// The connection's TCP socket, registered for writability, when uploads
/// may be sent from files (see [`PeerStream::plain_socket`]): a duplicate
/// of the stream's descriptor, so the writer can `sendfile` to it between
/// its ordinary writes. `None` when the stream has no plain socket.
pub(super) fn upload_socket<S: PeerStream>(stream: &S) -> Option<AsyncFd<OwnedFd>> {
    let fd = stream.plain_socket()?.try_clone_to_owned().ok()?;
    // SAFETY: `fd` is owned by the AsyncFd, so it stays open and names the
    // same socket until the AsyncFd (which deregisters it first) is dropped.
    unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::WRITABLE) }.ok()
}

/// Writes queued chunks, gathering several per system call, and file
/// blocks with `sendfile` on `sock`, all in queue order; adds the payload
/// to `written` once it is on the socket.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<Out>,
    written: Arc<AtomicU64>,
    sock: Option<AsyncFd<OwnedFd>>,
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(64);
    while let Some(first) = rx.recv().await {
        let mut payload = 0u64;
        let mut file = None;
        let mut next = Some(first);
        while let Some(item) = next.take() {
            match item {
                Out::Bytes(b, p) => {
                    if p {
                        payload += b.len() as u64;
                    }
                    batch.push(b);
                }
                Out::File(f) => {
                    file = Some(f);
                    break;
                }
            }
            if batch.len() < 64 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            if write_all_vectored(&mut wr, &mut batch).await.is_err() {
                return;
            }
            written.fetch_add(payload, Ordering::Relaxed);
            batch.clear();
        }
        if let Some(f) = file {
            // The bytes before it are on the socket (written and flushed).
            if send_file_block(sock.as_ref(), &f).await.is_err() {
                return;
            }
            written.fetch_add(f.len(), Ordering::Relaxed);
        }
    }
    let _ = wr.shutdown().await;
}

/// Sends a whole file block on `sock`, waiting while the socket is full.
async fn send_file_block(
    sock: Option<&AsyncFd<OwnedFd>>,
    f: &shoal_storage::FileBlock,
) -> std::io::Result<()> {
    // File blocks are only queued on connections with a socket.
    let sock = sock.ok_or(std::io::ErrorKind::Unsupported)?;
    let mut sent = 0u64;
    loop {
        let mut ready = sock.writable().await?;
        match ready.try_io(|fd| f.send_to(fd.get_ref().as_fd(), &mut sent)) {
            Ok(r) => return r,
            Err(_would_block) => continue,
        }
    }
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(
    wr: &mut W,
    batch: &mut [Bytes],
) -> std::io::Result<()> {
    let mut first = 0usize;
    while first < batch.len() {
        let slices: Vec<std::io::IoSlice<'_>> = batch[first..]
            .iter()
            .map(|b| std::io::IoSlice::new(b))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        drop(slices);
        while n > 0 && first < batch.len() {
            let len = batch[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                let rest = batch[first].slice(n..);
                batch[first] = rest;
                n = 0;
            }
        }
    }
    wr.flush().await
}
