//! Time-critical pieces: what open [`crate::FileReader`]s are waiting for,
//! on the model of libtorrent's piece deadlines.
//!
//! A reader's window reaches the core as piece priorities at or above
//! [`READER_PRIORITY_FLOOR`], highest at the reader's position. Each such
//! piece gets a deadline: the piece under the position now plus one piece
//! time, each next one a piece time later, where a piece time is a piece's
//! length at the torrent's measured download rate (so the window's deadlines
//! stretch and shrink with the rate). Several readers simply contribute
//! pieces; the most urgent deadlines go first whichever reader they serve.
//!
//! Every tick, and whenever the windows change, before the ordinary
//! rarest-first refills: the critical pieces, earliest deadline first, have
//! their free blocks requested from the peer expected to deliver them
//! soonest (its queue plus the piece, at its measured rate), beyond its
//! usual pipeline depth. A piece whose deadline passed while its blocks are
//! still out is requested again from the soonest peer not already asked
//! (each block from at most two peers); whichever copy arrives first wins
//! and the other request is cancelled (the picker's `cancel` list). The
//! piece's deadline then moves to that peer's estimate, so it is not
//! duplicated again at every tick.
use super::{TorrentCore, MAX_PIPELINE};
use crate::peer::PeerCmd;
use crate::picker::{PeerKey, BLOCK_SIZE};
use crate::status::TorrentState;
use crate::torrent::reader::{READER_PRIORITY, READER_PRIORITY_FLOOR};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The rate assumed while none is measured yet, bytes per second.
pub(super) const ASSUMED_RATE: u64 = 64 * 1024;
/// Most requests outstanding to one peer counting time-critical ones (the
/// ordinary refills stop at [`MAX_PIPELINE`]).
const CRITICAL_PIPELINE: usize = MAX_PIPELINE * 2;
/// Critical pieces looked at per pass (the most urgent).
const MAX_CRITICAL: usize = 64;

/// The deadline of every time-critical piece.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    pub(super) at: BTreeMap<u32, Instant>,
}

/// How long `bytes` take at `rate` bytes per second (at least
/// [`ASSUMED_RATE`] when unknown).
pub(super) fn transfer_time(bytes: u64, rate: u64) -> Duration {
    let rate = if rate == 0 { ASSUMED_RATE } else { rate };
    Duration::from_secs_f64(bytes as f64 / rate as f64)
}

/// When a peer with `queued` blocks outstanding at `rate` is expected to
/// deliver `bytes` more.
pub(super) fn expected(now: Instant, queued: usize, bytes: u64, rate: u64) -> Instant {
    let ahead = queued as u64 * u64::from(BLOCK_SIZE);
    now + transfer_time(ahead + bytes, rate)
}

impl TorrentCore {
    /// Recomputes the critical pieces from the priorities: new ones get a
    /// deadline from their rank in their window and the measured rate,
    /// pieces that left every window lose theirs.
    pub(super) fn update_deadlines(&mut self, now: Instant) {
        let rate = self.status.download_rate;
        let mut keep = BTreeMap::new();
        for p in 0..self.picker.num_pieces() {
            let prio = self.picker.priority(p);
            if prio < READER_PRIORITY_FLOOR || self.picker.has(p) {
                continue;
            }
            let rank = u64::from(READER_PRIORITY - prio) + 1;
            let piece_time = transfer_time(u64::from(self.picker.piece_len(p)), rate);
            let fresh = now + piece_time * rank as u32;
            let at = self
                .deadlines
                .at
                .get(&p)
                .map_or(fresh, |&old| old.min(fresh));
            keep.insert(p, at);
        }
        self.deadlines.at = keep;
    }

    /// See the module docs.
    pub(super) fn request_time_critical(&mut self, now: Instant) {
        if self.status.state != TorrentState::Downloading || self.deadlines.at.is_empty() {
            return;
        }
        let picker = &self.picker;
        self.deadlines.at.retain(|&p, _| !picker.has(p));
        let mut order: Vec<(Instant, u32)> =
            self.deadlines.at.iter().map(|(&p, &t)| (t, p)).collect();
        order.sort_unstable();
        order.truncate(MAX_CRITICAL);
        for (deadline, piece) in order {
            let len = u64::from(self.picker.piece_len(piece));
            if self.picker.has_free_blocks(piece) {
                if let Some((key, _)) = self.soonest_peer(now, piece, len, false) {
                    let blocks = self.picker.pick_in(key, piece, usize::MAX);
                    self.send_requests(key, blocks);
                }
            } else if now >= deadline {
                if let Some((key, eta)) = self.soonest_peer(now, piece, len, true) {
                    let blocks = self.picker.duplicate_in(key, piece, usize::MAX);
                    if !blocks.is_empty() {
                        tracing::debug!(piece, peer = key, "late time-critical piece: duplicated");
                        self.deadlines.at.insert(piece, eta);
                        self.send_requests(key, blocks);
                    }
                }
            }
        }
    }

    /// The peer expected to deliver `bytes` of `piece` soonest, with that
    /// time: unchoked, holding the piece, room in its pipeline; with
    /// `others_only`, one not already asked for it.
    fn soonest_peer(
        &self,
        now: Instant,
        piece: u32,
        bytes: u64,
        others_only: bool,
    ) -> Option<(PeerKey, Instant)> {
        self.peers
            .iter()
            .filter(|(_, p)| {
                !p.closing
                    && !p.choking_us
                    && p.am_interested
                    && p.peer_id.is_some()
                    && p.has.get(piece)
                    && p.in_flight.len() < CRITICAL_PIPELINE.min(p.pipeline_cap as usize)
            })
            .filter(|(&k, _)| !others_only || !self.picker.holds_in(piece, k))
            .map(|(&k, p)| {
                // A snubbed peer is not expected to deliver anything soon.
                let rate = if p.snubbed { 1 } else { p.down_rate };
                (k, expected(now, p.in_flight.len(), bytes, rate))
            })
            .min_by_key(|&(k, t)| (t, k))
    }

    fn send_requests(&mut self, key: PeerKey, blocks: Vec<crate::picker::Block>) {
        if blocks.is_empty() {
            return;
        }
        if let Some(p) = self.peers.get_mut(&key) {
            for b in &blocks {
                p.in_flight.insert((b.piece, b.offset));
            }
        }
        self.send(key, PeerCmd::Request(blocks));
    }
}
