//! The torrent core under virtual time, without sockets or disk: a test
//! plays the peers and the disk and reads the actions.
use super::*;
use crate::pex::PexConfig;
use crate::picker::{Block, BLOCK_SIZE};
use rand::SeedableRng;

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

fn peer_id(i: u16) -> [u8; 20] {
    let mut id = *b"-XX0000-000000000000";
    id[18..].copy_from_slice(&i.to_be_bytes());
    id
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
        let now = Instant::now();
        let core = TorrentCore::new(
            CoreInit {
                peer_id: *b"-SH0100-ourselves!!!",
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
    loop {
        let blocks = h.requested(key);
        if blocks.is_empty() {
            break;
        }
        assert!(blocks.len() <= MIN_PIPELINE, "a new peer's pipeline");
        got += blocks.len();
        h.deliver(key, &blocks);
    }
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
    let regular = |h: &mut Harness| -> Vec<PeerKey> {
        let opt = h.core.optimistic();
        h.unchoked()
            .into_iter()
            .filter(|k| Some(*k) != opt)
            .collect()
    };
    assert_eq!(regular(&mut h), vec![mid]);
    // Without the snub it takes the regular slot by rate.
    h.feed(fast, stats(1_000_000, false));
    h.advance(RECHOKE_INTERVAL);
    assert_eq!(regular(&mut h), vec![fast]);
}

#[test]
fn endgame_duplicates_a_slow_block_and_cancels_the_loser() {
    let mut h = Harness::new(1, &[], 4);
    let a = h.peer(1, &[0]);
    let b = h.peer(2, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    assert_eq!(from_a.len(), 4);
    // Every block is requested: endgame lets b ask for the same ones.
    h.feed(b, PeerMsg::Unchoked);
    let from_b = h.requested(b);
    assert!(!from_b.is_empty());
    assert!(from_b.iter().all(|x| from_a.contains(x)));
    // b delivers first: a is told to cancel.
    h.deliver(b, &from_b[..1]);
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::Peer(k, PeerCmd::Cancel(bl)) if *k == a && *bl == from_b[0])));
}

