//! Length-prefixed peer wire messages (BEP 3, 5, 6, 10, 52): the [`Message`]
//! type, its encoder, and a decoder that works on a `BytesMut` receive buffer.
//!
//! Decoding returns `Ok(None)` while the buffer holds less than one whole
//! message. The length prefix is checked against [`CodecLimits`] before any
//! payload is awaited, so a hostile 1 GB prefix fails at once and allocates
//! nothing. Piece data is split off the buffer as `Bytes` without copying.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Message ids (the byte after the length prefix).
pub mod id {
    /// BEP 3 choke.
    pub const CHOKE: u8 = 0;
    /// BEP 3 unchoke.
    pub const UNCHOKE: u8 = 1;
    /// BEP 3 interested.
    pub const INTERESTED: u8 = 2;
    /// BEP 3 not interested.
    pub const NOT_INTERESTED: u8 = 3;
    /// BEP 3 have.
    pub const HAVE: u8 = 4;
    /// BEP 3 bitfield.
    pub const BITFIELD: u8 = 5;
    /// BEP 3 request.
    pub const REQUEST: u8 = 6;
    /// BEP 3 piece.
    pub const PIECE: u8 = 7;
    /// BEP 3 cancel.
    pub const CANCEL: u8 = 8;
    /// BEP 5 port.
    pub const PORT: u8 = 9;
    /// BEP 6 suggest piece.
    pub const SUGGEST: u8 = 0x0d;
    /// BEP 6 have all.
    pub const HAVE_ALL: u8 = 0x0e;
    /// BEP 6 have none.
    pub const HAVE_NONE: u8 = 0x0f;
    /// BEP 6 reject request.
    pub const REJECT: u8 = 0x10;
    /// BEP 6 allowed fast.
    pub const ALLOWED_FAST: u8 = 0x11;
    /// BEP 10 extended.
    pub const EXTENDED: u8 = 20;
    /// BEP 52 hash request.
    pub const HASH_REQUEST: u8 = 21;
    /// BEP 52 hashes.
    pub const HASHES: u8 = 22;
    /// BEP 52 hash reject.
    pub const HASH_REJECT: u8 = 23;
}

/// The standard block size (16 KiB) used by every current client.
pub const BLOCK_SIZE: u32 = 16 * 1024;

/// A piece index as a peer sends it (`have`, `request`, `piece`, `suggest`,
/// `allowed fast`...). The codec takes any 32-bit value; a connection that
/// knows the piece count refuses an index past it before an event carries
/// one, so the engine can index its tables with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct PieceIndex(pub u32);

impl PieceIndex {
    /// The index as a `usize`, for indexing.
    pub fn as_usize(self) -> usize {
        self.0 as usize
    }
}

impl From<u32> for PieceIndex {
    fn from(i: u32) -> Self {
        PieceIndex(i)
    }
}

impl std::fmt::Display for PieceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A block: piece index, byte offset in the piece, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRequest {
    /// Piece index.
    pub piece: PieceIndex,
    /// Byte offset inside the piece.
    pub offset: u32,
    /// Length in bytes.
    pub length: u32,
}

/// The common payload of BEP 52 hash request, hashes and hash reject messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashRequest {
    /// Root of the file's piece tree.
    pub pieces_root: [u8; 32],
    /// Layers above the leaves where the requested hashes start.
    pub base_layer: u32,
    /// Offset in hashes of the first requested hash (a multiple of `length`).
    pub index: u32,
    /// Number of hashes requested (a power of two, at least 2).
    pub length: u32,
    /// Number of ancestor layers to include.
    pub proof_layers: u32,
}

const HASH_REQUEST_LEN: usize = 48;

