//! State machine tests: two connections wired back to back on a fake clock,
//! plus a scripted raw peer for hostile and fine-grained cases.
use super::*;
use crate::bitfield::BitfieldError;
use crate::extension::UT_METADATA;
use crate::handshake::HANDSHAKE_PREFIX_LEN;
use crate::message::{id, PieceIndex, BLOCK_SIZE};
use crate::metadata::MetadataMessage;
use crate::pex::PexMessage;
use std::time::Duration;

const IH: InfoHash = InfoHash([0x11; 20]);
const A_ID: PeerId = PeerId(*b"-SH0001-aaaaaaaaaaaa");
const B_ID: PeerId = PeerId(*b"-SH0001-bbbbbbbbbbbb");
const PIECES: u32 = 20;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn drain_out(c: &mut PeerConnection) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(b) = c.poll_transmit() {
        v.extend_from_slice(&b);
    }
    v
}

fn events(c: &mut PeerConnection) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

/// Messages a connection queued, decoded (after `skip` handshake bytes).
fn sent_messages(c: &mut PeerConnection, skip: usize) -> Vec<Message> {
    let bytes = drain_out(c);
    let mut buf = BytesMut::from(bytes.get(skip..).unwrap_or(&[]));
    let mut out = Vec::new();
    while let Some(m) = decode(&mut buf, &crate::message::CodecLimits::default()).unwrap() {
        out.push(m);
    }
    out
}

struct Pair {
    a: PeerConnection,
    b: PeerConnection,
    now: Instant,
}

impl Pair {
    /// A (outgoing, has nothing) connects to B (incoming seed).
    fn new(cfg_a: ConnectionConfig, cfg_b: ConnectionConfig) -> Pair {
        let now = Instant::now();
        let mut a = PeerConnection::outgoing(cfg_a, IH, A_ID, Some(Bitfield::new(PIECES)), now);
        let hs = drain_out(&mut a);
        let prefix = HandshakePrefix::parse(&hs).unwrap().unwrap();
        let mut b =
            PeerConnection::incoming(cfg_b, prefix, B_ID, Some(Bitfield::full(PIECES)), now);
        b.handle_bytes(now, &hs[HANDSHAKE_PREFIX_LEN..]).unwrap();
        let mut p = Pair { a, b, now };
        p.pump();
        p
    }

    fn pump(&mut self) {
        loop {
            let ab = drain_out(&mut self.a);
            let ba = drain_out(&mut self.b);
            if ab.is_empty() && ba.is_empty() {
                break;
            }
            self.b.handle_bytes(self.now, &ab).unwrap();
            self.a.handle_bytes(self.now, &ba).unwrap();
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }
}

fn req(piece: u32, block: u32) -> BlockRequest {
    BlockRequest {
        piece: PieceIndex(piece),
        offset: block * BLOCK_SIZE,
        length: BLOCK_SIZE,
    }
}

#[test]
fn handshake_and_initial_messages() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    assert_eq!(p.a.state(), ConnectionState::Connected);
    assert_eq!(p.b.state(), ConnectionState::Connected);
    assert_eq!(p.a.peer_id(), Some(&B_ID));
    assert_eq!(p.b.peer_id(), Some(&A_ID));
    let ea = events(&mut p.a);
    assert!(matches!(
        ea[0],
        Event::HandshakeComplete { peer_id: B_ID, .. }
    ));
    assert!(ea.contains(&Event::Bitfield));
    assert!(ea
        .iter()
        .any(|e| matches!(e, Event::ExtensionHandshake(h) if h.reqq == Some(super::DEFAULT_MAX_PEER_REQUESTS))));
    assert!(p.a.peer_pieces().unwrap().is_full());
    assert!(p.b.peer_pieces().unwrap().is_none());
    assert!(p.a.supports_fast() && p.a.supports_extensions());
    assert!(p.a.am_choking() && p.a.peer_choking());
}