#[test]
fn failed_requests_go_to_another_peer() {
    let mut h = Harness::new(1, &[], 4);
    let a = h.peer(1, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    // a times out on everything (the wire layer reports it) and chokes us.
    h.feed(a, PeerMsg::RequestsFailed(from_a.clone()));
    h.feed(a, PeerMsg::Choked);
    let b = h.peer(2, &[0]);
    h.feed(b, PeerMsg::Unchoked);
    let mut from_b = h.requested(b);
    from_b.sort();
    let mut want = from_a;
    want.sort();
    assert_eq!(from_b, want);
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
fn a_magnet_core_fetches_the_metadata_over_its_connections_and_keeps_them() {
    use sha1::Digest;
    // An info dictionary of 40,000 bytes: three ut_metadata pieces.
    let info: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let hash: [u8; 20] = sha1::Sha1::digest(&info).into();
    let mut h = Harness::new(0, &[], 4);
    h.core
        .start_metadata_fetch(shoal_wire::MetadataHash::V1(hash));
    assert_eq!(h.core.status().state, TorrentState::FetchingMetadata);
    let key = h.core.accept_incoming(addr(1)).unwrap();
    h.feed(
        key,
        PeerMsg::Handshake {
            peer_id: peer_id(1),
            encrypted: false,
            utp: false,
        },
    );
    h.feed(
        key,
        PeerMsg::Extensions {
            port: None,
            pex: false,
            your_ip: None,
            metadata_size: Some(info.len() as u64),
        },
    );
    let asked = |h: &mut Harness| -> Vec<u32> {
        h.actions()
            .into_iter()
            .filter_map(|a| match a {
                Action::Peer(_, PeerCmd::RequestMetadata(p)) => Some(p),
                _ => None,
            })
            .collect()
    };
    let mut pieces = asked(&mut h);
    assert_eq!(pieces, vec![0, 1], "two requests in flight");
    let data = |p: u32| {
        let start = p as usize * 16384;
        let end = (start + 16384).min(info.len());
        shoal_wire::MetadataMessage::Data {
            piece: p,
            total_size: info.len() as u64,
            data: bytes::Bytes::copy_from_slice(&info[start..end]),
        }
    };
    h.feed(key, PeerMsg::Metadata(data(0)));
    pieces.extend(asked(&mut h));
    assert_eq!(pieces, vec![0, 1, 2]);
    h.feed(key, PeerMsg::Metadata(data(1)));
    h.feed(key, PeerMsg::Metadata(data(2)));
    let got = h.actions().into_iter().find_map(|a| match a {
        Action::MetadataReady(b) => Some(b),
        _ => None,
    });
    assert_eq!(got.as_deref(), Some(&info[..]));
    // The task checks the data and gives the core its pieces: the peer
    // that gave the metadata stays and learns the piece count.
    let mut picker = PiecePicker::new(PIECE, 2 * u64::from(PIECE));
    picker.set_have(1);
    h.core.set_metadata(h.now, picker, false);
    assert_eq!(h.core.status().state, TorrentState::Downloading);
    assert_eq!(h.core.status().pieces, 2);
    let acts = h.actions();
    assert!(acts.iter().any(|a| matches!(a,
        Action::Peer(k, PeerCmd::SetPieces(bf)) if *k == key && bf.len() == 2 && bf.get(1) && !bf.get(0))));
    let mut bf = Bitfield::new(2);
    bf.set(0).unwrap();
    bf.set(1).unwrap();
    h.feed(key, PeerMsg::Bitfield(bf));
    h.feed(key, PeerMsg::Unchoked);
    let blocks = h.requested(key);
    assert!(!blocks.is_empty() && blocks.iter().all(|b| b.piece == 0));
}

#[test]
fn a_peer_with_bad_metadata_is_dropped_and_another_one_asked() {
    let info = vec![7u8; 20_000];
    let hash = [9u8; 20]; // matches nothing
    let mut h = Harness::new(0, &[], 4);
    h.core
        .start_metadata_fetch(shoal_wire::MetadataHash::V1(hash));
    let a = h.core.accept_incoming(addr(1)).unwrap();
    h.feed(
        a,
        PeerMsg::Handshake {
            peer_id: peer_id(1),
            encrypted: false,
            utp: false,
        },
    );
    h.feed(
        a,
        PeerMsg::Extensions {
            port: None,
            pex: false,
            your_ip: None,
            metadata_size: Some(info.len() as u64),
        },
    );
    let _ = h.actions();
    for p in 0..2u32 {
        let start = p as usize * 16384;
        let end = (start + 16384).min(info.len());
        h.feed(
            a,
            PeerMsg::Metadata(shoal_wire::MetadataMessage::Data {
                piece: p,
                total_size: info.len() as u64,
                data: bytes::Bytes::copy_from_slice(&info[start..end]),
            }),
        );
    }
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|x| matches!(x, Action::Close(k) if *k == a)));
    assert!(!acts.iter().any(|x| matches!(x, Action::MetadataReady(_))));
    assert_eq!(h.core.status().state, TorrentState::FetchingMetadata);
}

#[test]
fn a_seed_is_asked_for_rare_pieces_before_the_rest_of_common_ones() {
    let mut h = Harness::new(8, &[], 4);
    // Piece 0 is common: three leechers have it.
    let a = h.peer(1, &[0]);
    let _ = h.peer(2, &[0]);
    let _ = h.peer(3, &[0]);
    h.feed(a, PeerMsg::Unchoked);
    let from_a = h.requested(a);
    assert_eq!(from_a.len(), 4);
    // a chokes us and rejects half of them: piece 0 is half free again.
    h.feed(a, PeerMsg::Choked);
    h.feed(a, PeerMsg::RequestsFailed(from_a[2..].to_vec()));
    // The seed is asked for pieces only it has, not for the rest of piece 0.
    let seed = h.peer(4, &all(8));
    h.feed(seed, PeerMsg::Unchoked);
    let from_seed = h.requested(seed);
    assert_eq!(from_seed.len(), 4, "{from_seed:?}");
    assert!(from_seed.iter().all(|b| b.piece != 0), "{from_seed:?}");
    // Another leecher with piece 0 takes its rest over.
    let d = h.peer(5, &[0]);
    h.feed(d, PeerMsg::Unchoked);
    let mut from_d = h.requested(d);
    from_d.sort();
    assert_eq!(from_d, from_a[2..].to_vec());
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

/// The pieces revealed to `key` by `have` messages among `acts`.
fn haves_to(acts: &[Action], key: PeerKey) -> Vec<u32> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Peer(k, PeerCmd::Have(p)) if *k == key => Some(*p),
            _ => None,
        })
        .collect()
}

