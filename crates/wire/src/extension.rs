//! The BEP 10 extension handshake (extended message id 0): which extensions a
//! peer speaks and under which message ids, plus client facts (`v`, `p`,
//! `yourip`, `reqq`, `metadata_size`, `upload_only`).
//!
//! Decoding is strict about the structure (a dict, `m` a dict of small ints)
//! and lenient about optional facts with the wrong type, which are dropped:
//! clients in the wild vary there and none of them is needed to talk.

use bytes::Bytes;
use shoal_bencode::{Encoder, Limits, Value};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// The name of BEP 9 metadata exchange in `m`.
pub const UT_METADATA: &str = "ut_metadata";
/// The name of BEP 11 peer exchange in `m`.
pub const UT_PEX: &str = "ut_pex";
/// The id shoal asks peers to use for `ut_metadata` messages sent to it.
pub const LOCAL_UT_METADATA_ID: u8 = 3;
/// The id shoal asks peers to use for `ut_pex` messages sent to it.
pub const LOCAL_UT_PEX_ID: u8 = 1;

/// Largest number of entries kept from `m`.
pub const MAX_EXTENSIONS: usize = 64;
/// Largest extension name kept from `m` and largest `v` kept.
pub const MAX_NAME_LEN: usize = 64;

/// Why an extension handshake was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ExtensionHandshakeError {
    /// The payload is not valid bencode within the message limits.
    #[error("extension handshake: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// The payload is not a dictionary.
    #[error("extension handshake: payload is a {found}, not a dictionary")]
    NotADict {
        /// The bencode type found.
        found: &'static str,
    },
    /// A field has a value the protocol forbids.
    #[error("extension handshake: field `{field}`: {reason}")]
    BadField {
        /// The key.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
}

/// A decoded or to-be-sent extension handshake.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtensionHandshake {
    /// Extension name → message id the sender wants for it; id 0 means disabled.
    pub m: BTreeMap<String, u8>,
    /// The sender's listen port (`p`).
    pub port: Option<u16>,
    /// Client name and version (`v`), at most [`MAX_NAME_LEN`] bytes kept.
    pub client: Option<String>,
    /// Our address as the sender sees it (`yourip`, 4 or 16 bytes).
    pub your_ip: Option<IpAddr>,
    /// The sender's IPv6 address (`ipv6`).
    pub ipv6: Option<Ipv6Addr>,
    /// The sender's IPv4 address (`ipv4`).
    pub ipv4: Option<Ipv4Addr>,
    /// How many outstanding requests the sender accepts (`reqq`).
    pub reqq: Option<u32>,
    /// Size of the info dictionary in bytes (`metadata_size`, BEP 9).
    pub metadata_size: Option<u64>,
    /// The sender only uploads (`upload_only`, a partial seed or a seed).
    pub upload_only: bool,
}

impl ExtensionHandshake {
    /// The handshake shoal sends: `ut_metadata` and `ut_pex` at shoal's ids,
    /// the given request queue depth and client name.
    pub fn shoal(client: &str, reqq: u32) -> Self {
        let mut m = BTreeMap::new();
        m.insert(UT_METADATA.to_string(), LOCAL_UT_METADATA_ID);
        m.insert(UT_PEX.to_string(), LOCAL_UT_PEX_ID);
        ExtensionHandshake {
            m,
            client: Some(client.to_string()),
            reqq: Some(reqq),
            ..Default::default()
        }
    }

    /// The id for `name`, when the sender enabled it (non-zero).
    pub fn id_of(&self, name: &str) -> Option<u8> {
        self.m.get(name).copied().filter(|&i| i != 0)
    }

    /// Decodes the payload of an extended message with id 0. `max_metadata_size`
    /// bounds `metadata_size` (BEP 9; shoal uses 16 MiB).
    pub fn decode(payload: &[u8], max_metadata_size: u64) -> Result<Self, ExtensionHandshakeError> {
        let v = shoal_bencode::decode(payload, &Limits::message())?;
        let d = v.as_dict().ok_or(ExtensionHandshakeError::NotADict {
            found: v.type_name(),
        })?;
        let mut h = ExtensionHandshake::default();
        if let Some(m) = d.get(b"m") {
            let m = m.as_dict().ok_or(ExtensionHandshakeError::BadField {
                field: "m",
                reason: "not a dictionary",
            })?;
            for (k, val) in m.iter().take(MAX_EXTENSIONS) {
                let (Ok(name), Some(i)) = (std::str::from_utf8(k), val.as_int()) else {
                    continue;
                };
                if name.len() <= MAX_NAME_LEN {
                    if let Ok(i) = u8::try_from(i) {
                        h.m.insert(name.to_string(), i);
                    }
                }
            }
        }
        h.port = d
            .get(b"p")
            .and_then(Value::as_int)
            .and_then(|p| u16::try_from(p).ok())
            .filter(|&p| p != 0);
        h.client = d
            .get(b"v")
            .and_then(Value::as_bytes)
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(MAX_NAME_LEN)]).into_owned());
        h.your_ip = d.get(b"yourip").and_then(Value::as_bytes).and_then(ip_from);
        h.ipv4 = d
            .get(b"ipv4")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(Ipv4Addr::from);
        h.ipv6 = d
            .get(b"ipv6")
            .and_then(Value::as_bytes)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Ipv6Addr::from);
        if let Some(r) = d.get(b"reqq") {
            let r = r.as_int().ok_or(ExtensionHandshakeError::BadField {
                field: "reqq",
                reason: "not an integer",
            })?;
            h.reqq = Some(u32::try_from(r.max(0)).unwrap_or(u32::MAX));
        }
        if let Some(s) = d.get(b"metadata_size") {
            let s = s.as_int().ok_or(ExtensionHandshakeError::BadField {
                field: "metadata_size",
                reason: "not an integer",
            })?;
            if s <= 0 || s as u64 > max_metadata_size {
                return Err(ExtensionHandshakeError::BadField {
                    field: "metadata_size",
                    reason: "zero, negative or larger than the limit",
                });
            }
            h.metadata_size = Some(s as u64);
        }
        h.upload_only = d
            .get(b"upload_only")
            .and_then(Value::as_int)
            .is_some_and(|i| i != 0);
        Ok(h)
    }

    /// Encodes the payload (canonical bencode, keys sorted).
    pub fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(128);
        let mut e = Encoder::new(&mut out);
        e.begin_dict();
        if let Some(v) = &self.ipv4 {
            e.bytes(b"ipv4").bytes(&v.octets());
        }
        if let Some(v) = &self.ipv6 {
            e.bytes(b"ipv6").bytes(&v.octets());
        }
        e.bytes(b"m").begin_dict();
        for (k, v) in &self.m {
            e.bytes(k.as_bytes()).int(i64::from(*v));
        }
        e.end();
        if let Some(s) = self.metadata_size {
            e.bytes(b"metadata_size")
                .int(i64::try_from(s).unwrap_or(i64::MAX));
        }
        if let Some(p) = self.port {
            e.bytes(b"p").int(i64::from(p));
        }
        if let Some(r) = self.reqq {
            e.bytes(b"reqq").int(i64::from(r));
        }
        if self.upload_only {
            e.bytes(b"upload_only").int(1);
        }
        if let Some(v) = &self.client {
            e.bytes(b"v").bytes(v.as_bytes());
        }
        if let Some(ip) = &self.your_ip {
            match ip {
                IpAddr::V4(a) => e.bytes(b"yourip").bytes(&a.octets()),
                IpAddr::V6(a) => e.bytes(b"yourip").bytes(&a.octets()),
            };
        }
        e.end();
        Bytes::from(out)
    }
}

