//! BEP 9 `ut_metadata`: the request / data / reject messages (a bencoded dict,
//! followed by raw bytes for `data`), and [`MetadataAssembler`], which collects
//! the 16 KiB pieces of an info dictionary and checks its hash.

use bytes::Bytes;
use sha1::{Digest, Sha1};
use sha2::Sha256;
use shoal_bencode::{Encoder, Limits, Value};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Size of every metadata piece but the last.
pub const METADATA_PIECE_LEN: u32 = 16 * 1024;
/// Default bound on an info dictionary's size (16 MiB).
pub const DEFAULT_MAX_METADATA_SIZE: u64 = 16 << 20;

/// A `ut_metadata` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataMessage {
    /// `msg_type` 0: asks for a piece.
    Request {
        /// Piece index.
        piece: u32,
    },
    /// `msg_type` 1: a piece, with the whole dictionary's size.
    Data {
        /// Piece index.
        piece: u32,
        /// Size of the whole info dictionary.
        total_size: u64,
        /// The piece's bytes (shares the message buffer).
        data: Bytes,
    },
    /// `msg_type` 2: the sender will not give this piece.
    Reject {
        /// Piece index.
        piece: u32,
    },
}

/// Why a `ut_metadata` message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetadataMessageError {
    /// The dict is not valid bencode.
    #[error("ut_metadata: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// A required key is missing or has the wrong type.
    #[error("ut_metadata: field `{field}` missing or not an integer")]
    MissingField {
        /// The key.
        field: &'static str,
    },
    /// `msg_type` is not 0, 1 or 2 (BEP 9 says to ignore such messages).
    #[error("ut_metadata: unknown msg_type {0}")]
    UnknownType(i64),
    /// `piece` or `total_size` out of bounds, or data of the wrong length.
    #[error("ut_metadata: {what} (piece {piece})")]
    OutOfBounds {
        /// The piece index given.
        piece: i64,
        /// What is wrong.
        what: &'static str,
    },
    /// Raw bytes after a request or reject dict.
    #[error("ut_metadata: trailing bytes after a non-data message")]
    TrailingData,
}

/// Number of 16 KiB pieces in a dictionary of `size` bytes.
pub fn metadata_piece_count(size: u64) -> u32 {
    u32::try_from(size.div_ceil(u64::from(METADATA_PIECE_LEN))).unwrap_or(u32::MAX)
}

/// Expected length of piece `piece` of a dictionary of `size` bytes, if it exists.
pub fn metadata_piece_len(size: u64, piece: u32) -> Option<u32> {
    let start = u64::from(piece) * u64::from(METADATA_PIECE_LEN);
    if start >= size {
        return None;
    }
    Some((size - start).min(u64::from(METADATA_PIECE_LEN)) as u32)
}

impl MetadataMessage {
    /// The `data` message answering a request for `piece` of the info
    /// dictionary `info` (zero-copy slice), or `None` when the piece does not
    /// exist (answer with `Reject`).
    pub fn data_for(info: &Bytes, piece: u32) -> Option<Self> {
        let len = metadata_piece_len(info.len() as u64, piece)?;
        let start = piece as usize * METADATA_PIECE_LEN as usize;
        Some(MetadataMessage::Data {
            piece,
            total_size: info.len() as u64,
            data: info.slice(start..start + len as usize),
        })
    }

