//! Magnet URIs (BEP 9, BEP 53, BEP 52 `btmh`): parse and print.
//!
//! Understood parameters (each may also carry a numeric suffix, `xt.1`, `tr.2`):
//! `xt=urn:btih:` (40 hex digits or 32 base32 characters), `xt=urn:btmh:`
//! (multihash `1220` + 64 hex digits, SHA-256), `dn` (name, `+` read as space),
//! `tr` (trackers, repeated), `ws` (web seeds), `x.pe` (peers, `host:port` or
//! `[v6]:port`), `so` (BEP 53 file indices, `0,2,4-6`). Other parameters are
//! ignored. Values are percent-decoded; non-UTF-8 results are decoded lossily.
//! At least one `btih` or `btmh` is required; two different ones of the same
//! kind are an error.
use crate::hash::{InfoHashV1, InfoHashV2, InfoHashes};
use crate::limits::{MAX_FILE_COUNT, MAX_MAGNET_LEN, MAX_TRACKERS, MAX_URLS};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

/// Characters escaped when printing values: all but RFC 3986 unreserved.
const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Most `so` ranges accepted.
const MAX_RANGES: usize = 1000;

/// A host name or IP literal and a port (magnet `x.pe`, torrent `nodes`).
///
/// Invariant: `port != 0`; `host` is non-empty and holds no brackets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HostPort {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// Port, never 0.
    pub port: u16,
}

impl HostPort {
    /// The socket address when `host` is an IP literal.
    pub fn to_socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = self.host.parse().ok()?;
        Some(SocketAddr::new(ip, self.port))
    }

    /// Parses `host:port` or `[v6]:port`.
    pub fn parse(s: &str) -> Option<HostPort> {
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (h, p) = rest.split_once("]:")?;
            (h, p)
        } else {
            let (h, p) = s.rsplit_once(':')?;
            if h.contains(':') {
                return None;
            }
            (h, p)
        };
        let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
        if host.is_empty() || host.contains(['[', ']', '/', ' ']) {
            return None;
        }
        Some(HostPort {
            host: host.to_string(),
            port,
        })
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Why a magnet URI was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MagnetError {
    /// Does not start with `magnet:?`.
    #[error("not a magnet URI (must start with \"magnet:?\")")]
    NotMagnet,
    /// Longer than [`MAX_MAGNET_LEN`].
    #[error("magnet URI of {len} bytes is over the limit of {limit}")]
    TooLong {
        /// Length given.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// No `xt=urn:btih:` nor `xt=urn:btmh:`.
    #[error("magnet URI has no BitTorrent info-hash (xt=urn:btih: or urn:btmh:)")]
    NoInfoHash,
    /// An info-hash that does not decode.
    #[error("magnet {param}: bad info-hash {value:?}")]
    BadInfoHash {
        /// The parameter (`xt`, `xt.1`).
        param: String,
        /// The value (truncated to 100 characters).
        value: String,
    },
    /// Two different info-hashes of the same kind.
    #[error("magnet {param}: a second, different {kind} info-hash")]
    ConflictingInfoHash {
        /// The parameter.
        param: String,
        /// `btih` or `btmh`.
        kind: &'static str,
    },
    /// An `x.pe` that is not `host:port`.
    #[error("magnet {param}: bad peer address {value:?}")]
    BadPeer {
        /// The parameter.
        param: String,
        /// The value (truncated to 100 characters).
        value: String,
    },
    /// An `so` that is not a list of indices and ranges.
    #[error("magnet {param}: bad file selection {value:?}")]
    BadSelectOnly {
        /// The parameter.
        param: String,
        /// The value (truncated to 100 characters).
        value: String,
    },
    /// Too many values of one parameter.
    #[error("magnet has more than {limit} {what}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
}

/// A parsed magnet link.
///
/// Invariant (after [`Magnet::parse`]): at least one of `v1`, `v2` is set.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Magnet {
    /// `xt=urn:btih:` (v1 info-hash).
    pub v1: Option<InfoHashV1>,
    /// `xt=urn:btmh:1220…` (v2 info-hash).
    pub v2: Option<InfoHashV2>,
    /// `dn`, the display name.
    pub name: Option<String>,
    /// `tr`, tracker URLs in order, without duplicates.
    pub trackers: Vec<String>,
    /// `ws`, web seed URLs.
    pub web_seeds: Vec<String>,
    /// `x.pe`, peers to contact.
    pub peers: Vec<HostPort>,
    /// `so` (BEP 53): selected file indices, as inclusive ranges, in given order.
    pub select_only: Vec<RangeInclusive<u32>>,
}