/// One peer wire message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// Zero-length message.
    KeepAlive,
    /// Sender will not serve requests.
    Choke,
    /// Sender will serve requests.
    Unchoke,
    /// Sender wants pieces from the receiver.
    Interested,
    /// Sender wants nothing from the receiver.
    NotInterested,
    /// Sender has verified this piece.
    Have(PieceIndex),
    /// Sender's pieces, raw: validated against the piece count by [`crate::Bitfield::from_bytes`]
    /// (the count may be unknown yet when downloading from a magnet link).
    Bitfield(Bytes),
    /// Request for a block.
    Request(BlockRequest),
    /// Block data.
    Piece {
        /// Piece index.
        piece: PieceIndex,
        /// Offset in the piece.
        offset: u32,
        /// The data (shares the receive buffer's allocation).
        data: Bytes,
    },
    /// Withdraws a request.
    Cancel(BlockRequest),
    /// BEP 5: the sender's DHT port.
    Port(u16),
    /// BEP 6: the sender suggests this piece.
    Suggest(PieceIndex),
    /// BEP 6: sender has every piece.
    HaveAll,
    /// BEP 6: sender has no piece.
    HaveNone,
    /// BEP 6: the sender will not serve this request.
    Reject(BlockRequest),
    /// BEP 6: the receiver may request this piece while choked.
    AllowedFast(PieceIndex),
    /// BEP 10: extended message; id 0 is the extension handshake, others are
    /// the receiver's ids from its handshake's `m` dictionary.
    Extended {
        /// Extended message id.
        id: u8,
        /// The payload after the id byte.
        payload: Bytes,
    },
    /// BEP 52 hash request.
    HashRequest(HashRequest),
    /// BEP 52 hashes: the request's fields and the hashes (a multiple of 32 bytes).
    Hashes {
        /// What these hashes answer.
        request: HashRequest,
        /// Concatenated 32-byte hashes.
        hashes: Bytes,
    },
    /// BEP 52 hash reject.
    HashReject(HashRequest),
    /// A message id this codec does not know; ignored by the connection.
    Unknown {
        /// The id byte.
        id: u8,
        /// The payload after it.
        payload: Bytes,
    },
}

/// Size limits enforced by the decoder, per message kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecLimits {
    /// Largest block in a `piece` message and in a `request` (default 16 KiB).
    pub max_block_len: u32,
    /// Largest bitfield payload in bytes (default 256 KiB: two million pieces).
    /// The connection narrows this to the exact length once the piece count is known.
    pub max_bitfield_len: u32,
    /// Largest extended message payload (default 1 MiB).
    pub max_extended_len: u32,
    /// Largest number of hashes in a BEP 52 `hashes` message (default 512 + 64 proof).
    pub max_hashes: u32,
    /// Largest payload of an unknown message id (default 16 KiB + 13).
    pub max_unknown_len: u32,
}

impl Default for CodecLimits {
    fn default() -> Self {
        CodecLimits {
            max_block_len: BLOCK_SIZE,
            max_bitfield_len: 256 * 1024,
            max_extended_len: 1 << 20,
            max_hashes: 512 + 64,
            max_unknown_len: BLOCK_SIZE + 13,
        }
    }
}

impl CodecLimits {
    fn max_payload(&self, msg_id: u8) -> u32 {
        match msg_id {
            id::CHOKE
            | id::UNCHOKE
            | id::INTERESTED
            | id::NOT_INTERESTED
            | id::HAVE_ALL
            | id::HAVE_NONE => 1,
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => 5,
            id::REQUEST | id::CANCEL | id::REJECT => 13,
            id::PORT => 3,
            id::BITFIELD => self.max_bitfield_len.saturating_add(1),
            id::PIECE => self.max_block_len.saturating_add(9),
            id::EXTENDED => self.max_extended_len.saturating_add(2),
            id::HASH_REQUEST | id::HASH_REJECT => 1 + HASH_REQUEST_LEN as u32,
            id::HASHES => self
                .max_hashes
                .saturating_mul(32)
                .saturating_add(1 + HASH_REQUEST_LEN as u32),
            _ => self.max_unknown_len.saturating_add(1),
        }
    }

