//! The uTP packet codec (BEP 29): the 20-byte header, the linked list of
//! extension headers (selective ACK, extension bits; others are skipped)
//! and the payload.
//!
//! Decoding borrows from the datagram and never panics: every length is
//! checked and a malformed packet is a typed [`DecodeError`].
//! [`is_utp`] is the cheap test a shared UDP socket uses to route a datagram
//! to uTP rather than to the DHT or a tracker client.

/// Length of the fixed header.
pub const HEADER_LEN: usize = 20;
/// The protocol version this crate speaks.
pub const VERSION: u8 = 1;
/// Extension type of a selective ACK.
pub const EXT_SACK: u8 = 1;
/// Extension type of the 8 extension bytes (libutp's "extension bits":
/// libutp drops a packet whose type-2 extension is not 8 bytes long;
/// libtorrent skips it).
pub const EXT_BITS: u8 = 2;
/// In the extension bits (byte 0): the sender reads a run of datagrams as
/// one coalesced buffer (UDP GRO), so it takes a GSO burst without loss.
/// A shoal bit, sent in SYNs and in the STATE that answers one.
pub const BIT_COALESCED_READS: u8 = 0x01;
/// The extension bits of an endpoint that reads coalesced datagrams.
pub const COALESCED_READS_BITS: [u8; 8] = [BIT_COALESCED_READS, 0, 0, 0, 0, 0, 0, 0];
/// Most extension headers one packet may carry (each takes at least two bytes,
/// so this only bounds the work on hostile input).
pub const MAX_EXTENSIONS: usize = 16;

/// The five packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// Payload data.
    Data = 0,
    /// Finalize: the sender will send no sequence number above this one.
    Fin = 1,
    /// An ACK without data (does not consume a sequence number).
    State = 2,
    /// Terminate the connection forcefully.
    Reset = 3,
    /// Open a connection.
    Syn = 4,
}

impl PacketType {
    /// The type for a 4-bit code, if it is one.
    pub fn from_code(code: u8) -> Option<PacketType> {
        Some(match code {
            0 => PacketType::Data,
            1 => PacketType::Fin,
            2 => PacketType::State,
            3 => PacketType::Reset,
            4 => PacketType::Syn,
            _ => return None,
        })
    }
}

/// Why a datagram is not a uTP packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Shorter than the fixed header.
    #[error("utp: packet of {0} bytes is shorter than the 20-byte header")]
    TooShort(usize),
    /// The version nibble is not 1.
    #[error("utp: unsupported version {0}")]
    Version(u8),
    /// The type nibble is not one of the five types.
    #[error("utp: unknown packet type {0}")]
    Type(u8),
    /// An extension header runs past the end of the packet.
    #[error("utp: extension {ext} at offset {offset} is truncated")]
    Extension {
        /// The extension type.
        ext: u8,
        /// Offset of its two-byte header.
        offset: usize,
    },
    /// More extension headers than [`MAX_EXTENSIONS`].
    #[error("utp: more than {MAX_EXTENSIONS} extension headers")]
    TooManyExtensions,
    /// A selective ACK with an empty bitmask.
    #[error("utp: empty selective ack")]
    EmptySack,
}

/// The fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// Packet type.
    pub ty: PacketType,
    /// Type of the first extension header (0: none).
    pub extension: u8,
    /// Connection id.
    pub connection_id: u16,
    /// Sender's clock, microseconds (wrapping).
    pub timestamp_us: u32,
    /// The sender's latest one-way delay measurement of our packets.
    pub timestamp_diff_us: u32,
    /// Bytes the sender can still receive.
    pub wnd_size: u32,
    /// Sequence number (packets, not bytes).
    pub seq_nr: u16,
    /// Last sequence number received in order from the other side.
    pub ack_nr: u16,
}

impl Header {
    /// Writes the 20 header bytes.
    pub fn encode(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = ((self.ty as u8) << 4) | VERSION;
        out[1] = self.extension;
        out[2..4].copy_from_slice(&self.connection_id.to_be_bytes());
        out[4..8].copy_from_slice(&self.timestamp_us.to_be_bytes());
        out[8..12].copy_from_slice(&self.timestamp_diff_us.to_be_bytes());
        out[12..16].copy_from_slice(&self.wnd_size.to_be_bytes());
        out[16..18].copy_from_slice(&self.seq_nr.to_be_bytes());
        out[18..20].copy_from_slice(&self.ack_nr.to_be_bytes());
    }

