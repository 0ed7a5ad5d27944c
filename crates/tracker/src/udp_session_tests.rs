//! State-machine tests with a fake clock: handshakes, back-off, expiry, stray packets.
use super::*;
use crate::types::{Event, ScrapeStats};
use std::net::SocketAddr;

fn cfg(base_ms: u64, retries: u32) -> UdpConfig {
    UdpConfig {
        base_timeout: Duration::from_millis(base_ms),
        max_retries: retries,
        ..UdpConfig::default()
    }
}

fn req() -> AnnounceRequest {
    let mut r = AnnounceRequest::new([1; 20], [2; 20], 6881, 100);
    r.event = Event::Started;
    r
}

fn sent(s: &mut UdpSession) -> Request {
    let b = s.poll_transmit().expect("a datagram to send");
    Request::decode(&b).expect("a valid request")
}

fn tid_of(r: &Request) -> u32 {
    match r {
        Request::Connect { transaction_id }
        | Request::Announce { transaction_id, .. }
        | Request::Scrape { transaction_id, .. } => *transaction_id,
    }
}

fn connect_reply(s: &mut UdpSession, now: Instant, cid: u64) {
    let r = sent(s);
    assert!(matches!(r, Request::Connect { .. }), "{r:?}");
    let resp = Response::Connect {
        transaction_id: tid_of(&r),
        connection_id: cid,
    };
    s.handle_datagram(now, &resp.encode());
}

fn announce_reply(tid: u32, peers: Vec<SocketAddr>) -> Vec<u8> {
    Response::Announce {
        transaction_id: tid,
        interval: 120,
        leechers: 4,
        seeders: 5,
        peers,
    }
    .encode()
}

#[test]
fn connect_then_announce() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), false, 1);
    s.start_announce(t0, req()).unwrap();
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(15)));
    connect_reply(&mut s, t0, 77);
    let r = sent(&mut s);
    let Request::Announce {
        connection_id: 77,
        transaction_id,
        request,
    } = r
    else {
        panic!("{r:?}")
    };
    assert_eq!(request, req());
    let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
    s.handle_datagram(t0, &announce_reply(transaction_id, vec![peer]));
    let out = s.poll_result().unwrap().unwrap();
    let UdpOutcome::Announced(a) = out else {
        panic!()
    };
    assert_eq!(
        (a.interval, a.complete, a.incomplete, a.peers),
        (120, Some(5), Some(4), vec![peer])
    );
    assert!(!s.is_busy());
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn retransmits_with_exponential_backoff_then_times_out() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(cfg(1000, 3), false, 2);
    s.start_announce(t0, req()).unwrap();
    let first = s.poll_transmit().unwrap();
    // too early: nothing happens
    s.handle_timeout(t0 + Duration::from_millis(999));
    assert!(s.poll_transmit().is_none());
    let mut now = t0;
    for wait in [1000u64, 2000, 4000] {
        assert_eq!(s.poll_timeout(), Some(now + Duration::from_millis(wait)));
        now += Duration::from_millis(wait);
        s.handle_timeout(now);
        // same bytes (same transaction id) again
        assert_eq!(s.poll_transmit().as_deref(), Some(&first[..]));
        assert!(s.poll_result().is_none());
    }
    assert_eq!(s.poll_timeout(), Some(now + Duration::from_millis(8000)));
    s.handle_timeout(now + Duration::from_millis(8000));
    assert!(s.poll_transmit().is_none());
    assert_eq!(
        s.poll_result(),
        Some(Err(UdpTrackerError::TimedOut {
            what: "connect",
            attempts: 4
        }))
    );
}

#[test]
fn late_reply_to_an_earlier_copy_is_accepted() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(cfg(1000, 3), false, 3);
    s.start_announce(t0, req()).unwrap();
    let r = sent(&mut s);
    s.handle_timeout(t0 + Duration::from_secs(1));
    assert!(s.poll_transmit().is_some());
    s.handle_datagram(
        t0 + Duration::from_millis(1500),
        &Response::Connect {
            transaction_id: tid_of(&r),
            connection_id: 5,
        }
        .encode(),
    );
    assert!(matches!(
        sent(&mut s),
        Request::Announce {
            connection_id: 5,
            ..
        }
    ));
}

#[test]
fn connection_id_is_reused_for_a_minute_only() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), false, 4);
    s.start_announce(t0, req()).unwrap();
    connect_reply(&mut s, t0, 42);
    let tid = tid_of(&sent(&mut s));
    s.handle_datagram(t0, &announce_reply(tid, vec![]));
    assert!(s.poll_result().unwrap().is_ok());
    // 59 s later: straight to the announce with the same id
    s.start_announce(t0 + Duration::from_secs(59), req())
        .unwrap();
    let r = sent(&mut s);
    assert!(
        matches!(
            r,
            Request::Announce {
                connection_id: 42,
                ..
            }
        ),
        "{r:?}"
    );
    s.handle_datagram(t0, &announce_reply(tid_of(&r), vec![]));
    assert!(s.poll_result().unwrap().is_ok());
    // 60 s after it was obtained: connect again
    s.start_announce(t0 + Duration::from_secs(60), req())
        .unwrap();
    assert!(matches!(sent(&mut s), Request::Connect { .. }));
}

