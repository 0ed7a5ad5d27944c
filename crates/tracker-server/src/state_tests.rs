use super::*;
use crate::peers::pack;
use crate::swarm::{AnnounceReply, PeerAnnounce, SwarmConfig};
use shoal_tracker::Event;

fn table() -> Swarms {
    let s = Swarms::new(
        SwarmConfig {
            peer_timeout: 1000,
            ..SwarmConfig::default()
        },
        1,
    );
    let mut r = AnnounceReply::default();
    let mut ann = |h: u8, addr: &str, seeder: bool, event: Event, now: u32| {
        let a = PeerAnnounce {
            info_hash: shoal_base::InfoHash([h; 20]),
            addr: pack(addr.parse().unwrap()),
            seeder,
            event,
            numwant: None,
        };
        s.announce(now, &a, true, &mut r).unwrap();
    };
    ann(1, "10.0.0.1:1", true, Event::Completed, 10_000);
    ann(1, "10.0.0.2:2", false, Event::Started, 10_500);
    ann(1, "[2001:db8::1]:3", true, Event::Completed, 10_900);
    ann(2, "10.0.0.3:4", false, Event::None, 10_950);
    s
}

fn scrapes(s: &Swarms) -> Vec<Option<shoal_tracker::ScrapeStats>> {
    [[1u8; 20], [2; 20], [3; 20]]
        .iter()
        .map(|h| s.scrape(&shoal_base::InfoHash(*h)))
        .collect()
}

#[test]
fn round_trip_keeps_counts_and_ages() {
    let s = table();
    let bytes = encode_state(&s, 11_000, 5_000_000);
    let t = Swarms::new(s.config().clone(), 2);
    // Restored later at another tracker time, no wall time elapsed.
    let r = decode_state(&bytes, 50_000, 5_000_000, 1000, |rec| t.restore(rec)).unwrap();
    assert_eq!(
        r,
        Restored {
            torrents: 2,
            peers: 4,
            expired: 0
        }
    );
    assert_eq!(scrapes(&t), scrapes(&s));
    // Ages were kept (seen 1000, 500 and 50 s before the save).
    let mut ages = Vec::new();
    t.for_each(|rec| ages.extend(rec.peers4.iter().map(|e| 50_000 - e.seen)));
    ages.sort();
    assert_eq!(ages, vec![50, 500, 1000]);
}

#[test]
fn time_away_expires_peers() {
    let s = table();
    let bytes = encode_state(&s, 11_000, 5_000_000);
    let t = Swarms::new(s.config().clone(), 2);
    // 400 s later the peer aged 1000 at the save is gone, the others stay.
    let r = decode_state(&bytes, 100, 5_000_400, 1000, |rec| t.restore(rec)).unwrap();
    assert_eq!((r.peers, r.expired), (3, 1));
    assert_eq!(
        t.scrape(&shoal_base::InfoHash([1; 20]))
            .map(|s| (s.complete, s.incomplete, s.downloaded)),
        Some((1, 1, 2))
    );
    assert_eq!(
        t.scrape(&shoal_base::InfoHash([2; 20]))
            .map(|s| s.incomplete),
        Some(1)
    );
}

