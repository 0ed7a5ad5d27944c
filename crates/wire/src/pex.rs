//! BEP 11 `ut_pex` peer exchange: the message codec (compact `added`,
//! `added.f`, `dropped` and their IPv6 twins) and [`PexTracker`], which turns
//! the current peer set into the next message to a given peer.

use bytes::Bytes;
use shoal_bencode::{Encoder, Limits, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use thiserror::Error;

/// BEP 11 guidance: at most 50 added and 50 dropped peers per message.
pub const MAX_PEX_PEERS: usize = 50;

/// Flags byte per added peer (`added.f`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PexFlags(pub u8);

impl PexFlags {
    /// Prefers encryption.
    pub const ENCRYPTION: u8 = 0x01;
    /// Seed or upload-only.
    pub const SEED: u8 = 0x02;
    /// Supports uTP.
    pub const UTP: u8 = 0x04;
    /// Supports the holepunch extension.
    pub const HOLEPUNCH: u8 = 0x08;
    /// Reachable: we connected out to it.
    pub const REACHABLE: u8 = 0x10;

    /// Whether the peer is a seed.
    pub fn is_seed(self) -> bool {
        self.0 & Self::SEED != 0
    }
}

/// A `ut_pex` message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PexMessage {
    /// Peers that joined, with their flags.
    pub added: Vec<(SocketAddr, PexFlags)>,
    /// Peers that left.
    pub dropped: Vec<SocketAddr>,
}

/// Why a `ut_pex` message was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PexError {
    /// Not valid bencode within the message limits.
    #[error("ut_pex: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// The payload is not a dictionary.
    #[error("ut_pex: payload is not a dictionary")]
    NotADict,
    /// A compact list has the wrong type or a length not a multiple of its entry size.
    #[error("ut_pex: field `{field}` is not a string of {entry}-byte entries")]
    BadField {
        /// The key.
        field: &'static str,
        /// Entry size (6 or 18).
        entry: usize,
    },
}

fn compact(
    d: &shoal_bencode::Dict<'_>,
    field: &'static str,
    v6: bool,
    max: usize,
) -> Result<Vec<SocketAddr>, PexError> {
    let entry = if v6 { 18 } else { 6 };
    let Some(v) = d.get(field.as_bytes()) else {
        return Ok(Vec::new());
    };
    let b = v.as_bytes().ok_or(PexError::BadField { field, entry })?;
    if b.len() % entry != 0 {
        return Err(PexError::BadField { field, entry });
    }
    Ok(b.chunks_exact(entry)
        .take(max)
        .map(|c| {
            let (ip, port) = c.split_at(entry - 2);
            let port = u16::from_be_bytes([port[0], port[1]]);
            let ip = match <[u8; 16]>::try_from(ip) {
                Ok(a) => IpAddr::V6(Ipv6Addr::from(a)),
                Err(_) => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            };
            SocketAddr::new(ip, port)
        })
        .collect())
}

fn flags(d: &shoal_bencode::Dict<'_>, field: &str, n: usize) -> Vec<PexFlags> {
    let f = d
        .get(field.as_bytes())
        .and_then(Value::as_bytes)
        .unwrap_or(&[]);
    (0..n)
        .map(|i| PexFlags(f.get(i).copied().unwrap_or(0)))
        .collect()
}

impl PexMessage {
    /// Decodes a payload, keeping at most `max_peers` entries of each list
    /// (extras are dropped, not an error). Missing flags count as 0.
    pub fn decode(payload: &[u8], max_peers: usize) -> Result<Self, PexError> {
        let v = shoal_bencode::decode(payload, &Limits::message())?;
        let d = v.as_dict().ok_or(PexError::NotADict)?;
        let mut m = PexMessage::default();
        let a4 = compact(d, "added", false, max_peers)?;
        let f4 = flags(d, "added.f", a4.len());
        let a6 = compact(d, "added6", true, max_peers)?;
        let f6 = flags(d, "added6.f", a6.len());
        m.added = a4
            .into_iter()
            .zip(f4)
            .chain(a6.into_iter().zip(f6))
            .collect();
        m.dropped = compact(d, "dropped", false, max_peers)?;
        m.dropped.extend(compact(d, "dropped6", true, max_peers)?);
        Ok(m)
    }