    /// Reads the fixed header (extensions are not followed).
    pub fn decode(b: &[u8]) -> Result<Header, DecodeError> {
        let Some(h) = b.get(..HEADER_LEN) else {
            return Err(DecodeError::TooShort(b.len()));
        };
        let version = h[0] & 0x0f;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let code = h[0] >> 4;
        let ty = PacketType::from_code(code).ok_or(DecodeError::Type(code))?;
        let u16_at = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
        let u32_at = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        Ok(Header {
            ty,
            extension: h[1],
            connection_id: u16_at(2),
            timestamp_us: u32_at(4),
            timestamp_diff_us: u32_at(8),
            wnd_size: u32_at(12),
            seq_nr: u16_at(16),
            ack_nr: u16_at(18),
        })
    }
}

/// A decoded packet, borrowing from its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The fixed header.
    pub header: Header,
    /// The selective ACK bitmask (bit `i` acknowledges `ack_nr + 2 + i`), if any.
    pub sack: Option<&'a [u8]>,
    /// The extension bits ([`EXT_BITS`], exactly 8 bytes), if any.
    pub ext_bits: Option<[u8; 8]>,
    /// The payload after every extension header.
    pub payload: &'a [u8],
}

impl<'a> Packet<'a> {
    /// Decodes a datagram. Unknown extensions (and extension bits not 8
    /// bytes long) are skipped; of several selective ACKs or extension
    /// bits the first counts.
    pub fn decode(b: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let header = Header::decode(b)?;
        let mut at = HEADER_LEN;
        let mut ext = header.extension;
        let mut sack = None;
        let mut ext_bits = None;
        let mut count = 0;
        while ext != 0 {
            count += 1;
            if count > MAX_EXTENSIONS {
                return Err(DecodeError::TooManyExtensions);
            }
            let Some(&[next, len]) = b.get(at..at + 2) else {
                return Err(DecodeError::Extension { ext, offset: at });
            };
            let body = b
                .get(at + 2..at + 2 + len as usize)
                .ok_or(DecodeError::Extension { ext, offset: at })?;
            if ext == EXT_SACK && sack.is_none() {
                if body.is_empty() {
                    return Err(DecodeError::EmptySack);
                }
                sack = Some(body);
            }
            if ext == EXT_BITS && ext_bits.is_none() {
                ext_bits = <[u8; 8]>::try_from(body).ok();
            }
            at += 2 + len as usize;
            ext = next;
        }
        Ok(Packet {
            header,
            sack,
            ext_bits,
            payload: &b[at..],
        })
    }

