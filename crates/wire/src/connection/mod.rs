//! [`PeerConnection`]: the sans-IO state machine of one peer connection.
//!
//! The driver feeds received bytes ([`PeerConnection::handle_bytes`]) and
//! timer expiries ([`PeerConnection::handle_timeout`]) with the current time,
//! then drains bytes to write ([`PeerConnection::poll_transmit`]), events
//! ([`PeerConnection::poll_event`]) and the next deadline
//! ([`PeerConnection::poll_timeout`]). The engine steers with commands
//! (`send_request`, `choke`, `send_piece`, ...). No clock is read and no
//! socket touched here.
//!
//! Any `Err(ConnectionError)` from `handle_*` means the peer misbehaved or
//! timed out: the connection is closed and the driver drops it; other
//! connections are unaffected.

mod config;
#[cfg(test)]
mod tests;

pub use config::{
    CommandError, ConnectionConfig, ConnectionError, ConnectionStats, Event, OutChunk,
    RequestFailure, DEFAULT_MAX_PEER_REQUESTS, DEFAULT_REQQ,
};

use crate::bitfield::{bitfield_bytes, Bitfield};
use crate::extension::ExtensionHandshake;
use crate::handshake::{
    parse_peer_id, Handshake, HandshakeError, HandshakePrefix, InfoHash, PeerId, Reserved,
    HANDSHAKE_LEN, HANDSHAKE_PREFIX_LEN,
};
use crate::message::{decode, BlockRequest, Message, PieceIndex};
use crate::rate::RateMeter;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::{HashSet, VecDeque};
use std::time::Instant;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Waiting for the peer's handshake (or the rest of it).
    Handshaking,
    /// Handshakes exchanged; messages flow.
    Connected,
    /// Closed after an error; every call is refused.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    AwaitHandshake,
    AwaitPeerId,
    Connected,
    Closed,
}

/// The peer's pieces before the piece count is known (magnet links).
#[derive(Debug, Default)]
struct PendingPieces {
    all: bool,
    raw: Option<Bytes>,
    haves: Vec<u32>,
}

/// One peer connection. See the module docs for the driving contract.
#[derive(Debug)]
pub struct PeerConnection {
    config: ConnectionConfig,
    phase: Phase,
    info_hash: InfoHash,
    our_peer_id: PeerId,
    expected_peer_id: Option<PeerId>,
    peer_id: Option<PeerId>,
    their_reserved: Reserved,
    common: Reserved,
    recv: BytesMut,
    send: BytesMut,
    /// Queued output, in order (`payload` marks block data, counted as
    /// uploaded by the driver once written).
    out: VecDeque<OutChunk>,
    out_len: usize,
    events: VecDeque<Event>,
    // what we announce once connected
    initial_pieces: Option<Bitfield>,
    pre_connect_haves: Vec<u32>,
    num_pieces: Option<u32>,
    // flags
    am_choking: bool,
    am_interested: bool,
    peer_choking: bool,
    peer_interested: bool,
    snubbed: bool,
    // their pieces
    their_pieces: Option<Bitfield>,
    pending: PendingPieces,
    their_ext: Option<ExtensionHandshake>,
    // our requests to them, oldest first
    our_requests: Vec<(BlockRequest, Instant)>,
    pipeline_limit: u32,
    waiting_since: Option<Instant>,
    recently_cancelled: VecDeque<BlockRequest>,
    // their requests to us
    their_requests: VecDeque<BlockRequest>,
    allowed_fast_from_them: HashSet<u32>,
    allowed_fast_to_them: HashSet<u32>,
    // time
    created: Instant,
    last_recv: Instant,
    last_send: Instant,
    download: RateMeter,
    upload: RateMeter,
    stats: ConnectionStats,
}

