use super::*;
use crate::peers::{pack, unpack};
use std::net::SocketAddr;

const H: [u8; 20] = [7; 20];

fn ann(addr: &str, seeder: bool, event: Event) -> PeerAnnounce {
    PeerAnnounce {
        info_hash: shoal_base::InfoHash(H),
        addr: pack(addr.parse().unwrap()),
        seeder,
        event,
        numwant: None,
    }
}

fn peers(bytes: &[u8], unit: usize) -> Vec<SocketAddr> {
    let mut v: Vec<SocketAddr> = bytes.chunks(unit).filter_map(unpack).collect();
    v.sort();
    v
}

#[test]
fn peers_see_each_other_complete_and_leave() {
    let s = Swarms::new(SwarmConfig::default(), 1);
    let mut r = AnnounceReply::default();
    s.announce(
        100,
        &ann("10.0.0.1:1000", false, Event::Started),
        true,
        &mut r,
    )
    .unwrap();
    assert!(r.peers4.is_empty());
    assert_eq!((r.complete, r.incomplete), (0, 1));
    s.announce(
        100,
        &ann("10.0.0.2:2000", false, Event::Started),
        true,
        &mut r,
    )
    .unwrap();
    assert_eq!(peers(&r.peers4, 6), vec!["10.0.0.1:1000".parse().unwrap()]);
    s.announce(
        101,
        &ann("10.0.0.1:1000", true, Event::Completed),
        true,
        &mut r,
    )
    .unwrap();
    assert_eq!((r.complete, r.incomplete), (1, 1));
    assert_eq!(
        s.scrape(&shoal_base::InfoHash(H)),
        Some(ScrapeStats {
            complete: 1,
            downloaded: 1,
            incomplete: 1
        })
    );
    assert_eq!(
        s.totals(),
        SwarmTotals {
            torrents: 1,
            peers: 2,
            seeders: 1
        }
    );
    s.announce(
        102,
        &ann("10.0.0.1:1000", true, Event::Stopped),
        true,
        &mut r,
    )
    .unwrap();
    assert_eq!((r.complete, r.incomplete), (0, 1));
    assert!(r.peers4.is_empty(), "a stopping peer gets no peers");
    assert_eq!(s.totals().seeders, 0);
    // A stopped event for an unknown torrent does not create it.
    let mut other = ann("10.0.0.3:1", false, Event::Stopped);
    other.info_hash = shoal_base::InfoHash([9; 20]);
    s.announce(102, &other, true, &mut r).unwrap();
    assert_eq!(s.scrape(&shoal_base::InfoHash([9; 20])), None);
}

#[test]
fn completions_are_counted_once_per_peer() {
    let s = Swarms::new(SwarmConfig::default(), 9);
    let mut r = AnnounceReply::default();
    let downloaded = |s: &Swarms| s.scrape(&shoal_base::InfoHash(H)).map(|x| x.downloaded);
    s.announce(1, &ann("10.0.0.1:1", false, Event::Started), true, &mut r)
        .unwrap();
    s.announce(2, &ann("10.0.0.1:1", true, Event::Completed), true, &mut r)
        .unwrap();
    assert_eq!(downloaded(&s), Some(1));
    // A repeated `completed` from a known seeder is not a second download.
    s.announce(3, &ann("10.0.0.1:1", true, Event::Completed), true, &mut r)
        .unwrap();
    assert_eq!(downloaded(&s), Some(1));
    // A seed that starts complete is no download.
    s.announce(3, &ann("10.0.0.2:1", true, Event::Started), true, &mut r)
        .unwrap();
    assert_eq!(downloaded(&s), Some(1));
    // A leecher that stops with nothing left finished without saying so.
    s.announce(4, &ann("10.0.0.3:1", false, Event::Started), true, &mut r)
        .unwrap();
    s.announce(5, &ann("10.0.0.3:1", true, Event::Stopped), true, &mut r)
        .unwrap();
    assert_eq!(downloaded(&s), Some(2));
    // So does one whose regular announce says left=0.
    s.announce(4, &ann("10.0.0.4:1", false, Event::Started), true, &mut r)
        .unwrap();
    s.announce(5, &ann("10.0.0.4:1", true, Event::None), true, &mut r)
        .unwrap();
    assert_eq!(downloaded(&s), Some(3));
    // A leecher that stops incomplete did not download.
    s.announce(4, &ann("10.0.0.5:1", false, Event::Started), true, &mut r)
        .unwrap();
    s.announce(5, &ann("10.0.0.5:1", false, Event::Stopped), true, &mut r)
        .unwrap();
    assert_eq!(downloaded(&s), Some(3));
}