    /// Sequence numbers the selective ACK acknowledges, in order.
    pub fn sacked(&self) -> impl Iterator<Item = u16> + '_ {
        let base = self.header.ack_nr.wrapping_add(2);
        self.sack.into_iter().flat_map(move |mask| {
            mask.iter().enumerate().flat_map(move |(byte, bits)| {
                (0..8u16)
                    .filter(move |bit| bits & (1 << bit) != 0)
                    .map(move |bit| base.wrapping_add(byte as u16 * 8 + bit))
            })
        })
    }

    /// Writes `header`, an optional selective ACK and `payload` to the end of
    /// `out`; returns the number of bytes written. The header's `extension`
    /// field is set from `sack`. A SACK mask must be 4 to 252 bytes long.
    pub fn encode(
        header: &Header,
        sack: Option<&[u8]>,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> usize {
        Self::encode_with_bits(header, None, sack, payload, out)
    }

    /// As [`Packet::encode`], with extension bits ([`EXT_BITS`]) before
    /// the selective ACK when `bits` is given.
    pub fn encode_with_bits(
        header: &Header,
        bits: Option<&[u8; 8]>,
        sack: Option<&[u8]>,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> usize {
        let start = out.len();
        let mut h = *header;
        let after_bits = if sack.is_some() { EXT_SACK } else { 0 };
        h.extension = if bits.is_some() { EXT_BITS } else { after_bits };
        let mut fixed = [0u8; HEADER_LEN];
        h.encode(&mut fixed);
        out.extend_from_slice(&fixed);
        if let Some(bits) = bits {
            out.push(after_bits);
            out.push(8);
            out.extend_from_slice(bits);
        }
        if let Some(mask) = sack {
            debug_assert!(mask.len() >= 4 && mask.len() <= 252 && mask.len() % 4 == 0);
            out.push(0);
            out.push(mask.len() as u8);
            out.extend_from_slice(mask);
        }
        out.extend_from_slice(payload);
        out.len() - start
    }
}

/// Bytes the extension bits add to a header.
pub const EXT_BITS_OVERHEAD: usize = 10;

/// Bytes a selective ACK extension adds to a header, for a mask of `mask_len`.
pub fn sack_overhead(mask_len: usize) -> usize {
    if mask_len == 0 {
        0
    } else {
        2 + mask_len
    }
}

/// Whether a datagram on a shared UDP socket is meant for uTP: at least a
/// header long, version 1 in the low nibble of the first byte and a type of at
/// most 4 in the high one. DHT messages (bencoded dictionaries) start with `d`
/// (type 6) and UDP tracker packets are routed by their transaction, so
/// neither is mistaken for uTP.
pub fn is_utp(datagram: &[u8]) -> bool {
    datagram.len() >= HEADER_LEN && datagram[0] & 0x0f == VERSION && datagram[0] >> 4 <= 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(ty: PacketType) -> Header {
        Header {
            ty,
            extension: 0,
            connection_id: 0x1234,
            timestamp_us: 0xdead_beef,
            timestamp_diff_us: 7,
            wnd_size: 1 << 20,
            seq_nr: 65535,
            ack_nr: 9,
        }
    }

    #[test]
    fn header_layout_matches_bep29() {
        let mut out = Vec::new();
        Packet::encode(&header(PacketType::Syn), None, b"", &mut out);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(out[0], 0x41, "type in the high nibble, version in the low");
        assert_eq!(&out[2..4], &[0x12, 0x34]);
        assert_eq!(&out[4..8], &[0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(&out[16..20], &[0xff, 0xff, 0, 9]);
    }

    #[test]
    fn sack_bits_follow_the_spec() {
        // ack_nr 9: bit 0 of byte 0 is seq 11, bit 7 of byte 0 is seq 18,
        // bit 0 of byte 1 is seq 19.
        let mut out = Vec::new();
        let mask = [0b1000_0001, 0b0000_0001, 0, 0];
        Packet::encode(&header(PacketType::State), Some(&mask), b"", &mut out);
        assert_eq!(out[1], EXT_SACK);
        assert_eq!(&out[20..22], &[0, 4]);
        let p = Packet::decode(&out).unwrap();
        assert_eq!(p.sacked().collect::<Vec<_>>(), vec![11, 18, 19]);
        assert!(p.payload.is_empty());
    }

    #[test]
    fn unknown_extensions_are_skipped() {
        let mut out = Vec::new();
        let mut h = header(PacketType::Data);
        h.extension = 0;
        Packet::encode(&h, None, b"", &mut out);
        out[1] = 3; // close reason (libtorrent), 4 bytes
        out.extend_from_slice(&[1, 4, 0, 0, 0, 5]); // next: SACK
        out.extend_from_slice(&[0, 4, 1, 0, 0, 0]);
        out.extend_from_slice(b"payload");
        let p = Packet::decode(&out).unwrap();
        assert_eq!(p.sacked().collect::<Vec<_>>(), vec![11]);
        assert_eq!(p.payload, b"payload");
    }

    #[test]
    fn extension_bits_go_before_the_sack_and_come_back() {
        let mut out = Vec::new();
        let bits = [BIT_COALESCED_READS, 0, 0, 0, 0, 0, 0, 0];
        let sack = [1u8, 0, 0, 0];
        let n = Packet::encode_with_bits(
            &header(PacketType::Syn),
            Some(&bits),
            Some(&sack),
            b"x",
            &mut out,
        );
        assert_eq!(n, HEADER_LEN + EXT_BITS_OVERHEAD + 6 + 1);
        // The chain: bits (type 2, 8 bytes), then the SACK.
        assert_eq!(out[1], EXT_BITS);
        assert_eq!(&out[HEADER_LEN..HEADER_LEN + 2], &[EXT_SACK, 8]);
        let p = Packet::decode(&out).unwrap();
        assert_eq!(p.ext_bits, Some(bits));
        assert_eq!(p.sacked().collect::<Vec<_>>(), vec![11]);
        assert_eq!(p.payload, b"x");
        // Bits alone; and bits of the wrong length are skipped, as libtorrent does.
        out.clear();
        Packet::encode_with_bits(&header(PacketType::State), Some(&bits), None, b"", &mut out);
        assert_eq!(Packet::decode(&out).unwrap().ext_bits, Some(bits));
        out.clear();
        Packet::encode(&header(PacketType::State), None, b"", &mut out);
        out[1] = EXT_BITS;
        out.extend_from_slice(&[0, 4, 1, 1, 1, 1]);
        let p = Packet::decode(&out).unwrap();
        assert_eq!((p.ext_bits, p.payload), (None, &b""[..]));
    }

    #[test]
    fn malformed_packets_are_errors() {
        assert_eq!(Packet::decode(&[0x41; 5]), Err(DecodeError::TooShort(5)));
        let mut out = Vec::new();
        Packet::encode(&header(PacketType::Data), None, b"", &mut out);
        let mut v2 = out.clone();
        v2[0] = 0x02;
        assert_eq!(Packet::decode(&v2), Err(DecodeError::Version(2)));
        let mut t = out.clone();
        t[0] = 0x51;
        assert_eq!(Packet::decode(&t), Err(DecodeError::Type(5)));
        let mut e = out.clone();
        e[1] = 1;
        e.push(0);
        assert!(matches!(
            Packet::decode(&e),
            Err(DecodeError::Extension { .. })
        ));
        let mut long = out.clone();
        long[1] = 9;
        long.extend_from_slice(&[0, 200, 1]);
        assert!(matches!(
            Packet::decode(&long),
            Err(DecodeError::Extension { .. })
        ));
        let mut looped = out;
        looped[1] = 9;
        for _ in 0..40 {
            looped.extend_from_slice(&[9, 0]);
        }
        assert_eq!(Packet::decode(&looped), Err(DecodeError::TooManyExtensions));
    }

    #[test]
    fn demux_test() {
        let mut out = Vec::new();
        for ty in [
            PacketType::Data,
            PacketType::Fin,
            PacketType::State,
            PacketType::Reset,
            PacketType::Syn,
        ] {
            out.clear();
            Packet::encode(&header(ty), None, b"", &mut out);
            assert!(is_utp(&out));
        }
        assert!(!is_utp(
            b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"
        ));
        assert!(!is_utp(&[0x41; 19]));
        // A UDP tracker connect request starts with the protocol id 0x41727101980.
        assert!(!is_utp(&[
            0, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8
        ]));
    }

    proptest! {
        #[test]
        fn roundtrip(ty in 0u8..5, cid: u16, ts: u32, diff: u32, wnd: u32, seq: u16, ack: u16,
                     sack in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..=8usize)),
                     payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            let h = Header {
                ty: PacketType::from_code(ty).unwrap(),
                extension: 0,
                connection_id: cid,
                timestamp_us: ts,
                timestamp_diff_us: diff,
                wnd_size: wnd,
                seq_nr: seq,
                ack_nr: ack,
            };
            let sack = sack.map(|s| { let mut v = s; v.resize(v.len().div_ceil(4) * 4, 0); v });
            let mut out = Vec::new();
            let n = Packet::encode(&h, sack.as_deref(), &payload, &mut out);
            prop_assert_eq!(n, out.len());
            prop_assert!(is_utp(&out));
            let p = Packet::decode(&out).unwrap();
            prop_assert_eq!(p.header.ty, h.ty);
            prop_assert_eq!(p.header.seq_nr, seq);
            prop_assert_eq!(p.header.ack_nr, ack);
            prop_assert_eq!(p.header.wnd_size, wnd);
            prop_assert_eq!(p.sack, sack.as_deref());
            prop_assert_eq!(p.payload, &payload[..]);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = Packet::decode(&data).map(|p| p.sacked().count());
        }
    }
}
