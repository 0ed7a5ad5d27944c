//! 160-bit identifiers (node IDs, info-hashes, BEP 44 targets) and XOR distance.
//!
//! [`Id20`] is a point of the XOR key space; the info-hashes the driver's
//! `get_peers` and `announce` take (`shoal_base::InfoHash`) convert into it
//! with `From`.
use rand::Rng;
use std::fmt;

/// A 160-bit identifier: a DHT node ID, an info-hash or a BEP 44 target.
///
/// Ordering is lexicographic on the big-endian bytes, which is also the order of
/// XOR distance from the all-zero ID.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id20(pub [u8; 20]);

/// A DHT node ID (the same type as every other 160-bit identifier).
pub type NodeId = Id20;

impl Id20 {
    /// The all-zero ID.
    pub const ZERO: Id20 = Id20([0; 20]);

    /// Builds an ID from a slice that must be exactly 20 bytes long.
    pub fn from_slice(b: &[u8]) -> Option<Id20> {
        <[u8; 20]>::try_from(b).ok().map(Id20)
    }

    /// Parses 40 hexadecimal digits.
    pub fn from_hex(s: &str) -> Option<Id20> {
        let v = hex::decode(s).ok()?;
        Id20::from_slice(&v)
    }

    /// Lower-case hexadecimal form (40 characters).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// A uniformly random ID.
    pub fn random<R: Rng + ?Sized>(rng: &mut R) -> Id20 {
        let mut b = [0u8; 20];
        rng.fill(&mut b[..]);
        Id20(b)
    }

    /// XOR distance to `other` (itself an ID; compare distances with `Ord`).
    pub fn distance(&self, other: &Id20) -> Id20 {
        let mut d = [0u8; 20];
        for (i, x) in d.iter_mut().enumerate() {
            *x = self.0[i] ^ other.0[i];
        }
        Id20(d)
    }

    /// Number of leading bits shared with `other` (160 when equal).
    pub fn common_prefix_len(&self, other: &Id20) -> usize {
        for i in 0..20 {
            let x = self.0[i] ^ other.0[i];
            if x != 0 {
                return i * 8 + x.leading_zeros() as usize;
            }
        }
        160
    }

    /// Bit `i` counted from the most significant bit (0..160); false past the end.
    pub fn bit(&self, i: usize) -> bool {
        if i >= 160 {
            return false;
        }
        self.0[i / 8] & (0x80 >> (i % 8)) != 0
    }

    /// A copy with bit `i` (from the most significant) set to `v`.
    pub fn with_bit(mut self, i: usize, v: bool) -> Id20 {
        if i < 160 {
            let m = 0x80 >> (i % 8);
            if v {
                self.0[i / 8] |= m;
            } else {
                self.0[i / 8] &= !m;
            }
        }
        self
    }

    /// A random ID sharing exactly the first `prefix` bits with `self` (used for
    /// bucket refresh: a target inside a bucket's range).
    pub fn random_with_prefix<R: Rng + ?Sized>(&self, prefix: usize, rng: &mut R) -> Id20 {
        let mut r = Id20::random(rng);
        for i in 0..prefix.min(160) {
            r = r.with_bit(i, self.bit(i));
        }
        r
    }
}

impl fmt::Debug for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id20({})", self.to_hex())
    }
}

impl fmt::Display for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<[u8; 20]> for Id20 {
    fn from(b: [u8; 20]) -> Self {
        Id20(b)
    }
}

/// An info-hash is a point of the DHT's key space (`get_peers`,
/// `announce_peer` and the peer store).
impl From<shoal_base::InfoHash> for Id20 {
    fn from(h: shoal_base::InfoHash) -> Self {
        Id20(h.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_and_bits() {
        let a = Id20([0u8; 20]);
        let b = a.with_bit(9, true);
        assert_eq!(a.common_prefix_len(&b), 9);
        assert!(b.bit(9));
        assert!(!b.bit(8));
        assert_eq!(a.common_prefix_len(&a), 160);
        assert!(a.distance(&b) > a.distance(&a));
    }

    #[test]
    fn random_prefix_keeps_prefix() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
        let me = Id20::random(&mut rng);
        for p in [0, 1, 7, 8, 33, 159] {
            let r = me.random_with_prefix(p, &mut rng);
            assert!(me.common_prefix_len(&r) >= p);
        }
    }
    use rand::SeedableRng;
}