#[test]
fn seeders_get_leechers_only_and_numwant_is_capped() {
    let cfg = SwarmConfig {
        max_numwant: 3,
        ..SwarmConfig::default()
    };
    let s = Swarms::new(cfg, 2);
    let mut r = AnnounceReply::default();
    for i in 1..=4 {
        let a = format!("10.0.0.{i}:1");
        s.announce(1, &ann(&a, i <= 2, Event::None), true, &mut r)
            .unwrap();
    }
    let mut me = ann("10.0.0.9:1", true, Event::None);
    me.numwant = Some(100);
    s.announce(1, &me, true, &mut r).unwrap();
    assert_eq!(
        peers(&r.peers4, 6),
        vec!["10.0.0.3:1".parse().unwrap(), "10.0.0.4:1".parse().unwrap()]
    );
    me.seeder = false;
    s.announce(1, &me, true, &mut r).unwrap();
    assert_eq!(r.peers4.len(), 3 * 6, "capped at max_numwant");
    me.numwant = Some(0);
    s.announce(1, &me, true, &mut r).unwrap();
    assert!(r.peers4.is_empty());
}

#[test]
fn families_are_mixed_only_when_asked() {
    let s = Swarms::new(SwarmConfig::default(), 3);
    let mut r = AnnounceReply::default();
    s.announce(1, &ann("[2001:db8::1]:5", false, Event::None), true, &mut r)
        .unwrap();
    s.announce(1, &ann("10.0.0.1:5", false, Event::None), false, &mut r)
        .unwrap();
    assert!(r.peers4.is_empty() && r.peers6.is_empty());
    s.announce(1, &ann("10.0.0.1:5", false, Event::None), true, &mut r)
        .unwrap();
    assert_eq!(
        peers(&r.peers6, 18),
        vec!["[2001:db8::1]:5".parse().unwrap()]
    );
    assert_eq!((r.complete, r.incomplete), (0, 2));
}

#[test]
fn expiry_under_a_virtual_clock() {
    let cfg = SwarmConfig {
        peer_timeout: 100,
        ..SwarmConfig::default()
    };
    let s = Swarms::new(cfg, 4);
    let mut r = AnnounceReply::default();
    s.announce(1000, &ann("10.0.0.1:1", true, Event::None), true, &mut r)
        .unwrap();
    s.announce(1050, &ann("10.0.0.2:1", false, Event::None), true, &mut r)
        .unwrap();
    // A peer goes once it has been silent for more than the timeout.
    assert_eq!(s.expire(1100), Expired::default());
    assert_eq!(
        s.expire(1101),
        Expired {
            peers: 1,
            torrents: 0
        }
    );
    assert_eq!(
        s.totals(),
        SwarmTotals {
            torrents: 1,
            peers: 1,
            seeders: 0
        }
    );
    // The last peer goes after 1150; the torrent stays, empty, until its
    // last announce is that old too (the same moment here).
    assert_eq!(
        s.expire(1151),
        Expired {
            peers: 1,
            torrents: 1
        }
    );
    assert_eq!(s.totals(), SwarmTotals::default());
    assert_eq!(s.scrape(&shoal_base::InfoHash(H)), None);
}

