//! The piece picker: which blocks to request from which peer.
//!
//! Policy (as in libtorrent and the BitTorrent spec's advice):
//! - finish started pieces first, so verified pieces (and `have`s to trade) come early,
//!   but a piece started from other peers is not continued from a peer that has a
//!   rarer one to give: a seed's upload goes to pieces few others have, not to the
//!   rest of common pieces (in a simulated swarm of 1 seed and 100 leechers the
//!   seed uploaded 1.6 times the torrent's size without this, 1.3 with it);
//! - otherwise open the rarest wanted piece the peer has, ties broken at random
//!   (from the RNG passed in, so runs are reproducible);
//! - higher file priority beats rarity; priority 0 means "don't download";
//! - endgame: once every missing wanted block has been requested, blocks already
//!   requested from others may be requested again (at most [`ENDGAME_DUPLICATES`]
//!   peers per block); the first copy to arrive wins and the engine cancels the rest.
//!
//! Invariants: a piece is in at most one of {have, partial, unopened}; a block is
//! `Requested` only while at least one peer holds a request for it.
use rand::Rng;
use std::collections::BTreeMap;

/// Size of a request block (BEP 3 de-facto standard).
pub const BLOCK_SIZE: u32 = 16 * 1024;
/// How many peers may hold a request for the same block in endgame.
pub const ENDGAME_DUPLICATES: usize = 2;

/// The engine's handle for a peer connection.
pub type PeerKey = u64;

/// A request unit: part of a piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Block {
    /// Piece index.
    pub piece: u32,
    /// Byte offset in the piece (a multiple of [`BLOCK_SIZE`]).
    pub offset: u32,
    /// Length in bytes (`BLOCK_SIZE`, or less for the last block of the torrent).
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum BlockState {
    Free,
    Requested(Vec<PeerKey>),
    Received,
}

#[derive(Debug, Clone)]
struct Partial {
    blocks: Vec<BlockState>,
    free: u32,
    received: u32,
}

/// What receiving a block means.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BlockOutcome {
    /// False for a duplicate (endgame) or for a block of a piece we already have: drop its data.
    pub new: bool,
    /// Other peers that had requested this block: send them `cancel`.
    pub cancel: Vec<PeerKey>,
    /// Every block of the piece has now arrived: hash it.
    pub piece_complete: bool,
}

/// Tracks what we have, what peers have and what is in flight, and picks blocks.
#[derive(Debug, Clone)]
pub struct PiecePicker {
    piece_length: u32,
    total_length: u64,
    num_pieces: u32,
    have: Vec<bool>,
    have_count: u32,
    priority: Vec<u8>,
    availability: Vec<u32>,
    seeds: u32,
    partial: BTreeMap<u32, Partial>,
}

impl PiecePicker {
    /// A picker for `total_length` bytes in pieces of `piece_length` (> 0), all wanted
    /// at priority 1, nothing had yet.
    pub fn new(piece_length: u32, total_length: u64) -> Self {
        let piece_length = piece_length.max(1);
        let num_pieces = total_length.div_ceil(piece_length as u64) as u32;
        PiecePicker {
            piece_length,
            total_length,
            num_pieces,
            have: vec![false; num_pieces as usize],
            have_count: 0,
            priority: vec![1; num_pieces as usize],
            availability: vec![0; num_pieces as usize],
            seeds: 0,
            partial: BTreeMap::new(),
        }
    }

    /// Number of pieces.
    pub fn num_pieces(&self) -> u32 {
        self.num_pieces
    }

    /// Length of piece `piece` (the last one may be short).
    pub fn piece_len(&self, piece: u32) -> u32 {
        let start = piece as u64 * self.piece_length as u64;
        (self.total_length.saturating_sub(start)).min(self.piece_length as u64) as u32
    }

    fn blocks_in(&self, piece: u32) -> u32 {
        self.piece_len(piece).div_ceil(BLOCK_SIZE)
    }