    /// Encodes the payload, splitting addresses by family. Every key is written
    /// (empty strings when unused), as libtorrent does.
    pub fn encode(&self) -> Bytes {
        let (mut a4, mut f4, mut a6, mut f6) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (addr, f) in &self.added {
            if put_addr(addr, &mut a4, &mut a6) {
                f6.push(f.0);
            } else {
                f4.push(f.0);
            }
        }
        let (mut d4, mut d6) = (Vec::new(), Vec::new());
        for addr in &self.dropped {
            put_addr(addr, &mut d4, &mut d6);
        }
        let mut out = Vec::new();
        let mut e = Encoder::new(&mut out);
        e.begin_dict()
            .bytes(b"added")
            .bytes(&a4)
            .bytes(b"added.f")
            .bytes(&f4)
            .bytes(b"added6")
            .bytes(&a6)
            .bytes(b"added6.f")
            .bytes(&f6)
            .bytes(b"dropped")
            .bytes(&d4)
            .bytes(b"dropped6")
            .bytes(&d6)
            .end();
        Bytes::from(out)
    }

    /// True when there is nothing to tell.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.dropped.is_empty()
    }
}

/// Appends the compact form; returns true when it went to the IPv6 list.
fn put_addr(addr: &SocketAddr, v4: &mut Vec<u8>, v6: &mut Vec<u8>) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => {
            v4.extend_from_slice(&ip.octets());
            v4.extend_from_slice(&addr.port().to_be_bytes());
            false
        }
        IpAddr::V6(ip) => {
            v6.extend_from_slice(&ip.octets());
            v6.extend_from_slice(&addr.port().to_be_bytes());
            true
        }
    }
}

/// What one remote peer has been told about our peer set: computes the next
/// `ut_pex` message as the difference from what was last sent.
///
/// Invariant: `sent` holds exactly the peers announced as added and not since
/// announced as dropped. Peers left out because of the per-message cap are
/// not recorded, so they go out with the next message.
#[derive(Debug, Clone, Default)]
pub struct PexTracker {
    sent: HashMap<SocketAddr, PexFlags>,
}