fn clip(s: &str) -> String {
    s.chars().take(100).collect()
}

fn decode(v: &str, plus_is_space: bool) -> String {
    let v = if plus_is_space {
        std::borrow::Cow::Owned(v.replace('+', " "))
    } else {
        std::borrow::Cow::Borrowed(v)
    };
    percent_decode_str(&v).decode_utf8_lossy().into_owned()
}

fn push_unique(
    list: &mut Vec<String>,
    v: String,
    what: &'static str,
    limit: usize,
) -> Result<(), MagnetError> {
    if v.is_empty() || list.contains(&v) {
        return Ok(());
    }
    if list.len() >= limit {
        return Err(MagnetError::TooMany { what, limit });
    }
    list.push(v);
    Ok(())
}

fn parse_so(param: &str, v: &str) -> Result<Vec<RangeInclusive<u32>>, MagnetError> {
    let bad = || MagnetError::BadSelectOnly {
        param: param.to_string(),
        value: clip(v),
    };
    let num = |s: &str| -> Result<u32, MagnetError> {
        let n: u32 = s.trim().parse().map_err(|_| bad())?;
        if n as usize >= MAX_FILE_COUNT {
            return Err(bad());
        }
        Ok(n)
    };
    let mut out = Vec::new();
    for part in v.split(',').filter(|p| !p.trim().is_empty()) {
        let r = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (num(a)?, num(b)?);
                if a > b {
                    return Err(bad());
                }
                a..=b
            }
            None => {
                let n = num(part)?;
                n..=n
            }
        };
        if out.len() >= MAX_RANGES {
            return Err(MagnetError::TooMany {
                what: "so ranges",
                limit: MAX_RANGES,
            });
        }
        out.push(r);
    }
    Ok(out)
}

