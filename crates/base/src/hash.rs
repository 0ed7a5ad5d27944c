//! Content and peer identities: v1 (SHA-1) and v2 (SHA-256) info-hashes and
//! peer ids, each a newtype over its bytes (`.0`, `From`, `AsRef<[u8]>`).
use std::fmt;
use std::str::FromStr;

/// Error parsing a hex identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HexIdError {
    /// The text is not `2 * N` hexadecimal digits.
    #[error("expected {expected} hex digits, got {got:?}")]
    Invalid {
        /// Number of hex digits expected.
        expected: usize,
        /// The text that was given (truncated to 80 characters).
        got: String,
    },
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $len:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub [u8; $len]);

        impl $name {
            /// Length in bytes.
            pub const LEN: usize = $len;

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; $len] {
                &self.0
            }

            /// Lower-case hex.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// From a byte slice of exactly the right length.
            pub fn from_slice(b: &[u8]) -> Option<Self> {
                <[u8; $len]>::try_from(b).ok().map($name)
            }
        }

        impl From<[u8; $len]> for $name {
            fn from(b: [u8; $len]) -> Self {
                $name(b)
            }
        }

        impl From<$name> for [u8; $len] {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl PartialEq<[u8; $len]> for $name {
            fn eq(&self, other: &[u8; $len]) -> bool {
                self.0 == *other
            }
        }

        impl AsRef<[u8]> for $name {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl FromStr for $name {
            type Err = HexIdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let mut out = [0u8; $len];
                hex::decode_to_slice(s, &mut out).map_err(|_| HexIdError::Invalid {
                    expected: 2 * $len,
                    got: s.chars().take(80).collect(),
                })?;
                Ok($name(out))
            }
        }
    };
}

id_type!(
    /// A v1 info-hash: SHA-1 of the bencoded `info` dictionary (BEP 3).
    InfoHashV1,
    20
);
id_type!(
    /// A v2 info-hash: SHA-256 of the bencoded `info` dictionary (BEP 52).
    InfoHashV2,
    32
);
id_type!(
    /// A 20-byte peer id (BEP 3, conventions in BEP 20).
    PeerId,
    20
);

impl InfoHashV2 {
    /// The truncated 20-byte form used where a v1-sized hash is needed
    /// (handshake, DHT, trackers) for a v2 torrent (BEP 52).
    pub fn truncated(&self) -> InfoHashV1 {
        let mut out = [0u8; 20];
        out.copy_from_slice(&self.0[..20]);
        InfoHashV1(out)
    }
}

/// The identities of a torrent: a v1 hash, a v2 hash, or both (hybrid).
///
/// Invariant: at least one of the two is present.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct InfoHashes {
    /// The v1 (SHA-1) info-hash, if the torrent has a v1 half.
    pub v1: Option<InfoHashV1>,
    /// The v2 (SHA-256) info-hash, if the torrent has a v2 half.
    pub v2: Option<InfoHashV2>,
}

impl InfoHashes {
    /// The 20-byte id used on the wire, in the DHT and with trackers:
    /// the v1 hash if there is one, else the truncated v2 hash.
    pub fn primary(&self) -> InfoHashV1 {
        match (self.v1, self.v2) {
            (Some(v1), _) => v1,
            (None, Some(v2)) => v2.truncated(),
            (None, None) => InfoHashV1::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let h: InfoHashV1 = "0123456789abcdef0123456789ABCDEF01234567".parse().unwrap();
        assert_eq!(h.to_string(), "0123456789abcdef0123456789abcdef01234567");
        assert!("0123".parse::<InfoHashV1>().is_err());
        assert!("zz23456789abcdef0123456789abcdef01234567"
            .parse::<InfoHashV1>()
            .is_err());
        let v2 = InfoHashV2([7; 32]);
        let hs = InfoHashes {
            v1: None,
            v2: Some(v2),
        };
        assert_eq!(hs.primary().0, [7; 20]);
    }
}