impl PexTracker {
    /// A tracker for a peer told nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The message to send given our `current` peers (excluding the receiver
    /// itself), capped at [`MAX_PEX_PEERS`] per list; `None` when nothing changed.
    /// Peers whose flags changed are sent as added again.
    pub fn diff<I>(&mut self, current: I) -> Option<PexMessage>
    where
        I: IntoIterator<Item = (SocketAddr, PexFlags)>,
    {
        let current: HashMap<SocketAddr, PexFlags> = current.into_iter().collect();
        let mut msg = PexMessage::default();
        let mut added: Vec<_> = current
            .iter()
            .filter(|(a, f)| self.sent.get(a) != Some(f))
            .map(|(a, f)| (*a, *f))
            .collect();
        added.sort_by_key(|(a, _)| *a);
        added.truncate(MAX_PEX_PEERS);
        let mut dropped: Vec<_> = self
            .sent
            .keys()
            .filter(|a| !current.contains_key(a))
            .copied()
            .collect();
        dropped.sort();
        dropped.truncate(MAX_PEX_PEERS);
        for (a, f) in &added {
            self.sent.insert(*a, *f);
        }
        for a in &dropped {
            self.sent.remove(a);
        }
        msg.added = added;
        msg.dropped = dropped;
        (!msg.is_empty()).then_some(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn exact_bytes() {
        let m = PexMessage {
            added: vec![
                (a("127.0.0.1:6881"), PexFlags(PexFlags::SEED)),
                (a("[::1]:80"), PexFlags(0x10)),
            ],
            dropped: vec![a("10.0.0.2:1")],
        };
        let enc = m.encode();
        let mut want = b"d5:added6:\x7f\x00\x00\x01\x1a\xe17:added.f1:\x026:added618:".to_vec();
        want.extend_from_slice(&[0; 15]);
        want.extend_from_slice(
            b"\x01\x00\x508:added6.f1:\x107:dropped6:\x0a\x00\x00\x02\x00\x018:dropped60:e",
        );
        assert_eq!(&enc[..], &want[..]);
        assert_eq!(PexMessage::decode(&enc, MAX_PEX_PEERS), Ok(m));
    }

    #[test]
    fn caps_and_errors() {
        let mut added = Vec::new();
        for i in 0..120u16 {
            added.push((SocketAddr::from(([127, 0, 0, 1], 1000 + i)), PexFlags(0)));
        }
        let enc = PexMessage {
            added,
            dropped: vec![],
        }
        .encode();
        assert_eq!(
            PexMessage::decode(&enc, MAX_PEX_PEERS).unwrap().added.len(),
            50
        );
        assert_eq!(
            PexMessage::decode(b"d5:added5:abcdee", 50),
            Err(PexError::BadField {
                field: "added",
                entry: 6
            })
        );
        assert_eq!(PexMessage::decode(b"le", 50), Err(PexError::NotADict));
        // flags missing: zero
        let m = PexMessage::decode(b"d5:added6:\x7f\x00\x00\x01\x00\x01e", 50).unwrap();
        assert_eq!(m.added, vec![(a("127.0.0.1:1"), PexFlags(0))]);
    }

    #[test]
    fn tracker_diffs() {
        let mut t = PexTracker::new();
        assert_eq!(t.diff(vec![]), None);
        let p1 = (a("127.0.0.1:1"), PexFlags(0));
        let p2 = (a("127.0.0.1:2"), PexFlags(0));
        assert_eq!(t.diff(vec![p1, p2]).unwrap().added, vec![p1, p2]);
        assert_eq!(t.diff(vec![p1, p2]), None);
        let m = t.diff(vec![p2]).unwrap();
        assert_eq!(m.dropped, vec![p1.0]);
        assert!(m.added.is_empty());
        // a flag change is re-announced
        let p2s = (p2.0, PexFlags(PexFlags::SEED));
        assert_eq!(t.diff(vec![p2s]).unwrap().added, vec![p2s]);
    }

    #[test]
    fn tracker_caps_and_catches_up() {
        let mut t = PexTracker::new();
        let peers: Vec<_> = (0..70u16)
            .map(|i| (SocketAddr::from(([127, 0, 0, 1], i + 1)), PexFlags(0)))
            .collect();
        assert_eq!(t.diff(peers.clone()).unwrap().added.len(), 50);
        assert_eq!(t.diff(peers.clone()).unwrap().added.len(), 20);
        assert_eq!(t.diff(peers), None);
    }

    proptest! {
        #[test]
        fn round_trip(
            added in proptest::collection::vec((any::<SocketAddr>(), any::<u8>()), 0..20),
            dropped in proptest::collection::vec(any::<SocketAddr>(), 0..20),
        ) {
            // normalise: the codec orders v4 before v6 and drops IPv6 flow info / scope
            let norm = |s: SocketAddr| SocketAddr::new(s.ip(), s.port());
            let mut added: Vec<_> = added.into_iter().map(|(s, f)| (norm(s), PexFlags(f))).collect();
            added.sort_by_key(|(s, _)| s.is_ipv6());
            let mut dropped: Vec<_> = dropped.into_iter().map(norm).collect();
            dropped.sort_by_key(|s| s.is_ipv6());
            let m = PexMessage { added, dropped };
            prop_assert_eq!(PexMessage::decode(&m.encode(), 100), Ok(m));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = PexMessage::decode(&data, 50);
        }
    }
}
