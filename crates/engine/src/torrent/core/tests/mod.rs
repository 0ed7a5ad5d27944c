//! The torrent core under virtual time, without sockets or disk: a test
//! plays the peers and the disk and reads the actions.
use super::*;
use crate::pex::PexConfig;
use crate::picker::{Block, BLOCK_SIZE};
use rand::SeedableRng;

mod magnet;
mod readers;
mod requests;
mod superseed;

const PIECE: u32 = 4 * BLOCK_SIZE;

struct Harness {
    core: TorrentCore,
    now: Instant,
    /// Peers we unchoke, as the actions so far say.
    unchoked: std::collections::BTreeSet<PeerKey>,
}

fn addr(i: u16) -> SocketAddr {
    SocketAddr::from(([10, 0, (i >> 8) as u8, i as u8], 6881))
}

fn peer_id(i: u16) -> shoal_base::PeerId {
    let mut id = *b"-XX0000-000000000000";
    id[18..].copy_from_slice(&i.to_be_bytes());
    shoal_base::PeerId(id)
}

impl Harness {
    /// A torrent of `pieces` pieces of 64 KiB, `have` of them verified.
    fn new(pieces: u32, have: &[u32], slots: usize) -> Self {
        Self::with_max_peers(pieces, have, slots, 50)
    }

    fn with_max_peers(pieces: u32, have: &[u32], slots: usize, max_peers: usize) -> Self {
        Self::with_limits(pieces, have, slots, max_peers, false)
    }

    fn with_limits(
        pieces: u32,
        have: &[u32],
        slots: usize,
        max_peers: usize,
        super_seed: bool,
    ) -> Self {
        let mut picker = PiecePicker::new(PIECE, u64::from(pieces) * u64::from(PIECE));
        for &p in have {
            picker.set_have(p);
        }
        Self::with_picker(picker, slots, max_peers, super_seed)
    }

    /// A core starting from `picker` (pieces of `PIECE` bytes).
    fn with_picker(picker: PiecePicker, slots: usize, max_peers: usize, super_seed: bool) -> Self {
        let now = Instant::now();
        let core = TorrentCore::new(
            CoreInit {
                peer_id: shoal_base::PeerId(*b"-SH0100-ourselves!!!"),
                picker,
                limits: CoreLimits {
                    max_peers,
                    max_connecting: 10,
                    upload_slots: slots,
                    super_seed,
                    resume_interval: std::time::Duration::from_secs(1),
                },
                rng: StdRng::seed_from_u64(42),
                status: TorrentStatus::default(),
                pex: PeerExchange::new(
                    PexConfig::default(),
                    true,
                    "10.9.9.9:6881".parse().unwrap(),
                ),
            },
            now,
        );
        Harness {
            core,
            now,
            unchoked: Default::default(),
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        self.core.handle_timeout(self.now);
    }

    fn actions(&mut self) -> Vec<Action> {
        let acts: Vec<Action> = std::iter::from_fn(|| self.core.poll_action()).collect();
        for a in &acts {
            match a {
                Action::Peer(k, PeerCmd::Unchoke) => {
                    self.unchoked.insert(*k);
                }
                Action::Peer(k, PeerCmd::Choke) | Action::Close(k) => {
                    self.unchoked.remove(k);
                }
                _ => {}
            }
        }
        acts
    }

    fn feed(&mut self, key: PeerKey, msg: PeerMsg) {
        self.core.on_peer(self.now, key, msg);
    }

    /// A connected peer (incoming) with the given pieces.
    fn peer(&mut self, i: u16, pieces: &[u32]) -> PeerKey {
        let key = self.core.accept_incoming(addr(i)).unwrap();
        self.feed(
            key,
            PeerMsg::Handshake {
                peer_id: peer_id(i),
                encrypted: false,
                utp: false,
            },
        );
        let mut bf = Bitfield::new(self.core.status().pieces);
        for &p in pieces {
            bf.set(p).unwrap();
        }
        self.feed(key, PeerMsg::Bitfield(bf));
        key
    }

    fn requested(&mut self, key: PeerKey) -> Vec<Block> {
        self.actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Peer(k, PeerCmd::Request(b)) if k == key => Some(b),
                _ => None,
            })
            .flatten()
            .collect()
    }

    fn deliver(&mut self, key: PeerKey, blocks: &[Block]) {
        let b = blocks.iter().map(|b| (*b, None)).collect();
        self.feed(key, PeerMsg::Blocks(b));
    }

    /// The peers unchoked now in a regular slot (not the optimistic one).
    fn regular(&mut self) -> Vec<PeerKey> {
        let opt = self.core.optimistic();
        self.unchoked()
            .into_iter()
            .filter(|k| Some(*k) != opt)
            .collect()
    }

    /// The peers unchoked now.
    fn unchoked(&mut self) -> Vec<PeerKey> {
        let _ = self.actions();
        self.unchoked.iter().copied().collect()
    }
}

