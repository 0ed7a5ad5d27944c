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
    /// Blocks moved once to an idle peer ([`PiecePicker::steal_busy`]):
    /// never moved again, so two idle peers do not take one block in turns.
    stolen: Vec<u32>,
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
                    stolen: Vec::new(),
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
                    stolen: Vec::new(),
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

    /// For a peer that holds no request and has nothing free to give: up to
    /// `max` blocks it has that one other peer holds and has not delivered,
    /// from the pieces nearest completion, last blocks first (their holders
    /// send those last). Each moves to `peer`; the caller cancels it at the
    /// holder returned beside it, whose upload then goes to other blocks.
    /// The idle peer's upload finishes pieces sooner.
    pub fn steal_busy(
        &mut self,
        peer: PeerKey,
        peer_has: impl Fn(u32) -> bool,
        max: usize,
    ) -> Vec<(Block, PeerKey)> {
        let mut out = Vec::new();
        let mut pieces: Vec<(u32, u32)> = self
            .partial
            .iter()
            .filter(|(&p, part)| part.free == 0 && self.priority[p as usize] > 0 && peer_has(p))
            .map(|(&p, part)| (self.blocks_in(p) - part.received, p))
            .collect();
        pieces.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        'outer: for (_, piece) in pieces {
            let n = self.blocks_in(piece);
            for i in (0..n).rev() {
                if out.len() >= max {
                    break 'outer;
                }
                let block = self.block(piece, i);
                let Some(part) = self.partial.get_mut(&piece) else {
                    continue 'outer;
                };
                if part.stolen.contains(&i) {
                    continue;
                }
                if let BlockState::Requested(by) = &mut part.blocks[i as usize] {
                    if by.len() == 1 && by[0] != peer {
                        let from = std::mem::replace(&mut by[0], peer);
                        part.stolen.push(i);
                        out.push((block, from));
                    }
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
                    stolen: Vec::new(),
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
#[path = "picker_tests.rs"]
mod tests;
