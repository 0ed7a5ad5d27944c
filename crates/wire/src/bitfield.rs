//! [`Bitfield`]: which pieces a peer has, in the BEP 3 wire layout (piece 0 is
//! the high bit of byte 0), with its piece count and a cached count of set bits.

use thiserror::Error;

/// Why bytes could not become a [`Bitfield`], or an index was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BitfieldError {
    /// The byte length does not match `ceil(num_pieces / 8)`.
    #[error("bitfield is {got} bytes, expected {expected} for {num_pieces} pieces")]
    WrongLength {
        /// Bytes received.
        got: usize,
        /// Bytes required.
        expected: usize,
        /// The torrent's piece count.
        num_pieces: u32,
    },
    /// A bit past the last piece is set (BEP 3: spare bits must be zero).
    #[error("bitfield has spare bits set past piece {num_pieces}")]
    SpareBitsSet {
        /// The torrent's piece count.
        num_pieces: u32,
    },
    /// A piece index at or beyond the piece count.
    #[error("piece index {index} out of range (piece count {num_pieces})")]
    OutOfRange {
        /// The index given.
        index: u32,
        /// The torrent's piece count.
        num_pieces: u32,
    },
}

/// A set of piece indices `0..len`, stored as the wire bytes.
///
/// Invariants: `bytes.len() == ceil(len / 8)`, spare bits in the last byte are
/// zero, and `ones` equals the number of set bits.
#[derive(Clone, PartialEq, Eq)]
pub struct Bitfield {
    bytes: Vec<u8>,
    len: u32,
    ones: u32,
}

impl std::fmt::Debug for Bitfield {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bitfield({}/{})", self.ones, self.len)
    }
}

/// Number of bytes a bitfield of `num_pieces` pieces takes on the wire.
pub fn bitfield_bytes(num_pieces: u32) -> usize {
    (num_pieces as usize).div_ceil(8)
}

impl Bitfield {
    /// An empty set over `num_pieces` pieces.
    pub fn new(num_pieces: u32) -> Self {
        Bitfield {
            bytes: vec![0; bitfield_bytes(num_pieces)],
            len: num_pieces,
            ones: 0,
        }
    }

    /// The full set over `num_pieces` pieces.
    pub fn full(num_pieces: u32) -> Self {
        let mut bytes = vec![0xff; bitfield_bytes(num_pieces)];
        let spare = (bytes.len() * 8) as u64 - u64::from(num_pieces);
        if let Some(last) = bytes.last_mut() {
            *last = 0xffu8.checked_shl(spare as u32).unwrap_or(0);
        }
        Bitfield {
            bytes,
            len: num_pieces,
            ones: num_pieces,
        }
    }

    /// Parses wire bytes, checking the length and that spare bits are zero.
    pub fn from_bytes(bytes: &[u8], num_pieces: u32) -> Result<Self, BitfieldError> {
        let expected = bitfield_bytes(num_pieces);
        if bytes.len() != expected {
            return Err(BitfieldError::WrongLength {
                got: bytes.len(),
                expected,
                num_pieces,
            });
        }
        let spare = expected * 8 - num_pieces as usize;
        if let Some(&last) = bytes.last() {
            let mask = (1u16 << spare) as u8; // spare < 8
            if last & mask.wrapping_sub(1) != 0 {
                return Err(BitfieldError::SpareBitsSet { num_pieces });
            }
        }
        let ones = count_ones(bytes);
        Ok(Bitfield {
            bytes: bytes.to_vec(),
            len: num_pieces,
            ones,
        })
    }

    /// The piece count.
    pub fn len(&self) -> u32 {
        self.len
    }

    /// True when the piece count is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of pieces present.
    pub fn count_ones(&self) -> u32 {
        self.ones
    }

    /// True when every piece is present.
    pub fn is_full(&self) -> bool {
        self.ones == self.len
    }

    /// True when no piece is present.
    pub fn is_none(&self) -> bool {
        self.ones == 0
    }

    /// Whether piece `index` is present (false when out of range).
    pub fn get(&self, index: u32) -> bool {
        self.bytes
            .get((index / 8) as usize)
            .is_some_and(|b| b & (0x80 >> (index % 8)) != 0)
            && index < self.len
    }

    /// Marks `index` present; returns whether it was absent before.
    pub fn set(&mut self, index: u32) -> Result<bool, BitfieldError> {
        let byte = self.byte_mut(index)?;
        let bit = 0x80 >> (index % 8);
        let was = *byte & bit != 0;
        *byte |= bit;
        if !was {
            self.ones += 1;
        }
        Ok(!was)
    }

    /// Marks `index` absent; returns whether it was present before.
    pub fn clear(&mut self, index: u32) -> Result<bool, BitfieldError> {
        let byte = self.byte_mut(index)?;
        let bit = 0x80 >> (index % 8);
        let was = *byte & bit != 0;
        *byte &= !bit;
        if was {
            self.ones -= 1;
        }
        Ok(was)
    }