fn all(n: u32) -> Vec<u32> {
    (0..n).collect()
}

#[test]
fn idle_torrent_has_no_deadline() {
    let mut h = Harness::new(4, &[], 4);
    assert_eq!(h.core.poll_timeout(), None);
    let key = h.peer(1, &all(4));
    assert!(h.core.poll_timeout().is_some());
    h.feed(
        key,
        PeerMsg::Closed {
            reason: crate::peer_close::PeerClose::Simulated("bye"),
        },
    );
    // The rates of the last tick run down once, then nothing is due.
    h.advance(Duration::from_secs(2));
    h.advance(Duration::from_secs(2));
    assert_eq!(h.core.poll_timeout(), None, "{:?}", h.core.status());
}

#[test]
fn download_from_one_peer_to_completion() {
    let mut h = Harness::new(3, &[], 4);
    let key = h.peer(1, &all(3));
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Peer(k, PeerCmd::Interested(true)) if *k == key)));
    h.feed(key, PeerMsg::Unchoked);
    let mut got = 0;
    let mut rounds = Vec::new();
    loop {
        let blocks = h.requested(key);
        if blocks.is_empty() {
            break;
        }
        rounds.push(blocks.len());
        got += blocks.len();
        h.deliver(key, &blocks);
    }
    // A new peer's pipeline starts at MIN_PIPELINE and grows by one request
    // per block delivered (slow start): 4, then the 8 blocks left.
    assert_eq!(rounds, [MIN_PIPELINE, 12 - MIN_PIPELINE]);
    assert_eq!(got, 12);
    for p in 0..3 {
        h.core.on_disk(h.now, DiskVerdict::Verified(p));
    }
    let s = h.core.status();
    assert_eq!(s.state, TorrentState::Seeding);
    assert_eq!(s.pieces_have, 3);
    assert_eq!(s.downloaded, 3 * u64::from(PIECE));
    assert!(s.is_complete());
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(a, Action::AnnounceCompleted)));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::SaveResume(v) if v.iter().all(|&x| x))));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Peer(k, PeerCmd::Interested(false)) if *k == key)));
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, Action::Peer(_, PeerCmd::Have(_))))
            .count(),
        3
    );
}

#[test]
fn seeder_rotates_its_optimistic_unchoke() {
    // 6 interested leechers, 2 regular slots + 1 optimistic.
    let mut h = Harness::new(4, &all(4), 2);
    let keys: Vec<PeerKey> = (1..=6).map(|i| h.peer(i, &[])).collect();
    for (n, &k) in keys.iter().enumerate() {
        h.feed(k, PeerMsg::Interest(true));
        // Upload rates: the seeder keeps the peers it serves fastest.
        h.feed(
            k,
            PeerMsg::Stats {
                down_rate: 0,
                recent_down_rate: 0,
                up_rate: 1000 * (n as u64 + 1),
                uploaded: 0,
                snubbed: false,
            },
        );
    }
    let _ = h.actions();
    h.advance(RECHOKE_INTERVAL);
    let first = h.unchoked();
    // The two fastest hold the regular slots; one other is optimistic.
    assert!(
        first.contains(&keys[5]) && first.contains(&keys[4]),
        "{first:?}"
    );
    let optimistic: Vec<PeerKey> = first
        .iter()
        .copied()
        .filter(|k| *k != keys[5] && *k != keys[4])
        .collect();
    assert_eq!(optimistic.len(), 1, "{first:?}");
    // Over several optimistic periods the slot moves to other peers.
    let mut seen = std::collections::HashSet::new();
    seen.insert(optimistic[0]);
    for _ in 0..12 {
        h.advance(crate::choker::OPTIMISTIC_INTERVAL);
        for k in h.unchoked() {
            seen.insert(k);
        }
    }
    seen.remove(&keys[5]);
    seen.remove(&keys[4]);
    assert!(seen.len() >= 3, "optimistic slot stuck: {seen:?}");
}