#[test]
fn initial_seed_super_seeds_until_another_seed_connects() {
    let mut h = Harness::with_limits(8, &all(8), 4, 50, true);
    let a = h.peer(1, &[]);
    assert!(h.core.is_super_seeded(a));
    // Choked: one piece keeps it interested; it is all it was told of.
    let shown = haves_to(&h.actions(), a);
    assert_eq!(shown.len(), 1, "{shown:?}");
    let told: Vec<u32> = h.core.announce_to(a).iter_ones().collect();
    assert_eq!(told, shown);
    // Unchoked: two pieces to fetch, the one it was shown among them.
    h.feed(a, PeerMsg::Interest(true));
    let acts = h.actions();
    assert!(h.unchoked.contains(&a));
    let more = haves_to(&acts, a);
    assert_eq!(more.len(), 1, "{more:?}");
    assert_ne!(more[0], shown[0]);
    // A second peer is shown other pieces than the first one's.
    let b = h.peer(2, &[]);
    h.feed(b, PeerMsg::Interest(true));
    let acts = h.actions();
    assert!(h.unchoked.contains(&b));
    let to_b = haves_to(&acts, b);
    assert_eq!(to_b.len(), 2, "{to_b:?}");
    assert!(
        to_b.iter().all(|p| *p != more[0] && *p != shown[0]),
        "{to_b:?}"
    );
    // A reports a piece it was shown: it gets another one.
    h.feed(a, PeerMsg::Have(shown[0]));
    let next = haves_to(&h.actions(), a);
    assert_eq!(next.len(), 1, "{next:?}");
    assert!(![shown[0], more[0]].contains(&next[0]));
    // A peer that reports a piece it was not shown gets nothing new.
    let other = (0..8)
        .find(|p| ![shown[0], more[0], next[0]].contains(p))
        .unwrap();
    h.feed(a, PeerMsg::Have(other));
    assert!(haves_to(&h.actions(), a).is_empty());
    // Another seed: every connection hears of what it was not shown.
    let _c = h.peer(3, &all(8));
    let acts = h.actions();
    let mut rest = haves_to(&acts, a);
    rest.sort_unstable();
    let expect: Vec<u32> = (0..8)
        .filter(|p| ![shown[0], more[0], next[0], other].contains(p))
        .collect();
    assert_eq!(rest, expect);
    assert_eq!(haves_to(&acts, b).len(), 6);
    // New connections are told every piece from now on.
    let d = h.core.accept_incoming(addr(4)).unwrap();
    assert!(!h.core.is_super_seeded(d));
    assert!(h.core.announce_to(d).is_full());
}

#[test]
fn a_torrent_completed_by_download_does_not_super_seed() {
    let mut h = Harness::with_limits(2, &[0], 4, 50, true);
    let key = h.peer(1, &all(2));
    h.feed(key, PeerMsg::Unchoked);
    let blocks = h.requested(key);
    h.deliver(key, &blocks);
    h.core.on_disk(h.now, DiskVerdict::Verified(1));
    assert!(h.core.status().is_complete());
    let d = h.core.accept_incoming(addr(2)).unwrap();
    assert!(!h.core.is_super_seeded(d));
    assert!(h.core.announce_to(d).is_full());
}

/// Priorities with a reader at `at`: `window` pieces counting down from
/// the top, the rest at 1.
fn reader_prio(pieces: u32, at: u32, window: u32) -> Vec<u8> {
    (0..pieces)
        .map(|p| {
            if p >= at && p < at + window {
                255 - (p - at) as u8
            } else {
                1
            }
        })
        .collect()
}

#[test]
fn a_reader_piece_goes_to_the_peer_expected_soonest() {
    let mut h = Harness::new(8, &[], 4);
    let slow = h.peer(1, &all(8));
    let fast = h.peer(2, &all(8));
    h.feed(slow, PeerMsg::Unchoked);
    h.feed(fast, PeerMsg::Unchoked);
    for (k, rate) in [(slow, 20_000), (fast, 2_000_000)] {
        h.feed(
            k,
            PeerMsg::Stats {
                down_rate: rate,
                recent_down_rate: rate,
                up_rate: 0,
                uploaded: 0,
                snubbed: false,
            },
        );
    }
    let _ = h.actions();
    // A reader opens at piece 6 (nobody was asked for it yet).
    let now = h.now;
    h.core.set_priorities(now, &reader_prio(8, 6, 1));
    let acts = h.actions();
    let asked = |k: PeerKey| {
        acts.iter().any(|a| {
            matches!(a, Action::Peer(p, PeerCmd::Request(b)) if *p == k && b.iter().any(|x| x.piece == 6))
        })
    };
    assert!(asked(fast), "{acts:?}");
    assert!(!asked(slow), "{acts:?}");
}

