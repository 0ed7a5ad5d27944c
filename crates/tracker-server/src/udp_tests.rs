use super::*;
use crate::clock::EPOCH_OFFSET;
use crate::ratelimit::RateConfig;
use crate::swarm::SwarmConfig;
use shoal_tracker::udp_codec::Response;
use shoal_tracker::{AnnounceRequest, Event, ScrapeStats};

const T0: u64 = EPOCH_OFFSET as u64 * 1000;

fn tracker(rate: RateConfig) -> UdpTracker {
    UdpTracker::new(
        Arc::new(Swarms::new(SwarmConfig::default(), 1)),
        [5; 16],
        Arc::new(RateLimiter::new(rate)),
        Arc::new(Stats::default()),
    )
}

fn send(t: &UdpTracker, now_ms: u64, from: &str, packet: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match t.handle(
        now_ms,
        from.parse().unwrap(),
        packet,
        &mut AnnounceReply::default(),
        &mut out,
    ) {
        Handled::Reply => Some(out),
        Handled::Dropped(_) => None,
    }
}

fn connect(t: &UdpTracker, now_ms: u64, from: &str) -> u64 {
    let req = Request::Connect { transaction_id: 9 }.encode();
    let reply = send(t, now_ms, from, &req).unwrap();
    assert_eq!(reply.len(), 16, "connect reply is 16 bytes for 16 bytes");
    assert_eq!(req.len(), 16);
    match Response::decode(&reply, false, 0).unwrap() {
        Response::Connect {
            transaction_id: 9,
            connection_id,
        } => connection_id,
        r => panic!("unexpected {r:?}"),
    }
}

fn announce(cid: u64, id: u8, port: u16, left: u64, event: Event) -> Vec<u8> {
    let mut r = AnnounceRequest::new([0x42; 20], [id; 20], port, left);
    r.event = event;
    Request::Announce {
        connection_id: cid,
        transaction_id: 77,
        request: r,
    }
    .encode()
}

#[test]
fn connect_announce_scrape() {
    let t = tracker(RateConfig::default());
    let a = "127.0.0.1:4000";
    let b = "127.0.0.2:4000";
    let ca = connect(&t, T0, a);
    let cb = connect(&t, T0, b);
    let r = send(&t, T0, a, &announce(ca, 1, 6881, 0, Event::Started)).unwrap();
    assert!(matches!(
        Response::decode(&r, false, 100).unwrap(),
        Response::Announce { transaction_id: 77, seeders: 1, leechers: 0, ref peers, .. } if peers.is_empty()
    ));
    let r = send(&t, T0, b, &announce(cb, 2, 6882, 5, Event::Started)).unwrap();
    match Response::decode(&r, false, 100).unwrap() {
        Response::Announce {
            interval,
            seeders,
            leechers,
            peers,
            ..
        } => {
            assert_eq!(interval, SwarmConfig::default().interval);
            assert_eq!((seeders, leechers), (1, 1));
            assert_eq!(peers, vec!["127.0.0.1:6881".parse().unwrap()]);
        }
        r => panic!("unexpected {r:?}"),
    }
    let scrape = Request::Scrape {
        connection_id: ca,
        transaction_id: 3,
        info_hashes: vec![
            shoal_base::InfoHash([0x42; 20]),
            shoal_base::InfoHash([0x43; 20]),
        ],
    }
    .encode();
    let r = send(&t, T0, a, &scrape).unwrap();
    assert_eq!(
        Response::decode(&r, false, 0).unwrap(),
        Response::Scrape {
            transaction_id: 3,
            stats: vec![
                ScrapeStats {
                    complete: 1,
                    downloaded: 0,
                    incomplete: 1
                },
                ScrapeStats::default()
            ]
        }
    );
}

#[test]
fn unproven_ids_get_short_errors_and_nothing_else() {
    let t = tracker(RateConfig::default());
    let from = "127.0.0.1:4000";
    let id = connect(&t, T0, from);
    // Forged id, an id of another address, an expired id.
    let other = connect(&t, T0, "127.0.0.1:4001");
    for (cid, now) in [(id ^ 1, T0), (other, T0), (id, T0 + 121_000)] {
        for req in [
            announce(cid, 1, 1, 0, Event::None),
            Request::Scrape {
                connection_id: cid,
                transaction_id: 1,
                info_hashes: vec![],
            }
            .encode(),
        ] {
            let r = send(&t, now, from, &req).unwrap();
            assert!(r.len() <= req.len(), "{} > {}", r.len(), req.len());
            assert!(matches!(
                Response::decode(&r, false, 0),
                Ok(Response::Error { .. })
            ));
        }
    }
    assert_eq!(t.swarms.totals().torrents, 0, "nothing stored");
    // Garbage gets no answer at all.
    assert_eq!(send(&t, T0, from, &[0u8; 15]), None);
    assert_eq!(
        send(&t, T0, from, &[0u8; 16]),
        None,
        "connect without the magic"
    );
    let mut bad_action = announce(id, 1, 1, 0, Event::None);
    bad_action[11] = 9;
    assert_eq!(send(&t, T0, from, &bad_action), None);
}