#[test]
fn between_rechokes_slots_are_refilled_not_reshuffled() {
    // A seeder with 2 regular slots + 1 optimistic and 5 interested peers.
    let mut h = Harness::new(4, &all(4), 2);
    let keys: Vec<PeerKey> = (1..=5).map(|i| h.peer(i, &[])).collect();
    let stats = |up| PeerMsg::Stats {
        down_rate: 0,
        recent_down_rate: 0,
        up_rate: up,
        uploaded: 0,
        snubbed: false,
    };
    for (n, &k) in keys.iter().enumerate() {
        h.feed(k, PeerMsg::Interest(true));
        h.feed(k, stats(1000 * (n as u64 + 1)));
    }
    h.advance(RECHOKE_INTERVAL);
    assert_eq!(h.regular(), vec![keys[3], keys[4]]);
    // The slowest peer becomes the fastest, then one of the unchoked peers
    // loses interest: only its slot changes hands, to the best peer that
    // was choked.
    h.feed(keys[0], stats(1_000_000));
    let opt = h.core.optimistic();
    h.feed(keys[3], PeerMsg::Interest(false));
    // Peers 0-2 were choked or optimistic; rates now 1e6, 2000, 3000.
    let best_choked = [0, 2, 1]
        .into_iter()
        .map(|i| keys[i])
        .find(|k| Some(*k) != opt)
        .unwrap();
    let mut want = vec![keys[4], best_choked];
    want.sort();
    assert_eq!(h.regular(), want);
    // The next rechoke ranks everyone again.
    h.feed(keys[3], PeerMsg::Interest(true));
    h.advance(RECHOKE_INTERVAL);
    let r = h.regular();
    assert!(r.contains(&keys[0]) && r.contains(&keys[4]), "{r:?}");
}

#[test]
fn seeder_unchokes_newcomers_into_free_slots_before_they_ask() {
    // A seeder with 2 slots. Transmission, for one, says `interested` only
    // at its next rechoke; unchoked already, it requests at once.
    let mut h = Harness::new(4, &all(4), 2);
    let a = h.peer(1, &[]);
    assert_eq!(h.unchoked(), vec![a], "unchoked after its handshake");
    // A seed lacks nothing: unchoked on its handshake (its bitfield was not
    // known yet), choked by the next rechoke.
    let s = h.peer(2, &all(4));
    assert!(h.unchoked().contains(&s));
    h.advance(RECHOKE_INTERVAL);
    assert_eq!(h.unchoked(), vec![a], "kept across a rechoke; not the seed");
    let b = h.peer(3, &[]);
    let c = h.peer(4, &[]);
    assert_eq!(h.unchoked(), vec![a, b], "no free slot for c");
    // An interested peer takes a slot from one that has not asked.
    h.feed(c, PeerMsg::Interest(true));
    let u = h.unchoked();
    assert_eq!(u.len(), 2, "{u:?}");
    assert!(u.contains(&c), "{u:?}");
    // Peers that ask keep their slots.
    h.feed(a, PeerMsg::Interest(true));
    h.feed(b, PeerMsg::Interest(true));
    h.advance(RECHOKE_INTERVAL);
    let u = h.regular();
    assert_eq!(u.len(), 2, "{u:?}");
}

#[test]
fn leecher_unchokes_only_peers_that_ask() {
    // While leeching, slots are tit-for-tat: nobody is unchoked unasked.
    let mut h = Harness::new(4, &[0, 1], 2);
    let a = h.peer(1, &[]);
    h.advance(RECHOKE_INTERVAL);
    assert!(h.unchoked().is_empty());
    h.feed(a, PeerMsg::Interest(true));
    assert_eq!(h.unchoked(), vec![a]);
}

