//! The socket side of a peer task: reading into its buffer and the
//! writer that drains its queued output.
use super::*;

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

/// Writes queued chunks, gathering several per system call; adds the
/// payload chunks to `written` once they are on the socket.
pub(super) async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<(Bytes, bool)>,
    written: Arc<AtomicU64>,
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(64);
    while let Some((first, p)) = rx.recv().await {
        let mut payload = if p { first.len() as u64 } else { 0 };
        batch.push(first);
        while batch.len() < 64 {
            match rx.try_recv() {
                Ok((b, p)) => {
                    if p {
                        payload += b.len() as u64;
                    }
                    batch.push(b);
                }
                Err(_) => break,
            }
        }
        if write_all_vectored(&mut wr, &mut batch).await.is_err() {
            return;
        }
        written.fetch_add(payload, Ordering::Relaxed);
        batch.clear();
    }
    let _ = wr.shutdown().await;
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
