//! Configuration, events and errors of a [`super::PeerConnection`].

use crate::bitfield::BitfieldError;
use crate::extension::{ExtensionHandshake, ExtensionHandshakeError};
use crate::handshake::{HandshakeError, PeerId, Reserved};
use crate::message::{BlockRequest, CodecLimits, DecodeError, HashRequest, PieceIndex};
use crate::metadata::{MetadataMessage, MetadataMessageError, DEFAULT_MAX_METADATA_SIZE};
use crate::pex::{PexError, PexMessage, MAX_PEX_PEERS};
use bytes::Bytes;
use std::time::Duration;
use thiserror::Error;

/// Request queue depth assumed for a peer that sends no `reqq` (libtorrent's default).
pub const DEFAULT_REQQ: u32 = 250;
/// Most requests from one peer we queue, and the `reqq` we advertise: as
/// libtorrent 2.0 (`max_allowed_in_request_queue`). Clients that size their
/// pipeline by a rate estimate and refill it on a timer, as Transmission
/// 3.00 does every half second, move at most `reqq` blocks per refill: at
/// 500 a Transmission leecher could not pass 8 MB/s from us.
pub const DEFAULT_MAX_PEER_REQUESTS: u32 = 2000;

/// Per-connection settings. Cheap to clone; one copy per connection, so the
/// engine can set per-peer values (for example `extension_handshake.your_ip`).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// Decoder limits. `max_bitfield_len` is narrowed once the piece count is known.
    pub limits: CodecLimits,
    /// Feature bits we advertise in the handshake.
    pub reserved: Reserved,
    /// The extension handshake we send when both sides speak BEP 10. Its `m`
    /// also says which ids *we* receive `ut_metadata` and `ut_pex` on. When its
    /// `reqq` is `None`, `max_peer_requests` is sent.
    pub extension_handshake: ExtensionHandshake,
    /// Most requests we keep outstanding to the peer (also capped by its `reqq`).
    pub max_outstanding_requests: u32,
    /// Most requests from the peer we queue; excess ones are rejected (fast) or dropped.
    pub max_peer_requests: u32,
    /// Most allowed-fast pieces from the peer we remember.
    pub max_allowed_fast: usize,
    /// Most `have` messages buffered while the piece count is unknown (magnet links).
    pub max_pending_haves: usize,
    /// Deadline for the peer's handshake.
    pub handshake_timeout: Duration,
    /// We send a keep-alive after this long without sending anything.
    pub keepalive_interval: Duration,
    /// We close after this long without receiving anything.
    pub idle_timeout: Duration,
    /// No block for this long while requests are outstanding: [`Event::Snubbed`].
    pub snub_timeout: Duration,
    /// A request unanswered this long (counted from the later of its sending
    /// and the last block received) is cancelled: [`RequestFailure::TimedOut`].
    pub request_timeout: Duration,
    /// Window of the download and upload rate meters.
    pub rate_window: Duration,
    /// Bound on `metadata_size` and `ut_metadata` piece indices.
    pub max_metadata_size: u64,
    /// Most peers kept per list of a received `ut_pex` message.
    pub max_pex_peers: usize,
    /// Recently cancelled requests whose late blocks are still delivered.
    pub max_cancelled_remembered: usize,
    /// Allow sending BEP 52 hash requests when the peer's handshake lacks the
    /// v2 bit (set for v2-only torrents: libtorrent sets the bit only for
    /// hybrids). Default false.
    pub v2_messages: bool,
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            limits: CodecLimits::default(),
            reserved: Reserved::shoal(false),
            extension_handshake: ExtensionHandshake::shoal("shoal", DEFAULT_MAX_PEER_REQUESTS),
            max_outstanding_requests: DEFAULT_REQQ,
            max_peer_requests: DEFAULT_MAX_PEER_REQUESTS,
            max_allowed_fast: 64,
            max_pending_haves: 1 << 16,
            handshake_timeout: Duration::from_secs(20),
            keepalive_interval: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(180),
            snub_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(90),
            rate_window: Duration::from_secs(10),
            max_metadata_size: DEFAULT_MAX_METADATA_SIZE,
            max_pex_peers: MAX_PEX_PEERS,
            max_cancelled_remembered: 64,
            v2_messages: false,
        }
    }
}

/// Why one of our requests will not be answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFailure {
    /// The peer sent a BEP 6 reject.
    Rejected,
    /// The peer choked us without the fast extension: all requests are void.
    Choked,
    /// No answer within the request timeout; a cancel was sent.
    TimedOut,
}

