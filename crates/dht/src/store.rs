//! What this node stores for others: announced peers (BEP 5) and BEP 44 items. Both
//! are bounded in count and expire.
use crate::id::Id20;
use crate::item::{Item, ItemError};
use rand::seq::IteratorRandom;
use rand::Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Storage limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// Most peers kept per info-hash.
    pub max_peers_per_hash: usize,
    /// Most info-hashes kept.
    pub max_hashes: usize,
    /// Peer lifetime after its announce (ms); BEP 5 suggests 30 minutes.
    pub peer_ttl_ms: u64,
    /// Most BEP 44 items kept.
    pub max_items: usize,
    /// Item lifetime after its last put (ms); BEP 44 suggests 2 hours.
    pub item_ttl_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_peers_per_hash: 200,
            max_hashes: 2000,
            peer_ttl_ms: 30 * 60 * 1000,
            max_items: 1000,
            item_ttl_ms: 2 * 60 * 60 * 1000,
        }
    }
}

/// Why a BEP 44 put was refused (with the KRPC error code to answer).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum PutError {
    /// The item itself is invalid.
    #[error("{0}")]
    Item(#[from] ItemError),
    /// CAS given and not equal to the stored seq (error 301).
    #[error("bep44: cas mismatch (stored seq {stored})")]
    CasMismatch {
        /// The stored sequence number.
        stored: i64,
    },
    /// seq lower than the stored one, or equal with another value (error 302).
    #[error("bep44: seq {got} not newer than stored {stored}")]
    SeqTooLow {
        /// The seq in the put.
        got: i64,
        /// The stored sequence number.
        stored: i64,
    },
    /// The store is full of fresher items.
    #[error("bep44: store full")]
    Full,
}

impl PutError {
    /// The KRPC error code for this refusal.
    pub fn code(&self) -> i64 {
        match self {
            PutError::Item(ItemError::TooBig(_)) => 205,
            PutError::Item(ItemError::BadSignature) => 206,
            PutError::Item(ItemError::SaltTooBig(_)) => 207,
            PutError::Item(_) => 203,
            PutError::CasMismatch { .. } => 301,
            PutError::SeqTooLow { .. } => 302,
            PutError::Full => 202,
        }
    }
}

/// Announced peers and BEP 44 items.
#[derive(Clone, Debug, Default)]
pub struct Store {
    cfg: StoreConfig,
    peers: BTreeMap<Id20, Vec<(SocketAddr, u64)>>,
    items: BTreeMap<Id20, (Item, u64)>,
}

impl Store {
    /// An empty store.
    pub fn new(cfg: StoreConfig) -> Self {
        Store {
            cfg,
            ..Store::default()
        }
    }

