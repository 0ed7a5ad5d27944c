//! The simulator's connections: the two ends of a TCP connection between
//! peers, each holding what `PeerConnection` and `PeerTask` keep for one
//! side (choking both ways, the requests it must serve, the requests it
//! awaits, rates, snubbing), the messages that cross a link, and the
//! seeded numbers of the network (addresses, latencies, block digests).
use crate::picker::{Block, PeerKey, BLOCK_SIZE};
use crate::smartban::BlockDigest;
use shoal_wire::{Bitfield, RateMeter};
use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// Index of a connection in the world's table (never reused).
pub(super) type ConnId = usize;
/// 0: the end that dialled; 1: the end that accepted.
pub(super) type Side = usize;

/// Window of the rate meters (as `ConnectionConfig::rate_window`).
const RATE_WINDOW: Duration = Duration::from_secs(10);
/// Requests from the peer queued at most; more are rejected (as
/// `ConnectionConfig::max_peer_requests`).
pub(super) const MAX_PEER_REQUESTS: usize =
    shoal_wire::connection::DEFAULT_MAX_PEER_REQUESTS as usize;
/// Our outstanding requests at most (`DEFAULT_REQQ`, what a shoal peer's
/// pipeline limit comes to).
pub(super) const PIPELINE_LIMIT: u32 = shoal_wire::connection::DEFAULT_REQQ;
/// Cancelled requests whose late blocks are still taken.
const CANCELLED_REMEMBERED: usize = 64;
/// No block for this long with requests outstanding: snubbed.
pub(super) const SNUB_TIMEOUT: u64 = 60_000_000;
/// A request unanswered this long is cancelled and reported failed.
pub(super) const REQUEST_TIMEOUT: u64 = 90_000_000;

/// A message in flight on a link.
#[derive(Debug)]
pub(super) enum Ctl {
    /// The TCP handshake's answer reached the dialler.
    SynAck,
    /// The BitTorrent handshake, then the sender's bitfield.
    Handshake(Bitfield),
    Have(u32),
    Choke,
    Unchoke,
    Interested(bool),
    Request(Vec<Block>),
    Reject(Vec<Block>),
    Cancel(Block),
    /// The other end closed (or refused) the connection.
    Eof(&'static str),
}

/// One side of a connection.
pub(super) struct End {
    /// The peer this side belongs to.
    pub node: usize,
    /// Its key in that peer's core (`None` until an incoming connection is
    /// accepted).
    pub key: Option<PeerKey>,
    /// Not closed on this side.
    pub alive: bool,
    /// Our handshake and bitfield went out: haves may follow.
    pub shook: bool,
    /// The peer's handshake arrived.
    pub connected: bool,
    /// We choke the peer.
    pub am_choking: bool,
    /// The peer chokes us.
    pub peer_choking: bool,
    /// Requests from the peer, not yet sent.
    pub to_serve: VecDeque<Block>,
    /// In the owner's uplink round-robin.
    pub queued: bool,
    /// Our requests awaiting a block, with when they were sent (µs).
    pub requests: BTreeMap<Block, u64>,
    /// Recently cancelled requests.
    pub cancelled: VecDeque<Block>,
    /// Since when we wait for a block (µs).
    pub waiting_since: Option<u64>,
    /// The peer snubs us.
    pub snubbed: bool,
    /// Payload received.
    pub down: RateMeter,
    /// Payload sent.
    pub up: RateMeter,
    /// Payload sent since the last stats report.
    pub unreported: u64,
}

impl End {
    pub fn new(node: usize, key: Option<PeerKey>, now: Instant) -> Self {
        End {
            node,
            key,
            alive: true,
            shook: false,
            connected: false,
            am_choking: true,
            peer_choking: true,
            to_serve: VecDeque::new(),
            queued: false,
            requests: BTreeMap::new(),
            cancelled: VecDeque::new(),
            waiting_since: None,
            snubbed: false,
            down: RateMeter::new(now, RATE_WINDOW),
            up: RateMeter::new(now, RATE_WINDOW),
            unreported: 0,
        }
    }

    /// Withdraws an outstanding request; false when it was not one.
    pub fn cancel(&mut self, b: &Block) -> bool {
        if self.requests.remove(b).is_none() {
            return false;
        }
        if self.cancelled.len() >= CANCELLED_REMEMBERED {
            self.cancelled.pop_front();
        }
        self.cancelled.push_back(*b);
        if self.requests.is_empty() {
            self.waiting_since = None;
        }
        true
    }

