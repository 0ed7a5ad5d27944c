//! Hostile input, the fast extension, choking and the request flow.
use super::*;

#[test]
fn hostile_inputs_close_the_connection() {
    // 1 GB length prefix
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert!(matches!(
        a.handle_bytes(now, &[0x40, 0, 0, 0]),
        Err(ConnectionError::Decode(
            crate::message::DecodeError::Oversized { .. }
        ))
    ));
    assert_eq!(a.state(), ConnectionState::Closed);
    assert!(a.recv_buffer().capacity() < 1 << 20);

    // bitfield of the wrong length is refused by the codec (limit = exact length)
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert!(feed(
        &mut a,
        now,
        &[Message::Bitfield(Bytes::from_static(&[0xff; 4]))]
    )
    .is_err());

    // spare bits set
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert_eq!(
        feed(
            &mut a,
            now,
            &[Message::Bitfield(Bytes::from_static(&[0xff, 0xff, 0xf8]))]
        ),
        Err(ConnectionError::Pieces(BitfieldError::SpareBitsSet {
            num_pieces: 20
        }))
    );

    // have out of range
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert!(matches!(
        feed(&mut a, now, &[Message::Have(PieceIndex(PIECES))]),
        Err(ConnectionError::Pieces(BitfieldError::OutOfRange { .. }))
    ));

    // request beyond limits
    for bad in [
        BlockRequest {
            piece: PieceIndex(0),
            offset: 0,
            length: BLOCK_SIZE + 1,
        },
        BlockRequest {
            piece: PieceIndex(PIECES),
            offset: 0,
            length: 1,
        },
        BlockRequest {
            piece: PieceIndex(0),
            offset: 0,
            length: 0,
        },
    ] {
        let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
        assert!(matches!(
            feed(&mut a, now, &[Message::Request(bad)]),
            Err(ConnectionError::InvalidRequest { .. })
        ));
    }

    // garbage
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert!(a.handle_bytes(now, &[0, 0, 0, 3, 0, 1, 2]).is_err());

    // bad extension handshake
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert!(matches!(
        feed(
            &mut a,
            now,
            &[Message::Extended {
                id: 0,
                payload: Bytes::from_static(b"le")
            }]
        ),
        Err(ConnectionError::ExtensionHandshake(_))
    ));
}

#[test]
fn fast_messages_require_negotiation() {
    let mut cfg = ConnectionConfig::default();
    cfg.reserved.set_fast(false);
    cfg.reserved.set_extension_protocol(false);
    for m in [
        Message::HaveAll,
        Message::HaveNone,
        Message::AllowedFast(PieceIndex(1)),
        Message::Suggest(PieceIndex(1)),
        Message::Reject(req(0, 0)),
        Message::Extended {
            id: 0,
            payload: Bytes::from_static(b"de"),
        },
    ] {
        let (mut a, now) = scripted(cfg.clone(), Some(PIECES));
        assert!(
            matches!(
                feed(&mut a, now, std::slice::from_ref(&m)),
                Err(ConnectionError::NotNegotiated { .. })
            ),
            "{m:?}"
        );
    }
}

#[test]
fn choke_unchoke_request_and_block_flow() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    events(&mut p.a);
    events(&mut p.b);
    let now = p.now;
    assert_eq!(p.a.send_request(now, req(0, 0)), Err(CommandError::Choked));
    p.a.set_interested(now, true).unwrap();
    p.pump();
    assert_eq!(events(&mut p.b), vec![Event::Interested]);
    p.b.unchoke(now).unwrap();
    p.pump();
    assert_eq!(events(&mut p.a), vec![Event::Unchoked]);
    p.a.send_request(now, req(1, 0)).unwrap();
    assert_eq!(
        p.a.send_request(now, req(1, 0)),
        Err(CommandError::Duplicate)
    );
    p.pump();
    assert_eq!(events(&mut p.b), vec![Event::Request(req(1, 0))]);
    let data = Bytes::from(vec![7u8; BLOCK_SIZE as usize]);
    assert!(matches!(
        p.b.send_piece(now, 1, BLOCK_SIZE, data.clone()),
        Err(CommandError::NotRequested(_))
    ));
    p.b.send_piece(now, 1, 0, data.clone()).unwrap();
    assert_eq!(p.b.send_queue_len(), 13 + BLOCK_SIZE as usize);
    // the data chunk is the engine's buffer, not a copy, flagged as payload
    // (the header is not) so the driver counts it once written
    let tagged: Vec<(Bytes, bool)> = std::iter::from_fn(|| p.b.poll_transmit_payload()).collect();
    assert_eq!(tagged.len(), 2);
    assert!(!tagged[0].1 && tagged[1].1);
    let chunks: Vec<Bytes> = tagged.into_iter().map(|(b, _)| b).collect();
    assert_eq!(chunks[1].as_ptr(), data.as_ptr());
    for c in &chunks {
        p.a.handle_bytes(now, c).unwrap();
    }
    assert_eq!(
        events(&mut p.a),
        vec![Event::Block {
            piece: PieceIndex(1),
            offset: 0,
            data
        }]
    );
    assert_eq!(p.a.stats().payload_downloaded, u64::from(BLOCK_SIZE));
    assert_eq!(p.b.stats().payload_uploaded, u64::from(BLOCK_SIZE));
    assert_eq!(p.a.outstanding_requests().count(), 0);
    assert!(p.a.download_rate(now + secs(1)) > 0);
}

