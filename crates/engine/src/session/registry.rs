//! The session's table of torrents, written by the session's run loop and
//! read by every handle (lookups by id or info-hash, snapshots). The lock is
//! held only to copy a handle out, never across an await. It also finds a
//! torrent for an incoming MSE connection: `HASH('req2', hash)` of each
//! torrent's v1 and truncated v2 hash is computed once, on insert.
//!
//! The handles are in a [`VecMap`] (ids are handed out in increasing
//! order): a handle costs its 120 bytes there, against about 280 in the
//! half-full leaves of a `BTreeMap` (bench/daemon.py: 10,000 torrents).
use crate::torrent::TorrentHandle;
use crate::TorrentId;
use shoal_base::VecMap;
use shoal_metainfo::InfoHashes;
use std::collections::HashMap;
use std::sync::RwLock;

#[derive(Default)]
struct Table {
    by_id: VecMap<TorrentId, TorrentHandle>,
    /// v1 hashes and truncated v2 hashes (what handshakes carry).
    by_wire: HashMap<shoal_base::InfoHash, TorrentId>,
    /// Full v2 hashes.
    by_v2: HashMap<[u8; 32], TorrentId>,
    /// MSE: `HASH('req2', wire hash)` to the wire hash.
    by_req2: HashMap<[u8; 20], [u8; 20]>,
}

/// See the module docs.
#[derive(Default)]
pub(crate) struct Registry {
    table: RwLock<Table>,
}

/// The 20-byte hashes a handshake may carry for a torrent.
pub(crate) fn wire_hashes(h: &InfoHashes) -> impl Iterator<Item = shoal_base::InfoHash> {
    h.v1.into_iter().chain(h.v2.map(|v| v.truncated()))
}

impl Registry {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Table> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a torrent with any of these hashes is in the table.
    pub(crate) fn contains(&self, h: &InfoHashes) -> bool {
        let t = self.read();
        wire_hashes(h).any(|w| t.by_wire.contains_key(&w))
            || h.v2.is_some_and(|v| t.by_v2.contains_key(&v.0))
    }

    pub(crate) fn insert(&self, handle: TorrentHandle) {
        let mut t = self.write();
        let id = handle.id();
        let h = handle.info_hashes();
        for w in wire_hashes(&h) {
            t.by_wire.insert(w, id);
            t.by_req2.insert(shoal_wire::mse::crypto::req2(&w.0), w.0);
        }
        if let Some(v2) = h.v2 {
            t.by_v2.insert(v2.0, id);
        }
        t.by_id.insert(id, handle);
    }

    pub(crate) fn remove(&self, id: TorrentId) -> Option<TorrentHandle> {
        let mut t = self.write();
        let handle = t.by_id.remove(&id)?;
        let h = handle.info_hashes();
        for w in wire_hashes(&h) {
            if t.by_wire.get(&w) == Some(&id) {
                t.by_wire.remove(&w);
                t.by_req2.remove(&shoal_wire::mse::crypto::req2(&w.0));
            }
        }
        if let Some(v2) = h.v2 {
            if t.by_v2.get(&v2.0) == Some(&id) {
                t.by_v2.remove(&v2.0);
            }
        }
        Some(handle)
    }

    pub(crate) fn get(&self, id: TorrentId) -> Option<TorrentHandle> {
        self.read().by_id.get(&id).cloned()
    }

    /// By a 20-byte (v1 or truncated v2) or 32-byte (v2) hash.
    pub(crate) fn find(&self, hash: &[u8]) -> Option<TorrentHandle> {
        let t = self.read();
        let id = match hash.len() {
            20 => {
                let mut k = [0u8; 20];
                k.copy_from_slice(hash);
                t.by_wire.get(&shoal_base::InfoHash(k)).copied()
            }
            32 => {
                let mut k = [0u8; 32];
                k.copy_from_slice(hash);
                t.by_v2.get(&k).copied()
            }
            _ => None,
        }?;
        t.by_id.get(&id).cloned()
    }

    pub(crate) fn all(&self) -> Vec<TorrentHandle> {
        self.read().by_id.values().cloned().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.read().by_id.len()
    }
}

impl shoal_wire::mse::SkeyLookup for Registry {
    fn find_skey(&self, req2: &[u8; 20]) -> Option<[u8; 20]> {
        self.read().by_req2.get(req2).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torrent::{cmd_queue, watched};

    fn handle(id: u64) -> TorrentHandle {
        let mut v1 = [0u8; 20];
        v1[..8].copy_from_slice(&id.to_be_bytes());
        let (tx, _rx) = cmd_queue::channel(4);
        let (_s, status) = watched::channel(Default::default());
        let (_m, meta) = watched::channel(Default::default());
        TorrentHandle {
            id: TorrentId(id),
            info_hashes: InfoHashes {
                v1: Some(shoal_base::InfoHash(v1)),
                v2: None,
            },
            tx,
            status,
            meta,
        }
    }

    fn ids(r: &Registry) -> Vec<u64> {
        r.all().iter().map(|h| h.id().0).collect()
    }

    #[test]
    fn handles_stay_sorted_by_id_whatever_the_order_of_inserts() {
        let r = Registry::default();
        for id in [5, 1, 9, 3, 7] {
            r.insert(handle(id));
        }
        assert_eq!(ids(&r), [1, 3, 5, 7, 9]);
        assert_eq!(r.get(TorrentId(7)).map(|h| h.id().0), Some(7));
        assert!(r.get(TorrentId(4)).is_none());
        let h3 = handle(3).info_hashes();
        assert_eq!(r.find(&h3.v1.unwrap().0).map(|h| h.id().0), Some(3));
        assert!(r.contains(&h3));
        assert_eq!(r.remove(TorrentId(3)).map(|h| h.id().0), Some(3));
        assert!(r.remove(TorrentId(3)).is_none());
        assert!(r.find(&h3.v1.unwrap().0).is_none());
        assert!(!r.contains(&h3));
        assert_eq!(ids(&r), [1, 5, 7, 9]);
        assert_eq!(r.len(), 4);
    }

    #[test]
    fn removing_most_handles_gives_memory_back() {
        let r = Registry::default();
        for id in 0..1000 {
            r.insert(handle(id));
        }
        for id in 0..990 {
            r.remove(TorrentId(id));
        }
        assert_eq!(ids(&r), (990..1000).collect::<Vec<_>>());
        assert!(
            r.read().by_id.capacity() <= 64,
            "{}",
            r.read().by_id.capacity()
        );
    }
}