#[test]
fn snubbed_peer_loses_its_regular_slot_while_leeching() {
    let mut h = Harness::new(8, &[0, 1, 2, 3], 1);
    let fast = h.peer(1, &all(8));
    let mid = h.peer(2, &all(8));
    let slow = h.peer(3, &all(8));
    for k in [fast, mid, slow] {
        h.feed(k, PeerMsg::Interest(true));
    }
    let stats = |rate, snubbed| PeerMsg::Stats {
        down_rate: rate,
        recent_down_rate: rate,
        up_rate: 0,
        uploaded: 0,
        snubbed,
    };
    h.feed(fast, stats(1_000_000, true));
    h.feed(mid, stats(1_000, false));
    h.feed(slow, stats(10, false));
    h.advance(RECHOKE_INTERVAL);
    // The regular slot (the unchoked peer that is not the optimistic one)
    // goes by download rate among the peers that are not snubbed.
    assert_eq!(h.regular(), vec![mid]);
    // Without the snub it takes the regular slot by rate.
    h.feed(fast, stats(1_000_000, false));
    h.advance(RECHOKE_INTERVAL);
    assert_eq!(h.regular(), vec![fast]);
}

#[test]
fn sole_sender_of_a_bad_piece_is_banned() {
    let mut h = Harness::new(2, &[], 4);
    let bad = h.peer(1, &all(2));
    h.feed(bad, PeerMsg::Unchoked);
    let blocks = h.requested(bad);
    let piece = blocks[0].piece;
    let p0: Vec<Block> = blocks
        .iter()
        .copied()
        .filter(|b| b.piece == piece)
        .collect();
    assert_eq!(p0.len(), 4);
    h.deliver(bad, &p0);
    h.core.on_disk(h.now, DiskVerdict::Failed(piece));
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Close(k) if *k == bad)));
    assert_eq!(h.core.status().banned, 1);
    assert_eq!(h.core.status().pieces_failed, 1);
    // Its bytes count as corrupt, not as downloaded.
    assert_eq!(h.core.status().corrupt, u64::from(PIECE));
    assert_eq!(h.core.status().downloaded, 0);
    assert!(h.core.wants_block_digests());
    h.feed(
        bad,
        PeerMsg::Closed {
            reason: crate::peer_close::PeerClose::Simulated("banned"),
        },
    );
    // It cannot come back from the same address.
    assert!(h.core.accept_incoming(addr(1)).is_none());
    assert!(h.core.accept_incoming(addr(2)).is_some());
}

#[test]
fn mixed_bad_piece_is_judged_by_block_digests() {
    let mut h = Harness::new(1, &[], 4);
    let good = h.peer(1, &[0]);
    let bad = h.peer(2, &[0]);
    let digest = |b: &Block, bad: bool| {
        let mut d = [0u8; 20];
        d[..4].copy_from_slice(&b.offset.to_be_bytes());
        d[19] = u8::from(bad);
        d
    };
    // First round: a failure with mixed senders and no digests yet.
    h.feed(good, PeerMsg::Unchoked);
    let blocks = h.requested(good);
    h.deliver(good, &blocks[..2]);
    h.feed(bad, PeerMsg::Blocks(vec![]));
    h.deliver(bad, &blocks[2..]);
    h.core.on_disk(h.now, DiskVerdict::Failed(0));
    assert_eq!(h.core.status().banned, 0, "nobody is proven guilty yet");
    assert!(h.core.wants_block_digests());
    // Second round, with digests: the bad peer's blocks differ from the good data.
    let again = h.requested(good);
    assert_eq!(again.len(), 4);
    let with = |bs: &[Block], bad: bool| {
        PeerMsg::Blocks(bs.iter().map(|b| (*b, Some(digest(b, bad)))).collect())
    };
    h.feed(good, with(&again[..3], false));
    h.feed(bad, with(&again[3..], true));
    h.core.on_disk(h.now, DiskVerdict::Failed(0));
    assert_eq!(h.core.status().banned, 0);
    // Third round from the good peer alone passes; the digests convict.
    let last = h.requested(good);
    h.feed(good, with(&last, false));
    h.core.on_disk(h.now, DiskVerdict::Verified(0));
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(a, Action::ReadDigests(0))));
    let good_digests: Vec<BlockDigest> = last.iter().map(|b| digest(b, false)).collect();
    h.core.on_digests(0, &good_digests);
    assert_eq!(h.core.status().banned, 1);
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Close(k) if *k == bad)));
    assert!(!acts
        .iter()
        .any(|a| matches!(a, Action::Close(k) if *k == good)));
}

