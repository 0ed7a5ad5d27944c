//! Magnet connections, extension messages, commands before the
//! handshake, properties, and v2 hash messages.
use super::*;

#[test]
fn magnet_piece_count_arrives_later() {
    let (mut a, now) = scripted(ConnectionConfig::default(), None);
    feed(
        &mut a,
        now,
        &[
            Message::Bitfield(Bytes::from_static(&[0x80, 0x00])),
            Message::Have(PieceIndex(9)),
        ],
    )
    .unwrap();
    assert!(a.peer_pieces().is_none());
    assert!(events(&mut a).is_empty());
    a.set_num_pieces(10).unwrap();
    assert_eq!(events(&mut a), vec![Event::Bitfield]);
    assert_eq!(
        a.peer_pieces().unwrap().iter_ones().collect::<Vec<_>>(),
        vec![0, 9]
    );
    // the piece count is enforced from now on
    assert!(feed(&mut a, now, &[Message::Have(PieceIndex(10))]).is_err());

    let (mut a, now) = scripted(ConnectionConfig::default(), None);
    feed(&mut a, now, &[Message::Have(PieceIndex(12))]).unwrap();
    assert!(matches!(
        a.set_num_pieces(10),
        Err(ConnectionError::Pieces(_))
    ));
    assert_eq!(a.state(), ConnectionState::Closed);

    let cfg = ConnectionConfig {
        max_pending_haves: 2,
        ..Default::default()
    };
    let (mut a, now) = scripted(cfg, None);
    assert_eq!(
        feed(
            &mut a,
            now,
            &[
                Message::Have(PieceIndex(1)),
                Message::Have(PieceIndex(2)),
                Message::Have(PieceIndex(3))
            ]
        ),
        Err(ConnectionError::TooManyPendingHaves { limit: 2 })
    );
}

#[test]
fn extension_messages_are_routed() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    events(&mut p.b);
    let now = p.now;
    p.a.send_metadata(now, &MetadataMessage::Request { piece: 2 })
        .unwrap();
    let pex = PexMessage {
        added: vec![("127.0.0.1:6881".parse().unwrap(), crate::pex::PexFlags(0))],
        dropped: vec![],
    };
    p.a.send_pex(now, &pex).unwrap();
    p.pump();
    assert_eq!(
        events(&mut p.b),
        vec![
            Event::Metadata(MetadataMessage::Request { piece: 2 }),
            Event::Pex(pex)
        ]
    );
    // unknown ut_metadata msg_type is ignored, a malformed one closes
    let (mut a, now) = scripted(ConnectionConfig::default(), None);
    let id = crate::extension::LOCAL_UT_METADATA_ID;
    feed(
        &mut a,
        now,
        &[Message::Extended {
            id,
            payload: Bytes::from_static(b"d8:msg_typei9e5:piecei0ee"),
        }],
    )
    .unwrap();
    assert!(events(&mut a).is_empty());
    assert!(feed(
        &mut a,
        now,
        &[Message::Extended {
            id,
            payload: Bytes::from_static(b"d5:piecei0ee")
        }]
    )
    .is_err());
    // extensions we do not handle reach the engine
    let (mut a, now) = scripted(ConnectionConfig::default(), None);
    feed(
        &mut a,
        now,
        &[Message::Extended {
            id: 77,
            payload: Bytes::from_static(b"x"),
        }],
    )
    .unwrap();
    assert_eq!(
        events(&mut a),
        vec![Event::Extended {
            id: 77,
            payload: Bytes::from_static(b"x")
        }]
    );
}

#[test]
fn commands_before_connect_fail() {
    let now = Instant::now();
    let mut a = PeerConnection::outgoing(ConnectionConfig::default(), IH, A_ID, None, now);
    assert_eq!(
        a.send_request(now, req(0, 0)),
        Err(CommandError::NotConnected)
    );
    assert_eq!(a.unchoke(now), Err(CommandError::NotConnected));
    assert!(!a.cancel(now, req(0, 0)));
}

mod props {
    use super::*;
    use crate::message::tests::message_strategy;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of well-framed messages, split anywhere, either is
        /// processed or closes the connection with an error; never a panic, and
        /// once closed, every later input is refused.
        #[test]
        fn random_messages_never_panic(
            msgs in proptest::collection::vec(message_strategy(), 0..24),
            split in any::<proptest::sample::Index>(),
            known in any::<bool>(),
        ) {
            let (mut a, now) = scripted(ConnectionConfig::default(), known.then_some(PIECES));
            let mut buf = BytesMut::new();
            for m in &msgs {
                m.encode(&mut buf);
            }
            let at = if buf.is_empty() { 0 } else { split.index(buf.len()) };
            let mut failed = false;
            for (i, part) in [&buf[..at], &buf[at..]].into_iter().enumerate() {
                let t = now + secs(i as u64);
                if a.handle_bytes(t, part).is_err() {
                    failed = true;
                    break;
                }
                while a.poll_event().is_some() {}
                while a.poll_transmit().is_some() {}
            }
            if failed {
                prop_assert_eq!(a.state(), ConnectionState::Closed);
                prop_assert_eq!(a.handle_bytes(now, &[0, 0, 0, 0]), Err(ConnectionError::Closed));
            } else {
                prop_assert_eq!(a.state(), ConnectionState::Connected);
                let _ = a.handle_timeout(now + secs(30));
            }
        }
    }
}

/// Hash requests need the v2 bit on both sides or `v2_messages` (libtorrent
/// leaves the bit clear for v2-only torrents); answers to a peer's request
/// are always allowed.
#[test]
fn hash_messages_without_the_v2_bit() {
    use crate::message::HashRequest;
    let h = HashRequest {
        pieces_root: [3; 32],
        base_layer: 2,
        index: 0,
        length: 4,
        proof_layers: 1,
    };
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert!(matches!(
        a.send_hash_request(now, h),
        Err(CommandError::NotSupported(_))
    ));
    a.send_hash_reject(now, h).unwrap();
    a.send_hashes(now, h, Bytes::from(vec![7u8; 5 * 32]))
        .unwrap();
    let sent = sent_messages(&mut a, 0);
    assert_eq!(
        sent,
        vec![
            Message::HashReject(h),
            Message::Hashes {
                request: h,
                hashes: Bytes::from(vec![7u8; 5 * 32])
            }
        ]
    );
    let cfg = ConnectionConfig {
        v2_messages: true,
        ..ConnectionConfig::default()
    };
    let (mut b, now) = scripted(cfg, Some(PIECES));
    b.send_hash_request(now, h).unwrap();
    assert_eq!(sent_messages(&mut b, 0), vec![Message::HashRequest(h)]);
}
