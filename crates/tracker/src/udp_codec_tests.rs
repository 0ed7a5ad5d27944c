//! Tests of the BEP 15 codec: exact bytes, malformed packets, round trips.
use super::*;
use proptest::prelude::*;

#[test]
fn connect_request_exact_bytes() {
    let b = Request::Connect {
        transaction_id: 0x0102_0304,
    }
    .encode();
    assert_eq!(
        b,
        [0x00, 0x00, 0x04, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4]
    );
    assert_eq!(
        Request::decode(&b).unwrap(),
        Request::Connect {
            transaction_id: 0x0102_0304
        }
    );
    let mut bad = b.clone();
    bad[0] = 1;
    assert!(matches!(
        Request::decode(&bad),
        Err(UdpPacketError::BadMagic { .. })
    ));
}

#[test]
fn announce_request_exact_layout() {
    let mut r = AnnounceRequest::new([0xaa; 20], [0xbb; 20], 0x1ae1, 3);
    r.downloaded = 1;
    r.uploaded = 2;
    r.event = Event::Stopped;
    r.key = 0x0506_0708;
    r.ip = Some(Ipv4Addr::new(127, 0, 0, 9));
    let b = Request::Announce {
        connection_id: 0x1122_3344_5566_7788,
        transaction_id: 9,
        request: r.clone(),
    }
    .encode();
    assert_eq!(b.len(), ANNOUNCE_REQUEST_LEN);
    assert_eq!(&b[..8], &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    assert_eq!(&b[8..16], &[0, 0, 0, 1, 0, 0, 0, 9]);
    assert_eq!(&b[16..36], &[0xaa; 20]);
    assert_eq!(&b[36..56], &[0xbb; 20]);
    assert_eq!(&b[56..64], &1u64.to_be_bytes()); // downloaded
    assert_eq!(&b[64..72], &3u64.to_be_bytes()); // left
    assert_eq!(&b[72..80], &2u64.to_be_bytes()); // uploaded
    assert_eq!(&b[80..84], &[0, 0, 0, 3]); // stopped
    assert_eq!(&b[84..88], &[127, 0, 0, 9]);
    assert_eq!(&b[88..92], &[5, 6, 7, 8]);
    assert_eq!(&b[92..96], &[0xff; 4]); // numwant -1
    assert_eq!(&b[96..98], &[0x1a, 0xe1]);
    match Request::decode(&b).unwrap() {
        Request::Announce { request, .. } => assert_eq!(request, r),
        other => panic!("{other:?}"),
    }
}

#[test]
fn announce_response_v4_and_v6() {
    let mut b = vec![
        0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0x07, 0x08, 0, 0, 0, 2, 0, 0, 0, 3,
    ];
    b.extend_from_slice(&[127, 0, 0, 1, 0x1a, 0xe1]);
    match Response::decode(&b, false, 100).unwrap() {
        Response::Announce {
            transaction_id: 7,
            interval: 1800,
            leechers: 2,
            seeders: 3,
            peers,
        } => {
            assert_eq!(peers, vec!["127.0.0.1:6881".parse::<SocketAddr>().unwrap()])
        }
        other => panic!("{other:?}"),
    }
    // the same 6-byte tail is malformed for an IPv6 tracker (20 + 18n)
    assert_eq!(
        Response::decode(&b, true, 100),
        Err(UdpPacketError::BadLength {
            what: "announce response",
            len: 6,
            unit: 18
        })
    );
    let mut b6 = b[..20].to_vec();
    let mut a = [0u8; 18];
    a[15] = 1;
    a[16] = 0x1a;
    a[17] = 0xe2;
    b6.extend_from_slice(&a);
    match Response::decode(&b6, true, 100).unwrap() {
        Response::Announce { peers, .. } => {
            assert_eq!(peers, vec!["[::1]:6882".parse::<SocketAddr>().unwrap()])
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn error_and_malformed_responses() {
    let b = [0, 0, 0, 3, 0, 0, 0, 5, b'n', b'o'];
    assert_eq!(
        Response::decode(&b, false, 10).unwrap(),
        Response::Error {
            transaction_id: 5,
            message: "no".into()
        }
    );
    assert!(matches!(
        Response::decode(&b[..7], false, 10),
        Err(UdpPacketError::TooShort { .. })
    ));
    assert!(matches!(
        Response::decode(&[0, 0, 0, 0, 0, 0, 0, 1, 0], false, 10),
        Err(UdpPacketError::TooShort {
            what: "connect response",
            len: 9,
            need: 16
        })
    ));
    assert_eq!(
        Response::decode(&[0, 0, 0, 9, 0, 0, 0, 1], false, 10),
        Err(UdpPacketError::UnknownAction { action: 9 })
    );
    assert!(matches!(
        Response::decode(&[0, 0, 0, 2, 0, 0, 0, 1, 1, 2, 3], false, 10),
        Err(UdpPacketError::BadLength {
            what: "scrape response",
            ..
        })
    ));
    let too_many = [
        &[0u8, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 2, 0, 0, 0, 1][..],
        &[0u8; 20 * 75][..],
    ]
    .concat();
    assert!(matches!(
        Request::decode(&too_many),
        Err(UdpPacketError::TooMany { count: 75, .. })
    ));
}

fn arb_request() -> impl Strategy<Value = AnnounceRequest> {
    (
        any::<[u8; 20]>(),
        any::<[u8; 20]>(),
        any::<u16>(),
        any::<(u64, u64, u64)>(),
        0u32..4,
        proptest::option::of(0u32..=i32::MAX as u32),
        any::<u32>(),
        proptest::option::of(1u32..),
    )
        .prop_map(
            |(ih, pid, port, (up, down, left), ev, numwant, key, ip)| AnnounceRequest {
                info_hash: shoal_base::InfoHash(ih),
                peer_id: shoal_base::PeerId(pid),
                port,
                uploaded: up,
                downloaded: down,
                left,
                event: Event::from_udp_code(ev).unwrap_or_default(),
                numwant,
                compact: true,
                key,
                ip: ip.map(Ipv4Addr::from),
                ipv6: None,
            },
        )
}

proptest! {
    #[test]
    fn request_round_trip(req in arb_request(), cid in any::<u64>(), tid in any::<u32>(), hashes in proptest::collection::vec(any::<[u8; 20]>(), 0..=MAX_SCRAPE_HASHES)) {
        let a = Request::Announce { connection_id: cid, transaction_id: tid, request: req };
        prop_assert_eq!(Request::decode(&a.encode()).unwrap(), a);
        let s = Request::Scrape { connection_id: cid, transaction_id: tid, info_hashes: hashes.into_iter().map(shoal_base::InfoHash).collect() };
        prop_assert_eq!(Request::decode(&s.encode()).unwrap(), s);
    }

    #[test]
    fn response_round_trip(tid in any::<u32>(), iv in any::<(u32, u32, u32)>(), v6 in any::<bool>(), raw in proptest::collection::vec((any::<[u8; 16]>(), any::<u16>()), 0..30), stats in proptest::collection::vec(any::<(u32, u32, u32)>(), 0..30), msg in "[ -~]{0,40}") {
        let peers: Vec<SocketAddr> = raw.iter().map(|(a, p)| if v6 { SocketAddr::from((*a, *p)) } else { SocketAddr::from(([a[0], a[1], a[2], a[3]], *p)) }).collect();
        let a = Response::Announce { transaction_id: tid, interval: iv.0, leechers: iv.1, seeders: iv.2, peers };
        prop_assert_eq!(Response::decode(&a.encode(), v6, 1000).unwrap(), a);
        let s = Response::Scrape { transaction_id: tid, stats: stats.iter().map(|&(c, d, i)| ScrapeStats { complete: c, downloaded: d, incomplete: i }).collect() };
        prop_assert_eq!(Response::decode(&s.encode(), v6, 1000).unwrap(), s);
        let e = Response::Error { transaction_id: tid, message: msg };
        prop_assert_eq!(Response::decode(&e.encode(), v6, 1000).unwrap(), e);
        let c = Response::Connect { transaction_id: tid, connection_id: u64::from(iv.0) << 17 };
        prop_assert_eq!(Response::decode(&c.encode(), v6, 1000).unwrap(), c);
    }

    #[test]
    fn arbitrary_datagrams_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200), v6 in any::<bool>()) {
        let _ = Response::decode(&b, v6, 50);
        let _ = Request::decode(&b);
    }
}
