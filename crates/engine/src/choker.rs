//! The choker: which interested peers we upload to.
//!
//! Tit-for-tat (BEP 3): every rechoke (the engine calls it every 10 s) the
//! `slots` interested peers that give us the most (download rate from them) are
//! unchoked; when seeding, those we upload to fastest are kept, spreading the
//! torrent quickest. One more peer is unchoked optimistically, chosen at random
//! among the other interested peers and rotated every [`OPTIMISTIC_INTERVAL`],
//! so newcomers get a chance to prove themselves. Snubbed peers (nothing sent
//! to us for a minute) lose their regular slot while leeching. Between
//! rechokes (a peer's interest changed, an unchoked peer left) the engine
//! only refills: peers keep their slots, free ones go to the best others.
//!
//! While seeding, slots nobody interested uses go to peers that may want our
//! data but have not said so yet (preemptive unchoke, as libtorrent does
//! after a handshake): when such a peer turns interested it can request at once
//! instead of waiting a round trip for our unchoke. That round trip is long
//! with Transmission, which sends `interested` only from its 10-s rechoke and
//! then holds the message up to 2 s in its outgoing batch. Such a peer keeps
//! its slot across rechokes while nobody interested needs it: it takes no
//! bandwidth until it asks. While leeching, slots stay tit-for-tat (the
//! engine flags no candidate): in the swarm simulator, preemptive unchokes
//! by leechers made the 100-leecher swarm no faster.
use crate::picker::PeerKey;
use rand::Rng;
use std::time::{Duration, Instant};

/// How long an optimistic unchoke lasts before it is rotated.
pub const OPTIMISTIC_INTERVAL: Duration = Duration::from_secs(30);

/// What the choker knows about one connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStats {
    /// The engine's key for the peer.
    pub key: PeerKey,
    /// The peer is interested in what we have.
    pub interested: bool,
    /// Bytes/s the peer sends us (recent average).
    pub download_rate: u64,
    /// Bytes/s we send the peer (recent average).
    pub upload_rate: u64,
    /// The peer has sent us nothing for a while although we asked.
    pub snubbed: bool,
    /// Not interested, but it lacks pieces we have (or we do not know yet):
    /// a candidate for a free slot before it asks.
    pub may_want: bool,
    /// We are not choking it now.
    pub unchoked: bool,
}

/// Choking state across rechokes: the optimistic slot and when it last moved.
#[derive(Debug, Clone)]
pub struct Choker {
    slots: usize,
    optimistic: Option<PeerKey>,
    rotated_at: Option<Instant>,
}

impl Choker {
    /// A choker with `slots` regular upload slots (plus one optimistic).
    pub fn new(slots: usize) -> Self {
        Choker {
            slots,
            optimistic: None,
            rotated_at: None,
        }
    }

    /// The current optimistic unchoke.
    pub fn optimistic(&self) -> Option<PeerKey> {
        self.optimistic
    }