impl PeerConnection {
    fn new(
        mut config: ConnectionConfig,
        info_hash: InfoHash,
        our_peer_id: PeerId,
        our_pieces: Option<Bitfield>,
        phase: Phase,
        now: Instant,
    ) -> Self {
        if config.extension_handshake.reqq.is_none() {
            config.extension_handshake.reqq = Some(config.max_peer_requests);
        }
        let num_pieces = our_pieces.as_ref().map(Bitfield::len);
        if let Some(n) = num_pieces {
            config.limits.max_bitfield_len =
                config.limits.max_bitfield_len.min(bitfield_bytes(n) as u32);
        }
        let window = config.rate_window;
        let pipeline_limit = config.max_outstanding_requests.min(DEFAULT_REQQ);
        let mut c = PeerConnection {
            phase,
            info_hash,
            our_peer_id,
            expected_peer_id: None,
            peer_id: None,
            their_reserved: Reserved::default(),
            common: Reserved::default(),
            recv: BytesMut::new(),
            send: BytesMut::new(),
            out: VecDeque::new(),
            out_len: 0,
            events: VecDeque::new(),
            initial_pieces: our_pieces,
            pre_connect_haves: Vec::new(),
            num_pieces,
            am_choking: true,
            am_interested: false,
            peer_choking: true,
            peer_interested: false,
            snubbed: false,
            their_pieces: num_pieces.map(Bitfield::new),
            pending: PendingPieces::default(),
            their_ext: None,
            our_requests: Vec::new(),
            pipeline_limit,
            waiting_since: None,
            recently_cancelled: VecDeque::new(),
            their_requests: VecDeque::new(),
            allowed_fast_from_them: HashSet::new(),
            allowed_fast_to_them: HashSet::new(),
            created: now,
            last_recv: now,
            last_send: now,
            download: RateMeter::new(now, window),
            upload: RateMeter::new(now, window),
            stats: ConnectionStats::default(),
            config,
        };
        let hs = Handshake {
            reserved: c.config.reserved,
            info_hash,
            peer_id: our_peer_id,
        };
        c.send.extend_from_slice(&hs.encode());
        c.stats.bytes_sent += HANDSHAKE_LEN as u64;
        c
    }

    /// A connection we opened: our handshake is queued at once and the peer's
    /// full handshake is awaited. `our_pieces` is what we have (`None` while
    /// the piece count is unknown); it is announced when the handshake completes.
    pub fn outgoing(
        config: ConnectionConfig,
        info_hash: impl Into<InfoHash>,
        our_peer_id: impl Into<PeerId>,
        our_pieces: Option<Bitfield>,
        now: Instant,
    ) -> Self {
        Self::new(
            config,
            info_hash.into(),
            our_peer_id.into(),
            our_pieces,
            Phase::AwaitHandshake,
            now,
        )
    }

    /// A connection the peer opened, after the driver read the first 48 bytes
    /// into `prefix` and decided to serve `prefix.info_hash`. Our handshake is
    /// queued; the remaining 20 bytes (peer id) go through `handle_bytes`.
    pub fn incoming(
        config: ConnectionConfig,
        prefix: HandshakePrefix,
        our_peer_id: impl Into<PeerId>,
        our_pieces: Option<Bitfield>,
        now: Instant,
    ) -> Self {
        let mut c = Self::new(
            config,
            prefix.info_hash,
            our_peer_id.into(),
            our_pieces,
            Phase::AwaitPeerId,
            now,
        );
        c.their_reserved = prefix.reserved;
        c.stats.bytes_received += HANDSHAKE_PREFIX_LEN as u64;
        c
    }

    /// Requires the peer's handshake to carry this id (known from a tracker).
    pub fn expect_peer_id(&mut self, id: PeerId) {
        self.expected_peer_id = Some(id);
    }