    fn min_payload(msg_id: u8) -> u32 {
        match msg_id {
            id::PIECE => 10,
            id::EXTENDED => 2,
            id::HASHES => 1 + HASH_REQUEST_LEN as u32,
            id::BITFIELD => 1,
            _ => Self::exact(msg_id).unwrap_or(1),
        }
    }

    fn exact(msg_id: u8) -> Option<u32> {
        match msg_id {
            id::CHOKE
            | id::UNCHOKE
            | id::INTERESTED
            | id::NOT_INTERESTED
            | id::HAVE_ALL
            | id::HAVE_NONE => Some(1),
            id::HAVE | id::SUGGEST | id::ALLOWED_FAST => Some(5),
            id::REQUEST | id::CANCEL | id::REJECT => Some(13),
            id::PORT => Some(3),
            id::HASH_REQUEST | id::HASH_REJECT => Some(1 + HASH_REQUEST_LEN as u32),
            _ => None,
        }
    }

    /// The largest length prefix any message may have under these limits.
    pub fn max_message_len(&self) -> u32 {
        [
            id::BITFIELD,
            id::PIECE,
            id::EXTENDED,
            id::HASHES,
            0xff, // unknown
        ]
        .iter()
        .map(|&i| self.max_payload(i))
        .max()
        .unwrap_or(0)
    }
}

/// Why bytes are not a valid message. The connection closes on any of these.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length prefix exceeds every limit (checked before the id is read).
    #[error("wire: length prefix {len} exceeds the largest allowed message ({limit})")]
    Oversized {
        /// The length prefix.
        len: u32,
        /// The largest allowed.
        limit: u32,
    },
    /// The length is outside what this message id allows.
    #[error("wire: message id {id} with length {len}, allowed {min}..={max}")]
    BadLength {
        /// Message id.
        id: u8,
        /// The length prefix (id byte included).
        len: u32,
        /// Smallest allowed length.
        min: u32,
        /// Largest allowed length.
        max: u32,
    },
    /// A field value the protocol forbids.
    #[error("wire: message id {id}: {reason}")]
    Invalid {
        /// Message id.
        id: u8,
        /// What is wrong.
        reason: &'static str,
    },
}

/// Decodes one message from the front of `buf`, removing its bytes.
/// `Ok(None)`: more bytes are needed (nothing is consumed).
pub fn decode(buf: &mut BytesMut, limits: &CodecLimits) -> Result<Option<Message>, DecodeError> {
    let Some(len_bytes) = buf.get(..4) else {
        return Ok(None);
    };
    let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
    if len == 0 {
        buf.advance(4);
        return Ok(Some(Message::KeepAlive));
    }
    let overall = limits.max_message_len();
    if len > overall {
        return Err(DecodeError::Oversized {
            len,
            limit: overall,
        });
    }
    let Some(&msg_id) = buf.get(4) else {
        return Ok(None);
    };
    let (min, max) = match CodecLimits::exact(msg_id) {
        Some(e) => (e, e),
        None => (CodecLimits::min_payload(msg_id), limits.max_payload(msg_id)),
    };
    if len < min || len > max {
        return Err(DecodeError::BadLength {
            id: msg_id,
            len,
            min,
            max,
        });
    }
    let total = 4 + len as usize;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    let mut frame = buf.split_to(total).freeze();
    frame.advance(5);
    parse_payload(msg_id, frame).map(Some)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(s) = b.get(at..at + 4) {
        a.copy_from_slice(s);
    }
    u32::from_be_bytes(a)
}

fn block(p: &[u8]) -> BlockRequest {
    BlockRequest {
        piece: PieceIndex(u32_at(p, 0)),
        offset: u32_at(p, 4),
        length: u32_at(p, 8),
    }
}

fn hash_request(p: &[u8]) -> HashRequest {
    let mut pieces_root = [0u8; 32];
    if let Some(s) = p.get(..32) {
        pieces_root.copy_from_slice(s);
    }
    HashRequest {
        pieces_root,
        base_layer: u32_at(p, 32),
        index: u32_at(p, 36),
        length: u32_at(p, 40),
        proof_layers: u32_at(p, 44),
    }
}