#[test]
fn extern_block_data_keeps_its_place_in_the_output() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    let now = p.now;
    p.a.set_interested(now, true).unwrap();
    p.b.unchoke(now).unwrap();
    p.pump();
    events(&mut p.a);
    events(&mut p.b);
    p.a.send_request(now, req(2, 0)).unwrap();
    p.a.send_request(now, req(2, 1)).unwrap();
    p.pump();
    assert_eq!(events(&mut p.b).len(), 2);
    assert!(matches!(
        p.b.send_piece_extern(now, 3, 0, BLOCK_SIZE),
        Err(CommandError::NotRequested(_))
    ));
    // The first block's data comes from the driver, the second from a
    // buffer; a have queued after them follows them.
    p.b.send_piece_extern(now, 2, 0, BLOCK_SIZE).unwrap();
    let second = Bytes::from(vec![9u8; BLOCK_SIZE as usize]);
    p.b.send_piece(now, 2, BLOCK_SIZE, second.clone()).unwrap();
    p.b.have(now, 7).unwrap();
    assert_eq!(p.b.send_queue_len(), 2 * (13 + BLOCK_SIZE as usize) + 9);
    assert_eq!(p.b.stats().payload_uploaded, 2 * u64::from(BLOCK_SIZE));
    // The old drain stops at the driver's data.
    let header = p.b.poll_transmit_payload().unwrap();
    assert!(!header.1 && header.0.len() == 13);
    assert_eq!(p.b.poll_transmit_payload(), None);
    let first = vec![5u8; BLOCK_SIZE as usize];
    let mut wire = header.0.to_vec();
    let mut kinds = Vec::new();
    while let Some(c) = p.b.poll_transmit_chunk() {
        match c {
            OutChunk::Extern { len } => {
                assert_eq!(len, BLOCK_SIZE);
                wire.extend_from_slice(&first);
                kinds.push("extern");
            }
            OutChunk::Bytes { data, payload } => {
                wire.extend_from_slice(&data);
                kinds.push(if payload { "payload" } else { "bytes" });
            }
        }
    }
    assert_eq!(kinds.first(), Some(&"extern"));
    assert!(kinds.contains(&"payload"));
    assert_eq!(p.b.send_queue_len(), 0);
    p.a.handle_bytes(now, &wire).unwrap();
    let got = events(&mut p.a);
    let summary: Vec<String> = got
        .iter()
        .map(|e| match e {
            Event::Block {
                piece,
                offset,
                data,
            } => format!("block {} {offset} {} {}", piece.0, data.len(), data[0]),
            e => format!("{e:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            "block 2 0 16384 5".to_owned(),
            "block 2 16384 16384 9".to_owned(),
        ]
    );
    // The have went out last.
    assert!(wire.ends_with(&[0, 0, 0, 5, 4, 0, 0, 0, 7]));
    assert!(matches!(&got[0], Event::Block { data, .. } if data[..] == first[..]));
    assert!(matches!(&got[1], Event::Block { data, .. } if *data == second));
}