    // ---------------------------------------------------------------- queries

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnectionState {
        match self.phase {
            Phase::AwaitHandshake | Phase::AwaitPeerId => ConnectionState::Handshaking,
            Phase::Connected => ConnectionState::Connected,
            Phase::Closed => ConnectionState::Closed,
        }
    }
    /// The torrent.
    pub fn info_hash(&self) -> &InfoHash {
        &self.info_hash
    }
    /// Our peer id as sent.
    pub fn our_peer_id(&self) -> &PeerId {
        &self.our_peer_id
    }
    /// The peer's id, once its handshake arrived.
    pub fn peer_id(&self) -> Option<&PeerId> {
        self.peer_id.as_ref()
    }
    /// The peer's feature bits (all zero before its handshake).
    pub fn peer_reserved(&self) -> Reserved {
        self.their_reserved
    }
    /// Whether both sides speak BEP 6.
    pub fn supports_fast(&self) -> bool {
        self.common.fast()
    }
    /// Whether both sides speak BEP 10.
    pub fn supports_extensions(&self) -> bool {
        self.common.extension_protocol()
    }
    /// The peer's extension handshake, once received.
    pub fn peer_extensions(&self) -> Option<&ExtensionHandshake> {
        self.their_ext.as_ref()
    }
    /// Whether we choke the peer.
    pub fn am_choking(&self) -> bool {
        self.am_choking
    }
    /// Whether we told the peer we are interested.
    pub fn am_interested(&self) -> bool {
        self.am_interested
    }
    /// Whether the peer chokes us.
    pub fn peer_choking(&self) -> bool {
        self.peer_choking
    }
    /// Whether the peer is interested in us.
    pub fn peer_interested(&self) -> bool {
        self.peer_interested
    }
    /// Whether the peer is currently snubbing us.
    pub fn is_snubbed(&self) -> bool {
        self.snubbed
    }
    /// The piece count, once known.
    pub fn num_pieces(&self) -> Option<u32> {
        self.num_pieces
    }
    /// The peer's pieces; `None` while the piece count is unknown.
    pub fn peer_pieces(&self) -> Option<&Bitfield> {
        self.their_pieces.as_ref()
    }
    /// Whether the peer has piece `i` (false while unknown).
    pub fn peer_has(&self, i: u32) -> bool {
        self.their_pieces.as_ref().is_some_and(|b| b.get(i))
    }
    /// Pieces we may request while choked (BEP 6 allowed fast from the peer).
    pub fn allowed_fast(&self) -> &HashSet<u32> {
        &self.allowed_fast_from_them
    }
    /// Whether a request for `piece` may be sent now as far as choking goes.
    pub fn can_request(&self, piece: u32) -> bool {
        !self.peer_choking || (self.supports_fast() && self.allowed_fast_from_them.contains(&piece))
    }
    /// Our requests awaiting an answer, oldest first.
    pub fn outstanding_requests(&self) -> impl Iterator<Item = &BlockRequest> {
        self.our_requests.iter().map(|(r, _)| r)
    }
    /// Current pipeline limit: min(our setting, the peer's `reqq`).
    pub fn pipeline_limit(&self) -> u32 {
        self.pipeline_limit
    }
    /// How many more requests fit in the pipeline.
    pub fn request_slots(&self) -> u32 {
        self.pipeline_limit
            .saturating_sub(self.our_requests.len() as u32)
    }
    /// Requests from the peer we have not answered yet, oldest first.
    pub fn peer_requests(&self) -> impl Iterator<Item = &BlockRequest> {
        self.their_requests.iter()
    }
    /// Bytes queued for sending and not yet taken by `poll_transmit`.
    pub fn send_queue_len(&self) -> usize {
        self.out_len + self.send.len()
    }
    /// Counters.
    pub fn stats(&self) -> &ConnectionStats {
        &self.stats
    }
    /// Payload download rate in bytes per second at `now`.
    pub fn download_rate(&mut self, now: Instant) -> u64 {
        self.download.rate(now)
    }
    /// Payload download rate over the last 1.25–1.9 s
    /// ([`crate::rate::PIPELINE_BUCKETS`] of the window's 16) at `now`: follows a rise that
    /// [`Self::download_rate`] averages away; for sizing request pipelines.
    pub fn recent_download_rate(&mut self, now: Instant) -> u64 {
        self.download
            .recent_rate(now, crate::rate::PIPELINE_BUCKETS)
    }
    /// Payload upload rate in bytes per second at `now`.
    pub fn upload_rate(&mut self, now: Instant) -> u64 {
        self.upload.rate(now)
    }

    // ---------------------------------------------------------------- output