    fn block(&self, piece: u32, index: u32) -> Block {
        let offset = index * BLOCK_SIZE;
        Block {
            piece,
            offset,
            len: (self.piece_len(piece) - offset).min(BLOCK_SIZE),
        }
    }

    /// Whether we have verified `piece`.
    pub fn has(&self, piece: u32) -> bool {
        self.have.get(piece as usize).copied().unwrap_or(false)
    }

    /// Number of verified pieces.
    pub fn have_count(&self) -> u32 {
        self.have_count
    }

    /// Marks a piece verified (from a resume check or after hashing). Returns false if it already was.
    pub fn set_have(&mut self, piece: u32) -> bool {
        match self.have.get_mut(piece as usize) {
            Some(h) if !*h => {
                *h = true;
                self.have_count += 1;
                self.partial.remove(&piece);
                true
            }
            _ => false,
        }
    }

    /// Sets a piece's priority: 0 skips it, higher is picked first.
    pub fn set_priority(&mut self, piece: u32, priority: u8) {
        if let Some(p) = self.priority.get_mut(piece as usize) {
            *p = priority;
        }
    }

    /// The piece's priority.
    pub fn priority(&self, piece: u32) -> u8 {
        self.priority.get(piece as usize).copied().unwrap_or(0)
    }

    /// True when every wanted piece is verified.
    pub fn is_complete(&self) -> bool {
        (0..self.num_pieces).all(|p| self.have[p as usize] || self.priority[p as usize] == 0)
    }

    /// Bytes of wanted pieces not yet verified.
    pub fn wanted_left(&self) -> u64 {
        (0..self.num_pieces)
            .filter(|&p| !self.have[p as usize] && self.priority[p as usize] > 0)
            .map(|p| self.piece_len(p) as u64)
            .sum()
    }

    /// How many connected peers have `piece`.
    pub fn availability(&self, piece: u32) -> u32 {
        self.availability.get(piece as usize).copied().unwrap_or(0) + self.seeds
    }

    /// A peer announced it has every piece (bitfield full or `have_all`).
    pub fn add_seed(&mut self) {
        self.seeds += 1;
    }

    /// A seed went away.
    pub fn remove_seed(&mut self) {
        self.seeds = self.seeds.saturating_sub(1);
    }