    /// Decodes the payload of a `ut_metadata` extended message. `max_size` bounds
    /// `total_size` and so the piece index.
    pub fn decode(payload: &Bytes, max_size: u64) -> Result<Self, MetadataMessageError> {
        let (v, end) = shoal_bencode::decode_prefix(payload, &Limits::message())?;
        let int = |field: &'static str| {
            v.as_dict()
                .and_then(|d| d.get(field.as_bytes()))
                .and_then(Value::as_int)
                .ok_or(MetadataMessageError::MissingField { field })
        };
        let msg_type = int("msg_type")?;
        let piece_raw = int("piece")?;
        let max_pieces = metadata_piece_count(max_size);
        let piece = u32::try_from(piece_raw)
            .ok()
            .filter(|&p| p < max_pieces)
            .ok_or(MetadataMessageError::OutOfBounds {
                piece: piece_raw,
                what: "piece index out of range",
            })?;
        let rest = payload.slice(end..);
        match msg_type {
            0 | 2 if !rest.is_empty() => Err(MetadataMessageError::TrailingData),
            0 => Ok(MetadataMessage::Request { piece }),
            2 => Ok(MetadataMessage::Reject { piece }),
            1 => {
                let total = int("total_size")?;
                let total_size = u64::try_from(total)
                    .ok()
                    .filter(|&t| t > 0 && t <= max_size)
                    .ok_or(MetadataMessageError::OutOfBounds {
                        piece: piece_raw,
                        what: "total_size zero, negative or over the limit",
                    })?;
                let expected = metadata_piece_len(total_size, piece).ok_or(
                    MetadataMessageError::OutOfBounds {
                        piece: piece_raw,
                        what: "piece beyond total_size",
                    },
                )?;
                if rest.len() != expected as usize {
                    return Err(MetadataMessageError::OutOfBounds {
                        piece: piece_raw,
                        what: "data length does not match the piece size",
                    });
                }
                Ok(MetadataMessage::Data {
                    piece,
                    total_size,
                    data: rest,
                })
            }
            other => Err(MetadataMessageError::UnknownType(other)),
        }
    }

    /// Encodes the payload (dict, then the data for `Data`).
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(48);
        let mut e = Encoder::new(&mut out);
        e.begin_dict();
        match self {
            MetadataMessage::Request { piece } | MetadataMessage::Reject { piece } => {
                let t = if matches!(self, MetadataMessage::Request { .. }) {
                    0
                } else {
                    2
                };
                e.bytes(b"msg_type")
                    .int(t)
                    .bytes(b"piece")
                    .int(i64::from(*piece))
                    .end();
            }
            MetadataMessage::Data {
                piece,
                total_size,
                data,
            } => {
                e.bytes(b"msg_type")
                    .int(1)
                    .bytes(b"piece")
                    .int(i64::from(*piece))
                    .bytes(b"total_size")
                    .int(i64::try_from(*total_size).unwrap_or(i64::MAX))
                    .end();
                out.extend_from_slice(data);
            }
        }
        Bytes::from(out)
    }
}

/// The hash an info dictionary must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataHash {
    /// v1: SHA-1 of the info dictionary.
    V1(shoal_base::InfoHashV1),
    /// v2: SHA-256 of the info dictionary.
    V2(shoal_base::InfoHashV2),
    /// v2, known only in the 20-byte truncated form that v2 connections use in
    /// the handshake: the first 20 bytes of the SHA-256 must match.
    V2Truncated(shoal_base::InfoHash),
}

impl MetadataHash {
    fn matches(&self, data: &[u8]) -> bool {
        match self {
            MetadataHash::V1(h) => Sha1::digest(data).as_slice() == h.0,
            MetadataHash::V2(h) => Sha256::digest(data).as_slice() == h.0,
            MetadataHash::V2Truncated(h) => Sha256::digest(data).get(..20) == Some(&h.0[..]),
        }
    }
}

/// Why the assembler refused input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum MetadataAssemblyError {
    /// The announced size is zero or over the limit.
    #[error("metadata: size {size} is zero or over the limit {limit}")]
    BadSize {
        /// The size announced.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A piece index beyond the dictionary, or data of the wrong length.
    #[error("metadata: piece {piece} has {got} bytes, expected {expected}")]
    BadPiece {
        /// Piece index.
        piece: u32,
        /// Bytes received.
        got: usize,
        /// Bytes expected (0 when the piece does not exist).
        expected: u32,
    },
    /// All pieces arrived but the hash does not match; every piece is wanted again.
    #[error("metadata: hash mismatch over {size} bytes; restarting")]
    HashMismatch {
        /// Size of the dictionary.
        size: u64,
    },
}