    /// The next chunk of bytes to write, in order. Piece data comes out as its
    /// own chunk, sharing the buffer the engine passed to `send_piece`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.poll_transmit_payload().map(|(b, _)| b)
    }

    /// As [`PeerConnection::poll_transmit`], with whether the bytes are a
    /// block's payload (a `piece` message's data, without its header), so a
    /// driver can count uploaded payload when it reaches the socket.
    /// Stops (`None`) at the data of a block sent with
    /// [`PeerConnection::send_piece_extern`]: drivers that send those use
    /// [`PeerConnection::poll_transmit_chunk`].
    pub fn poll_transmit_payload(&mut self) -> Option<(Bytes, bool)> {
        if matches!(self.out.front(), Some(OutChunk::Extern { .. })) {
            return None;
        }
        match self.poll_transmit_chunk()? {
            OutChunk::Bytes { data, payload } => Some((data, payload)),
            OutChunk::Extern { .. } => None,
        }
    }

    /// The next chunk of output, in order: bytes to write, or the place of
    /// a block's data the driver writes itself
    /// ([`PeerConnection::send_piece_extern`]).
    pub fn poll_transmit_chunk(&mut self) -> Option<OutChunk> {
        if let Some(c) = self.out.pop_front() {
            self.out_len -= c.len();
            return Some(c);
        }
        (!self.send.is_empty()).then(|| OutChunk::Bytes {
            data: self.send.split().freeze(),
            payload: false,
        })
    }

    /// The next event for the engine.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next; `None` once closed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Closed => None,
            Phase::AwaitHandshake | Phase::AwaitPeerId => {
                Some(self.created + self.config.handshake_timeout)
            }
            Phase::Connected => {
                let mut t = (self.last_recv + self.config.idle_timeout)
                    .min(self.last_send + self.config.keepalive_interval);
                if let Some(w) = self.waiting_since {
                    if !self.snubbed {
                        t = t.min(w + self.config.snub_timeout);
                    }
                    if let Some((_, sent)) = self.our_requests.first() {
                        t = t.min((*sent).max(w) + self.config.request_timeout);
                    }
                }
                Some(t)
            }
        }
    }

    // ---------------------------------------------------------------- input

    /// Feeds received bytes. On `Err` the connection is closed.
    pub fn handle_bytes(&mut self, now: Instant, data: &[u8]) -> Result<(), ConnectionError> {
        if self.phase == Phase::Closed {
            return Err(ConnectionError::Closed);
        }
        self.recv.extend_from_slice(data);
        self.process_received(now)
    }

    /// The receive buffer, for drivers that read straight into it; call
    /// [`PeerConnection::process_received`] after appending.
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        &mut self.recv
    }

    /// Processes whatever is in the receive buffer. On `Err` the connection is closed.
    pub fn process_received(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let r = self.process_inner(now);
        if r.is_err() {
            self.close();
        }
        r
    }

    fn process_inner(&mut self, now: Instant) -> Result<(), ConnectionError> {
        if self.phase == Phase::Closed {
            return Err(ConnectionError::Closed);
        }
        if matches!(self.phase, Phase::AwaitHandshake | Phase::AwaitPeerId)
            && !self.try_handshake(now)?
        {
            return Ok(());
        }
        loop {
            let before = self.recv.len();
            let Some(msg) = decode(&mut self.recv, &self.config.limits)? else {
                return Ok(());
            };
            self.stats.bytes_received += (before - self.recv.len()) as u64;
            self.stats.messages_received += 1;
            self.last_recv = now;
            self.handle_message(now, msg)?;
        }
    }

    /// Returns true once connected.
    fn try_handshake(&mut self, now: Instant) -> Result<bool, ConnectionError> {
        let peer_id = if self.phase == Phase::AwaitHandshake {
            let Some(hs) = Handshake::parse(&self.recv)? else {
                return Ok(false);
            };
            if hs.info_hash != self.info_hash {
                return Err(HandshakeError::InfoHashMismatch.into());
            }
            self.recv.advance(HANDSHAKE_LEN);
            self.stats.bytes_received += HANDSHAKE_LEN as u64;
            self.their_reserved = hs.reserved;
            hs.peer_id
        } else {
            let Some(id) = parse_peer_id(&self.recv) else {
                return Ok(false);
            };
            self.recv.advance(20);
            self.stats.bytes_received += 20;
            id
        };
        if self.expected_peer_id.is_some_and(|e| e != peer_id) {
            return Err(HandshakeError::PeerIdMismatch.into());
        }
        self.peer_id = Some(peer_id);
        self.common = self.config.reserved.common(&self.their_reserved);
        self.phase = Phase::Connected;
        self.last_recv = now;
        self.events.push_back(Event::HandshakeComplete {
            peer_id,
            reserved: self.their_reserved,
        });
        self.send_initial(now);
        Ok(true)
    }

    /// Pieces announcement, haves queued meanwhile, then the extension handshake.
    fn send_initial(&mut self, now: Instant) {
        let fast = self.supports_fast();
        match self.initial_pieces.take() {
            Some(b) if b.is_full() && fast => self.queue(now, &Message::HaveAll),
            Some(b) if !b.is_none() => self.queue(
                now,
                &Message::Bitfield(Bytes::copy_from_slice(b.as_bytes())),
            ),
            _ if fast => self.queue(now, &Message::HaveNone),
            _ => {}
        }
        for i in std::mem::take(&mut self.pre_connect_haves) {
            self.queue(now, &Message::Have(PieceIndex(i)));
        }
        if self.supports_extensions() {
            let payload = self.config.extension_handshake.encode();
            self.queue(now, &Message::Extended { id: 0, payload });
        }
    }

    fn close(&mut self) {
        self.phase = Phase::Closed;
        self.out.clear();
        self.out_len = 0;
        self.send.clear();
        self.recv.clear();
    }

    fn queue(&mut self, now: Instant, m: &Message) {
        let before = self.send.len();
        m.encode(&mut self.send);
        self.stats.bytes_sent += (self.send.len() - before) as u64;
        self.last_send = now;
    }

    // ---------------------------------------------------------------- timers

    /// Acts on expired deadlines: keep-alive, idle and handshake timeouts,
    /// snubbing, request timeouts. On `Err` the connection is closed.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), ConnectionError> {
        let r = self.timeout_inner(now);
        if r.is_err() {
            self.close();
        }
        r
    }

    fn timeout_inner(&mut self, now: Instant) -> Result<(), ConnectionError> {
        match self.phase {
            Phase::Closed => return Err(ConnectionError::Closed),
            Phase::AwaitHandshake | Phase::AwaitPeerId => {
                if now >= self.created + self.config.handshake_timeout {
                    return Err(ConnectionError::HandshakeTimeout);
                }
                return Ok(());
            }
            Phase::Connected => {}
        }
        let idle = now.saturating_duration_since(self.last_recv);
        if idle >= self.config.idle_timeout {
            return Err(ConnectionError::IdleTimeout { idle });
        }
        if let Some(w) = self.waiting_since {
            if !self.snubbed && now >= w + self.config.snub_timeout {
                self.snubbed = true;
                self.events.push_back(Event::Snubbed);
            }
            let timeout = self.config.request_timeout;
            let mut expired = Vec::new();
            self.our_requests.retain(|(r, sent)| {
                let dead = now >= (*sent).max(w) + timeout;
                if dead {
                    expired.push(*r);
                }
                !dead
            });
            for r in expired {
                self.queue(now, &Message::Cancel(r));
                self.remember_cancelled(r);
                self.events.push_back(Event::RequestFailed {
                    request: r,
                    reason: RequestFailure::TimedOut,
                });
            }
            if self.our_requests.is_empty() {
                self.waiting_since = None;
            }
        }
        if now >= self.last_send + self.config.keepalive_interval {
            self.queue(now, &Message::KeepAlive);
        }
        Ok(())
    }

    fn remember_cancelled(&mut self, r: BlockRequest) {
        if self.config.max_cancelled_remembered == 0 {
            return;
        }
        if self.recently_cancelled.len() >= self.config.max_cancelled_remembered {
            self.recently_cancelled.pop_front();
        }
        self.recently_cancelled.push_back(r);
    }
}

mod commands;
mod receive;