#[test]
fn a_late_reader_piece_is_duplicated_to_a_faster_peer() {
    let mut h = Harness::new(32, &[], 4);
    let now = h.now;
    h.core.set_priorities(now, &reader_prio(32, 0, 1));
    let slow = h.peer(1, &all(32));
    h.feed(slow, PeerMsg::Unchoked);
    let from_slow = h.requested(slow);
    let piece0: Vec<Block> = from_slow.iter().copied().filter(|b| b.piece == 0).collect();
    assert_eq!(
        piece0.len(),
        4,
        "the reader's piece is asked first: {from_slow:?}"
    );
    // A second peer arrives: not endgame (other pieces are free), so it is
    // given other pieces while piece 0's deadline has not passed.
    let fast = h.peer(2, &all(32));
    h.feed(fast, PeerMsg::Unchoked);
    h.feed(
        fast,
        PeerMsg::Stats {
            down_rate: 200_000,
            recent_down_rate: 200_000,
            up_rate: 0,
            uploaded: 0,
            snubbed: false,
        },
    );
    let first = h.requested(fast);
    assert!(first.iter().all(|b| b.piece != 0), "{first:?}");
    // Its blocks arrive: room again in its pipeline.
    h.deliver(fast, &first);
    let _ = h.actions();
    // The deadline (one piece time at the assumed rate) passes.
    let deadline = h.core.deadlines.at[&0];
    h.advance(deadline.saturating_duration_since(h.now) + Duration::from_millis(300));
    let again = h.requested(fast);
    let dup: Vec<Block> = again.iter().copied().filter(|b| b.piece == 0).collect();
    assert_eq!(
        dup.len(),
        4,
        "late piece 0 asked again from the fast peer: {again:?}"
    );
    // The fast copy arrives first: the slow peer is told to cancel.
    h.deliver(fast, &dup[..1]);
    let acts = h.actions();
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::Peer(k, PeerCmd::Cancel(b)) if *k == slow && *b == dup[0])));
    // Not duplicated again at the next tick.
    h.advance(Duration::from_millis(300));
    assert!(h.requested(fast).iter().all(|b| b.piece != 0));
}

#[test]
fn reader_deadlines_stretch_with_the_rate() {
    let spacing = |rate: u64| {
        let mut h = Harness::new(8, &[], 4);
        h.core.status.download_rate = rate;
        let now = h.now;
        h.core.set_priorities(now, &reader_prio(8, 2, 4));
        let at: Vec<Instant> = (2..6).map(|p| h.core.deadlines.at[&p]).collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "nearest first");
        assert!(!h.core.deadlines.at.contains_key(&6), "outside the window");
        at[1] - at[0]
    };
    let piece = Duration::from_secs_f64(f64::from(PIECE) / 1_000_000.0);
    let d = spacing(1_000_000);
    assert!(d.abs_diff(piece) < Duration::from_millis(1), "{d:?}");
    assert!(spacing(100_000) > spacing(1_000_000) * 9);
}

/// A reader opened during the check (or while the metadata was fetched)
/// raised priorities in the picker the core starts from: its pieces have
/// deadlines from the start, not only after the next priority change.
#[test]
fn readers_open_before_the_start_get_deadlines() {
    let mut picker = PiecePicker::new(PIECE, 8 * u64::from(PIECE));
    for (p, prio) in reader_prio(8, 3, 2).into_iter().enumerate() {
        picker.set_priority(p as u32, prio);
    }
    let now = Instant::now();
    let core = TorrentCore::new(
        CoreInit {
            peer_id: *b"-SH0100-ourselves!!!",
            picker,
            limits: CoreLimits {
                max_peers: 50,
                max_connecting: 10,
                upload_slots: 4,
                super_seed: false,
                resume_interval: Duration::from_secs(1),
            },
            rng: StdRng::seed_from_u64(7),
            status: TorrentStatus::default(),
            pex: PeerExchange::new(PexConfig::default(), true, "10.9.9.9:6881".parse().unwrap()),
        },
        now,
    );
    let mut with: Vec<u32> = core.deadlines.at.keys().copied().collect();
    with.sort_unstable();
    assert_eq!(with, vec![3, 4]);
}