    fn byte_mut(&mut self, index: u32) -> Result<&mut u8, BitfieldError> {
        let num_pieces = self.len;
        if index >= num_pieces {
            return Err(BitfieldError::OutOfRange { index, num_pieces });
        }
        self.bytes
            .get_mut((index / 8) as usize)
            .ok_or(BitfieldError::OutOfRange { index, num_pieces })
    }

    /// The wire bytes (spare bits zero).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Indices of present pieces, ascending.
    pub fn iter_ones(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter_where(false)
    }

    /// Indices of absent pieces, ascending.
    pub fn iter_zeros(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter_where(true)
    }

    fn iter_where(&self, invert: bool) -> impl Iterator<Item = u32> + '_ {
        let len = self.len;
        self.bytes
            .chunks(8)
            .enumerate()
            .flat_map(move |(ci, chunk)| {
                let mut word = [0u8; 8];
                word[..chunk.len()].copy_from_slice(chunk);
                let mut w = u64::from_be_bytes(word);
                if invert {
                    w = !w;
                }
                let base = (ci as u32) * 64;
                std::iter::from_fn(move || {
                    if w == 0 {
                        return None;
                    }
                    let lz = w.leading_zeros();
                    w &= !(1u64 << (63 - lz));
                    Some(base + lz)
                })
            })
            .take_while(move |&i| i < len)
    }

    /// True when `self` has some piece that `other` lacks (the interest test:
    /// `their.has_any_missing_from(&ours)`). Piece counts must match, else false.
    pub fn has_any_missing_from(&self, other: &Bitfield) -> bool {
        self.len == other.len
            && self
                .bytes
                .iter()
                .zip(&other.bytes)
                .any(|(a, b)| a & !b != 0)
    }
}

fn count_ones(bytes: &[u8]) -> u32 {
    let mut chunks = bytes.chunks_exact(8);
    let mut n: u32 = 0;
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        n += u64::from_ne_bytes(w).count_ones();
    }
    n + chunks
        .remainder()
        .iter()
        .map(|b| b.count_ones())
        .sum::<u32>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout_is_high_bit_first() {
        let mut b = Bitfield::new(10);
        assert_eq!(b.set(0), Ok(true));
        assert_eq!(b.set(9), Ok(true));
        assert_eq!(b.set(9), Ok(false));
        assert_eq!(b.as_bytes(), &[0x80, 0x40]);
        assert_eq!(b.count_ones(), 2);
        assert_eq!(b.iter_ones().collect::<Vec<_>>(), vec![0, 9]);
        assert_eq!(b.clear(0), Ok(true));
        assert_eq!(b.count_ones(), 1);
        assert!(matches!(b.set(10), Err(BitfieldError::OutOfRange { .. })));
        assert!(!b.get(10));
    }

    #[test]
    fn full_has_zero_spare_bits() {
        let b = Bitfield::full(10);
        assert_eq!(b.as_bytes(), &[0xff, 0xc0]);
        assert!(b.is_full());
        assert_eq!(Bitfield::full(16).as_bytes(), &[0xff, 0xff]);
        assert_eq!(Bitfield::full(0).as_bytes(), &[] as &[u8]);
        assert_eq!(b.iter_zeros().count(), 0);
    }

    #[test]
    fn rejects_spare_bits_and_wrong_length() {
        assert_eq!(
            Bitfield::from_bytes(&[0xff, 0xe0], 10),
            Err(BitfieldError::SpareBitsSet { num_pieces: 10 })
        );
        assert!(matches!(
            Bitfield::from_bytes(&[0xff], 10),
            Err(BitfieldError::WrongLength {
                got: 1,
                expected: 2,
                ..
            })
        ));
        assert!(Bitfield::from_bytes(&[0xff, 0xc0], 10).is_ok());
    }

    #[test]
    fn interest_test() {
        let mut ours = Bitfield::new(20);
        let mut theirs = Bitfield::new(20);
        assert!(!theirs.has_any_missing_from(&ours));
        theirs.set(17).unwrap();
        assert!(theirs.has_any_missing_from(&ours));
        ours.set(17).unwrap();
        assert!(!theirs.has_any_missing_from(&ours));
    }

    proptest! {
        #[test]
        fn iter_and_count_agree(len in 0u32..300, seed in proptest::collection::vec(any::<u32>(), 0..50)) {
            let mut b = Bitfield::new(len);
            let mut model = std::collections::BTreeSet::new();
            for s in seed {
                if len > 0 {
                    let i = s % len;
                    b.set(i).unwrap();
                    model.insert(i);
                }
            }
            prop_assert_eq!(b.count_ones() as usize, model.len());
            prop_assert_eq!(b.iter_ones().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
            prop_assert_eq!(b.iter_zeros().count() as u32, len - b.count_ones());
            let again = Bitfield::from_bytes(b.as_bytes(), len).unwrap();
            prop_assert_eq!(&again, &b);
            prop_assert_eq!(again.count_ones(), b.count_ones());
        }
    }
}
