//! Tests of the HTTP reply parser: exact bytes, malformed input, round trips.
use super::*;
use proptest::prelude::*;

fn lim() -> ReplyLimits {
    ReplyLimits::default()
}

#[test]
fn compact_reply_with_everything() {
    let mut body = Vec::new();
    body.extend_from_slice(b"d8:completei3e11:external ip4:\x7f\x00\x00\x0210:incompletei1e");
    body.extend_from_slice(b"8:intervali900e12:min intervali60e");
    body.extend_from_slice(b"5:peers12:\x7f\x00\x00\x01\x1a\xe1\x0a\x00\x00\x02\x00\x50");
    body.extend_from_slice(
        b"6:peers618:\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x1a\xe2",
    );
    body.extend_from_slice(b"10:tracker id3:xyz15:warning message4:hmm!e");
    let r = parse_announce_reply(&body, &lim()).unwrap();
    assert_eq!(r.interval, 900);
    assert_eq!(r.min_interval, Some(60));
    assert_eq!(r.complete, Some(3));
    assert_eq!(r.incomplete, Some(1));
    assert_eq!(r.warning.as_deref(), Some("hmm!"));
    assert_eq!(r.tracker_id.as_deref(), Some(&b"xyz"[..]));
    assert_eq!(r.external_ip, Some("127.0.0.2".parse().unwrap()));
    let want: Vec<SocketAddr> = ["127.0.0.1:6881", "10.0.0.2:80", "[::1]:6882"]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(r.peers, want);
    // and our encoder produces exactly these bytes back
    assert_eq!(encode_announce_reply(&r), body);
}

#[test]
fn dictionary_peer_list() {
    let body = b"d8:intervali60e5:peersld2:ip9:127.0.0.17:peer id20:aaaaaaaaaaaaaaaaaaaa4:porti6881eed2:ip11:example.com4:porti1eed2:ip3:::14:porti2eeee";
    let r = parse_announce_reply(body, &lim()).unwrap();
    assert_eq!(r.interval, 60);
    let want: Vec<SocketAddr> = vec![
        "127.0.0.1:6881".parse().unwrap(),
        "[::1]:2".parse().unwrap(),
    ];
    assert_eq!(r.peers, want);
    let bad = b"d5:peersld2:ip9:127.0.0.14:porti70000eeee";
    assert!(matches!(
        parse_announce_reply(bad, &lim()),
        Err(ReplyError::BadPeer {
            index: 0,
            reason: "\"port\" out of range"
        })
    ));
    let bad = b"d5:peersli1eee";
    assert!(matches!(
        parse_announce_reply(bad, &lim()),
        Err(ReplyError::BadPeer { index: 0, .. })
    ));
}

#[test]
fn failure_reason_is_typed() {
    let e = parse_announce_reply(b"d14:failure reason12:unregisterede", &lim()).unwrap_err();
    match e {
        ReplyError::Failure { reason } => assert_eq!(reason, "unregistered"),
        other => panic!("{other:?}"),
    }
    let e = parse_scrape_reply(&encode_failure_reply("nope"), &lim()).unwrap_err();
    assert_eq!(e.to_string(), "tracker refused: nope");
}

#[test]
fn malformed_replies_have_context() {
    let cases: [(&[u8], &str); 9] = [
        (b"", "bencode"),
        (b"li1ee", "has type list, expected dictionary"),
        (
            b"d8:interval3:abce",
            "\"interval\" has type string, expected integer",
        ),
        (b"d8:intervali-1ee", "\"interval\" = -1 is out of range"),
        (
            b"d5:peers5:abcdee",
            "\"peers\" is 5 bytes, not a multiple of 6",
        ),
        (
            b"d6:peers66:abcdefe",
            "\"peers6\" is 6 bytes, not a multiple of 18",
        ),
        (
            b"d5:peersi1ee",
            "\"peers\" has type integer, expected string or list",
        ),
        (b"d11:external ip3:abce", "\"external ip\" is 3 bytes"),
        (b"d8:intervali1eeXX", "bencode"),
    ];
    for (body, want) in cases {
        let e = parse_announce_reply(body, &lim()).unwrap_err();
        assert!(e.to_string().contains(want), "{body:?}: {e}");
    }
}

