//! The core's piece bookkeeping: requests, blocks arriving, pieces verified
//! or failed, and smart ban of the peers that sent corrupt data.
use super::{ban_key, pipeline_target, Action, PeerCmd, TorrentCore, TorrentState};
use crate::picker::{Block, PeerKey, BLOCK_SIZE};
use crate::smartban::BlockDigest;
use std::net::SocketAddr;
use std::time::Instant;

/// Most blocks an idle peer is asked for that another peer already holds.
const BUSY_BLOCKS: usize = 4;

impl TorrentCore {
    /// Tops up `key`'s request pipeline from the picker.
    pub(super) fn fill(&mut self, key: PeerKey) {
        if self.status.state != TorrentState::Downloading {
            return;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.closing || p.choking_us || !p.am_interested || p.peer_id.is_none() {
            return;
        }
        let target = pipeline_target(p.recent_down_rate, p.pipeline_cap)
            .max(p.slow_start.depth().min(p.pipeline_cap as usize));
        let deficit = target.saturating_sub(p.in_flight.len());
        if deficit == 0 || (deficit < target.min(4) && !p.in_flight.is_empty()) {
            return;
        }
        let has = &p.has;
        let mut blocks = self
            .picker
            .pick(key, |i| has.get(i), deficit, &mut self.rng);
        let mut stolen = Vec::new();
        if blocks.is_empty() && p.in_flight.is_empty() {
            stolen = self.picker.steal_busy(key, |i| has.get(i), BUSY_BLOCKS);
            blocks = stolen.iter().map(|(b, _)| *b).collect();
        }
        if blocks.is_empty() {
            return;
        }
        for b in &blocks {
            p.in_flight.insert((b.piece, b.offset));
        }
        self.send(key, PeerCmd::Request(blocks));
        for (b, from) in stolen {
            self.cancel_held(from, b);
        }
    }

    /// Tells `key` to drop its request for `block` if it still holds one.
    fn cancel_held(&mut self, key: PeerKey, block: Block) {
        let had = self
            .peers
            .get_mut(&key)
            .is_some_and(|p| p.in_flight.remove(&(block.piece, block.offset)));
        if had {
            self.send(key, PeerCmd::Cancel(block));
        }
    }

    pub(super) fn on_block(
        &mut self,
        now: Instant,
        key: PeerKey,
        block: Block,
        digest: Option<BlockDigest>,
    ) {
        let len = u64::from(block.len);
        self.status.downloaded += len;
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.in_flight.remove(&(block.piece, block.offset)) {
            p.slow_start.on_block();
        }
        let ip = ban_key(p.addr);
        let out = self.picker.on_block(key, &block);
        if out.piece_complete {
            self.awaiting.insert(block.piece, now);
        }
        if out.new {
            let n = self.picker.piece_len(block.piece).div_ceil(BLOCK_SIZE) as usize;
            let rec = self
                .senders
                .entry(block.piece)
                .or_insert_with(|| vec![None; n]);
            if let Some(slot) = rec.get_mut((block.offset / BLOCK_SIZE) as usize) {
                *slot = Some((ip, digest));
            }
        }
        for other in out.cancel {
            self.cancel_held(other, block);
        }
    }

    pub(super) fn on_verified(&mut self, now: Instant, piece: u32) {
        self.awaiting.remove(&piece);
        if self.picker.has(piece) || piece >= self.picker.num_pieces() {
            return;
        }
        let wanted = self.picker.priority(piece) > 0;
        self.picker.on_piece_verified(piece);
        let _ = self.have.set(piece);
        self.resume_dirty = true;
        self.status.pieces_have += 1;
        if wanted {
            self.status.verified_wanted_bytes += u64::from(self.picker.piece_len(piece));
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.send(k, PeerCmd::Have(piece));
            let lost = self.peers.get_mut(&k).is_some_and(|p| {
                if wanted && p.has.get(piece) {
                    p.interesting = p.interesting.saturating_sub(1);
                    p.interesting == 0
                } else {
                    false
                }
            });
            if lost {
                self.update_interest(k);
            }
        }
        self.senders.remove(&piece);
        if self.ban.wants_digests(piece) {
            self.actions.push_back(Action::ReadDigests(piece));
        }
        if !self.completed && self.picker.is_complete() {
            self.completed = true;
            if self.status.state == TorrentState::Downloading {
                self.status.state = TorrentState::Seeding;
            }
            tracing::info!("download complete");
            if !self.was_complete_at_start {
                self.actions.push_back(Action::AnnounceCompleted);
            }
            self.save_resume(now);
            // Seeding now: no interest in anyone any more.
            let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
            for k in keys {
                self.update_interest(k);
            }
        }
    }

    pub(super) fn on_failed(&mut self, piece: u32) {
        self.awaiting.remove(&piece);
        self.status.pieces_failed += 1;
        // Its payload was counted as it arrived; it is corrupt, not downloaded.
        let len = u64::from(self.picker.piece_len(piece));
        self.status.corrupt += len;
        self.status.downloaded = self.status.downloaded.saturating_sub(len);
        let _ = self.picker.on_piece_failed(piece);
        let rec = self.senders.remove(&piece).unwrap_or_default();
        let blocks: Vec<(u32, SocketAddr, Option<BlockDigest>)> = rec
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.map(|(ip, d)| (i as u32, ip, d)))
            .collect();
        let mut ips: Vec<SocketAddr> = blocks.iter().map(|b| b.1).collect();
        ips.sort_unstable();
        ips.dedup();
        let guilty = if ips.len() == 1 {
            ips
        } else if blocks.iter().all(|b| b.2.is_some()) && !blocks.is_empty() {
            let with: Vec<(u32, SocketAddr, BlockDigest)> = blocks
                .iter()
                .filter_map(|&(i, ip, d)| d.map(|d| (i, ip, d)))
                .collect();
            self.ban.on_piece_failed(piece, &with)
        } else {
            Vec::new()
        };
        // From now on every block's digest is kept, so mixed pieces can be judged.
        self.digests = true;
        tracing::info!(piece, guilty = ?guilty, "piece failed its hash check");
        for ip in guilty {
            self.ban_ip(ip);
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill(k);
        }
    }

    pub(super) fn ban_ip(&mut self, ip: SocketAddr) {
        if !self.banned.insert(ip) {
            return;
        }
        tracing::warn!(%ip, "banning peer for sending corrupt data");
        self.status.banned = self.banned.len();
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| ban_key(p.addr) == ip)
            .map(|(&k, _)| k)
            .collect();
        for k in keys {
            self.close_peer(k);
        }
    }
}