/// What [`MetadataAssembler::on_data`] achieved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataProgress {
    /// Pieces are still missing.
    Incomplete,
    /// A duplicate of a piece already held; ignored.
    Duplicate,
    /// Every piece arrived and the hash matches: the info dictionary.
    Complete(Bytes),
}

#[derive(Debug, Clone)]
enum Slot {
    Missing,
    InFlight(Instant),
    Have(Bytes),
}

/// Collects the pieces of an info dictionary from any number of peers (sans-IO).
///
/// Invariant: `slots.len() == metadata_piece_count(size)` and each held piece has
/// its exact expected length. Memory grows only with pieces actually received.
#[derive(Debug, Clone)]
pub struct MetadataAssembler {
    hash: MetadataHash,
    size: u64,
    slots: Vec<Slot>,
    request_timeout: Duration,
    failures: u32,
}

impl MetadataAssembler {
    /// Starts assembling a dictionary of `size` bytes (as told by a peer's
    /// `metadata_size`) that must hash to `hash`.
    pub fn new(
        hash: MetadataHash,
        size: u64,
        max_size: u64,
    ) -> Result<Self, MetadataAssemblyError> {
        if size == 0 || size > max_size {
            return Err(MetadataAssemblyError::BadSize {
                size,
                limit: max_size,
            });
        }
        Ok(MetadataAssembler {
            hash,
            size,
            slots: vec![Slot::Missing; metadata_piece_count(size) as usize],
            request_timeout: Duration::from_secs(30),
            failures: 0,
        })
    }

    /// Sets after how long an unanswered request may be handed out again (default 30 s).
    pub fn set_request_timeout(&mut self, t: Duration) {
        self.request_timeout = t;
    }

    /// The dictionary's size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Number of pieces.
    pub fn piece_count(&self) -> u32 {
        self.slots.len() as u32
    }

    /// How many hash mismatches occurred so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Number of pieces held.
    pub fn pieces_have(&self) -> u32 {
        self.slots
            .iter()
            .filter(|s| matches!(s, Slot::Have(_)))
            .count() as u32
    }

    /// The next piece to request at `now`: a missing one, or one whose request
    /// timed out. Marks it in flight.
    pub fn next_request(&mut self, now: Instant) -> Option<u32> {
        let timeout = self.request_timeout;
        let i = self.slots.iter().position(|s| match s {
            Slot::Missing => true,
            Slot::InFlight(t) => now.saturating_duration_since(*t) >= timeout,
            Slot::Have(_) => false,
        })?;
        self.slots[i] = Slot::InFlight(now);
        Some(i as u32)
    }

    /// The peer rejected (or the connection lost) the request for `piece`: want it again.
    pub fn on_reject(&mut self, piece: u32) {
        if let Some(s @ Slot::InFlight(_)) = self.slots.get_mut(piece as usize) {
            *s = Slot::Missing;
        }
    }

