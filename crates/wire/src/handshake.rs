//! The BEP 3 handshake: `<19>"BitTorrent protocol"<reserved:8><info_hash:20><peer_id:20>`,
//! 68 bytes. Parsing is split in two so a listener can look up the info-hash
//! (after the first 48 bytes) before deciding to answer.

use thiserror::Error;

/// The protocol string that follows the length byte 19.
pub const PROTOCOL: &[u8; 19] = b"BitTorrent protocol";
/// Length of the whole handshake.
pub const HANDSHAKE_LEN: usize = 68;
/// Length of the part up to and including the info-hash.
pub const HANDSHAKE_PREFIX_LEN: usize = 48;

pub use shoal_base::{InfoHash, PeerId};

/// Why a handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The first byte or the protocol string is not BitTorrent's.
    #[error("handshake: not a BitTorrent handshake (first bytes {first:02x?})")]
    BadProtocol {
        /// Up to the first 20 bytes received, for diagnostics.
        first: Vec<u8>,
    },
    /// The peer answered for a different torrent.
    #[error("handshake: info-hash mismatch")]
    InfoHashMismatch,
    /// The peer's id differs from the one expected (for example from a tracker).
    #[error("handshake: peer id mismatch")]
    PeerIdMismatch,
}

/// The 8 reserved bytes: feature bits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Reserved(pub [u8; 8]);

impl Reserved {
    /// What shoal advertises: fast extension and extension protocol, and DHT when `dht`.
    pub fn shoal(dht: bool) -> Self {
        let mut r = Reserved::default();
        r.set_fast(true);
        r.set_extension_protocol(true);
        r.set_dht(dht);
        r
    }
    fn bit(&self, byte: usize, mask: u8) -> bool {
        self.0[byte] & mask != 0
    }
    fn put(&mut self, byte: usize, mask: u8, on: bool) {
        if on {
            self.0[byte] |= mask;
        } else {
            self.0[byte] &= !mask;
        }
    }
    /// BEP 6 fast extension (`reserved[7] & 0x04`).
    pub fn fast(&self) -> bool {
        self.bit(7, 0x04)
    }
    /// Sets the BEP 6 bit.
    pub fn set_fast(&mut self, on: bool) {
        self.put(7, 0x04, on)
    }
    /// BEP 10 extension protocol (`reserved[5] & 0x10`).
    pub fn extension_protocol(&self) -> bool {
        self.bit(5, 0x10)
    }
    /// Sets the BEP 10 bit.
    pub fn set_extension_protocol(&mut self, on: bool) {
        self.put(5, 0x10, on)
    }
    /// BEP 5 DHT (`reserved[7] & 0x01`): the peer accepts `port` messages.
    pub fn dht(&self) -> bool {
        self.bit(7, 0x01)
    }
    /// Sets the BEP 5 bit.
    pub fn set_dht(&mut self, on: bool) {
        self.put(7, 0x01, on)
    }
    /// BEP 52 v2 upgrade bit (`reserved[7] & 0x10`).
    pub fn v2(&self) -> bool {
        self.bit(7, 0x10)
    }
    /// Sets the BEP 52 bit.
    pub fn set_v2(&mut self, on: bool) {
        self.put(7, 0x10, on)
    }
    /// The features both sides advertise (bitwise and).
    pub fn common(&self, other: &Reserved) -> Reserved {
        let mut r = [0u8; 8];
        for (i, b) in r.iter_mut().enumerate() {
            *b = self.0[i] & other.0[i];
        }
        Reserved(r)
    }
}

/// The first 48 bytes of a handshake: enough to pick the torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandshakePrefix {
    /// The peer's feature bits.
    pub reserved: Reserved,
    /// The torrent the peer wants.
    pub info_hash: InfoHash,
}

/// A complete handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// Feature bits.
    pub reserved: Reserved,
    /// The torrent.
    pub info_hash: InfoHash,
    /// The sender's peer id.
    pub peer_id: PeerId,
}

