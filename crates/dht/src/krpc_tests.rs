//! Codec tests: the exact examples of BEP 5, round trips, limits and a property test.
use super::*;
use proptest::prelude::*;

fn id(s: &[u8]) -> Id20 {
    Id20::from_slice(s).unwrap()
}

/// Decodes `bytes`, checks it equals `msg` and that encoding gives back `bytes`.
fn exact(bytes: &[u8], msg: Message) {
    let got = Message::decode(bytes).unwrap();
    assert_eq!(got, msg);
    assert_eq!(
        msg.encode(),
        bytes,
        "{}",
        String::from_utf8_lossy(&msg.encode())
    );
}

fn m(body: Body) -> Message {
    Message {
        tid: b"aa".to_vec(),
        version: None,
        ip: None,
        read_only: false,
        body,
    }
}

#[test]
fn bep5_examples() {
    let a = id(b"abcdefghij0123456789");
    let b = id(b"mnopqrstuvwxyz123456");
    exact(
        b"d1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee",
        m(Body::Error(ErrorMsg {
            code: 201,
            message: "A Generic Error Ocurred".into(),
        })),
    );
    let q = |kind| {
        m(Body::Query(Query {
            id: a,
            kind,
            want: Want::default(),
        }))
    };
    exact(
        b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe",
        q(QueryKind::Ping),
    );
    exact(
        b"d1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re",
        m(Body::Response(Response {
            id: b,
            ..Response::default()
        })),
    );
    exact(
        b"d1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe",
        q(QueryKind::FindNode { target: b }),
    );
    exact(
        b"d1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe",
        q(QueryKind::GetPeers { info_hash: b }),
    );
    exact(
        b"d1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re",
        m(Body::Response(Response {
            id: a,
            token: Some(b"aoeusnth".to_vec()),
            values: vec![
                compact::read_addr(b"axje.u").unwrap(),
                compact::read_addr(b"idhtnm").unwrap(),
            ],
            ..Response::default()
        })),
    );
    exact(
        b"d1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe",
        q(QueryKind::AnnouncePeer {
            info_hash: b,
            port: 6881,
            implied_port: true,
            token: b"aoeusnth".to_vec(),
        }),
    );
    // The spec's `nodes` example ("def456...") is not a multiple of 26 bytes: rejected.
    assert_eq!(
        Message::decode(b"d1:rd2:id20:0123456789abcdefghij5:nodes9:def456...e1:t2:aa1:y1:re"),
        Err(DecodeError::Invalid("nodes"))
    );
}

#[test]
fn garbage_is_rejected() {
    for bad in [
        &b""[..],
        b"de",
        b"d1:t2:aae",
        b"d1:t2:aa1:y1:xe",
        b"d1:t2:aa1:y1:qe",
        b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",
        b"li1ee",
        b"d1:t17:aaaaaaaaaaaaaaaaa1:y1:re",
    ] {
        assert!(
            Message::decode(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    assert!(matches!(
        Message::decode(&vec![b'0'; MAX_PACKET + 1]),
        Err(DecodeError::TooLarge(_))
    ));
}

#[test]
fn unknown_method_is_kept() {
    let msg = Message::decode(b"d1:ad2:id20:abcdefghij0123456789e1:q3:foo1:t2:aa1:y1:qe").unwrap();
    match msg.body {
        Body::Query(q) => assert_eq!(
            q.kind,
            QueryKind::Unknown {
                method: b"foo".to_vec()
            }
        ),
        _ => panic!("not a query"),
    }
}

fn arb_id() -> impl Strategy<Value = Id20> {
    any::<[u8; 20]>().prop_map(Id20)
}

fn arb_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
        (any::<[u8; 16]>(), any::<u16>()).prop_map(|(ip, p)| SocketAddr::from((ip, p))),
    ]
}

fn arb_node(v6: bool) -> impl Strategy<Value = NodeInfo> {
    (arb_id(), arb_addr()).prop_map(move |(id, addr)| {
        let addr = if addr.is_ipv6() == v6 {
            addr
        } else if v6 {
            SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], addr.port()))
        } else {
            SocketAddr::from(([1, 2, 3, 4], addr.port()))
        };
        NodeInfo { id, addr }
    })
}

fn arb_kind() -> impl Strategy<Value = QueryKind> {
    let bytes = |n| proptest::collection::vec(any::<u8>(), 0..n);
    prop_oneof![
        Just(QueryKind::Ping),
        arb_id().prop_map(|target| QueryKind::FindNode { target }),
        arb_id().prop_map(|info_hash| QueryKind::GetPeers { info_hash }),
        (arb_id(), 1u16.., any::<bool>(), bytes(MAX_TOKEN)).prop_map(
            |(info_hash, port, implied_port, token)| {
                QueryKind::AnnouncePeer {
                    info_hash,
                    port,
                    implied_port,
                    token,
                }
            }
        ),
        (arb_id(), proptest::option::of(any::<i64>()))
            .prop_map(|(target, seq)| QueryKind::Get { target, seq }),
        (
            bytes(MAX_TOKEN),
            bytes(100),
            proptest::option::of(any::<[u8; 32]>()),
            proptest::option::of(any::<i64>()),
            proptest::option::of(any::<i64>()),
            bytes(MAX_SALT)
        )
            .prop_map(|(token, v, k, seq, cas, salt)| {
                let mut enc = Vec::new();
                Encoder::new(&mut enc).bytes(&v);
                QueryKind::Put(PutArgs {
                    token,
                    v: enc,
                    k,
                    sig: k.map(|_| [7u8; 64]),
                    seq,
                    cas,
                    salt,
                })
            }),
        arb_id().prop_map(|target| QueryKind::SampleInfohashes { target }),
    ]
}

fn arb_body() -> impl Strategy<Value = Body> {
    let resp = (
        arb_id(),
        proptest::collection::vec(arb_node(false), 0..8),
        proptest::collection::vec(arb_node(true), 0..8),
        proptest::collection::vec(arb_addr(), 0..10),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..MAX_TOKEN)),
        proptest::option::of(any::<i64>()),
        proptest::option::of(proptest::collection::vec(arb_id(), 0..10)),
        proptest::option::of(any::<i64>()),
    )
        .prop_map(|(id, nodes, nodes6, values, token, seq, samples, num)| {
            Body::Response(Response {
                id,
                nodes,
                nodes6,
                values,
                token,
                seq,
                v: seq.map(|s| format!("i{s}e").into_bytes()),
                k: seq.map(|_| [1u8; 32]),
                sig: seq.map(|_| [2u8; 64]),
                samples,
                interval: num,
                num,
            })
        });
    prop_oneof![
        (arb_id(), arb_kind(), any::<bool>(), any::<bool>()).prop_map(|(id, kind, v4, v6)| {
            Body::Query(Query {
                id,
                kind,
                want: Want { v4, v6 },
            })
        }),
        resp,
        (any::<i64>(), "[a-z ]{0,40}")
            .prop_map(|(code, message)| Body::Error(ErrorMsg { code, message })),
    ]
}

proptest! {
    #[test]
    fn round_trip(
        tid in proptest::collection::vec(any::<u8>(), 0..MAX_TID),
        version in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..MAX_VERSION)),
        ip in proptest::option::of(arb_addr()),
        read_only in any::<bool>(),
        body in arb_body(),
    ) {
        let msg = Message { tid, version, ip, read_only, body };
        let bytes = msg.encode();
        let back = Message::decode(&bytes).unwrap();
        prop_assert_eq!(back, msg);
    }

    #[test]
    fn never_panics(data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&data);
    }
}
