//! Super-seeding (BEP 16), as libtorrent's non-strict mode does it: a
//! torrent that starts complete (the initial seed) announces no pieces to
//! a new connection and reveals them with `have` messages: one to a choked
//! peer (the most common piece it lacks, so that it stays interested), and
//! to an unchoked one at least two (two seconds' worth at the rate we send
//! it), choosing the pieces its other peers have least and that are not
//! pending at anyone else. When the peer reports one of them, another is
//! revealed. The seed's upload then goes to pieces the swarm lacks instead
//! of to copies of pieces it already spread (in the simulator's 1 seed +
//! 100 leechers, the seed otherwise sends 1.29 times the torrent). It
//! ends, for every connection at once (the pieces not yet revealed are
//! announced), as soon as another seed is connected. Another initial seed
//! that super-seeds too looks like a leecher with nothing, as in
//! libtorrent.
use super::{PeerCmd, TorrentCore, TorrentState};
use crate::picker::PeerKey;
use rand::Rng;
use shoal_wire::Bitfield;
use std::time::{Duration, Instant};

/// Pieces revealed to an unchoked peer and not yet reported by it, at
/// least (more for a fast peer, up to [`MAX_PENDING`]).
const PENDING: usize = 2;
/// Pieces revealed to a peer and not yet reported by it, at most.
const MAX_PENDING: usize = 64;

/// What a super-seeded connection has been shown.
#[derive(Debug)]
pub(crate) struct Reveal {
    /// Pieces announced to the peer (it may request them).
    shown: Bitfield,
    /// Of those, the ones it has not reported yet, while it is unchoked.
    pending: Vec<u32>,
    /// Since when it is not interested in us.
    idle_since: Option<Instant>,
}

/// A super-seeded peer not interested for this long is told every piece:
/// it wants none of those it was shown (it downloads only some files).
const IDLE_LIMIT: Duration = Duration::from_secs(10);

/// Super-seeding state of a torrent.
#[derive(Debug)]
pub(crate) struct SuperSeed {
    /// Super-seeding is on (until another seed shows up).
    on: bool,
    /// Per piece: the connections it is pending at.
    pending: Vec<u32>,
}

impl SuperSeed {
    /// On for a torrent of `pieces` pieces when `on` (it starts complete and
    /// super-seeding is allowed).
    pub(crate) fn new(on: bool, pieces: u32) -> Self {
        SuperSeed {
            on,
            pending: if on {
                vec![0; pieces as usize]
            } else {
                Vec::new()
            },
        }
    }
}

impl TorrentCore {
    /// Whether new connections are super-seeded.
    pub(super) fn super_seeding(&self) -> bool {
        self.superseed.on && self.status.state == TorrentState::Seeding
    }

    /// The pieces to announce to connection `key` in its handshake: none
    /// while it is super-seeded, else every piece we have.
    pub(crate) fn announce_to(&self, key: PeerKey) -> Bitfield {
        match self.peers.get(&key).and_then(|p| p.reveal.as_ref()) {
            Some(r) => r.shown.clone(),
            None => self.have.clone(),
        }
    }

    /// Whether connection `key` is super-seeded (was not told every piece).
    pub(crate) fn is_super_seeded(&self, key: PeerKey) -> bool {
        self.peers.get(&key).is_some_and(|p| p.reveal.is_some())
    }

    /// A new connection's reveal state (`None`: not super-seeded).
    pub(super) fn new_reveal(&self) -> Option<Reveal> {
        self.super_seeding().then(|| Reveal {
            shown: Bitfield::new(self.picker.num_pieces()),
            pending: Vec::new(),
            idle_since: None,
        })
    }

    /// Drops `key`'s pending pieces (it was choked or closed).
    pub(super) fn release_reveals(&mut self, key: PeerKey) {
        let Some(r) = self.peers.get_mut(&key).and_then(|p| p.reveal.as_mut()) else {
            return;
        };
        for p in r.pending.drain(..) {
            if let Some(n) = self.superseed.pending.get_mut(p as usize) {
                *n = n.saturating_sub(1);
            }
        }
    }