#[test]
fn connection_id_expiring_during_retries_reconnects() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(cfg(40_000, 8), false, 5);
    s.start_announce(t0, req()).unwrap();
    connect_reply(&mut s, t0, 9);
    assert!(matches!(sent(&mut s), Request::Announce { .. }));
    // first retry at +40 s: id still valid, retransmit the announce
    s.handle_timeout(t0 + Duration::from_secs(40));
    assert!(matches!(
        sent(&mut s),
        Request::Announce {
            connection_id: 9,
            ..
        }
    ));
    // second retry at +120 s: id expired, connect again
    s.handle_timeout(t0 + Duration::from_secs(120));
    assert!(matches!(sent(&mut s), Request::Connect { .. }));
}

#[test]
fn wrong_transaction_id_and_wrong_action_are_ignored() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), false, 6);
    s.start_announce(t0, req()).unwrap();
    let r = sent(&mut s);
    let tid = tid_of(&r);
    s.handle_datagram(
        t0,
        &Response::Connect {
            transaction_id: tid.wrapping_add(1),
            connection_id: 1,
        }
        .encode(),
    );
    s.handle_datagram(
        t0,
        &Response::Error {
            transaction_id: tid ^ 0xffff,
            message: "x".into(),
        }
        .encode(),
    );
    s.handle_datagram(t0, &[1, 2, 3]);
    // right id but an announce reply while connecting
    s.handle_datagram(t0, &announce_reply(tid, vec![]));
    assert!(s.poll_transmit().is_none());
    assert!(s.poll_result().is_none());
    assert!(s.is_busy());
    s.handle_datagram(
        t0,
        &Response::Connect {
            transaction_id: tid,
            connection_id: 1,
        }
        .encode(),
    );
    assert!(matches!(
        sent(&mut s),
        Request::Announce {
            connection_id: 1,
            ..
        }
    ));
}

#[test]
fn error_packet_fails_and_forgets_connection() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), false, 7);
    s.start_announce(t0, req()).unwrap();
    assert_eq!(s.start_announce(t0, req()), Err(UdpTrackerError::Busy));
    connect_reply(&mut s, t0, 3);
    let tid = tid_of(&sent(&mut s));
    s.handle_datagram(
        t0,
        &Response::Error {
            transaction_id: tid,
            message: "unregistered torrent".into(),
        }
        .encode(),
    );
    assert_eq!(
        s.poll_result(),
        Some(Err(UdpTrackerError::Failure {
            message: "unregistered torrent".into()
        }))
    );
    s.start_announce(t0, req()).unwrap();
    assert!(matches!(sent(&mut s), Request::Connect { .. }));
}

#[test]
fn malformed_reply_with_our_id_fails() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), false, 8);
    s.start_announce(t0, req()).unwrap();
    connect_reply(&mut s, t0, 3);
    let tid = tid_of(&sent(&mut s));
    let mut bad = announce_reply(tid, vec![]);
    bad.extend_from_slice(&[1, 2, 3]);
    s.handle_datagram(t0, &bad);
    assert!(matches!(
        s.poll_result(),
        Some(Err(UdpTrackerError::Malformed(
            UdpPacketError::BadLength { .. }
        )))
    ));
}

#[test]
fn scrape_and_ipv6_peers() {
    let t0 = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), true, 9);
    assert!(matches!(
        s.start_scrape(t0, vec![]),
        Err(UdpTrackerError::BadScrapeCount { .. })
    ));
    s.start_scrape(
        t0,
        vec![shoal_base::InfoHash([1; 20]), shoal_base::InfoHash([2; 20])],
    )
    .unwrap();
    connect_reply(&mut s, t0, 11);
    let r = sent(&mut s);
    assert!(matches!(&r, Request::Scrape { info_hashes, .. } if info_hashes.len() == 2));
    let stats = vec![
        ScrapeStats {
            complete: 1,
            downloaded: 2,
            incomplete: 3,
        },
        ScrapeStats {
            complete: 4,
            downloaded: 5,
            incomplete: 6,
        },
    ];
    s.handle_datagram(
        t0,
        &Response::Scrape {
            transaction_id: tid_of(&r),
            stats: stats.clone(),
        }
        .encode(),
    );
    let Some(Ok(UdpOutcome::Scraped(sr))) = s.poll_result() else {
        panic!()
    };
    assert_eq!(sr.get(&shoal_base::InfoHash([2; 20])), Some(&stats[1]));
    // IPv6 tracker: 18-byte peers
    s.start_announce(t0, req()).unwrap();
    let r = sent(&mut s);
    let peer: SocketAddr = "[::1]:7000".parse().unwrap();
    s.handle_datagram(t0, &announce_reply(tid_of(&r), vec![peer]));
    let Some(Ok(UdpOutcome::Announced(a))) = s.poll_result() else {
        panic!()
    };
    assert_eq!(a.peers, vec![peer]);
}
