//! [`PieceBufs`]: the buffers whole pieces are read into for the read
//! cache, given back when the last slice of a piece is dropped.
//!
//! A seeder reads every piece it serves whole, once (see
//! [`super::read_cache`]). A fresh zeroed buffer per piece cost the zeroing
//! and, for buffers the allocator maps anew, a page fault per page and the
//! unmapping: on a 1 GiB upload over loopback about a sixth of the seeder's
//! disk threads' time, as much as the read itself. A recycled buffer is
//! mapped and is overwritten whole by the read, so neither is paid.
//!
//! What a buffer held before is never seen: a buffer becomes a piece's
//! [`Bytes`] only after a read filled all of it (the caller drops it
//! otherwise, which gives it back).

use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Free buffers, bounded in bytes.
pub(crate) struct PieceBufs {
    free: Mutex<Vec<Vec<u8>>>,
    max_bytes: usize,
}

impl PieceBufs {
    /// A pool keeping at most `max_bytes` of free buffers.
    pub(crate) fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(PieceBufs {
            free: Mutex::new(Vec::new()),
            max_bytes,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u8>>> {
        // A push or a pop cannot leave the list torn: poisoning is ignored.
        self.free.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A buffer of exactly `len` bytes (of unspecified contents): a free one
    /// of at least that capacity and at most twice it, else a new one.
    pub(crate) fn take(self: &Arc<Self>, len: usize) -> PieceBuf {
        let found = {
            let mut free = self.lock();
            free.iter()
                .position(|b| b.capacity() >= len && b.capacity() / 2 <= len)
                .map(|i| free.swap_remove(i))
        };
        let mut buf = found.unwrap_or_default();
        // Shrinking keeps the old bytes; growing zeroes only the new tail.
        buf.resize(len, 0);
        PieceBuf {
            buf,
            pool: Arc::clone(self),
        }
    }

    fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 || buf.capacity() > self.max_bytes {
            return;
        }
        let mut free = self.lock();
        let held: usize = free.iter().map(Vec::capacity).sum();
        if held + buf.capacity() <= self.max_bytes {
            free.push(buf);
        }
    }

    /// Bytes of free buffers held now.
    #[cfg(test)]
    pub(crate) fn free_bytes(&self) -> usize {
        self.lock().iter().map(Vec::capacity).sum()
    }
}

/// A buffer taken from [`PieceBufs`]; goes back when dropped, or when the
/// last slice of the [`Bytes`] made of it is.
pub(crate) struct PieceBuf {
    buf: Vec<u8>,
    pool: Arc<PieceBufs>,
}

impl PieceBuf {
    /// The bytes to fill.
    pub(crate) fn as_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }

    /// The filled buffer as shared bytes.
    pub(crate) fn freeze(self) -> Bytes {
        Bytes::from_owner(self)
    }
}

impl AsRef<[u8]> for PieceBuf {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for PieceBuf {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_comes_back_when_its_last_slice_goes() {
        let pool = PieceBufs::new(1 << 20);
        let mut b = pool.take(1000);
        b.as_mut().fill(7);
        let ptr = b.as_ref().as_ptr();
        let bytes = b.freeze();
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(pool.free_bytes(), 0, "a slice still holds it");
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        assert_eq!(pool.free_bytes(), 1000);
        // Taken again for a piece of a close size: the same memory.
        let again = pool.take(900);
        assert_eq!(again.as_ref().len(), 900);
        assert_eq!(again.as_ref().as_ptr(), ptr);
        assert_eq!(pool.free_bytes(), 0);
        // Far smaller pieces get a buffer of their own.
        drop(again);
        let small = pool.take(100);
        assert_ne!(small.as_ref().as_ptr(), ptr);
        assert_eq!(small.as_ref(), &[0u8; 100][..]);
    }

    #[test]
    fn free_buffers_stay_within_the_bound() {
        let pool = PieceBufs::new(2500);
        let bufs: Vec<_> = (0..5).map(|_| pool.take(1000)).collect();
        drop(bufs);
        assert_eq!(pool.free_bytes(), 2000);
        drop(pool.take(4000));
        assert_eq!(pool.free_bytes(), 2000, "larger than the bound: freed");
    }
}