#[test]
fn initial_pieces_without_fast_and_haves_during_handshake() {
    let mut cfg = ConnectionConfig::default();
    cfg.reserved.set_fast(false);
    let now = Instant::now();
    let mut half = Bitfield::new(PIECES);
    half.set(3).unwrap();
    let mut a = PeerConnection::outgoing(cfg, IH, A_ID, Some(half), now);
    a.have(now, 4).unwrap();
    let mut peer = Handshake {
        reserved: Reserved::shoal(false),
        info_hash: IH,
        peer_id: B_ID,
    }
    .encode()
    .to_vec();
    peer.extend_from_slice(&[0, 0, 0, 1, id::UNCHOKE]);
    a.handle_bytes(now, &peer).unwrap();
    let sent = sent_messages(&mut a, 68);
    assert_eq!(
        sent[0],
        Message::Bitfield(Bytes::from_static(&[0b0001_1000, 0, 0]))
    );
    assert!(matches!(sent[1], Message::Extended { id: 0, .. }));
    assert!(!a.peer_choking());
}

#[test]
fn wrong_info_hash_and_peer_id() {
    let now = Instant::now();
    let mut a = PeerConnection::outgoing(ConnectionConfig::default(), IH, A_ID, None, now);
    let wrong = Handshake {
        reserved: Reserved::default(),
        info_hash: InfoHash([0x22; 20]),
        peer_id: B_ID,
    };
    assert_eq!(
        a.handle_bytes(now, &wrong.encode()),
        Err(ConnectionError::Handshake(HandshakeError::InfoHashMismatch))
    );
    assert_eq!(a.state(), ConnectionState::Closed);
    assert_eq!(a.handle_bytes(now, &[0]), Err(ConnectionError::Closed));
    assert_eq!(a.poll_transmit(), None);

    let mut a = PeerConnection::outgoing(ConnectionConfig::default(), IH, A_ID, None, now);
    a.expect_peer_id(PeerId([9; 20]));
    let right = Handshake {
        reserved: Reserved::default(),
        info_hash: IH,
        peer_id: B_ID,
    };
    assert_eq!(
        a.handle_bytes(now, &right.encode()),
        Err(ConnectionError::Handshake(HandshakeError::PeerIdMismatch))
    );
}

#[test]
fn byte_by_byte_handshake_and_messages() {
    let now = Instant::now();
    let mut a = PeerConnection::outgoing(
        ConnectionConfig::default(),
        IH,
        A_ID,
        Some(Bitfield::new(PIECES)),
        now,
    );
    let mut input = Handshake {
        reserved: Reserved::shoal(false),
        info_hash: IH,
        peer_id: B_ID,
    }
    .encode()
    .to_vec();
    let mut buf = BytesMut::new();
    Message::HaveAll.encode(&mut buf);
    Message::Unchoke.encode(&mut buf);
    Message::Have(PieceIndex(3)).encode(&mut buf);
    input.extend_from_slice(&buf);
    for b in input {
        a.handle_bytes(now, &[b]).unwrap();
    }
    let ev = events(&mut a);
    assert!(matches!(ev[0], Event::HandshakeComplete { .. }));
    assert_eq!(&ev[1..], &[Event::Bitfield, Event::Unchoked]); // have 3 is no news
    assert!(a.peer_has(19));
}

/// A connected outgoing connection facing a scripted peer.
fn scripted(cfg: ConnectionConfig, num_pieces: Option<u32>) -> (PeerConnection, Instant) {
    let now = Instant::now();
    let mut a = PeerConnection::outgoing(cfg, IH, A_ID, num_pieces.map(Bitfield::new), now);
    let peer = Handshake {
        reserved: Reserved::shoal(true),
        info_hash: IH,
        peer_id: B_ID,
    };
    a.handle_bytes(now, &peer.encode()).unwrap();
    drain_out(&mut a);
    events(&mut a);
    (a, now)
}

fn feed(a: &mut PeerConnection, now: Instant, msgs: &[Message]) -> Result<(), ConnectionError> {
    let mut buf = BytesMut::new();
    for m in msgs {
        m.encode(&mut buf);
    }
    a.handle_bytes(now, &buf)
}

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

