//! The BitTorrent peer wire protocol as a sans-IO library.
//!
//! Layers, bottom up:
//! - [`handshake`]: the 68-byte handshake, parsed in two steps so a listener
//!   can pick the torrent from the first 48 bytes ([`HandshakePrefix`]).
//! - [`message`]: length-prefixed messages of BEP 3/5/6/10/52 ([`Message`]),
//!   decoded from a `BytesMut` with per-kind size limits ([`CodecLimits`]);
//!   "need more bytes" is `Ok(None)`, and piece data is split off as `Bytes`.
//! - [`bitfield`]: [`Bitfield`], a piece set with its piece-count invariant.
//! - [`extension`]: the BEP 10 extension handshake ([`ExtensionHandshake`]).
//! - [`metadata`]: BEP 9 `ut_metadata` messages and the [`MetadataAssembler`].
//! - [`pex`]: BEP 11 `ut_pex` messages and the [`PexTracker`] diff helper.
//! - [`fast`]: the BEP 6 allowed-fast set algorithm.
//! - [`rate`]: a sliding-window [`RateMeter`] on caller-given time.
//! - [`connection`]: [`PeerConnection`], the per-connection state machine
//!   (handshake, choking, interest, request pipelines, keep-alive, timeouts,
//!   snubbing, rates), driven by bytes, commands and time from outside.
//! - [`mse`]: MSE/PE, the encrypted handshake ([`mse::MseHandshake`], sans-IO)
//!   and RC4; with feature `tokio`, the handshake over a socket and the
//!   encrypting stream.
//! - `tokio_io` (feature `tokio`): reading an incoming handshake prefix.
//!
//! # Driving a connection
//!
//! ```
//! use shoal_wire::{Bitfield, ConnectionConfig, Event, HandshakePrefix, PeerConnection};
//! use std::time::Instant;
//!
//! let now = Instant::now();
//! let info_hash = [1u8; 20];
//! // We dial a peer: our handshake is queued at once.
//! let mut us = PeerConnection::outgoing(
//!     ConnectionConfig::default(), info_hash, [2; 20], Some(Bitfield::new(8)), now);
//! let hello = us.poll_transmit().unwrap();
//!
//! // The listener reads 48 bytes, picks the torrent, then builds its side.
//! let prefix = HandshakePrefix::parse(&hello[..48]).unwrap().unwrap();
//! assert_eq!(prefix.info_hash, info_hash);
//! let mut them = PeerConnection::incoming(
//!     ConnectionConfig::default(), prefix, [3; 20], Some(Bitfield::full(8)), now);
//! them.handle_bytes(now, &hello[48..]).unwrap();
//!
//! // Shuttle bytes both ways, as a socket driver would.
//! while let Some(b) = them.poll_transmit() {
//!     us.handle_bytes(now, &b).unwrap();
//! }
//! assert!(matches!(us.poll_event(), Some(Event::HandshakeComplete { .. })));
//! assert!(us.peer_pieces().unwrap().is_full());
//! // Then: commands (`set_interested`, `send_request`, ...), `poll_event`,
//! // and `handle_timeout` at `poll_timeout()`.
//! ```
//!
//! Nothing here reads the clock, touches a socket or allocates in proportion
//! to a length the peer claims before the bytes have arrived.
#![deny(missing_docs)]

pub mod bitfield;
pub mod connection;
pub mod extension;
pub mod fast;
pub mod handshake;
pub mod message;
pub mod metadata;
pub mod mse;
pub mod pex;
pub mod rate;
#[cfg(feature = "tokio")]
pub mod tokio_io;

pub use bitfield::{Bitfield, BitfieldError};
pub use connection::{
    CommandError, ConnectionConfig, ConnectionError, ConnectionState, ConnectionStats, Event,
    OutChunk, PeerConnection, RequestFailure,
};
pub use extension::{ExtensionHandshake, ExtensionHandshakeError};
pub use handshake::{Handshake, HandshakeError, HandshakePrefix, InfoHash, PeerId, Reserved};
pub use message::{
    BlockRequest, CodecLimits, DecodeError, HashRequest, Message, PieceIndex, BLOCK_SIZE,
};
pub use metadata::{
    MetadataAssembler, MetadataAssemblyError, MetadataHash, MetadataMessage, MetadataMessageError,
    MetadataProgress,
};
pub use pex::{PexError, PexFlags, PexMessage, PexTracker};
pub use rate::RateMeter;
