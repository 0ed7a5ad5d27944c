//! Smart ban: find which peer sent the bad data of a piece that failed its hash.
//!
//! When a piece fails, the digest of each of its blocks is recorded along with
//! the peer that sent it. If every block came from one peer, that peer is guilty
//! at once. Otherwise, when the piece later passes, the good block digests are
//! compared with the recorded ones: each peer that sent a block that differs
//! from the good data is guilty. Peers are identified by IP address, so a
//! reconnect does not launder a ban. Records are bounded ([`MAX_RECORDED_PIECES`]).
//!
//! The sender identity `K` is generic (an IP address by default); the engine
//! uses the IP address, or the full socket address for loopback peers, where
//! every peer shares one IP.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

/// At most this many failed pieces are remembered; the oldest are dropped.
pub const MAX_RECORDED_PIECES: usize = 1024;

/// A digest of one block's data (SHA-1 is used by the engine).
pub type BlockDigest = [u8; 20];

/// The guilt tracker.
#[derive(Debug)]
pub struct SmartBan<K = IpAddr> {
    records: HashMap<u32, BTreeMap<u32, Vec<(K, BlockDigest)>>>,
    order: VecDeque<u32>,
}

impl<K> Default for SmartBan<K> {
    fn default() -> Self {
        SmartBan {
            records: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

impl<K: Copy + Ord + Hash> SmartBan<K> {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    /// A piece failed. `blocks` are (block index, sender, digest of what it sent).
    /// Returns the peers proven guilty right away (sole contributor).
    pub fn on_piece_failed(&mut self, piece: u32, blocks: &[(u32, K, BlockDigest)]) -> Vec<K> {
        let mut senders: Vec<K> = blocks.iter().map(|b| b.1).collect();
        senders.sort_unstable();
        senders.dedup();
        if senders.len() == 1 {
            return senders;
        }
        if !self.records.contains_key(&piece) {
            if self.order.len() >= MAX_RECORDED_PIECES {
                if let Some(old) = self.order.pop_front() {
                    self.records.remove(&old);
                }
            }
            self.order.push_back(piece);
        }
        let rec = self.records.entry(piece).or_default();
        for &(block, ip, digest) in blocks {
            let entry = rec.entry(block).or_default();
            if !entry.contains(&(ip, digest)) {
                entry.push((ip, digest));
            }
        }
        Vec::new()
    }

    /// Whether the engine should compute block digests when `piece` passes.
    pub fn wants_digests(&self, piece: u32) -> bool {
        self.records.contains_key(&piece)
    }

    /// The piece passed; `good[i]` is the digest of block `i` of the good data.
    /// Returns the peers whose earlier blocks differed from it.
    pub fn on_piece_passed(&mut self, piece: u32, good: &[BlockDigest]) -> Vec<K> {
        let Some(rec) = self.records.remove(&piece) else {
            return Vec::new();
        };
        self.order.retain(|&p| p != piece);
        let mut guilty: Vec<K> = rec
            .iter()
            .flat_map(|(&block, sent)| {
                let good = good.get(block as usize).copied();
                sent.iter()
                    .filter(move |(_, d)| Some(*d) != good)
                    .map(|(ip, _)| *ip)
            })
            .collect();
        guilty.sort_unstable();
        guilty.dedup();
        guilty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn sole_sender_is_guilty_at_once() {
        let mut s: SmartBan = SmartBan::new();
        let g = s.on_piece_failed(3, &[(0, ip(1), [1; 20]), (1, ip(1), [2; 20])]);
        assert_eq!(g, vec![ip(1)]);
        assert!(!s.wants_digests(3));
    }

    #[test]
    fn mixed_senders_resolved_when_piece_passes() {
        let mut s: SmartBan = SmartBan::new();
        let g = s.on_piece_failed(3, &[(0, ip(1), [1; 20]), (1, ip(2), [9; 20])]);
        assert!(g.is_empty());
        assert!(s.wants_digests(3));
        // Good data: block 0 = [1;20] (ip1 honest), block 1 = [2;20] (ip2 lied).
        assert_eq!(s.on_piece_passed(3, &[[1; 20], [2; 20]]), vec![ip(2)]);
        assert!(!s.wants_digests(3));
    }

    #[test]
    fn bounded() {
        let mut s: SmartBan = SmartBan::new();
        for p in 0..(MAX_RECORDED_PIECES as u32 + 10) {
            s.on_piece_failed(p, &[(0, ip(1), [1; 20]), (1, ip(2), [2; 20])]);
        }
        assert!(!s.wants_digests(0));
        assert!(s.wants_digests(MAX_RECORDED_PIECES as u32 + 9));
        assert!(s.records.len() <= MAX_RECORDED_PIECES);
    }
}