    /// Accepts a piece. On completion checks the hash; on mismatch forgets all
    /// pieces and returns [`MetadataAssemblyError::HashMismatch`] (the caller may
    /// note which peers contributed and try others).
    pub fn on_data(
        &mut self,
        piece: u32,
        data: Bytes,
    ) -> Result<MetadataProgress, MetadataAssemblyError> {
        let expected = metadata_piece_len(self.size, piece);
        if expected != Some(data.len() as u32) || data.len() > METADATA_PIECE_LEN as usize {
            return Err(MetadataAssemblyError::BadPiece {
                piece,
                got: data.len(),
                expected: expected.unwrap_or(0),
            });
        }
        let Some(slot) = self.slots.get_mut(piece as usize) else {
            return Err(MetadataAssemblyError::BadPiece {
                piece,
                got: data.len(),
                expected: 0,
            });
        };
        if matches!(slot, Slot::Have(_)) {
            return Ok(MetadataProgress::Duplicate);
        }
        *slot = Slot::Have(data);
        if self.slots.iter().any(|s| !matches!(s, Slot::Have(_))) {
            return Ok(MetadataProgress::Incomplete);
        }
        let mut whole = Vec::with_capacity(self.size as usize);
        for s in &self.slots {
            if let Slot::Have(b) = s {
                whole.extend_from_slice(b);
            }
        }
        if self.hash.matches(&whole) {
            Ok(MetadataProgress::Complete(Bytes::from(whole)))
        } else {
            self.failures += 1;
            for s in &mut self.slots {
                *s = Slot::Missing;
            }
            Err(MetadataAssemblyError::HashMismatch { size: self.size })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spec_examples() {
        let req = MetadataMessage::Request { piece: 0 };
        assert_eq!(&req.encode()[..], b"d8:msg_typei0e5:piecei0ee");
        let rej = MetadataMessage::Reject { piece: 0 };
        assert_eq!(&rej.encode()[..], b"d8:msg_typei2e5:piecei0ee");
        let data = MetadataMessage::Data {
            piece: 0,
            total_size: 3425,
            data: Bytes::from(vec![b'x'; 3425]),
        };
        let enc = data.encode();
        assert!(enc.starts_with(b"d8:msg_typei1e5:piecei0e10:total_sizei3425ee"));
        assert_eq!(
            MetadataMessage::decode(&enc, DEFAULT_MAX_METADATA_SIZE),
            Ok(data)
        );
    }

    #[test]
    fn hostile_messages() {
        let max = DEFAULT_MAX_METADATA_SIZE;
        let d = |b: &'static [u8]| MetadataMessage::decode(&Bytes::from_static(b), max);
        assert!(matches!(
            d(b"d8:msg_typei0e5:piecei1024ee"),
            Err(MetadataMessageError::OutOfBounds { .. })
        ));
        assert!(matches!(
            d(b"d8:msg_typei0e5:piecei-1ee"),
            Err(MetadataMessageError::OutOfBounds { .. })
        ));
        assert!(matches!(
            d(b"d8:msg_typei7e5:piecei0ee"),
            Err(MetadataMessageError::UnknownType(7))
        ));
        assert!(matches!(
            d(b"d5:piecei0ee"),
            Err(MetadataMessageError::MissingField { field: "msg_type" })
        ));
        assert!(matches!(
            d(b"d8:msg_typei1e5:piecei0ee"),
            Err(MetadataMessageError::MissingField {
                field: "total_size"
            })
        ));
        assert!(matches!(
            d(b"d8:msg_typei1e5:piecei0e10:total_sizei99999999999eexx"),
            Err(MetadataMessageError::OutOfBounds { .. })
        ));
        // data shorter than the last piece should be
        assert!(matches!(
            d(b"d8:msg_typei1e5:piecei0e10:total_sizei5eexx"),
            Err(MetadataMessageError::OutOfBounds { .. })
        ));
        assert!(matches!(
            d(b"d8:msg_typei0e5:piecei0eex"),
            Err(MetadataMessageError::TrailingData)
        ));
        assert!(d(b"i1e").is_err());
        assert!(d(b"").is_err());
    }

    fn info(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 % 251) as u8).collect()
    }