    /// A block arrived at `now`: whether it was asked for (else it is
    /// dropped, as `PeerConnection` drops unrequested blocks).
    pub fn take_block(&mut self, b: &Block, now: u64) -> bool {
        let asked = self.requests.remove(b).is_some()
            || match self.cancelled.iter().position(|x| x == b) {
                Some(i) => {
                    self.cancelled.remove(i);
                    true
                }
                None => false,
            };
        if asked {
            self.waiting_since = (!self.requests.is_empty()).then_some(now);
            self.snubbed = false;
        }
        asked
    }

    /// Requests unanswered for [`REQUEST_TIMEOUT`] at `now`: withdrawn and
    /// returned. Marks the peer snubbed after [`SNUB_TIMEOUT`].
    pub fn expire(&mut self, now: u64) -> Vec<Block> {
        let Some(w) = self.waiting_since else {
            return Vec::new();
        };
        if now >= w + SNUB_TIMEOUT {
            self.snubbed = true;
        }
        let dead: Vec<Block> = self
            .requests
            .iter()
            .filter(|(_, &sent)| now >= sent.max(w) + REQUEST_TIMEOUT)
            .map(|(b, _)| *b)
            .collect();
        for b in &dead {
            self.cancel(b);
        }
        dead
    }
}

/// A connection: two ends and the link's one-way latency.
pub(super) struct Conn {
    pub ends: [End; 2],
    /// One-way latency, µs.
    pub latency: u64,
    /// Neither end has closed.
    pub open: bool,
}

/// The listen address of peer slot `slot` (10.0.0.0/8, port 6881).
pub(super) fn listen_addr(slot: usize) -> SocketAddr {
    SocketAddr::new(Ipv4Addr::from(0x0A00_0001u32 + slot as u32).into(), 6881)
}

/// The address an incoming connection `conn` from `from` shows (its IP, an
/// ephemeral port).
pub(super) fn ephemeral(from: SocketAddr, conn: ConnId) -> SocketAddr {
    SocketAddr::new(from.ip(), 49152 + (conn % 16384) as u16)
}

/// The peer id of peer `i`.
pub(super) fn peer_id(i: usize) -> shoal_base::PeerId {
    let mut id = *b"-SM0001-000000000000";
    let digits = format!("{:012}", i % 1_000_000_000_000);
    id[8..].copy_from_slice(digits.as_bytes());
    shoal_base::PeerId(id)
}

/// SplitMix64: a seeded, stateless mix.
pub(super) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The one-way latency between peers `a` and `b` in µs: a uniform draw
/// from `range_ms`, the same both ways and in every run with `seed`.
pub(super) fn latency(seed: u64, a: usize, b: usize, range_ms: (u32, u32)) -> u64 {
    let (lo, hi) = (range_ms.0.min(range_ms.1), range_ms.0.max(range_ms.1));
    let (x, y) = (a.min(b) as u64, a.max(b) as u64);
    let h = mix(seed ^ mix(x << 32 | y));
    let spread = u64::from(hi - lo) * 1000 + 1;
    u64::from(lo) * 1000 + h % spread
}

/// The digest of a block as sent: the true data's, or a corrupt peer's
/// (different for every sender).
pub(super) fn digest(b: &Block, corrupt_from: Option<usize>) -> BlockDigest {
    let mut d = [0u8; 20];
    d[..4].copy_from_slice(&b.piece.to_be_bytes());
    d[4..8].copy_from_slice(&b.offset.to_be_bytes());
    if let Some(s) = corrupt_from {
        d[8] = 1;
        d[9..17].copy_from_slice(&(s as u64).to_be_bytes());
    }
    d
}

/// The true digests of the blocks of a piece of `len` bytes.
pub(super) fn good_digests(piece: u32, len: u32) -> Vec<BlockDigest> {
    (0..len.div_ceil(BLOCK_SIZE))
        .map(|i| {
            let offset = i * BLOCK_SIZE;
            let b = Block {
                piece,
                offset,
                len: (len - offset).min(BLOCK_SIZE),
            };
            digest(&b, None)
        })
        .collect()
}

/// Microseconds to move `bytes` at `rate` bytes/s (at least 1).
pub(super) fn transfer_time(bytes: u32, rate: u64) -> u64 {
    (u64::from(bytes) * 1_000_000).div_ceil(rate.max(1)).max(1)
}