/// Something the engine must know. Drain with [`super::PeerConnection::poll_event`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The peer's handshake arrived; the connection is established.
    HandshakeComplete {
        /// The peer's id.
        peer_id: PeerId,
        /// The peer's feature bits.
        reserved: Reserved,
    },
    /// The peer's extension handshake (first or updated).
    ExtensionHandshake(Box<ExtensionHandshake>),
    /// The peer's piece set was replaced (bitfield, have all, have none, or the
    /// piece count became known); read it with `peer_pieces()`.
    Bitfield,
    /// The peer gained a piece it did not have.
    Have(PieceIndex),
    /// The peer choked us.
    Choked,
    /// The peer unchoked us.
    Unchoked,
    /// The peer is interested in our pieces.
    Interested,
    /// The peer is no longer interested.
    NotInterested,
    /// A block we requested (or cancelled recently) arrived.
    Block {
        /// Piece index.
        piece: PieceIndex,
        /// Offset in the piece.
        offset: u32,
        /// The data.
        data: Bytes,
    },
    /// The peer requests a block: answer with `send_piece` or `reject_request`.
    Request(BlockRequest),
    /// A request from the peer is void (it cancelled, or we choked it): do not serve it.
    RequestCancelled(BlockRequest),
    /// One of our requests will not be answered; give the block to another peer.
    RequestFailed {
        /// The request.
        request: BlockRequest,
        /// Why.
        reason: RequestFailure,
    },
    /// The peer suggests a piece (BEP 6).
    Suggest(PieceIndex),
    /// We may request this piece while choked (BEP 6).
    AllowedFast(PieceIndex),
    /// The peer's DHT port (BEP 5).
    Port(u16),
    /// A `ut_metadata` message.
    Metadata(MetadataMessage),
    /// A `ut_pex` message.
    Pex(PexMessage),
    /// An extended message for an extension this crate does not handle.
    Extended {
        /// Our id for it (from our extension handshake's `m`).
        id: u8,
        /// Its payload.
        payload: Bytes,
    },
    /// BEP 52 hash request.
    HashRequest(HashRequest),
    /// BEP 52 hashes.
    Hashes {
        /// The request answered.
        request: HashRequest,
        /// Concatenated 32-byte hashes.
        hashes: Bytes,
    },
    /// BEP 52 hash reject.
    HashReject(HashRequest),
    /// No block for `snub_timeout` while requests are outstanding.
    Snubbed,
    /// A block arrived from a snubbed peer.
    Unsnubbed,
}

/// Why the connection is closed. Every variant means: drop this connection only.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// Bad or mismatched handshake.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// Malformed or oversized message.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// Bad bitfield, or a piece index out of range in `have`/`suggest`/`allowed fast`.
    #[error("peer pieces: {0}")]
    Pieces(#[from] BitfieldError),
    /// Bad extension handshake.
    #[error(transparent)]
    ExtensionHandshake(#[from] ExtensionHandshakeError),
    /// Bad `ut_metadata` message.
    #[error(transparent)]
    Metadata(#[from] MetadataMessageError),
    /// Bad `ut_pex` message.
    #[error(transparent)]
    Pex(#[from] PexError),
    /// A message of an extension that was not negotiated (BEP 6 says close).
    #[error("peer sent `{message}` without negotiating {extension}")]
    NotNegotiated {
        /// The message name.
        message: &'static str,
        /// The extension it belongs to.
        extension: &'static str,
    },
    /// The peer requested a block we can never serve.
    #[error("peer request {request:?} invalid: {reason}")]
    InvalidRequest {
        /// The request.
        request: BlockRequest,
        /// What is wrong.
        reason: &'static str,
    },
    /// Too many `have` messages before the piece count was known.
    #[error("peer sent more than {limit} haves before the piece count was known")]
    TooManyPendingHaves {
        /// The limit.
        limit: usize,
    },
    /// No handshake within the handshake timeout.
    #[error("handshake timed out")]
    HandshakeTimeout,
    /// Nothing received for the idle timeout.
    #[error("no message for {idle:?}")]
    IdleTimeout {
        /// How long it was idle.
        idle: Duration,
    },
    /// The connection was already closed by an earlier error.
    #[error("connection closed")]
    Closed,
}

/// Why a command from the engine could not be carried out. The connection stays open.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CommandError {
    /// Not yet connected, or closed.
    #[error("not connected")]
    NotConnected,
    /// The peer chokes us and the piece is not allowed-fast.
    #[error("peer is choking us")]
    Choked,
    /// The request pipeline is full.
    #[error("request pipeline full ({limit})")]
    PipelineFull {
        /// The current pipeline limit.
        limit: u32,
    },
    /// The same block is already requested.
    #[error("block already requested")]
    Duplicate,
    /// The peer does not have the piece.
    #[error("peer does not have piece {0}")]
    PeerLacksPiece(u32),
    /// Piece index out of range, or a zero or over-long block.
    #[error("invalid block {request:?}: {reason}")]
    InvalidBlock {
        /// The block.
        request: BlockRequest,
        /// What is wrong.
        reason: &'static str,
    },
    /// `send_piece` for a block the peer has not requested (or cancelled).
    #[error("block {0:?} is not requested by the peer")]
    NotRequested(BlockRequest),
    /// The peer does not support the extension needed.
    #[error("peer does not support {0}")]
    NotSupported(&'static str),
}

/// Byte and message counters of one connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Block bytes received that we had requested.
    pub payload_downloaded: u64,
    /// Block bytes queued for sending.
    pub payload_uploaded: u64,
    /// All bytes received (handshake and framing included).
    pub bytes_received: u64,
    /// All bytes queued for sending.
    pub bytes_sent: u64,
    /// Blocks received that we had not requested (ignored).
    pub unrequested_blocks: u64,
    /// Requests from the peer we rejected or dropped.
    pub peer_requests_refused: u64,
    /// Messages received.
    pub messages_received: u64,
}

/// One chunk of a connection's output, in order
/// ([`super::PeerConnection::poll_transmit_chunk`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutChunk {
    /// Bytes to write as they are; `payload` marks a block's data (without
    /// its header), counted as uploaded once written.
    Bytes {
        /// The bytes.
        data: bytes::Bytes,
        /// They are block payload.
        payload: bool,
    },
    /// The data of a block queued with
    /// [`super::PeerConnection::send_piece_extern`]: `len` bytes of payload
    /// the driver writes from its own source, here.
    Extern {
        /// Bytes of block data.
        len: u32,
    },
}

impl OutChunk {
    /// Bytes this chunk puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            OutChunk::Bytes { data, .. } => data.len(),
            OutChunk::Extern { len } => *len as usize,
        }
    }

    /// Whether it puts nothing on the wire.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