    #[test]
    fn assembles_and_retries_after_corruption() {
        let dict = info(40_000);
        let hash = MetadataHash::V1(shoal_base::InfoHashV1(Sha1::digest(&dict).into()));
        let mut a =
            MetadataAssembler::new(hash, dict.len() as u64, DEFAULT_MAX_METADATA_SIZE).unwrap();
        assert_eq!(a.piece_count(), 3);
        let t0 = Instant::now();
        let reqs: Vec<u32> = std::iter::from_fn(|| a.next_request(t0)).collect();
        assert_eq!(reqs, vec![0, 1, 2]);
        assert_eq!(a.next_request(t0 + Duration::from_secs(1)), None);
        let piece = |i: usize, bad: bool| {
            let mut v = dict[i * 16384..((i + 1) * 16384).min(dict.len())].to_vec();
            if bad {
                v[0] ^= 1;
            }
            Bytes::from(v)
        };
        assert_eq!(
            a.on_data(0, piece(0, false)),
            Ok(MetadataProgress::Incomplete)
        );
        assert_eq!(
            a.on_data(0, piece(0, false)),
            Ok(MetadataProgress::Duplicate)
        );
        assert!(matches!(
            a.on_data(2, Bytes::from_static(b"short")),
            Err(MetadataAssemblyError::BadPiece { piece: 2, .. })
        ));
        assert_eq!(
            a.on_data(1, piece(1, true)),
            Ok(MetadataProgress::Incomplete)
        );
        assert_eq!(
            a.on_data(2, piece(2, false)),
            Err(MetadataAssemblyError::HashMismatch { size: 40_000 })
        );
        assert_eq!(a.failures(), 1);
        assert_eq!(a.pieces_have(), 0);
        // everything is wanted again
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(a.next_request(t1), Some(0));
        a.on_reject(0);
        let again: Vec<u32> = std::iter::from_fn(|| a.next_request(t1)).collect();
        assert_eq!(again, vec![0, 1, 2]);
        for i in [2usize, 0] {
            assert_eq!(
                a.on_data(i as u32, piece(i, false)),
                Ok(MetadataProgress::Incomplete)
            );
        }
        assert_eq!(
            a.on_data(1, piece(1, false)),
            Ok(MetadataProgress::Complete(Bytes::from(dict)))
        );
    }

    #[test]
    fn serving_pieces() {
        let info = Bytes::from(info(20_000));
        let Some(MetadataMessage::Data {
            piece,
            total_size,
            data,
        }) = MetadataMessage::data_for(&info, 1)
        else {
            panic!("piece 1 exists");
        };
        assert_eq!(
            (piece, total_size, data.len()),
            (1, 20_000, 20_000 - 16_384)
        );
        assert_eq!(&data[..], &info[16_384..]);
        assert_eq!(MetadataMessage::data_for(&info, 2), None);
        // what we serve decodes on the other side
        let m = MetadataMessage::data_for(&info, 0).unwrap();
        assert_eq!(
            MetadataMessage::decode(&m.encode(), DEFAULT_MAX_METADATA_SIZE),
            Ok(m)
        );
    }

    #[test]
    fn request_timeout_reissues() {
        let mut a =
            MetadataAssembler::new(MetadataHash::V2(shoal_base::InfoHashV2([0; 32])), 10, 100)
                .unwrap();
        let t0 = Instant::now();
        assert_eq!(a.next_request(t0), Some(0));
        assert_eq!(a.next_request(t0 + Duration::from_secs(29)), None);
        assert_eq!(a.next_request(t0 + Duration::from_secs(30)), Some(0));
        assert!(matches!(
            MetadataAssembler::new(MetadataHash::V2(shoal_base::InfoHashV2([0; 32])), 101, 100),
            Err(MetadataAssemblyError::BadSize { .. })
        ));
    }

    #[test]
    fn v2_hash() {
        let dict = info(100);
        let hash = MetadataHash::V2(shoal_base::InfoHashV2(Sha256::digest(&dict).into()));
        let mut a = MetadataAssembler::new(hash, 100, 1000).unwrap();
        assert!(matches!(
            a.on_data(0, Bytes::from(dict)),
            Ok(MetadataProgress::Complete(_))
        ));
    }

    proptest! {
        #[test]
        fn round_trip(piece in 0u32..1024, size in 1u64..DEFAULT_MAX_METADATA_SIZE, kind in 0u8..3) {
            let m = match kind {
                0 => MetadataMessage::Request { piece },
                1 => {
                    let piece = piece.min(metadata_piece_count(size) - 1);
                    let len = metadata_piece_len(size, piece).unwrap();
                    MetadataMessage::Data { piece, total_size: size, data: Bytes::from(vec![1u8; len as usize]) }
                }
                _ => MetadataMessage::Reject { piece },
            };
            prop_assert_eq!(MetadataMessage::decode(&m.encode(), DEFAULT_MAX_METADATA_SIZE), Ok(m));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = MetadataMessage::decode(&Bytes::from(data), DEFAULT_MAX_METADATA_SIZE);
        }
    }
}