impl HandshakePrefix {
    /// Parses the first 48 bytes of `input`; `Ok(None)` when fewer are present.
    /// Fails as soon as the bytes present cannot start a handshake.
    pub fn parse(input: &[u8]) -> Result<Option<Self>, HandshakeError> {
        let header_len = input.len().min(20);
        let mut expected = [0u8; 20];
        expected[0] = 19;
        expected[1..].copy_from_slice(PROTOCOL);
        if input[..header_len] != expected[..header_len] {
            return Err(HandshakeError::BadProtocol {
                first: input[..header_len].to_vec(),
            });
        }
        let Some(rest) = input.get(20..HANDSHAKE_PREFIX_LEN) else {
            return Ok(None);
        };
        let mut reserved = [0u8; 8];
        reserved.copy_from_slice(&rest[..8]);
        let mut info_hash = [0u8; 20];
        info_hash.copy_from_slice(&rest[8..28]);
        Ok(Some(HandshakePrefix {
            reserved: Reserved(reserved),
            info_hash: InfoHash(info_hash),
        }))
    }
}

impl Handshake {
    /// Parses a whole handshake from the start of `input`; `Ok(None)` when fewer
    /// than 68 bytes are present. Bytes after the first 68 are not looked at.
    pub fn parse(input: &[u8]) -> Result<Option<Self>, HandshakeError> {
        let Some(prefix) = HandshakePrefix::parse(input)? else {
            return Ok(None);
        };
        Ok(
            parse_peer_id(input.get(HANDSHAKE_PREFIX_LEN..).unwrap_or(&[])).map(|peer_id| {
                Handshake {
                    reserved: prefix.reserved,
                    info_hash: prefix.info_hash,
                    peer_id,
                }
            }),
        )
    }

    /// The 68 wire bytes.
    pub fn encode(&self) -> [u8; HANDSHAKE_LEN] {
        let mut out = [0u8; HANDSHAKE_LEN];
        out[0] = 19;
        out[1..20].copy_from_slice(PROTOCOL);
        out[20..28].copy_from_slice(&self.reserved.0);
        out[28..48].copy_from_slice(&self.info_hash.0);
        out[48..68].copy_from_slice(&self.peer_id.0);
        out
    }
}

/// Reads the 20-byte peer id that follows the prefix; `None` when fewer are present.
pub fn parse_peer_id(input: &[u8]) -> Option<PeerId> {
    PeerId::from_slice(input.get(..20)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Handshake {
        Handshake {
            reserved: Reserved::shoal(true),
            info_hash: InfoHash([0xaa; 20]),
            peer_id: PeerId(*b"-SH0001-abcdefghijkl"),
        }
    }

    #[test]
    fn exact_bytes() {
        let b = sample().encode();
        assert_eq!(b[0], 19);
        assert_eq!(&b[1..20], b"BitTorrent protocol");
        assert_eq!(&b[20..28], &[0, 0, 0, 0, 0, 0x10, 0, 0x05]);
        assert_eq!(&b[28..48], &[0xaa; 20]);
        assert_eq!(&b[48..], b"-SH0001-abcdefghijkl");
    }

    #[test]
    fn round_trip_and_partial() {
        let b = sample().encode();
        for n in 0..HANDSHAKE_LEN {
            assert_eq!(Handshake::parse(&b[..n]), Ok(None), "prefix {n}");
        }
        assert_eq!(Handshake::parse(&b), Ok(Some(sample())));
        let p = HandshakePrefix::parse(&b[..48]).unwrap().unwrap();
        assert_eq!(p.info_hash, InfoHash([0xaa; 20]));
        assert!(p.reserved.fast() && p.reserved.extension_protocol() && p.reserved.dht());
        assert!(!p.reserved.v2());
        assert_eq!(parse_peer_id(&b[48..]), Some(sample().peer_id));
    }

    #[test]
    fn garbage_fails_early() {
        assert!(matches!(
            HandshakePrefix::parse(b"GET / HTTP/1.1"),
            Err(HandshakeError::BadProtocol { .. })
        ));
        assert!(matches!(
            HandshakePrefix::parse(&[0, 0, 0, 1]),
            Err(HandshakeError::BadProtocol { .. })
        ));
        assert_eq!(HandshakePrefix::parse(&[19, b'B']), Ok(None));
    }

    #[test]
    fn reserved_bits() {
        let mut r = Reserved::default();
        r.set_v2(true);
        assert_eq!(r.0[7], 0x10);
        r.set_v2(false);
        assert_eq!(r, Reserved::default());
        let both = Reserved::shoal(true).common(&Reserved::shoal(false));
        assert!(both.fast() && !both.dht());
    }
}