fn ip_from(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 => <[u8; 4]>::try_from(b).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(b).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MAX: u64 = 16 << 20;

    #[test]
    fn spec_example_decodes() {
        // BEP 10's example, with metadata_size and reqq added.
        let raw = b"d1:md11:LT_metadatai1e6:ut_pexi2ee13:metadata_sizei31235e1:pi6881e4:reqqi500e1:v13:\xc2\xb5Torrent 1.2e";
        let h = ExtensionHandshake::decode(raw, MAX).unwrap();
        assert_eq!(h.id_of("LT_metadata"), Some(1));
        assert_eq!(h.id_of(UT_PEX), Some(2));
        assert_eq!(h.port, Some(6881));
        assert_eq!(h.reqq, Some(500));
        assert_eq!(h.metadata_size, Some(31235));
        assert_eq!(h.client.as_deref(), Some("\u{b5}Torrent 1.2"));
    }

    #[test]
    fn exact_encoding() {
        let mut h = ExtensionHandshake::shoal("shoal 0.1", 250);
        h.your_ip = Some(IpAddr::from([127, 0, 0, 1]));
        h.port = Some(6881);
        assert_eq!(
            &h.encode()[..],
            &b"d1:md11:ut_metadatai3e6:ut_pexi1ee1:pi6881e4:reqqi250e1:v9:shoal 0.16:yourip4:\x7f\x00\x00\x01e"[..]
        );
    }

    #[test]
    fn disabled_and_bad_fields() {
        let h = ExtensionHandshake::decode(b"d1:md6:ut_pexi0eee", MAX).unwrap();
        assert_eq!(h.id_of(UT_PEX), None);
        assert!(matches!(
            ExtensionHandshake::decode(b"d13:metadata_sizei99999999999ee", MAX),
            Err(ExtensionHandshakeError::BadField {
                field: "metadata_size",
                ..
            })
        ));
        assert!(matches!(
            ExtensionHandshake::decode(b"li1ee", MAX),
            Err(ExtensionHandshakeError::NotADict { found: "list" })
        ));
        assert!(matches!(
            ExtensionHandshake::decode(b"d1:mi1ee", MAX),
            Err(ExtensionHandshakeError::BadField { field: "m", .. })
        ));
        assert!(ExtensionHandshake::decode(b"d1:m", MAX).is_err());
        // wrong-typed optional facts are dropped, ids out of range are ignored
        let h =
            ExtensionHandshake::decode(b"d1:md1:ai300e1:bi2ee1:pi-1e6:yourip3:abce", MAX).unwrap();
        assert_eq!(h.id_of("a"), None);
        assert_eq!(h.id_of("b"), Some(2));
        assert_eq!(h.port, None);
        assert_eq!(h.your_ip, None);
    }

    proptest! {
        #[test]
        fn round_trip(
            names in proptest::collection::btree_map("[a-z_]{1,12}", any::<u8>(), 0..6),
            port in proptest::option::of(1u16..),
            reqq in proptest::option::of(any::<u32>()),
            size in proptest::option::of(1u64..MAX),
            upload_only in any::<bool>(),
            v4 in proptest::option::of(any::<[u8; 4]>()),
            v6 in proptest::option::of(any::<[u8; 16]>()),
        ) {
            let h = ExtensionHandshake {
                m: names,
                port,
                client: Some("x".into()),
                your_ip: v4.map(IpAddr::from),
                ipv6: v6.map(Ipv6Addr::from),
                ipv4: v4.map(Ipv4Addr::from),
                reqq,
                metadata_size: size,
                upload_only,
            };
            let enc = h.encode();
            prop_assert!(shoal_bencode::decode(&enc, &Limits::message()).unwrap().check_canonical().is_ok());
            prop_assert_eq!(ExtensionHandshake::decode(&enc, MAX).unwrap(), h);
        }
    }
}