#[test]
fn corrupt_files_are_errors() {
    let s = table();
    let good = encode_state(&s, 11_000, 5_000_000);
    let dec = |b: &[u8]| decode_state(b, 1, 5_000_000, 1000, |_| true);
    assert!(dec(&good).is_ok());
    assert!(matches!(dec(b"hello"), Err(StateError::BadMagic)));
    assert!(matches!(
        dec(&good[..good.len() - 1]),
        Err(StateError::Checksum { .. })
    ));
    let mut flipped = good.clone();
    flipped[30] ^= 0x40;
    assert!(matches!(dec(&flipped), Err(StateError::Checksum { .. })));
    let mut v2 = good.clone();
    v2[11] = 2;
    assert!(matches!(
        dec(&v2),
        Err(StateError::UnsupportedVersion { version: 2 })
    ));
    // Structurally bad contents with a valid checksum: counts past the end,
    // unknown tags, trailing bytes.
    let reseal = |mut body: Vec<u8>| {
        let crc = crc32c::crc32c(&body);
        body.extend_from_slice(&crc.to_be_bytes());
        body
    };
    let head = &good[..20];
    let mut huge = head.to_vec();
    huge.push(TAG_TORRENT);
    huge.extend_from_slice(&[9; 20]);
    huge.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
    assert!(matches!(
        dec(&reseal(huge)),
        Err(StateError::Truncated { .. })
    ));
    let mut tag = head.to_vec();
    tag.push(7);
    assert!(matches!(
        dec(&reseal(tag)),
        Err(StateError::BadTag { tag: 7, offset: 20 })
    ));
    let mut trailing = head.to_vec();
    trailing.extend_from_slice(&[TAG_END, 1, 2]);
    assert!(matches!(
        dec(&reseal(trailing)),
        Err(StateError::Trailing { extra: 2 })
    ));
    let mut unended = head.to_vec();
    unended.push(TAG_TORRENT);
    assert!(matches!(
        dec(&reseal(unended)),
        Err(StateError::Truncated { .. })
    ));
}

#[test]
fn save_is_atomic_and_load_reports_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tracker.state");
    let s = table();
    let t = Swarms::new(s.config().clone(), 3);
    assert_eq!(load_state(&t, 11_000, &path).unwrap(), None, "no file yet");
    let n = save_state(&s, 11_000, &path).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, n);
    assert!(!dir.path().join("tracker.state.tmp").exists());
    let r = load_state(&t, 11_000, &path).unwrap().unwrap();
    assert_eq!(r.torrents, 2);
    assert_eq!(scrapes(&t), scrapes(&s));
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 5;
    bytes[last] ^= 1;
    std::fs::write(&path, &bytes).unwrap();
    let e = load_state(&Swarms::new(s.config().clone(), 4), 11_000, &path).unwrap_err();
    assert!(e.to_string().contains("corrupt"), "{e}");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any table saves and loads to the same scrapes and peers.
        #[test]
        fn random_tables_round_trip(
            peers in proptest::collection::vec(
                (0u8..8, any::<[u8; 4]>(), any::<u16>(), any::<bool>(), 0u32..500, any::<bool>()),
                0..60,
            )
        ) {
            let s = Swarms::new(SwarmConfig { peer_timeout: 1000, ..SwarmConfig::default() }, 1);
            let mut r = AnnounceReply::default();
            for (h, ip, port, seeder, age, v6) in &peers {
                let addr: std::net::SocketAddr = if *v6 {
                    (std::net::Ipv6Addr::from([ip[0], ip[1], ip[2], ip[3], 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), *port).into()
                } else {
                    (std::net::Ipv4Addr::from(*ip), *port).into()
                };
                let a = PeerAnnounce {
                    info_hash: shoal_base::InfoHash([*h; 20]),
                    addr: pack(addr),
                    seeder: *seeder,
                    event: if *seeder { Event::Completed } else { Event::None },
                    numwant: None,
                };
                s.announce(5000 - age, &a, true, &mut r).unwrap();
            }
            let bytes = encode_state(&s, 5000, 1_000_000);
            let t = Swarms::new(s.config().clone(), 2);
            let got = decode_state(&bytes, 5000, 1_000_000, 1000, |rec| t.restore(rec)).unwrap();
            prop_assert_eq!(got.torrents, s.totals().torrents);
            prop_assert_eq!(t.totals(), s.totals());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            s.for_each(|x| a.push(x.clone()));
            t.for_each(|x| b.push(x.clone()));
            a.sort_by_key(|x| x.info_hash);
            b.sort_by_key(|x| x.info_hash);
            prop_assert_eq!(a, b);
        }
    }
}
