//! Data between simulated peers: requests queued at the owner, its uplink
//! sending one block at a time round-robin over its connections, the
//! receiver's downlink, and the disk that verifies complete pieces.
use super::super::link::{digest, transfer_time, ConnId, Ctl, Side, MAX_PEER_REQUESTS};
use super::{micros, Ev, World};
use crate::peer::PeerMsg;
use crate::picker::{Block, BLOCK_SIZE};
use crate::sim::Behaviour;
use crate::torrent::core::DiskVerdict;

/// A block on its way into a downlink.
pub(super) struct Arrival {
    pub conn: ConnId,
    pub side: Side,
    pub block: Block,
    /// The peer that sent it.
    pub sender: usize,
    /// The corrupt peer that sent it, if it is corrupt.
    pub corrupt_from: Option<usize>,
}

/// The block an uplink is sending.
pub(super) struct Sending {
    pub conn: ConnId,
    pub side: Side,
    pub block: Block,
}

/// The disk's view of a piece in progress.
pub(super) struct PieceBuf {
    got: Vec<bool>,
    count: usize,
    /// Corrupt peers whose blocks are in it.
    bad: Vec<usize>,
    /// Every peer whose blocks are in it.
    from: Vec<usize>,
    /// Every block in it reached the core with its digest.
    digested: bool,
    /// Complete; the verdict is on its way.
    pending: bool,
}