#[test]
fn pause_closes_everything_and_resume_dials_again() {
    let mut h = Harness::new(4, &[], 4);
    h.core
        .add_addrs(h.now, vec![addr(7), addr(8)], PeerSource::Added);
    h.advance(Duration::from_millis(1));
    let dials: Vec<SocketAddr> = h
        .actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Connect { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    assert_eq!(dials.len(), 2);
    let incoming = h.peer(1, &all(4));
    h.core.pause(None);
    assert_eq!(h.core.status().state, TorrentState::Paused);
    let closes = h
        .actions()
        .into_iter()
        .filter(|a| matches!(a, Action::Close(_)))
        .count();
    assert_eq!(closes, 3);
    for k in 1..=3 {
        h.feed(
            k,
            PeerMsg::Closed {
                reason: crate::peer_close::PeerClose::Simulated("paused"),
            },
        );
    }
    assert!(h.core.accept_incoming(addr(9)).is_none());
    h.advance(Duration::from_secs(600));
    assert!(
        !h.actions()
            .iter()
            .any(|a| matches!(a, Action::Connect { .. })),
        "a paused torrent dials nobody"
    );
    assert_eq!(h.core.poll_timeout(), None);
    h.core.resume(h.now);
    assert_eq!(h.core.status().state, TorrentState::Downloading);
    h.advance(Duration::from_millis(1));
    let redials = h
        .actions()
        .into_iter()
        .filter(|a| matches!(a, Action::Connect { .. }))
        .count();
    assert_eq!(redials, 2);
    let _ = incoming;
}

#[test]
fn disk_error_pauses_with_its_reason() {
    let mut h = Harness::new(2, &[], 4);
    let _ = h.peer(1, &all(2));
    let e = TorrentError::Disk {
        kind: crate::error::DiskErrorKind::NoSpace,
        message: "No space left on device".into(),
    };
    h.core.on_disk(h.now, DiskVerdict::Error(e.clone()));
    assert_eq!(h.core.status().state, TorrentState::Error);
    assert_eq!(h.core.status().error, Some(e));
}

#[test]
fn file_selection_change_mid_download() {
    let mut h = Harness::new(4, &[0], 4);
    let key = h.peer(1, &all(4));
    h.feed(key, PeerMsg::Unchoked);
    let blocks = h.requested(key);
    assert!(!blocks.is_empty());
    // Only piece 0 (which we have) wanted now: done, not interested.
    h.core.set_priorities(h.now, &[1, 0, 0, 0]);
    assert_eq!(h.core.status().state, TorrentState::Seeding);
    assert!(h.core.status().is_complete());
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Peer(k, PeerCmd::Interested(false)) if *k == key)));
    // Piece 3 wanted again: interested, and it is requested.
    h.core.set_priorities(h.now, &[1, 0, 0, 1]);
    assert_eq!(h.core.status().state, TorrentState::Downloading);
    assert_eq!(h.core.status().wanted_bytes, 2 * u64::from(PIECE));
    h.feed(key, PeerMsg::RequestsFailed(blocks));
    h.advance(Duration::from_secs(1));
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Peer(k, PeerCmd::Interested(true)) if *k == key)));
    let again: Vec<Block> = acts
        .into_iter()
        .filter_map(|a| match a {
            Action::Peer(_, PeerCmd::Request(b)) => Some(b),
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!again.is_empty());
    assert!(again.iter().all(|b| b.piece == 3), "{again:?}");
}