#[test]
fn peer_and_size_limits() {
    let r = AnnounceResponse {
        interval: 1,
        peers: (0..10u16)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect(),
        ..Default::default()
    };
    let body = encode_announce_reply(&r);
    let small = ReplyLimits {
        max_peers: 3,
        ..lim()
    };
    assert_eq!(
        parse_announce_reply(&body, &small).unwrap().peers,
        r.peers[..3]
    );
    let tiny = ReplyLimits {
        max_body: 10,
        ..lim()
    };
    assert!(matches!(
        parse_announce_reply(&body, &tiny),
        Err(ReplyError::TooLarge { .. })
    ));
}

#[test]
fn scrape_reply() {
    let body = b"d5:filesd20:aaaaaaaaaaaaaaaaaaaad8:completei5e10:downloadedi50e10:incompletei10eee5:flagsd20:min_request_intervali900eee";
    let r = parse_scrape_reply(body, &lim()).unwrap();
    assert_eq!(r.min_request_interval, Some(900));
    assert_eq!(
        r.get(&shoal_base::InfoHash([b'a'; 20])),
        Some(&ScrapeStats {
            complete: 5,
            downloaded: 50,
            incomplete: 10
        })
    );
    assert_eq!(encode_scrape_reply(&r), body);
    let bad = b"d5:filesd3:abcdeee";
    assert!(matches!(
        parse_scrape_reply(bad, &lim()),
        Err(ReplyError::BadScrapeKey { index: 0, len: 3 })
    ));
    assert!(parse_scrape_reply(b"d5:filesi1ee", &lim()).is_err());
}

fn arb_peer() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::from((a, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::from((a, p))),
    ]
}

fn arb_reply() -> impl Strategy<Value = AnnounceResponse> {
    (
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(arb_peer(), 0..40),
        proptest::option::of(any::<u32>()),
        proptest::option::of(any::<u32>()),
        proptest::option::of("[a-z ]{0,20}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
        proptest::option::of(prop_oneof![
            any::<[u8; 4]>().prop_map(IpAddr::from),
            any::<[u8; 16]>().prop_map(IpAddr::from)
        ]),
    )
        .prop_map(
            |(
                interval,
                min_interval,
                mut peers,
                complete,
                incomplete,
                warning,
                tracker_id,
                external_ip,
            )| {
                // The wire carries v4 before v6.
                peers.sort_by_key(|p| p.is_ipv6());
                AnnounceResponse {
                    interval,
                    min_interval,
                    peers,
                    complete,
                    incomplete,
                    warning,
                    tracker_id,
                    external_ip,
                }
            },
        )
}

proptest! {
    #[test]
    fn announce_round_trip(r in arb_reply()) {
        let body = encode_announce_reply(&r);
        prop_assert_eq!(parse_announce_reply(&body, &lim()).unwrap(), r);
    }

    #[test]
    fn scrape_round_trip(mut files in proptest::collection::btree_map(any::<[u8; 20]>(), any::<(u32, u32, u32)>(), 0..20)) {
        let r = ScrapeResponse {
            files: std::mem::take(&mut files).into_iter().map(|(h, (c, d, i))| (shoal_base::InfoHash(h), ScrapeStats { complete: c, downloaded: d, incomplete: i })).collect(),
            min_request_interval: None,
        };
        prop_assert_eq!(parse_scrape_reply(&encode_scrape_reply(&r), &lim()).unwrap(), r);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_announce_reply(&body, &lim());
        let _ = parse_scrape_reply(&body, &lim());
    }

    #[test]
    fn mutated_replies_never_panic(r in arb_reply(), pos in any::<usize>(), byte in any::<u8>()) {
        let mut body = encode_announce_reply(&r);
        if !body.is_empty() {
            let i = pos % body.len();
            body[i] = byte;
        }
        let _ = parse_announce_reply(&body, &lim());
    }
}