impl World<'_> {
    /// Requests reached the owner `n` of side `s`: queued for its uplink,
    /// or rejected (choked, piece missing, queue full).
    pub(super) fn on_requests(&mut self, n: usize, c: ConnId, s: Side, blocks: Vec<Block>) {
        let Some(core) = self.nodes[n].core.as_ref() else {
            return;
        };
        let have = core.have();
        let end = &mut self.conns[c].ends[s];
        let mut rejected = Vec::new();
        for b in blocks {
            if end.am_choking || !have.get(b.piece) || end.to_serve.len() >= MAX_PEER_REQUESTS {
                rejected.push(b);
            } else {
                end.to_serve.push_back(b);
            }
        }
        if !end.to_serve.is_empty() && !end.queued {
            end.queued = true;
            self.nodes[n].up_ring.push_back((c, s));
        }
        if !rejected.is_empty() {
            self.send(c, s, Ctl::Reject(rejected));
        }
        self.start_up(n);
    }

    /// Starts sending the next block when the uplink is idle: one block of
    /// the next connection in the round-robin.
    pub(super) fn start_up(&mut self, n: usize) {
        if self.nodes[n].up_busy.is_some() || self.nodes[n].core.is_none() {
            return;
        }
        while let Some((c, s)) = self.nodes[n].up_ring.pop_front() {
            let open = self.conns[c].open;
            let end = &mut self.conns[c].ends[s];
            if !open || !end.alive {
                end.queued = false;
                end.to_serve.clear();
                continue;
            }
            let Some(block) = end.to_serve.pop_front() else {
                end.queued = false;
                continue;
            };
            if end.to_serve.is_empty() {
                end.queued = false;
            } else {
                self.nodes[n].up_ring.push_back((c, s));
            }
            self.nodes[n].up_busy = Some(Sending {
                conn: c,
                side: s,
                block,
            });
            let at = self.now + transfer_time(block.len, self.nodes[n].spec.up);
            self.schedule(at, Ev::UpDone(n));
            return;
        }
    }

    pub(super) fn up_done(&mut self, n: usize) {
        let Some(snd) = self.nodes[n].up_busy.take() else {
            return;
        };
        if self.nodes[n].core.is_none() {
            return;
        }
        let now = self.instant();
        let (c, s, b) = (snd.conn, snd.side, snd.block);
        if self.conns[c].open && self.conns[c].ends[s].alive {
            let len = u64::from(b.len);
            let end = &mut self.conns[c].ends[s];
            end.up.record(now, len);
            end.unreported += len;
            self.nodes[n].uploaded += len;
            let second = (self.now / 1_000_000) as usize;
            if self.upload_timeline.len() <= second {
                self.upload_timeline.resize(second + 1, 0);
            }
            self.upload_timeline[second] += len;
            if self.nodes[n].spec.seed {
                self.seed_uploaded += len;
                let per_piece = u64::from(self.cfg.piece_size.max(BLOCK_SIZE) / BLOCK_SIZE);
                let idx = u64::from(b.piece) * per_piece + u64::from(b.offset / BLOCK_SIZE);
                if let Some(sent) = self.seed_sent.get_mut(idx as usize) {
                    if !*sent {
                        *sent = true;
                        self.seed_distinct += len;
                        if self.seed_distinct >= self.cfg.file_size {
                            self.seed_all_sent = Some(self.now);
                        }
                    }
                }
            }
            let corrupt = self.nodes[n].spec.behaviour == Behaviour::Corrupt;
            let to = self.conns[c].ends[1 - s].node;
            let at = self.now + self.conns[c].latency;
            let a = Arrival {
                conn: c,
                side: 1 - s,
                block: b,
                sender: n,
                corrupt_from: corrupt.then_some(n),
            };
            self.schedule(at, Ev::DownArrive(to, a));
        }
        self.start_up(n);
    }

    pub(super) fn start_down(&mut self, n: usize) {
        while let Some(a) = self.nodes[n].down_q.front() {
            if !self.conns[a.conn].open {
                self.nodes[n].down_q.pop_front();
                continue;
            }
            let len = a.block.len;
            self.nodes[n].down_busy = true;
            let at = self.now + transfer_time(len, self.nodes[n].spec.down);
            self.schedule(at, Ev::DownDone(n));
            return;
        }
    }

    /// A block fully received by peer `n`: to its connection, its disk and
    /// its core.
    pub(super) fn deliver(&mut self, n: usize, a: Arrival) {
        let now = self.instant();
        let conn = &mut self.conns[a.conn];
        if !conn.open {
            return;
        }
        let end = &mut conn.ends[a.side];
        let Some(key) = end.key.filter(|_| end.alive) else {
            return;
        };
        let b = a.block;
        if !end.take_block(&b, self.now) {
            return;
        }
        end.down.record(now, u64::from(b.len));
        let piece_len = self.piece_len(b.piece);
        let verify = micros(self.cfg.verify_delay);
        let node = &mut self.nodes[n];
        node.downloaded += u64::from(b.len);
        let Some(core) = node.core.as_ref() else {
            return;
        };
        let d = core
            .wants_block_digests()
            .then(|| digest(&b, a.corrupt_from));
        let mut complete = false;
        if !core.have().get(b.piece) {
            let blocks = piece_len.div_ceil(BLOCK_SIZE) as usize;
            let buf = node.disk.entry(b.piece).or_insert_with(|| PieceBuf {
                got: vec![false; blocks],
                count: 0,
                bad: Vec::new(),
                from: Vec::new(),
                digested: true,
                pending: false,
            });
            let i = (b.offset / BLOCK_SIZE) as usize;
            if buf.got.get(i) == Some(&false) {
                buf.got[i] = true;
                buf.count += 1;
                if let Some(s) = a.corrupt_from.filter(|s| !buf.bad.contains(s)) {
                    buf.bad.push(s);
                }
                if !buf.from.contains(&a.sender) {
                    buf.from.push(a.sender);
                }
                buf.digested &= d.is_some();
                if buf.count == blocks && !buf.pending {
                    buf.pending = true;
                    complete = true;
                }
            }
        }
        if complete {
            let piece = b.piece;
            self.schedule(self.now + verify, Ev::Verdict { node: n, piece });
        }
        self.feed(n, key, PeerMsg::Blocks(vec![(b, d)]));
    }

    pub(super) fn verdict(&mut self, n: usize, piece: u32) {
        let now = self.instant();
        let node = &mut self.nodes[n];
        let Some(buf) = node.disk.remove(&piece) else {
            return;
        };
        let Some(core) = node.core.as_mut() else {
            return;
        };
        if core.have().get(piece) {
            return;
        }
        if buf.bad.is_empty() {
            core.on_disk(now, DiskVerdict::Verified(piece));
        } else {
            core.on_disk(now, DiskVerdict::Failed(piece));
            self.pieces_failed += 1;
            // Smart ban can prove the guilt of a sole sender at once, and
            // of the others once the piece passes, if every block of the
            // failed piece came with its digest.
            let provable = buf.from.len() == 1 || buf.digested;
            for s in buf.bad {
                self.nodes[s].victims.insert(n);
                if provable {
                    self.nodes[s].provable_victims.insert(n);
                }
            }
        }
        self.mark(n);
    }
}