/// Lengths were checked by the caller against [`CodecLimits`].
fn parse_payload(msg_id: u8, mut p: Bytes) -> Result<Message, DecodeError> {
    Ok(match msg_id {
        id::CHOKE => Message::Choke,
        id::UNCHOKE => Message::Unchoke,
        id::INTERESTED => Message::Interested,
        id::NOT_INTERESTED => Message::NotInterested,
        id::HAVE => Message::Have(PieceIndex(u32_at(&p, 0))),
        id::BITFIELD => Message::Bitfield(p),
        id::REQUEST => Message::Request(block(&p)),
        id::PIECE => {
            let piece = u32_at(&p, 0);
            let offset = u32_at(&p, 4);
            p.advance(8);
            Message::Piece {
                piece: PieceIndex(piece),
                offset,
                data: p,
            }
        }
        id::CANCEL => Message::Cancel(block(&p)),
        id::PORT => Message::Port(u16::from_be_bytes([
            p.first().copied().unwrap_or(0),
            p.get(1).copied().unwrap_or(0),
        ])),
        id::SUGGEST => Message::Suggest(PieceIndex(u32_at(&p, 0))),
        id::HAVE_ALL => Message::HaveAll,
        id::HAVE_NONE => Message::HaveNone,
        id::REJECT => Message::Reject(block(&p)),
        id::ALLOWED_FAST => Message::AllowedFast(PieceIndex(u32_at(&p, 0))),
        id::EXTENDED => {
            let ext = p.first().copied().unwrap_or(0);
            p.advance(1);
            Message::Extended {
                id: ext,
                payload: p,
            }
        }
        id::HASH_REQUEST => Message::HashRequest(hash_request(&p)),
        id::HASH_REJECT => Message::HashReject(hash_request(&p)),
        id::HASHES => {
            let request = hash_request(&p);
            p.advance(HASH_REQUEST_LEN);
            if p.len() % 32 != 0 {
                return Err(DecodeError::Invalid {
                    id: msg_id,
                    reason: "hashes payload is not a multiple of 32 bytes",
                });
            }
            Message::Hashes { request, hashes: p }
        }
        other => Message::Unknown {
            id: other,
            payload: p,
        },
    })
}

fn put_block(out: &mut BytesMut, msg_id: u8, b: &BlockRequest) {
    out.put_u32(13);
    out.put_u8(msg_id);
    out.put_u32(b.piece.0);
    out.put_u32(b.offset);
    out.put_u32(b.length);
}

fn put_hash_request(out: &mut BytesMut, msg_id: u8, h: &HashRequest, extra: usize) {
    out.put_u32((1 + HASH_REQUEST_LEN + extra) as u32);
    out.put_u8(msg_id);
    out.put_slice(&h.pieces_root);
    out.put_u32(h.base_layer);
    out.put_u32(h.index);
    out.put_u32(h.length);
    out.put_u32(h.proof_layers);
}

fn put_simple(out: &mut BytesMut, msg_id: u8) {
    out.put_u32(1);
    out.put_u8(msg_id);
}

fn put_u32_msg(out: &mut BytesMut, msg_id: u8, v: u32) {
    out.put_u32(5);
    out.put_u8(msg_id);
    out.put_u32(v);
}

/// Writes the 13-byte header of a `piece` message carrying `data_len` bytes;
/// the caller sends the data after it (so block data is never copied).
pub fn encode_piece_header(out: &mut BytesMut, piece: u32, offset: u32, data_len: u32) {
    out.put_u32(9u32.saturating_add(data_len));
    out.put_u8(id::PIECE);
    out.put_u32(piece);
    out.put_u32(offset);
}