#[test]
fn failed_dials_back_off() {
    let mut h = Harness::new(2, &[], 4);
    h.core.add_addrs(h.now, vec![addr(5)], PeerSource::Tracker);
    let mut times = Vec::new();
    for _ in 0..3 {
        // Let it dial, then fail the connection.
        let key = loop {
            let next = h.core.poll_timeout().expect("a dial is due");
            h.now = h.now.max(next);
            h.core.handle_timeout(h.now);
            if let Some(k) = h.actions().into_iter().find_map(|a| match a {
                Action::Connect { key, .. } => Some(key),
                _ => None,
            }) {
                break k;
            }
        };
        times.push(h.now);
        h.feed(
            key,
            PeerMsg::Closed {
                reason: crate::peer_close::PeerClose::Simulated("connect: refused"),
            },
        );
    }
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(gaps[0] >= Duration::from_secs(2), "{gaps:?}");
    assert!(
        gaps[1] >= 2 * gaps[0] - Duration::from_millis(300),
        "{gaps:?}"
    );
}

#[test]
fn same_seed_same_decisions() {
    let run = || {
        let mut h = Harness::new(16, &[], 4);
        let keys: Vec<PeerKey> = (1..=4).map(|i| h.peer(i, &all(16))).collect();
        let mut out = Vec::new();
        for k in keys {
            h.feed(k, PeerMsg::Unchoked);
            out.push(h.requested(k));
        }
        out
    };
    assert_eq!(run(), run());
}

#[test]
fn pex_dropped_forgets_candidates_only_pex_named() {
    // One connection allowed: the candidates stay candidates.
    let mut h = Harness::with_max_peers(4, &all(4), 4, 1);
    let a = h.peer(1, &[]);
    h.feed(
        a,
        PeerMsg::Extensions {
            port: Some(6881),
            pex: true,
            your_ip: None,
            metadata_size: None,
        },
    );
    let x: SocketAddr = "10.1.1.1:7000".parse().unwrap();
    let y: SocketAddr = "10.1.1.2:7000".parse().unwrap();
    h.core.add_addrs(h.now, vec![y], PeerSource::Tracker);
    let flags = shoal_wire::pex::PexFlags(0);
    h.feed(
        a,
        PeerMsg::Pex(shoal_wire::PexMessage {
            added: vec![(x, flags), (y, flags)],
            dropped: vec![],
        }),
    );
    assert_eq!(h.core.status().known_peers, 2);
    h.advance(Duration::from_secs(60));
    h.feed(
        a,
        PeerMsg::Pex(shoal_wire::PexMessage {
            added: vec![],
            dropped: vec![x, y],
        }),
    );
    // x came from PEX alone and is gone; the tracker still names y.
    assert_eq!(h.core.status().known_peers, 1);
    assert!(!h.core.addrs.contains_key(&x));
    assert!(h.core.addrs.contains_key(&y));
}

#[test]
fn a_complete_piece_without_a_verdict_is_fetched_again() {
    let mut h = Harness::new(1, &[], 4);
    let a = h.peer(1, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let blocks = h.requested(a);
    h.deliver(a, &blocks);
    // The data never reached the disk: no verdict comes.
    assert!(h.requested(a).is_empty());
    let due = h.core.poll_timeout().unwrap();
    assert!(due <= h.now + VERDICT_TIMEOUT);
    h.advance(VERDICT_TIMEOUT);
    let mut again = h.requested(a);
    again.sort();
    let mut want = blocks;
    want.sort();
    assert_eq!(again, want);
    assert_eq!(h.core.status().pieces_failed, 0, "nobody is blamed");
}

#[test]
fn same_seed_same_choices_among_many_peers() {
    // Rechokes walk the peer set: its order must not change from run to run.
    let run = || {
        let mut h = Harness::new(4, &all(4), 2);
        let keys: Vec<PeerKey> = (1..=12).map(|i| h.peer(i, &[])).collect();
        for &k in &keys {
            h.feed(k, PeerMsg::Interest(true));
        }
        let mut out = Vec::new();
        for _ in 0..6 {
            h.advance(crate::choker::OPTIMISTIC_INTERVAL);
            out.push(h.unchoked());
        }
        out
    };
    let first = run();
    for _ in 0..4 {
        assert_eq!(run(), first);
    }
}