    /// A peer has `piece` (from its bitfield or a `have`).
    pub fn add_availability(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a += 1;
        }
    }

    /// A peer that had `piece` went away.
    pub fn remove_availability(&mut self, piece: u32) {
        if let Some(a) = self.availability.get_mut(piece as usize) {
            *a = a.saturating_sub(1);
        }
    }

    fn wanted(&self, piece: u32) -> bool {
        !self.have[piece as usize] && self.priority[piece as usize] > 0
    }

    /// True when every block of every missing wanted piece has been requested or received.
    pub fn in_endgame(&self) -> bool {
        self.partial.values().all(|p| p.free == 0)
            && (0..self.num_pieces).all(|p| !self.wanted(p) || self.partial.contains_key(&p))
    }

    /// Picks up to `max` blocks to request from `peer`, whose pieces are given by `peer_has`.
    /// The blocks are marked requested by `peer`.
    pub fn pick(
        &mut self,
        peer: PeerKey,
        peer_has: impl Fn(u32) -> bool,
        max: usize,
        rng: &mut impl Rng,
    ) -> Vec<Block> {
        let mut out = Vec::new();
        if max == 0 {
            return out;
        }
        // 1. Started pieces first, highest priority first, then the most complete.
        let mut started: Vec<(u8, u32, u32)> = self
            .partial
            .iter()
            .filter(|(&p, part)| part.free > 0 && self.priority[p as usize] > 0 && peer_has(p))
            .map(|(&p, part)| (self.priority[p as usize], part.free, p))
            .collect();
        started.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        // A piece started from other peers is left to them when this peer can
        // give one that is rarer: a seed's upload then goes to pieces few
        // others have, not to completing common ones.
        let mut best_new: Option<Option<(u8, u32)>> = None;
        let mut deferred = Vec::new();
        for (prio, _, piece) in started {
            if !self.holds(piece, peer) {
                let best = *best_new.get_or_insert_with(|| self.best_new_key(&peer_has));
                let rarer = best.is_some_and(|(bp, ba)| {
                    bp > prio || (bp == prio && ba < self.availability(piece))
                });
                if rarer {
                    deferred.push(piece);
                    continue;
                }
            }
            self.take_free(piece, peer, max, &mut out);
            if out.len() >= max {
                return out;
            }
        }
        // 2. Open new pieces, rarest first.
        while out.len() < max {
            let Some(piece) = self.rarest_new_piece(&peer_has, rng) else {
                break;
            };
            let n = self.blocks_in(piece);
            self.partial.insert(
                piece,
                Partial {
                    blocks: vec![BlockState::Free; n as usize],
                    free: n,
                    received: 0,
                },
            );
            self.take_free(piece, peer, max, &mut out);
        }
        for piece in deferred {
            if out.len() >= max {
                return out;
            }
            self.take_free(piece, peer, max, &mut out);
        }
        // 3. Endgame: duplicate requests of blocks others are slow to deliver.
        if out.len() < max && self.in_endgame() {
            let pieces: Vec<u32> = self
                .partial
                .keys()
                .copied()
                .filter(|&p| self.priority[p as usize] > 0 && peer_has(p))
                .collect();
            'outer: for piece in pieces {
                let n = self.blocks_in(piece);
                for i in 0..n {
                    let block = self.block(piece, i);
                    let Some(part) = self.partial.get_mut(&piece) else {
                        continue 'outer;
                    };
                    if let BlockState::Requested(by) = &mut part.blocks[i as usize] {
                        if by.len() < ENDGAME_DUPLICATES && !by.contains(&peer) {
                            by.push(peer);
                            out.push(block);
                            if out.len() >= max {
                                break 'outer;
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Picks up to `max` free blocks of `piece` (opened if need be) for
    /// `peer`: a time-critical piece sent to the peer chosen for it.
    pub fn pick_in(&mut self, peer: PeerKey, piece: u32, max: usize) -> Vec<Block> {
        let mut out = Vec::new();
        if !self.wanted(piece) {
            return out;
        }
        if !self.partial.contains_key(&piece) {
            let n = self.blocks_in(piece);
            self.partial.insert(
                piece,
                Partial {
                    blocks: vec![BlockState::Free; n as usize],
                    free: n,
                    received: 0,
                },
            );
        }
        self.take_free(piece, peer, max, &mut out);
        out
    }

    /// Requests again from `peer` up to `max` blocks of `piece` that others
    /// hold and have not delivered (at most [`ENDGAME_DUPLICATES`] peers a
    /// block): a late time-critical piece. The first copy to arrive wins.
    pub fn duplicate_in(&mut self, peer: PeerKey, piece: u32, max: usize) -> Vec<Block> {
        let mut out = Vec::new();
        if !self.wanted(piece) {
            return out;
        }
        let n = self.blocks_in(piece);
        for i in 0..n {
            if out.len() >= max {
                break;
            }
            let block = self.block(piece, i);
            let Some(part) = self.partial.get_mut(&piece) else {
                break;
            };
            if let BlockState::Requested(by) = &mut part.blocks[i as usize] {
                if by.len() < ENDGAME_DUPLICATES && !by.contains(&peer) {
                    by.push(peer);
                    out.push(block);
                }
            }
        }
        out
    }

    /// Whether `piece` has blocks nobody was asked for (or is not opened).
    pub fn has_free_blocks(&self, piece: u32) -> bool {
        self.wanted(piece) && self.partial.get(&piece).is_none_or(|p| p.free > 0)
    }

    /// Whether `peer` holds a request in `piece`.
    pub fn holds_in(&self, piece: u32, peer: PeerKey) -> bool {
        self.holds(piece, peer)
    }

    fn take_free(&mut self, piece: u32, peer: PeerKey, max: usize, out: &mut Vec<Block>) {
        let n = self.blocks_in(piece);
        for i in 0..n {
            if out.len() >= max {
                return;
            }
            let block = self.block(piece, i);
            let Some(part) = self.partial.get_mut(&piece) else {
                return;
            };
            if part.blocks[i as usize] == BlockState::Free {
                part.blocks[i as usize] = BlockState::Requested(vec![peer]);
                part.free -= 1;
                out.push(block);
            }
        }
    }

    /// The best (priority, availability) among the wanted pieces not yet
    /// started that the peer has.
    fn best_new_key(&self, peer_has: &impl Fn(u32) -> bool) -> Option<(u8, u32)> {
        let mut best: Option<(u8, u32)> = None;
        for p in 0..self.num_pieces {
            if !self.wanted(p) || self.partial.contains_key(&p) || !peer_has(p) {
                continue;
            }
            let key = (self.priority[p as usize], self.availability(p));
            if best.is_none_or(|(bp, ba)| key.0 > bp || (key.0 == bp && key.1 < ba)) {
                best = Some(key);
            }
        }
        best
    }

    /// Whether `peer` holds a request in `piece`.
    fn holds(&self, piece: u32, peer: PeerKey) -> bool {
        self.partial.get(&piece).is_some_and(|part| {
            part.blocks
                .iter()
                .any(|b| matches!(b, BlockState::Requested(by) if by.contains(&peer)))
        })
    }

    fn rarest_new_piece(&self, peer_has: &impl Fn(u32) -> bool, rng: &mut impl Rng) -> Option<u32> {
        let mut best: Option<(u8, u32)> = None; // (priority, availability)
        let mut chosen = None;
        let mut ties = 0u32;
        for p in 0..self.num_pieces {
            if !self.wanted(p) || self.partial.contains_key(&p) || !peer_has(p) {
                continue;
            }
            let key = (self.priority[p as usize], self.availability(p));
            let better = match best {
                None => true,
                Some((bp, ba)) => key.0 > bp || (key.0 == bp && key.1 < ba),
            };
            if better {
                best = Some(key);
                chosen = Some(p);
                ties = 1;
            } else if best == Some(key) {
                // Reservoir sampling: each tied piece is chosen with equal probability.
                ties += 1;
                if rng.gen_range(0..ties) == 0 {
                    chosen = Some(p);
                }
            }
        }
        chosen
    }

    fn block_index(&self, block: &Block) -> Option<usize> {
        if block.piece >= self.num_pieces || !block.offset.is_multiple_of(BLOCK_SIZE) {
            return None;
        }
        let i = block.offset / BLOCK_SIZE;
        (i < self.blocks_in(block.piece) && self.block(block.piece, i).len == block.len)
            .then_some(i as usize)
    }

    /// Whether `block` is a well-formed block of this torrent.
    pub fn is_valid_block(&self, block: &Block) -> bool {
        self.block_index(block).is_some()
    }

    /// Whether `peer` currently holds a request for `block`.
    pub fn is_requested_by(&self, block: &Block, peer: PeerKey) -> bool {
        let Some(i) = self.block_index(block) else {
            return false;
        };
        matches!(
            self.partial.get(&block.piece).map(|p| &p.blocks[i]),
            Some(BlockState::Requested(by)) if by.contains(&peer)
        )
    }

    /// A block arrived from `peer`.
    pub fn on_block(&mut self, peer: PeerKey, block: &Block) -> BlockOutcome {
        let Some(i) = self.block_index(block) else {
            return BlockOutcome::default();
        };
        if self.have[block.piece as usize] {
            return BlockOutcome::default();
        }
        if !self.partial.contains_key(&block.piece) {
            // Unrequested (e.g. after a timeout released it): accept it all the same.
            let n = self.blocks_in(block.piece);
            self.partial.insert(
                block.piece,
                Partial {
                    blocks: vec![BlockState::Free; n as usize],
                    free: n,
                    received: 0,
                },
            );
        }
        let Some(part) = self.partial.get_mut(&block.piece) else {
            return BlockOutcome::default();
        };
        let state = std::mem::replace(&mut part.blocks[i], BlockState::Received);
        let cancel = match state {
            BlockState::Received => return BlockOutcome::default(),
            BlockState::Free => {
                part.free -= 1;
                Vec::new()
            }
            BlockState::Requested(by) => by.into_iter().filter(|&p| p != peer).collect(),
        };
        part.received += 1;
        let piece_complete = part.received as usize == part.blocks.len();
        BlockOutcome {
            new: true,
            cancel,
            piece_complete,
        }
    }

    /// `peer` will not deliver `block` (rejected, choked, timed out, cancelled).
    pub fn on_request_failed(&mut self, peer: PeerKey, block: &Block) {
        let Some(i) = self.block_index(block) else {
            return;
        };
        if let Some(part) = self.partial.get_mut(&block.piece) {
            if let BlockState::Requested(by) = &mut part.blocks[i] {
                by.retain(|&p| p != peer);
                if by.is_empty() {
                    part.blocks[i] = BlockState::Free;
                    part.free += 1;
                }
            }
        }
    }

    /// Releases every request held by `peer` (it disconnected or choked us).
    pub fn release_peer(&mut self, peer: PeerKey) {
        for part in self.partial.values_mut() {
            for b in part.blocks.iter_mut() {
                if let BlockState::Requested(by) = b {
                    by.retain(|&p| p != peer);
                    if by.is_empty() {
                        *b = BlockState::Free;
                        part.free += 1;
                    }
                }
            }
        }
    }

    /// The piece hashed correctly: we have it.
    pub fn on_piece_verified(&mut self, piece: u32) {
        self.set_have(piece);
    }

    /// The piece failed its hash check: every block must be fetched again.
    /// Returns the peers that still held requests in it (to cancel).
    pub fn on_piece_failed(&mut self, piece: u32) -> Vec<PeerKey> {
        let mut peers = Vec::new();
        if let Some(part) = self.partial.remove(&piece) {
            for b in part.blocks {
                if let BlockState::Requested(by) = b {
                    peers.extend(by);
                }
            }
        }
        peers.sort_unstable();
        peers.dedup();
        peers
    }

    /// Pieces in progress (opened, not yet verified).
    pub fn partial_pieces(&self) -> impl Iterator<Item = u32> + '_ {
        self.partial.keys().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn rng() -> StdRng {
        StdRng::seed_from_u64(7)
    }

    #[test]
    fn geometry() {
        let p = PiecePicker::new(32768, 100_000);
        assert_eq!(p.num_pieces(), 4);
        assert_eq!(p.piece_len(3), 100_000 - 3 * 32768);
        assert_eq!(p.blocks_in(3), 1);
        assert!(p.is_valid_block(&Block {
            piece: 3,
            offset: 0,
            len: 1696
        }));
        assert!(!p.is_valid_block(&Block {
            piece: 3,
            offset: 0,
            len: 16384
        }));
        assert!(!p.is_valid_block(&Block {
            piece: 4,
            offset: 0,
            len: 16384
        }));
        assert!(!p.is_valid_block(&Block {
            piece: 0,
            offset: 100,
            len: 16384
        }));
    }

    #[test]
    fn a_chosen_piece_is_given_then_duplicated_once() {
        let mut p = PiecePicker::new(32768, 4 * 32768);
        assert!(p.has_free_blocks(3));
        assert_eq!(p.pick_in(1, 3, 10), vec![block(3, 0), block(3, 1)]);
        assert!(!p.has_free_blocks(3) && p.holds_in(3, 1) && !p.holds_in(3, 2));
        assert!(p.pick_in(2, 3, 10).is_empty(), "nothing free left");
        assert_eq!(p.duplicate_in(2, 3, 10), vec![block(3, 0), block(3, 1)]);
        assert!(
            p.duplicate_in(2, 3, 10).is_empty(),
            "not twice from one peer"
        );
        assert!(
            p.duplicate_in(3, 3, 10).is_empty(),
            "at most two peers a block"
        );
        let out = p.on_block(2, &block(3, 0));
        assert_eq!(out.cancel, vec![1], "the first copy wins");
        p.set_have(2);
        assert!(p.pick_in(1, 2, 10).is_empty() && !p.has_free_blocks(2));
    }

    #[test]
    fn rarest_first_and_finish_started() {
        let mut p = PiecePicker::new(32768, 4 * 32768);
        // piece 2 is rarest (1 peer), others 3 peers.
        for piece in 0..4 {
            let n = if piece == 2 { 1 } else { 3 };
            for _ in 0..n {
                p.add_availability(piece);
            }
        }
        let got = p.pick(1, |_| true, 1, &mut rng());
        assert_eq!(
            got,
            vec![Block {
                piece: 2,
                offset: 0,
                len: 16384
            }]
        );
        // Next pick continues the started piece before opening another.
        let got = p.pick(2, |_| true, 2, &mut rng());
        assert_eq!(
            got[0],
            Block {
                piece: 2,
                offset: 16384,
                len: 16384
            }
        );
        assert_ne!(got[1].piece, 2);
    }

    fn block(piece: u32, index: u32) -> Block {
        Block {
            piece,
            offset: index * 16384,
            len: 16384,
        }
    }

    #[test]
    fn a_peer_with_rarer_pieces_is_not_asked_for_the_rest_of_common_ones() {
        // Pieces of 2 blocks; piece 0 is held by 3 peers, 1..=3 by nobody
        // but the seed.
        let mut p = PiecePicker::new(32768, 4 * 32768);
        for _ in 0..3 {
            p.add_availability(0);
        }
        p.add_seed();
        // Peer 1 has piece 0 only: one block asked from it, one left free.
        assert_eq!(p.pick(1, |i| i == 0, 1, &mut rng()), vec![block(0, 0)]);
        // The seed (2) is asked for the rare pieces first...
        let b = p.pick(2, |_| true, 6, &mut rng());
        assert_eq!(b.len(), 6);
        assert!(b.iter().all(|x| x.piece != 0), "{b:?}");
        // ...and for the rest of piece 0 once nothing rarer is left.
        assert_eq!(p.pick(2, |_| true, 1, &mut rng()), vec![block(0, 1)]);
    }

    #[test]
    fn a_peer_continues_the_piece_it_is_sending() {
        let mut p = PiecePicker::new(3 * 16384, 2 * 3 * 16384);
        p.add_availability(1);
        p.add_availability(1);
        p.add_availability(0);
        // Piece 0 is the rarer: opened for peer 1.
        assert_eq!(p.pick(1, |_| true, 1, &mut rng()), vec![block(0, 0)]);
        // Now piece 0 is the more common, but peer 1 still holds a request
        // in it: it goes on with it before opening piece 1.
        for _ in 0..3 {
            p.add_availability(0);
        }
        let got = p.pick(1, |_| true, 3, &mut rng());
        assert_eq!(got, vec![block(0, 1), block(0, 2), block(1, 0)]);
    }

    #[test]
    fn random_ties_cover_all_pieces() {
        let mut seen = std::collections::HashSet::new();
        for seed in 0..64 {
            let mut p = PiecePicker::new(16384, 8 * 16384);
            let mut r = StdRng::seed_from_u64(seed);
            seen.insert(p.pick(1, |_| true, 1, &mut r)[0].piece);
        }
        assert!(seen.len() >= 6, "ties should be broken at random: {seen:?}");
    }

    #[test]
    fn priorities_and_completion() {
        let mut p = PiecePicker::new(16384, 3 * 16384);
        p.set_priority(0, 0);
        p.set_priority(2, 7);
        let got = p.pick(1, |_| true, 3, &mut rng());
        assert_eq!(got.iter().map(|b| b.piece).collect::<Vec<_>>(), vec![2, 1]);
        assert!(!p.is_complete());
        for b in &got {
            assert!(p.on_block(1, b).piece_complete);
            p.on_piece_verified(b.piece);
        }
        assert!(p.is_complete());
        assert_eq!(p.wanted_left(), 0);
    }

    #[test]
    fn only_pieces_the_peer_has() {
        let mut p = PiecePicker::new(16384, 4 * 16384);
        let got = p.pick(1, |i| i == 3, 10, &mut rng());
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].piece, 3);
        assert!(p.pick(2, |i| i == 3, 10, &mut rng()).is_empty() || p.in_endgame());
    }

    #[test]
    fn endgame_duplicates_and_cancels() {
        let mut p = PiecePicker::new(32768, 32768);
        let a = p.pick(1, |_| true, 10, &mut rng());
        assert_eq!(a.len(), 2);
        assert!(p.in_endgame());
        let b = p.pick(2, |_| true, 10, &mut rng());
        assert_eq!(b, a, "endgame requests the same blocks from another peer");
        // A third peer gets nothing: two copies per block at most.
        assert!(p.pick(3, |_| true, 10, &mut rng()).is_empty());
        let out = p.on_block(2, &a[0]);
        assert!(out.new);
        assert_eq!(out.cancel, vec![1]);
        let dup = p.on_block(1, &a[0]);
        assert!(!dup.new);
        let out = p.on_block(1, &a[1]);
        assert!(out.piece_complete);
    }

    #[test]
    fn failures_release_blocks() {
        let mut p = PiecePicker::new(32768, 65536);
        let a = p.pick(1, |_| true, 2, &mut rng());
        p.on_request_failed(1, &a[0]);
        let b = p.pick(2, |_| true, 1, &mut rng());
        assert_eq!(b[0], a[0]);
        p.release_peer(1);
        let c = p.pick(3, |_| true, 1, &mut rng());
        assert_eq!(c[0], a[1]);
        // A failed hash makes the piece pickable from scratch.
        p.on_block(2, &b[0]);
        p.on_block(3, &c[0]);
        assert_eq!(p.on_piece_failed(0), Vec::<PeerKey>::new());
        let d = p.pick(4, |i| i == 0, 5, &mut rng());
        assert_eq!(d.len(), 2);
    }

    proptest::proptest! {
        /// Random sequences of picks and deliveries always end with every block
        /// delivered exactly once as `new`, and the torrent complete.
        #[test]
        fn every_block_delivered_once(seed in 0u64..1000, len in 1u64..200_000, peers in 1u64..4) {
            let mut r = StdRng::seed_from_u64(seed);
            let mut p = PiecePicker::new(32768, len);
            let mut news = std::collections::HashSet::new();
            let mut rounds = 0;
            while !p.is_complete() {
                rounds += 1;
                proptest::prop_assert!(rounds < 10_000);
                let peer = r.gen_range(0..peers);
                for b in p.pick(peer, |_| true, r.gen_range(1..5), &mut r) {
                    if r.gen_bool(0.2) {
                        p.on_request_failed(peer, &b);
                        continue;
                    }
                    let o = p.on_block(peer, &b);
                    if o.new {
                        proptest::prop_assert!(news.insert(b));
                    }
                    if o.piece_complete {
                        p.on_piece_verified(b.piece);
                    }
                }
            }
            let total: u64 = news.iter().map(|b| b.len as u64).sum();
            proptest::prop_assert_eq!(total, len);
        }
    }
}