    /// Records `peer` for `info_hash` at `now`; evicts the oldest when full.
    pub fn add_peer(&mut self, info_hash: Id20, peer: SocketAddr, now: u64) {
        let expires = now + self.cfg.peer_ttl_ms;
        if !self.peers.contains_key(&info_hash) && self.peers.len() >= self.cfg.max_hashes {
            self.expire(now);
            if self.peers.len() >= self.cfg.max_hashes {
                // Evict the info-hash whose newest peer expires first.
                let victim = self
                    .peers
                    .iter()
                    .min_by_key(|(_, v)| v.iter().map(|p| p.1).max().unwrap_or(0))
                    .map(|(k, _)| *k);
                if let Some(v) = victim {
                    self.peers.remove(&v);
                }
            }
        }
        let list = self.peers.entry(info_hash).or_default();
        if let Some(p) = list.iter_mut().find(|p| p.0 == peer) {
            p.1 = expires;
            return;
        }
        if list.len() >= self.cfg.max_peers_per_hash {
            if let Some(i) = list
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.1)
                .map(|(i, _)| i)
            {
                list.swap_remove(i);
            }
        }
        list.push((peer, expires));
    }

    /// Up to `max` live peers for `info_hash` of the wanted family (random sample).
    pub fn peers<R: Rng + ?Sized>(
        &self,
        info_hash: &Id20,
        now: u64,
        v6: bool,
        max: usize,
        rng: &mut R,
    ) -> Vec<SocketAddr> {
        self.peers
            .get(info_hash)
            .map(|l| {
                l.iter()
                    .filter(|p| p.1 > now && p.0.is_ipv6() == v6)
                    .map(|p| p.0)
                    .choose_multiple(rng, max)
            })
            .unwrap_or_default()
    }

    /// Number of info-hashes with peers.
    pub fn hash_count(&self) -> usize {
        self.peers.len()
    }

    /// A random sample of up to `max` stored info-hashes (BEP 51).
    pub fn sample_hashes<R: Rng + ?Sized>(&self, max: usize, rng: &mut R) -> Vec<Id20> {
        self.peers.keys().copied().choose_multiple(rng, max)
    }

    /// Stores a validated BEP 44 item under its target, applying seq and CAS rules.
    pub fn put_item(&mut self, item: Item, cas: Option<i64>, now: u64) -> Result<(), PutError> {
        item.validate()?;
        let target = item.target();
        let expires = now + self.cfg.item_ttl_ms;
        if let Some((old, exp)) = self.items.get_mut(&target) {
            if let (Some(o), Some(n)) = (&old.mutable, &item.mutable) {
                if let Some(c) = cas {
                    if c != o.seq {
                        return Err(PutError::CasMismatch { stored: o.seq });
                    }
                }
                if n.seq < o.seq || (n.seq == o.seq && item.v != old.v) {
                    return Err(PutError::SeqTooLow {
                        got: n.seq,
                        stored: o.seq,
                    });
                }
            }
            *old = item;
            *exp = expires;
            return Ok(());
        }
        if self.items.len() >= self.cfg.max_items {
            self.expire(now);
            if self.items.len() >= self.cfg.max_items {
                return Err(PutError::Full);
            }
        }
        self.items.insert(target, (item, expires));
        Ok(())
    }

    /// The live item under `target`.
    pub fn get_item(&self, target: &Id20, now: u64) -> Option<&Item> {
        self.items
            .get(target)
            .filter(|(_, e)| *e > now)
            .map(|(i, _)| i)
    }

    /// Drops expired peers, info-hashes and items.
    pub fn expire(&mut self, now: u64) {
        self.peers.retain(|_, l| {
            l.retain(|p| p.1 > now);
            !l.is_empty()
        });
        self.items.retain(|_, (_, e)| *e > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn peers_bounded_and_expire() {
        let mut rng = SmallRng::seed_from_u64(1);
        let cfg = StoreConfig {
            max_peers_per_hash: 3,
            max_hashes: 2,
            ..StoreConfig::default()
        };
        let mut s = Store::new(cfg);
        let ih = Id20([1; 20]);
        for p in 1..=5u16 {
            s.add_peer(ih, SocketAddr::from(([1, 2, 3, 4], p)), u64::from(p));
        }
        let got = s.peers(&ih, 10, false, 50, &mut rng);
        assert_eq!(got.len(), 3);
        assert!(got.contains(&SocketAddr::from(([1, 2, 3, 4], 5))));
        s.add_peer(Id20([2; 20]), SocketAddr::from(([1, 1, 1, 1], 1)), 20);
        s.add_peer(Id20([3; 20]), SocketAddr::from(([1, 1, 1, 1], 1)), 30);
        assert_eq!(s.hash_count(), 2);
        assert!(s.peers(&Id20([3; 20]), 40, false, 50, &mut rng).len() == 1);
        assert!(s
            .peers(&Id20([3; 20]), 40 + cfg.peer_ttl_ms, false, 50, &mut rng)
            .is_empty());
        s.expire(40 + cfg.peer_ttl_ms);
        assert_eq!(s.hash_count(), 0);
    }

    #[test]
    fn item_seq_and_cas() {
        let key = SigningKey::from_bytes(&[3u8; 32]);
        let mut s = Store::new(StoreConfig::default());
        let i1 = Item::mutable(&key, vec![], 1, b"i1e".to_vec()).unwrap();
        let i2 = Item::mutable(&key, vec![], 2, b"i2e".to_vec()).unwrap();
        let t = i1.target();
        s.put_item(i2.clone(), None, 0).unwrap();
        assert_eq!(
            s.put_item(i1.clone(), None, 0),
            Err(PutError::SeqTooLow { got: 1, stored: 2 })
        );
        let i3 = Item::mutable(&key, vec![], 3, b"i3e".to_vec()).unwrap();
        assert_eq!(
            s.put_item(i3.clone(), Some(1), 0),
            Err(PutError::CasMismatch { stored: 2 })
        );
        s.put_item(i3.clone(), Some(2), 0).unwrap();
        assert_eq!(s.get_item(&t, 1).unwrap().seq(), 3);
        let mut forged = i3.clone();
        forged.v = b"i9e".to_vec();
        assert_eq!(s.put_item(forged, None, 0).unwrap_err().code(), 206);
        let imm = Item::immutable(b"5:hello".to_vec()).unwrap();
        s.put_item(imm.clone(), None, 0).unwrap();
        assert_eq!(s.get_item(&imm.target(), 5), Some(&imm));
        assert_eq!(
            s.get_item(&imm.target(), StoreConfig::default().item_ttl_ms + 1),
            None
        );
    }
}