#[test]
fn bounds_on_torrents_and_peers() {
    let cfg = SwarmConfig {
        max_torrents: 2,
        max_peers_per_torrent: 3,
        max_peers: 4,
        ..SwarmConfig::default()
    };
    let s = Swarms::new(cfg, 5);
    let mut r = AnnounceReply::default();
    for i in 1..=5 {
        s.announce(
            1,
            &ann(&format!("10.0.0.{i}:1"), false, Event::None),
            true,
            &mut r,
        )
        .unwrap();
    }
    assert_eq!(
        s.scrape(&shoal_base::InfoHash(H)).unwrap().incomplete,
        3,
        "per-torrent bound"
    );
    // The unstored peer still got an answer with the stored peers.
    assert_eq!(r.peers4.len(), 3 * 6);
    let mut b = ann("10.0.0.1:1", false, Event::None);
    b.info_hash = shoal_base::InfoHash([8; 20]);
    s.announce(1, &b, true, &mut r).unwrap();
    b.addr = pack("10.0.0.2:1".parse().unwrap());
    s.announce(1, &b, true, &mut r).unwrap();
    assert_eq!(s.totals().peers, 4, "total bound");
    b.info_hash = shoal_base::InfoHash([9; 20]);
    assert_eq!(s.announce(1, &b, true, &mut r), Err(AnnounceRefused::Full));
    assert_eq!(s.totals().torrents, 2);
}

#[test]
fn allow_list_refuses_others() {
    let s = Swarms::new(SwarmConfig::default(), 6);
    s.set_allow_list(Some(AllowList::from_hashes([H])));
    let mut r = AnnounceReply::default();
    s.announce(1, &ann("10.0.0.1:1", false, Event::None), true, &mut r)
        .unwrap();
    let mut b = ann("10.0.0.1:1", false, Event::None);
    b.info_hash = shoal_base::InfoHash([1; 20]);
    assert_eq!(
        s.announce(1, &b, true, &mut r),
        Err(AnnounceRefused::NotAllowed)
    );
    s.set_allow_list(None);
    s.announce(1, &b, true, &mut r).unwrap();
}

#[test]
fn observer_hears_new_torrents_once() {
    #[derive(Default)]
    struct Seen(Mutex<Vec<shoal_base::InfoHash>>);
    impl SwarmObserver for Seen {
        fn torrent_added(&self, h: &shoal_base::InfoHash) {
            self.0.lock().unwrap().push(*h);
        }
    }
    let seen = Arc::new(Seen::default());
    let mut s = Swarms::new(SwarmConfig::default(), 7);
    s.set_observer(seen.clone());
    let mut r = AnnounceReply::default();
    for i in 1..=3 {
        s.announce(
            1,
            &ann(&format!("10.0.0.{i}:1"), false, Event::None),
            true,
            &mut r,
        )
        .unwrap();
    }
    assert_eq!(*seen.0.lock().unwrap(), vec![H]);
}

#[test]
fn records_round_trip_through_restore() {
    let s = Swarms::new(SwarmConfig::default(), 8);
    let mut r = AnnounceReply::default();
    s.announce(5, &ann("10.0.0.1:1", true, Event::Completed), true, &mut r)
        .unwrap();
    s.announce(6, &ann("[::1]:2", false, Event::None), true, &mut r)
        .unwrap();
    let mut recs = Vec::new();
    s.for_each(|t| recs.push(t.clone()));
    assert_eq!(recs.len(), 1);
    let t = Swarms::new(SwarmConfig::default(), 9);
    assert!(t.restore(recs[0].clone()));
    assert_eq!(
        t.scrape(&shoal_base::InfoHash(H)),
        s.scrape(&shoal_base::InfoHash(H))
    );
    assert_eq!(t.totals(), s.totals());
    let mut again = Vec::new();
    t.for_each(|x| again.push(x.clone()));
    assert_eq!(again, recs);
}
