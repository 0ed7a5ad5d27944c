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

mod extensions;
mod flow;
mod timers;
