//! The pool's read cache: whole verified pieces, shared by every torrent and
//! peer, bounded in bytes, least recently used evicted first.
//!
//! A peer asks for the 16 KiB blocks of a piece one after the other; the
//! first miss reads the whole piece (one `pread` per file span), the next
//! requests are served from memory without a worker round trip. Only
//! verified pieces of at most `max_piece` bytes are cached, so an entry never
//! changes while it is cached (a piece that fails a re-hash is removed).
//! A slice handed out keeps its piece alive until dropped, even if the
//! entry is evicted meanwhile; uploads hold such slices only until they are
//! sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;

/// (torrent id, piece).
type Key = (u64, u32);

#[derive(Default)]
struct Inner {
    map: HashMap<Key, (Bytes, u64)>,
    /// Last use → key, oldest first.
    order: BTreeMap<u64, Key>,
    bytes: usize,
    tick: u64,
}

/// A bounded LRU of whole pieces.
pub(crate) struct ReadCache {
    cap: usize,
    max_piece: usize,
    inner: Mutex<Inner>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl ReadCache {
    /// A cache of at most `cap` bytes holding pieces of at most `max_piece`
    /// bytes.
    pub(crate) fn new(cap: usize, max_piece: usize) -> Self {
        Self {
            cap,
            max_piece: max_piece.min(cap),
            inner: Mutex::new(Inner::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every update keeps `map`, `order` and `bytes` consistent before
        // anything can panic; poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a piece of `len` bytes would be cached.
    pub(crate) fn takes(&self, len: usize) -> bool {
        len > 0 && len <= self.max_piece
    }

    /// The cached piece, marked as used; counts a hit.
    pub(crate) fn get(&self, torrent: u64, piece: u32) -> Option<Bytes> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (data, used) = inner.map.get_mut(&(torrent, piece))?;
        let old = std::mem::replace(used, tick);
        let data = data.clone();
        inner.order.remove(&old);
        inner.order.insert(tick, (torrent, piece));
        drop(inner);
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(data)
    }

    /// Counts a read that had to go to disk.
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }

    /// Caches `data` as the whole of `piece`, evicting the least recently
    /// used pieces to stay within the cap.
    pub(crate) fn insert(&self, torrent: u64, piece: u32, data: Bytes) {
        if !self.takes(data.len()) {
            return;
        }
        let mut evicted = Vec::new();
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((old, used)) = inner.map.remove(&(torrent, piece)) {
            inner.order.remove(&used);
            inner.bytes -= old.len();
            evicted.push(old);
        }
        while inner.bytes + data.len() > self.cap {
            let Some((_, key)) = inner.order.pop_first() else {
                break;
            };
            if let Some((old, _)) = inner.map.remove(&key) {
                inner.bytes -= old.len();
                evicted.push(old);
            }
        }
        inner.bytes += data.len();
        inner.order.insert(tick, (torrent, piece));
        inner.map.insert((torrent, piece), (data, tick));
        drop(inner);
        drop(evicted); // freed outside the lock
    }

    /// Forgets `piece` of `torrent` (it failed a re-hash).
    pub(crate) fn remove(&self, torrent: u64, piece: u32) {
        let mut inner = self.lock();
        if let Some((old, used)) = inner.map.remove(&(torrent, piece)) {
            inner.order.remove(&used);
            inner.bytes -= old.len();
        }
    }

    /// Forgets every piece of `torrent` (closed).
    pub(crate) fn remove_torrent(&self, torrent: u64) {
        let mut inner = self.lock();
        let keys: Vec<Key> = inner
            .map
            .keys()
            .filter(|k| k.0 == torrent)
            .copied()
            .collect();
        for k in keys {
            if let Some((old, used)) = inner.map.remove(&k) {
                inner.order.remove(&used);
                inner.bytes -= old.len();
            }
        }
    }

    /// Bytes cached now.
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// (hits, misses) so far.
    pub(crate) fn hits_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_lru_of_whole_pieces() {
        let c = ReadCache::new(100, 40);
        assert!(!c.takes(41) && c.takes(40) && !c.takes(0));
        c.insert(1, 0, Bytes::from(vec![0u8; 40]));
        c.insert(1, 1, Bytes::from(vec![1u8; 40]));
        assert!(c.get(1, 0).is_some(), "0 is now the most recent");
        c.insert(2, 0, Bytes::from(vec![2u8; 40]));
        assert_eq!(c.bytes(), 80);
        assert!(c.get(1, 1).is_none(), "the least recently used went");
        assert_eq!(c.get(2, 0).unwrap()[0], 2);
        c.insert(1, 5, Bytes::from(vec![5u8; 41]));
        assert!(c.get(1, 5).is_none(), "too large to cache");
        c.remove_torrent(1);
        assert!(c.get(1, 0).is_none());
        assert_eq!(c.bytes(), 40);
        c.remove(2, 0);
        assert_eq!(c.bytes(), 0);
        c.miss();
        assert_eq!(c.hits_misses(), (2, 1));
    }
}