    /// Decides the set of peers to unchoke now; everyone else is choked.
    pub fn rechoke(
        &mut self,
        peers: &[PeerStats],
        seeding: bool,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Vec<PeerKey> {
        self.select(peers, &[], seeding, now, rng)
    }

    /// Between rechokes (a peer's interest changed, a peer left): keeps the
    /// regular slots of the peers in `unchoked` that still qualify and fills
    /// the free ones with the best of the rest. Re-ranking everybody here
    /// would choke peers in the middle of a piece whenever the rates shift.
    pub fn refill(
        &mut self,
        peers: &[PeerStats],
        unchoked: &[PeerKey],
        seeding: bool,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Vec<PeerKey> {
        self.select(peers, unchoked, seeding, now, rng)
    }

    fn select(
        &mut self,
        peers: &[PeerStats],
        keep: &[PeerKey],
        seeding: bool,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Vec<PeerKey> {
        let mut candidates: Vec<&PeerStats> = peers
            .iter()
            .filter(|p| p.interested && (seeding || !p.snubbed))
            .collect();
        candidates.sort_by(|a, b| {
            let (ra, rb) = if seeding {
                (a.upload_rate, b.upload_rate)
            } else {
                (a.download_rate, b.download_rate)
            };
            rb.cmp(&ra).then(a.key.cmp(&b.key))
        });
        // The regular slots to keep first (in rank order), then the best of
        // the peers not unchoked now (the optimistic one keeps its own slot).
        let kept = candidates
            .iter()
            .filter(|p| keep.contains(&p.key) && self.optimistic != Some(p.key));
        let others = candidates.iter().filter(|p| !keep.contains(&p.key));
        let mut unchoked: Vec<PeerKey> =
            kept.chain(others).take(self.slots).map(|p| p.key).collect();

        let still_valid = self.optimistic.is_some_and(|o| {
            peers.iter().any(|p| p.key == o && p.interested) && !unchoked.contains(&o)
        });
        let due = self
            .rotated_at
            .is_none_or(|t| now.saturating_duration_since(t) >= OPTIMISTIC_INTERVAL);
        if !still_valid || due {
            let others: Vec<PeerKey> = peers
                .iter()
                .filter(|p| p.interested && !unchoked.contains(&p.key))
                .map(|p| p.key)
                .collect();
            self.optimistic = if others.is_empty() {
                None
            } else {
                Some(others[rng.gen_range(0..others.len())])
            };
            self.rotated_at = Some(now);
        }
        if let Some(o) = self.optimistic {
            unchoked.push(o);
        }
        // Regular slots nobody interested fills: preemptive unchokes, those
        // already unchoked first so a rechoke does not flap them.
        let free = self.slots.saturating_sub(unchoked.len());
        let mut waiting: Vec<&PeerStats> = peers
            .iter()
            .filter(|p| !p.interested && p.may_want)
            .collect();
        waiting.sort_by_key(|p| (!p.unchoked, p.key));
        unchoked.extend(waiting.iter().take(free).map(|p| p.key));
        unchoked
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn peer(key: PeerKey, down: u64, up: u64) -> PeerStats {
        PeerStats {
            key,
            interested: true,
            download_rate: down,
            upload_rate: up,
            snubbed: false,
            may_want: false,
            unchoked: false,
        }
    }

    #[test]
    fn tit_for_tat_by_download_rate() {
        let mut c = Choker::new(2);
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let peers = [
            peer(1, 10, 0),
            peer(2, 30, 0),
            peer(3, 20, 0),
            peer(4, 0, 99),
        ];
        let u = c.rechoke(&peers, false, now, &mut rng);
        assert_eq!(&u[..2], &[2, 3]);
        assert_eq!(u.len(), 3);
        assert!(u[2] == 1 || u[2] == 4);
        // Seeding ranks by upload rate instead.
        let u = c.rechoke(&peers, true, now, &mut rng);
        assert_eq!(&u[..2], &[4, 1]);
    }

    #[test]
    fn uninterested_and_snubbed_are_choked() {
        let mut c = Choker::new(4);
        let mut rng = StdRng::seed_from_u64(1);
        let mut a = peer(1, 100, 0);
        a.snubbed = true;
        let mut b = peer(2, 50, 0);
        b.interested = false;
        let u = c.rechoke(&[a, b, peer(3, 1, 0)], false, Instant::now(), &mut rng);
        assert!(u.contains(&3));
        assert!(!u.contains(&2));
        // The snubbed peer may only be the optimistic unchoke.
        assert_eq!(u.iter().filter(|&&k| k == 1).count(), u.len() - 1);
    }

    #[test]
    fn optimistic_rotates_every_30s() {
        let mut c = Choker::new(1);
        let mut rng = StdRng::seed_from_u64(3);
        let t0 = Instant::now();
        let peers: Vec<_> = (0..20)
            .map(|k| peer(k, if k == 0 { 100 } else { 0 }, 0))
            .collect();
        c.rechoke(&peers, false, t0, &mut rng);
        let first = c.optimistic().unwrap();
        c.rechoke(&peers, false, t0 + Duration::from_secs(10), &mut rng);
        assert_eq!(c.optimistic(), Some(first), "kept within the interval");
        let mut changed = false;
        for i in 1..10 {
            c.rechoke(&peers, false, t0 + Duration::from_secs(30 * i), &mut rng);
            changed |= c.optimistic() != Some(first);
        }
        assert!(changed, "rotated after the interval");
        assert_ne!(c.optimistic(), Some(0), "never the peer already unchoked");
    }

    #[test]
    fn refill_keeps_the_unchoked_and_fills_free_slots_with_the_best() {
        let mut c = Choker::new(2);
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut peers = vec![
            peer(1, 10, 0),
            peer(2, 20, 0),
            peer(3, 30, 0),
            peer(4, 40, 0),
        ];
        let first = c.rechoke(&peers, false, now, &mut rng);
        assert_eq!(&first[..2], &[4, 3]);
        // Rates shift: a refill keeps 3 and 4 although 1 now ranks first.
        peers[0].download_rate = 100;
        let u = c.refill(&peers, &first, false, now, &mut rng);
        assert_eq!(&u[..2], &[4, 3]);
        // 4 loses interest: its slot goes to the best peer that is not
        // unchoked (the optimistic one, 1 or 2, keeps its own slot).
        peers[3].interested = false;
        let optimistic = c.optimistic();
        let u = c.refill(&peers, &first, false, now, &mut rng);
        let best_other = if optimistic == Some(1) { 2 } else { 1 };
        assert_eq!(&u[..2], &[3, best_other]);
        assert_eq!(c.optimistic(), optimistic);
        // A full rechoke ranks everyone again.
        let u = c.rechoke(&peers, false, now, &mut rng);
        assert_eq!(&u[..2], &[1, 3]);
    }

    fn waiting(key: PeerKey, unchoked: bool) -> PeerStats {
        PeerStats {
            interested: false,
            may_want: true,
            unchoked,
            ..peer(key, 0, 0)
        }
    }

    #[test]
    fn free_slots_go_to_peers_that_have_not_asked_yet() {
        // 3 slots; one interested peer.
        let mut c = Choker::new(3);
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        let mut peers = vec![
            peer(1, 10, 0),
            waiting(2, false),
            waiting(3, false),
            waiting(4, false),
        ];
        // A peer that lacks nothing we have is never a candidate.
        let mut seed = waiting(5, false);
        seed.may_want = false;
        peers.push(seed);
        let u = c.rechoke(&peers, true, now, &mut rng);
        assert_eq!(
            u,
            vec![1, 2, 3],
            "the interested peer, then 2 free slots by key"
        );
        // Those already unchoked keep their slots across a rechoke.
        peers[1].unchoked = false;
        peers[2].unchoked = true;
        peers[3].unchoked = true;
        let u = c.rechoke(&peers, true, now, &mut rng);
        assert_eq!(u, vec![1, 3, 4]);
        // Interested peers take the slots back.
        for p in &mut peers[1..3] {
            p.interested = true;
        }
        let u = c.refill(&peers, &[1, 3, 4], true, now, &mut rng);
        assert_eq!(u.len(), 3);
        assert!(u.contains(&1) && u.contains(&3), "{u:?}");
        assert!(!u.contains(&4), "a waiting peer gives its slot up: {u:?}");
    }
}