impl Magnet {
    /// Parses a magnet URI (see the module docs for what is understood).
    pub fn parse(uri: &str) -> Result<Magnet, MagnetError> {
        let uri = uri.trim();
        if uri.len() > MAX_MAGNET_LEN {
            return Err(MagnetError::TooLong {
                len: uri.len(),
                limit: MAX_MAGNET_LEN,
            });
        }
        let query = match uri.get(..8) {
            Some(p) if p.eq_ignore_ascii_case("magnet:?") => &uri[8..],
            _ => return Err(MagnetError::NotMagnet),
        };
        let mut m = Magnet::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (param, raw) = pair.split_once('=').unwrap_or((pair, ""));
            let base = match param.split_once('.') {
                Some((b, n)) if n.bytes().all(|c| c.is_ascii_digit()) && !n.is_empty() => b,
                _ => param,
            };
            match base {
                "xt" => m.parse_xt(param, &decode(raw, false))?,
                "dn" => {
                    let n = decode(raw, true);
                    if !n.is_empty() {
                        m.name = Some(n);
                    }
                }
                "tr" => push_unique(
                    &mut m.trackers,
                    decode(raw, false),
                    "trackers",
                    MAX_TRACKERS,
                )?,
                "ws" => push_unique(&mut m.web_seeds, decode(raw, false), "web seeds", MAX_URLS)?,
                "x.pe" => {
                    let v = decode(raw, false);
                    let peer = HostPort::parse(&v).ok_or_else(|| MagnetError::BadPeer {
                        param: param.to_string(),
                        value: clip(&v),
                    })?;
                    if !m.peers.contains(&peer) {
                        if m.peers.len() >= MAX_URLS {
                            return Err(MagnetError::TooMany {
                                what: "peers",
                                limit: MAX_URLS,
                            });
                        }
                        m.peers.push(peer);
                    }
                }
                "so" => {
                    let ranges = parse_so(param, &decode(raw, false))?;
                    if m.select_only.len() + ranges.len() > MAX_RANGES {
                        return Err(MagnetError::TooMany {
                            what: "so ranges",
                            limit: MAX_RANGES,
                        });
                    }
                    m.select_only.extend(ranges);
                }
                _ => {}
            }
        }
        if m.v1.is_none() && m.v2.is_none() {
            return Err(MagnetError::NoInfoHash);
        }
        Ok(m)
    }

    fn parse_xt(&mut self, param: &str, v: &str) -> Result<(), MagnetError> {
        let bad = || MagnetError::BadInfoHash {
            param: param.to_string(),
            value: clip(v),
        };
        let lower = v.to_ascii_lowercase();
        if let Some(h) = lower.strip_prefix("urn:btih:") {
            let hash = match h.len() {
                40 => h.parse::<InfoHashV1>().map_err(|_| bad())?,
                32 => {
                    let bytes = data_encoding::BASE32
                        .decode(h.to_ascii_uppercase().as_bytes())
                        .map_err(|_| bad())?;
                    InfoHashV1::from_slice(&bytes).ok_or_else(bad)?
                }
                _ => return Err(bad()),
            };
            if self.v1.is_some_and(|old| old != hash) {
                return Err(MagnetError::ConflictingInfoHash {
                    param: param.to_string(),
                    kind: "btih",
                });
            }
            self.v1 = Some(hash);
        } else if let Some(h) = lower.strip_prefix("urn:btmh:") {
            let hex = h.strip_prefix("1220").ok_or_else(bad)?;
            let hash: InfoHashV2 = hex.parse().map_err(|_| bad())?;
            if self.v2.is_some_and(|old| old != hash) {
                return Err(MagnetError::ConflictingInfoHash {
                    param: param.to_string(),
                    kind: "btmh",
                });
            }
            self.v2 = Some(hash);
        }
        Ok(())
    }

    /// The info-hashes this magnet names (at least one is set after `parse`).
    pub fn info_hashes(&self) -> InfoHashes {
        InfoHashes {
            v1: self.v1,
            v2: self.v2,
        }
    }

    /// Prints the magnet URI (same as `to_string()`); [`Magnet::parse`] reads it back equal.
    pub fn to_uri(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Magnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("magnet:?")?;
        let mut sep = "";
        let mut param = |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| {
            let r = write!(f, "{sep}{k}={v}");
            sep = "&";
            r
        };
        if let Some(h) = self.v1 {
            param(f, "xt", &format_args!("urn:btih:{h}"))?;
        }
        if let Some(h) = self.v2 {
            param(f, "xt", &format_args!("urn:btmh:1220{h}"))?;
        }
        if let Some(n) = &self.name {
            param(f, "dn", &utf8_percent_encode(n, ESCAPE))?;
        }
        for t in &self.trackers {
            param(f, "tr", &utf8_percent_encode(t, ESCAPE))?;
        }
        for w in &self.web_seeds {
            param(f, "ws", &utf8_percent_encode(w, ESCAPE))?;
        }
        for p in &self.peers {
            let s = p.to_string();
            param(f, "x.pe", &utf8_percent_encode(&s, ESCAPE))?;
        }
        if !self.select_only.is_empty() {
            let parts: Vec<String> = self
                .select_only
                .iter()
                .map(|r| {
                    if r.start() == r.end() {
                        r.start().to_string()
                    } else {
                        format!("{}-{}", r.start(), r.end())
                    }
                })
                .collect();
            param(f, "so", &parts.join(","))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEX: &str = "c12fe1c06bba254a9dc9f519b335aa7c1367a88a";

    #[test]
    fn parses_the_usual_magnet() {
        let m = Magnet::parse(&format!(
            "magnet:?xt=urn:btih:{HEX}&dn=Some+Name%21&tr=udp%3A%2F%2Ft.example%3A80&tr=http://b/ann&ws=http%3A%2F%2Fw%2Ff&x.pe=127.0.0.1:6881&x.pe=[::1]:7000&so=0,2,4-6"
        ))
        .unwrap();
        assert_eq!(m.v1.unwrap().to_hex(), HEX);
        assert_eq!(m.v2, None);
        assert_eq!(m.name.as_deref(), Some("Some Name!"));
        assert_eq!(m.trackers, vec!["udp://t.example:80", "http://b/ann"]);
        assert_eq!(m.web_seeds, vec!["http://w/f"]);
        assert_eq!(m.peers[0].to_socket_addr(), "127.0.0.1:6881".parse().ok());
        assert_eq!(m.peers[1].to_string(), "[::1]:7000");
        assert_eq!(m.select_only, vec![0..=0, 2..=2, 4..=6]);
        assert_eq!(Magnet::parse(&m.to_uri()).unwrap(), m);
    }

    #[test]
    fn base32_and_btmh() {
        let h: InfoHashV1 = HEX.parse().unwrap();
        let b32 = data_encoding::BASE32.encode(&h.0);
        let m = Magnet::parse(&format!("magnet:?xt=urn:btih:{b32}")).unwrap();
        assert_eq!(m.v1, Some(h));
        let v2 = "a".repeat(64);
        let m =
            Magnet::parse(&format!("MAGNET:?xt=urn:btmh:1220{v2}&xt.1=urn:btih:{HEX}")).unwrap();
        assert_eq!(m.v2.unwrap().to_hex(), v2);
        assert_eq!(m.info_hashes().v1, Some(h));
    }

    #[test]
    fn rejects() {
        assert_eq!(Magnet::parse("http://x"), Err(MagnetError::NotMagnet));
        assert_eq!(Magnet::parse("magnet:?dn=x"), Err(MagnetError::NoInfoHash));
        assert!(matches!(
            Magnet::parse("magnet:?xt=urn:btih:1234"),
            Err(MagnetError::BadInfoHash { .. })
        ));
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btmh:1120{}", "a".repeat(64))),
            Err(MagnetError::BadInfoHash { .. })
        ));
        assert!(matches!(
            Magnet::parse(&format!(
                "magnet:?xt=urn:btih:{HEX}&xt=urn:btih:{}",
                "b".repeat(40)
            )),
            Err(MagnetError::ConflictingInfoHash { .. })
        ));
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&x.pe=nohost")),
            Err(MagnetError::BadPeer { .. })
        ));
        assert!(matches!(
            Magnet::parse(&format!("magnet:?xt=urn:btih:{HEX}&so=5-2")),
            Err(MagnetError::BadSelectOnly { .. })
        ));
        let long = format!(
            "magnet:?xt=urn:btih:{HEX}&dn={}",
            "a".repeat(MAX_MAGNET_LEN)
        );
        assert!(matches!(
            Magnet::parse(&long),
            Err(MagnetError::TooLong { .. })
        ));
    }

    fn arb_magnet() -> impl Strategy<Value = Magnet> {
        (
            proptest::option::of(any::<[u8; 20]>()),
            proptest::option::of(any::<[u8; 32]>()),
            proptest::option::of("\\PC{1,20}"),
            proptest::collection::vec("[a-z]{1,5}://[a-z0-9.:/?&=%+ ]{1,20}", 0..4),
            proptest::collection::vec("http://[a-z]{1,8}/[a-z ]{0,8}", 0..3),
            proptest::collection::vec((any::<[u8; 4]>(), 1u16..), 0..3),
            proptest::collection::vec((0u32..1000, 0u32..5), 0..4),
        )
            .prop_filter("needs a hash", |t| t.0.is_some() || t.1.is_some())
            .prop_map(|(v1, v2, name, tr, ws, peers, so)| {
                let mut trackers: Vec<String> = Vec::new();
                for t in tr {
                    if !trackers.contains(&t) {
                        trackers.push(t);
                    }
                }
                let mut web_seeds: Vec<String> = Vec::new();
                for w in ws {
                    if !web_seeds.contains(&w) {
                        web_seeds.push(w);
                    }
                }
                let mut ps: Vec<HostPort> = Vec::new();
                for (ip, port) in peers {
                    let p = HostPort {
                        host: std::net::Ipv4Addr::from(ip).to_string(),
                        port,
                    };
                    if !ps.contains(&p) {
                        ps.push(p);
                    }
                }
                Magnet {
                    v1: v1.map(InfoHashV1),
                    v2: v2.map(InfoHashV2),
                    name: name.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
                    trackers,
                    web_seeds,
                    peers: ps,
                    select_only: so.into_iter().map(|(a, d)| a..=a + d).collect(),
                }
            })
    }

    proptest! {
        #[test]
        fn print_parse_round_trip(m in arb_magnet()) {
            let uri = m.to_uri();
            prop_assert_eq!(Magnet::parse(&uri).unwrap(), m);
        }

        #[test]
        fn never_panics(s in "magnet:\\?[ -~]{0,200}") {
            let _ = Magnet::parse(&s);
        }
    }
}