#[test]
fn ids_keep_working_across_one_epoch_change() {
    let t = tracker(RateConfig::default());
    let from = "127.0.0.1:4000";
    let id = connect(&t, T0 + 59_000, from);
    let r = send(&t, T0 + 100_000, from, &announce(id, 1, 1, 0, Event::None)).unwrap();
    assert!(matches!(
        Response::decode(&r, false, 0),
        Ok(Response::Announce { .. })
    ));
}

#[test]
fn rate_limited_after_the_burst() {
    let t = tracker(RateConfig {
        per_second: 1.0,
        burst: 3.0,
        max_clients: 100,
    });
    let from = "127.0.0.1:4000";
    let id = connect(&t, T0, from);
    let kinds: Vec<bool> = (0..5)
        .map(|_| {
            let r = send(&t, T0, from, &announce(id, 1, 1, 0, Event::None)).unwrap();
            matches!(
                Response::decode(&r, false, 0),
                Ok(Response::Announce { .. })
            )
        })
        .collect();
    assert_eq!(kinds, vec![true, true, true, false, false]);
    // Connects are not limited (they cost nothing and prove nothing).
    for _ in 0..10 {
        connect(&t, T0, from);
    }
}

#[test]
fn ipv6_clients_get_ipv6_peers_only() {
    let t = tracker(RateConfig::default());
    let v6 = "[::1]:4000";
    let c4 = connect(&t, T0, "127.0.0.1:4000");
    send(
        &t,
        T0,
        "127.0.0.1:4000",
        &announce(c4, 1, 1111, 0, Event::None),
    )
    .unwrap();
    let c6 = connect(&t, T0, v6);
    send(&t, T0, v6, &announce(c6, 2, 2222, 0, Event::None)).unwrap();
    let c6b = connect(&t, T0, "[::2]:1");
    let r = send(&t, T0, "[::2]:1", &announce(c6b, 3, 3333, 9, Event::None)).unwrap();
    match Response::decode(&r, true, 100).unwrap() {
        Response::Announce { peers, .. } => {
            assert_eq!(peers, vec!["[::1]:2222".parse().unwrap()])
        }
        r => panic!("unexpected {r:?}"),
    }
}

#[test]
fn bep41_url_data() {
    let t = tracker(RateConfig::default());
    let from = "127.0.0.1:4000";
    let id = connect(&t, T0, from);
    let mut p = announce(id, 1, 1, 0, Event::None);
    p.extend_from_slice(&[2, 5]);
    p.extend_from_slice(b"/anno");
    p.push(1);
    p.extend_from_slice(&[2, 9]);
    p.extend_from_slice(b"unce?a=b&");
    p.push(0);
    assert_eq!(
        parse_url_data(&p[ANNOUNCE_REQUEST_LEN..]),
        Ok(UrlData {
            url: b"/announce?a=b&".to_vec()
        })
    );
    let r = send(&t, T0, from, &p).unwrap();
    assert!(matches!(
        Response::decode(&r, false, 0),
        Ok(Response::Announce { .. })
    ));
    // Malformed options are reported by the parser and ignored by the tracker.
    assert_eq!(
        parse_url_data(&[2, 10, b'x']),
        Err(UrlDataError::Truncated { at: 0 })
    );
    assert_eq!(
        parse_url_data(&[1, 1, 2]),
        Err(UrlDataError::Truncated { at: 2 })
    );
    let long: Vec<u8> = (0..5)
        .flat_map(|_| [[2u8, 255].as_slice(), &[b'a'; 255]].concat())
        .collect();
    assert_eq!(parse_url_data(&long), Err(UrlDataError::TooLong));
    let mut p = announce(id, 1, 1, 0, Event::None);
    p.extend_from_slice(&[2, 200]);
    assert!(send(&t, T0, from, &p).is_some());
}