impl Message {
    /// Appends the wire encoding (length prefix included) to `out`.
    /// Payloads longer than `u32::MAX` cannot be framed and are not produced by this crate.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        match self {
            Message::KeepAlive => out.put_u32(0),
            Message::Choke => put_simple(out, id::CHOKE),
            Message::Unchoke => put_simple(out, id::UNCHOKE),
            Message::Interested => put_simple(out, id::INTERESTED),
            Message::NotInterested => put_simple(out, id::NOT_INTERESTED),
            Message::HaveAll => put_simple(out, id::HAVE_ALL),
            Message::HaveNone => put_simple(out, id::HAVE_NONE),
            Message::Have(i) => put_u32_msg(out, id::HAVE, i.0),
            Message::Suggest(i) => put_u32_msg(out, id::SUGGEST, i.0),
            Message::AllowedFast(i) => put_u32_msg(out, id::ALLOWED_FAST, i.0),
            Message::Bitfield(b) => {
                out.put_u32(1 + b.len() as u32);
                out.put_u8(id::BITFIELD);
                out.put_slice(b);
            }
            Message::Request(b) => put_block(out, id::REQUEST, b),
            Message::Cancel(b) => put_block(out, id::CANCEL, b),
            Message::Reject(b) => put_block(out, id::REJECT, b),
            Message::Piece {
                piece,
                offset,
                data,
            } => {
                encode_piece_header(out, piece.0, *offset, data.len() as u32);
                out.put_slice(data);
            }
            Message::Port(p) => {
                out.put_u32(3);
                out.put_u8(id::PORT);
                out.put_u16(*p);
            }
            Message::Extended { id: ext, payload } => {
                out.put_u32(2 + payload.len() as u32);
                out.put_u8(id::EXTENDED);
                out.put_u8(*ext);
                out.put_slice(payload);
            }
            Message::HashRequest(h) => put_hash_request(out, id::HASH_REQUEST, h, 0),
            Message::HashReject(h) => put_hash_request(out, id::HASH_REJECT, h, 0),
            Message::Hashes { request, hashes } => {
                put_hash_request(out, id::HASHES, request, hashes.len());
                out.put_slice(hashes);
            }
            Message::Unknown { id: m, payload } => {
                out.put_u32(1 + payload.len() as u32);
                out.put_u8(*m);
                out.put_slice(payload);
            }
        }
    }

    /// Number of bytes [`Message::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        4 + match self {
            Message::KeepAlive => 0,
            Message::Choke
            | Message::Unchoke
            | Message::Interested
            | Message::NotInterested
            | Message::HaveAll
            | Message::HaveNone => 1,
            Message::Have(_) | Message::Suggest(_) | Message::AllowedFast(_) => 5,
            Message::Bitfield(b) => 1 + b.len(),
            Message::Request(_) | Message::Cancel(_) | Message::Reject(_) => 13,
            Message::Piece { data, .. } => 9 + data.len(),
            Message::Port(_) => 3,
            Message::Extended { payload, .. } => 2 + payload.len(),
            Message::HashRequest(_) | Message::HashReject(_) => 1 + HASH_REQUEST_LEN,
            Message::Hashes { hashes, .. } => 1 + HASH_REQUEST_LEN + hashes.len(),
            Message::Unknown { payload, .. } => 1 + payload.len(),
        }
    }

    /// A short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Message::KeepAlive => "keep-alive",
            Message::Choke => "choke",
            Message::Unchoke => "unchoke",
            Message::Interested => "interested",
            Message::NotInterested => "not interested",
            Message::Have(_) => "have",
            Message::Bitfield(_) => "bitfield",
            Message::Request(_) => "request",
            Message::Piece { .. } => "piece",
            Message::Cancel(_) => "cancel",
            Message::Port(_) => "port",
            Message::Suggest(_) => "suggest",
            Message::HaveAll => "have all",
            Message::HaveNone => "have none",
            Message::Reject(_) => "reject",
            Message::AllowedFast(_) => "allowed fast",
            Message::Extended { .. } => "extended",
            Message::HashRequest(_) => "hash request",
            Message::Hashes { .. } => "hashes",
            Message::HashReject(_) => "hash reject",
            Message::Unknown { .. } => "unknown",
        }
    }
}

#[cfg(test)]
#[path = "message_tests.rs"]
pub(crate) mod tests;