#[test]
fn keepalive_and_idle_timeout() {
    let (mut a, t0) = scripted(ConnectionConfig::default(), Some(PIECES));
    assert_eq!(a.poll_timeout(), Some(t0 + secs(120)));
    a.handle_timeout(t0 + secs(60)).unwrap();
    assert!(drain_out(&mut a).is_empty());
    a.handle_timeout(t0 + secs(120)).unwrap();
    assert_eq!(drain_out(&mut a), vec![0, 0, 0, 0]);
    assert_eq!(a.poll_timeout(), Some(t0 + secs(180)));
    // a keep-alive from the peer resets the idle timer
    a.handle_bytes(t0 + secs(170), &[0, 0, 0, 0]).unwrap();
    assert_eq!(a.poll_timeout(), Some(t0 + secs(240)));
    a.handle_timeout(t0 + secs(240)).unwrap();
    assert_eq!(a.poll_timeout(), Some(t0 + secs(350)));
    assert_eq!(
        a.handle_timeout(t0 + secs(350)),
        Err(ConnectionError::IdleTimeout { idle: secs(180) })
    );
    assert_eq!(a.state(), ConnectionState::Closed);
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn handshake_timeout() {
    let t0 = Instant::now();
    let mut a = PeerConnection::outgoing(ConnectionConfig::default(), IH, A_ID, None, t0);
    assert_eq!(a.poll_timeout(), Some(t0 + secs(20)));
    a.handle_bytes(t0 + secs(5), &[19, b'B']).unwrap();
    a.handle_timeout(t0 + secs(19)).unwrap();
    assert_eq!(
        a.handle_timeout(t0 + secs(20)),
        Err(ConnectionError::HandshakeTimeout)
    );
}

#[test]
fn snub_and_request_timeout() {
    let mut p = Pair::new(ConnectionConfig::default(), ConnectionConfig::default());
    let t0 = p.now;
    p.b.unchoke(t0).unwrap();
    p.pump();
    events(&mut p.a);
    p.a.send_request(t0, req(0, 0)).unwrap();
    p.a.send_request(t0 + secs(10), req(0, 1)).unwrap();
    p.pump();
    assert_eq!(p.a.poll_timeout(), Some(t0 + secs(60)));
    // keep the connection alive from B's side while it ignores the requests
    p.advance(secs(59));
    p.b.handle_timeout(p.now).unwrap();
    p.a.handle_bytes(p.now, &[0, 0, 0, 0]).unwrap();
    p.a.handle_timeout(p.now).unwrap();
    assert!(events(&mut p.a).is_empty());
    p.advance(secs(1));
    p.a.handle_timeout(p.now).unwrap();
    assert_eq!(events(&mut p.a), vec![Event::Snubbed]);
    assert!(p.a.is_snubbed());
    // a block un-snubs and restarts the request clock
    events(&mut p.b);
    p.b.send_piece(p.now, 0, 0, Bytes::from(vec![1; BLOCK_SIZE as usize]))
        .unwrap();
    p.pump();
    let ev = events(&mut p.a);
    assert_eq!(ev[0], Event::Unsnubbed);
    assert!(matches!(ev[1], Event::Block { .. }));
    let deadline = p.now + secs(60);
    assert_eq!(p.a.poll_timeout(), Some(deadline));
    p.advance(secs(60));
    p.b.handle_timeout(p.now).unwrap();
    p.a.handle_bytes(p.now, &[0, 0, 0, 0]).unwrap();
    p.a.handle_timeout(p.now).unwrap();
    assert_eq!(events(&mut p.a), vec![Event::Snubbed]);
    p.advance(secs(30));
    p.a.handle_timeout(p.now).unwrap();
    assert_eq!(
        events(&mut p.a),
        vec![Event::RequestFailed {
            request: req(0, 1),
            reason: RequestFailure::TimedOut
        }]
    );
    assert_eq!(sent_messages(&mut p.a, 0), vec![Message::Cancel(req(0, 1))]);
    // the late block is still delivered
    p.b.send_piece(
        p.now,
        0,
        BLOCK_SIZE,
        Bytes::from(vec![2; BLOCK_SIZE as usize]),
    )
    .unwrap();
    p.pump();
    assert!(matches!(
        events(&mut p.a)[..],
        [
            Event::Unsnubbed,
            Event::Block {
                offset: BLOCK_SIZE,
                ..
            }
        ]
    ));
    // an unrequested block is dropped and counted
    let mut buf = BytesMut::new();
    Message::Piece {
        piece: PieceIndex(3),
        offset: 0,
        data: Bytes::from_static(b"junk"),
    }
    .encode(&mut buf);
    p.a.handle_bytes(p.now, &buf).unwrap();
    assert!(events(&mut p.a).is_empty());
    assert_eq!(p.a.stats().unrequested_blocks, 1);
}

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