    /// Keeps [`PENDING`] pieces revealed to `key` while it is unchoked:
    /// those it reported are replaced by the rarest pieces it lacks (any
    /// piece it was shown and lacks counts). A choked peer is kept
    /// interested with one piece it lacks, the most common one (not
    /// reserved for it: it may never be unchoked).
    pub(super) fn reveal_more(&mut self, key: PeerKey) {
        if !self.super_seeding() {
            return;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let ready = !p.closing && p.peer_id.is_some();
        // Two seconds' worth of pieces at the rate we send it, at least
        // PENDING: a fast peer is not held up by the round trips.
        let piece = u64::from(self.picker.piece_len(0).max(1));
        let target = ((p.up_rate.saturating_mul(2) / piece) as usize).clamp(PENDING, MAX_PENDING);
        let unchoked = !p.am_choking;
        let Some(r) = p.reveal.as_mut() else {
            return;
        };
        let has = &p.has;
        let counts = &mut self.superseed.pending;
        r.pending.retain(|&i| {
            let keep = !has.get(i);
            if !keep {
                if let Some(n) = counts.get_mut(i as usize) {
                    *n = n.saturating_sub(1);
                }
            }
            keep
        });
        if !ready {
            return;
        }
        let mut revealed = Vec::new();
        if unchoked {
            for i in r.shown.iter_ones() {
                if !has.get(i) && !r.pending.contains(&i) {
                    r.pending.push(i);
                    counts[i as usize] += 1;
                }
            }
            while r.pending.len() < target {
                // The piece our peers have least, preferring one pending nowhere.
                let pick = choose(self.picker.num_pieces(), &mut self.rng, |i| {
                    (!has.get(i) && !r.shown.get(i) && self.have.get(i))
                        .then(|| (counts[i as usize] > 0, self.picker.availability(i)))
                });
                let Some(i) = pick else {
                    break;
                };
                let _ = r.shown.set(i);
                r.pending.push(i);
                counts[i as usize] += 1;
                revealed.push(i);
            }
        } else if !r.shown.iter_ones().any(|i| !has.get(i)) {
            let pick = choose(self.picker.num_pieces(), &mut self.rng, |i| {
                (!has.get(i) && !r.shown.get(i) && self.have.get(i)).then(|| {
                    (
                        counts[i as usize] > 0,
                        u32::MAX - self.picker.availability(i),
                    )
                })
            });
            if let Some(i) = pick {
                let _ = r.shown.set(i);
                revealed.push(i);
            }
        }
        for i in revealed {
            self.send(key, PeerCmd::Have(i));
        }
    }

    /// Whether piece `i`, just reported by `key`, was shown to it by
    /// super-seeding (so another piece may be due).
    pub(super) fn was_shown(&self, key: PeerKey, i: u32) -> bool {
        self.peers
            .get(&key)
            .and_then(|p| p.reveal.as_ref())
            .is_some_and(|r| r.shown.get(i))
    }

    /// Tells every piece to the super-seeded peers that have not been
    /// interested for [`IDLE_LIMIT`] (called on every tick).
    pub(super) fn check_idle_reveals(&mut self, now: Instant) {
        if !self.superseed.on {
            return;
        }
        let mut give_up = Vec::new();
        for (&k, p) in self.peers.iter_mut() {
            let (Some(r), Some(_)) = (p.reveal.as_mut(), p.peer_id) else {
                continue;
            };
            if p.interested_in_us {
                r.idle_since = None;
            } else if now.saturating_duration_since(*r.idle_since.get_or_insert(now)) >= IDLE_LIMIT
            {
                give_up.push(k);
            }
        }
        for k in give_up {
            self.release_reveals(k);
            self.tell_all(k);
        }
    }

    /// Stops super-seeding connection `key`: it hears of every piece it
    /// was not shown.
    fn tell_all(&mut self, key: PeerKey) {
        let Some(r) = self.peers.get_mut(&key).and_then(|p| p.reveal.take()) else {
            return;
        };
        let untold: Vec<u32> = match self.peers.get(&key) {
            Some(p) => self
                .have
                .iter_ones()
                .filter(|&i| !r.shown.get(i) && !p.has.get(i))
                .collect(),
            None => return,
        };
        for i in untold {
            self.send(key, PeerCmd::Have(i));
        }
    }

    /// Ends super-seeding: every connection hears of the pieces it was not
    /// shown.
    pub(super) fn end_super_seeding(&mut self) {
        if !self.superseed.on {
            return;
        }
        self.superseed.on = false;
        tracing::debug!("another seed is connected: super-seeding ends");
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.tell_all(k);
        }
        self.superseed.pending.clear();
    }
}

/// The piece in `0..n` with the least key (`None`: not eligible), ties
/// broken at random.
fn choose<K: Ord>(
    n: u32,
    rng: &mut impl Rng,
    mut key: impl FnMut(u32) -> Option<K>,
) -> Option<u32> {
    let mut best: Option<K> = None;
    let mut chosen = None;
    let mut ties = 0u32;
    for i in 0..n {
        let Some(k) = key(i) else {
            continue;
        };
        match best.as_ref().map(|b| k.cmp(b)) {
            None | Some(std::cmp::Ordering::Less) => {
                best = Some(k);
                chosen = Some(i);
                ties = 1;
            }
            Some(std::cmp::Ordering::Equal) => {
                // Reservoir sampling: every tie equally likely.
                ties += 1;
                if rng.gen_range(0..ties) == 0 {
                    chosen = Some(i);
                }
            }
            Some(std::cmp::Ordering::Greater) => {}
        }
    }
    chosen
}