#[test]
fn choke_with_fast_rejects_queued_requests() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    let now = p.now;
    p.b.unchoke(now).unwrap();
    p.b.allow_fast(now, 5).unwrap();
    p.pump();
    events(&mut p.a);
    p.a.send_request(now, req(1, 0)).unwrap();
    p.a.send_request(now, req(5, 0)).unwrap();
    p.pump();
    events(&mut p.b);
    p.b.choke(now).unwrap();
    assert_eq!(events(&mut p.b), vec![Event::RequestCancelled(req(1, 0))]);
    assert_eq!(
        p.b.peer_requests().copied().collect::<Vec<_>>(),
        vec![req(5, 0)]
    );
    p.pump();
    assert_eq!(
        events(&mut p.a),
        vec![
            Event::Choked,
            Event::RequestFailed {
                request: req(1, 0),
                reason: RequestFailure::Rejected
            }
        ]
    );
    // allowed-fast pieces can still be requested while choked
    assert!(p.a.can_request(5) && !p.a.can_request(1));
    assert_eq!(p.a.send_request(now, req(1, 1)), Err(CommandError::Choked));
    p.a.send_request(now, req(5, 1)).unwrap();
    p.pump();
    assert_eq!(events(&mut p.b), vec![Event::Request(req(5, 1))]);
}

#[test]
fn requests_to_a_choking_peer_are_rejected_with_fast() {
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    feed(&mut a, now, &[Message::Request(req(2, 0))]).unwrap();
    assert_eq!(sent_messages(&mut a, 0), vec![Message::Reject(req(2, 0))]);
    assert!(events(&mut a).is_empty());
    assert_eq!(a.stats().peer_requests_refused, 1);
}

#[test]
fn choke_without_fast_fails_all_requests() {
    let mut cfg = ConnectionConfig::default();
    cfg.reserved.set_fast(false);
    let (mut a, now) = scripted(cfg, Some(PIECES));
    feed(
        &mut a,
        now,
        &[
            Message::Bitfield(Bytes::from_static(&[0xff, 0xff, 0xf0])),
            Message::Unchoke,
        ],
    )
    .unwrap();
    a.send_request(now, req(0, 0)).unwrap();
    a.send_request(now, req(0, 1)).unwrap();
    events(&mut a);
    feed(&mut a, now, &[Message::Choke]).unwrap();
    let ev = events(&mut a);
    assert_eq!(ev.len(), 3);
    assert!(ev[1..].iter().all(|e| matches!(
        e,
        Event::RequestFailed {
            reason: RequestFailure::Choked,
            ..
        }
    )));
    assert_eq!(a.outstanding_requests().count(), 0);
    assert_eq!(a.poll_timeout(), Some(now + secs(120)));
}

#[test]
fn pipeline_limit_follows_reqq() {
    let (mut a, now) = scripted(ConnectionConfig::default(), Some(PIECES));
    let mut h = ExtensionHandshake::shoal("x", 3);
    h.m.clear();
    feed(
        &mut a,
        now,
        &[
            Message::HaveAll,
            Message::Unchoke,
            Message::Extended {
                id: 0,
                payload: h.encode(),
            },
        ],
    )
    .unwrap();
    assert_eq!(a.pipeline_limit(), 3);
    for i in 0..3 {
        a.send_request(now, req(0, i)).unwrap();
    }
    assert_eq!(a.request_slots(), 0);
    assert_eq!(
        a.send_request(now, req(0, 3)),
        Err(CommandError::PipelineFull { limit: 3 })
    );
    a.set_max_outstanding_requests(2);
    assert_eq!(a.pipeline_limit(), 2);
    a.set_max_outstanding_requests(1000);
    assert_eq!(a.pipeline_limit(), 3);
    assert_eq!(
        a.send_metadata(now, &MetadataMessage::Request { piece: 0 }),
        Err(CommandError::NotSupported(UT_METADATA))
    );
}

#[test]
fn peer_request_queue_is_bounded() {
    let cfg = ConnectionConfig {
        max_peer_requests: 2,
        ..Default::default()
    };
    let (mut a, now) = scripted(cfg, Some(PIECES));
    a.unchoke(now).unwrap();
    drain_out(&mut a);
    feed(
        &mut a,
        now,
        &[
            Message::Request(req(0, 0)),
            Message::Request(req(0, 1)),
            Message::Request(req(0, 2)),
        ],
    )
    .unwrap();
    assert_eq!(events(&mut a).len(), 2);
    assert_eq!(sent_messages(&mut a, 0), vec![Message::Reject(req(0, 2))]);
    // a cancel voids a request and is answered by a reject (fast)
    feed(&mut a, now, &[Message::Cancel(req(0, 0))]).unwrap();
    assert_eq!(events(&mut a), vec![Event::RequestCancelled(req(0, 0))]);
    assert_eq!(sent_messages(&mut a, 0), vec![Message::Reject(req(0, 0))]);
    a.reject_request(now, req(0, 1)).unwrap();
    assert_eq!(a.peer_requests().count(), 0);
}
