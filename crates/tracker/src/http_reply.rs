//! Parsing bencoded HTTP tracker replies: announce (BEP 3, 7, 23, 24) and
//! scrape (BEP 48), within [`ReplyLimits`].
//!
//! Lenient where real trackers differ, strict where the data would be wrong:
//! a missing `interval` defaults to [`DEFAULT_INTERVAL`], unknown keys are
//! ignored, dictionary-form peers with a host name instead of an IP literal
//! are skipped; a field of the wrong type, a compact string of the wrong
//! length or an out-of-range number is a typed [`ReplyError`].
use crate::error::ReplyError;
use crate::peers::{parse_compact_v4, parse_compact_v6, COMPACT_V4_LEN, COMPACT_V6_LEN};
use crate::types::{AnnounceResponse, ScrapeResponse, ScrapeStats};
use shoal_base::InfoHash;
use shoal_bencode::{Dict, Limits, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The interval used when a reply has none (30 minutes, as libtorrent).
pub const DEFAULT_INTERVAL: u32 = 1800;

/// Bounds on a tracker reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Largest body accepted, in bytes (the HTTP driver stops reading past it).
    pub max_body: usize,
    /// Most peers kept from one announce; extra peers are dropped, not an
    /// error. (The decoder's element bound is sized from this, so a
    /// dictionary-form list far longer than it is rejected as bencode.)
    pub max_peers: usize,
    /// Most torrents kept from one scrape reply; extra entries are dropped.
    pub max_scrape_files: usize,
}

impl Default for ReplyLimits {
    /// 2 MiB body, 10 000 peers, 10 000 scrape entries.
    fn default() -> Self {
        ReplyLimits {
            max_body: 2 << 20,
            max_peers: 10_000,
            max_scrape_files: 10_000,
        }
    }
}

impl ReplyLimits {
    fn bencode(&self) -> Limits {
        Limits {
            max_depth: 8,
            max_string_len: self.max_body,
            // A dictionary-form peer costs about 7 values; a scrape entry about 8.
            max_elements: 16 + 8 * self.max_peers.max(self.max_scrape_files),
        }
    }
}

fn top_dict<'a>(body: &'a [u8], limits: &ReplyLimits) -> Result<Value<'a>, ReplyError> {
    if body.len() > limits.max_body {
        return Err(ReplyError::TooLarge {
            len: body.len(),
            limit: limits.max_body,
        });
    }
    let v = shoal_bencode::decode(body, &limits.bencode())?;
    match v {
        Value::Dict(_) => Ok(v),
        other => Err(ReplyError::NotADict {
            found: other.type_name(),
        }),
    }
}

fn check_failure(d: &Dict<'_>) -> Result<(), ReplyError> {
    if let Some(v) = d.get(b"failure reason") {
        let reason = match v.as_bytes() {
            Some(b) => String::from_utf8_lossy(b).into_owned(),
            None => format!("(a {} instead of a message)", v.type_name()),
        };
        return Err(ReplyError::Failure { reason });
    }
    Ok(())
}

fn opt_u32(d: &Dict<'_>, key: &[u8], field: &'static str) -> Result<Option<u32>, ReplyError> {
    match d.get(key) {
        None => Ok(None),
        Some(v) => {
            let i = v.as_int().ok_or(ReplyError::WrongType {
                field,
                expected: "integer",
                found: v.type_name(),
            })?;
            u32::try_from(i)
                .map(Some)
                .map_err(|_| ReplyError::OutOfRange { field, value: i })
        }
    }
}

fn opt_bytes<'d>(
    d: &'d Dict<'_>,
    key: &[u8],
    field: &'static str,
) -> Result<Option<&'d [u8]>, ReplyError> {
    match d.get(key) {
        None => Ok(None),
        Some(v) => v.as_bytes().map(Some).ok_or(ReplyError::WrongType {
            field,
            expected: "string",
            found: v.type_name(),
        }),
    }
}

fn dict_peer(index: usize, v: &Value<'_>) -> Result<Option<SocketAddr>, ReplyError> {
    let bad = |reason| ReplyError::BadPeer { index, reason };
    let d = v.as_dict().ok_or(bad("not a dictionary"))?;
    let ip = d
        .get(b"ip")
        .ok_or(bad("no \"ip\""))?
        .as_bytes()
        .ok_or(bad("\"ip\" is not a string"))?;
    let port = d
        .get(b"port")
        .ok_or(bad("no \"port\""))?
        .as_int()
        .ok_or(bad("\"port\" is not an integer"))?;
    let port = u16::try_from(port).map_err(|_| bad("\"port\" out of range"))?;
    // Trackers may send a host name (BEP 3); resolving is not the parser's
    // business, so such a peer is skipped. A non-UTF-8 address likewise.
    let ip = match std::str::from_utf8(ip)
        .ok()
        .and_then(|s| s.parse::<IpAddr>().ok())
    {
        Some(ip) => ip,
        None => return Ok(None),
    };
    Ok(Some(SocketAddr::new(ip, port)))
}

/// Parses an announce reply body. `failure reason` becomes [`ReplyError::Failure`].
pub fn parse_announce_reply(
    body: &[u8],
    limits: &ReplyLimits,
) -> Result<AnnounceResponse, ReplyError> {
    let top = top_dict(body, limits)?;
    let Some(d) = top.as_dict() else {
        return Err(ReplyError::NotADict {
            found: top.type_name(),
        });
    };
    check_failure(d)?;
    let mut r = AnnounceResponse {
        interval: opt_u32(d, b"interval", "interval")?.unwrap_or(DEFAULT_INTERVAL),
        min_interval: opt_u32(d, b"min interval", "min interval")?,
        complete: opt_u32(d, b"complete", "complete")?,
        incomplete: opt_u32(d, b"incomplete", "incomplete")?,
        warning: opt_bytes(d, b"warning message", "warning message")?
            .map(|b| String::from_utf8_lossy(b).into_owned()),
        tracker_id: opt_bytes(d, b"tracker id", "tracker id")?.map(<[u8]>::to_vec),
        ..AnnounceResponse::default()
    };
    if let Some(ip) = opt_bytes(d, b"external ip", "external ip")? {
        r.external_ip = Some(match ip.len() {
            4 => IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])),
            16 => {
                let mut a = [0u8; 16];
                a.copy_from_slice(ip);
                IpAddr::V6(Ipv6Addr::from(a))
            }
            len => return Err(ReplyError::BadExternalIp { len }),
        });
    }
    let max = limits.max_peers;
    match d.get(b"peers") {
        None => {}
        Some(Value::Bytes(b)) if !parse_compact_v4(b, &mut r.peers, max) => {
            return Err(ReplyError::BadCompactLength {
                field: "peers",
                len: b.len(),
                unit: COMPACT_V4_LEN,
            });
        }
        Some(Value::Bytes(_)) => {}
        Some(Value::List(list)) => {
            for (index, v) in list.iter().enumerate() {
                if r.peers.len() >= max {
                    break;
                }
                if let Some(a) = dict_peer(index, v)? {
                    r.peers.push(a);
                }
            }
        }
        Some(other) => {
            return Err(ReplyError::WrongType {
                field: "peers",
                expected: "string or list",
                found: other.type_name(),
            })
        }
    }
    if let Some(b) = opt_bytes(d, b"peers6", "peers6")? {
        if !parse_compact_v6(b, &mut r.peers, max) {
            return Err(ReplyError::BadCompactLength {
                field: "peers6",
                len: b.len(),
                unit: COMPACT_V6_LEN,
            });
        }
    }
    Ok(r)
}

/// Parses a scrape reply body (BEP 48): `files` maps 20-byte info-hashes to
/// `complete`/`downloaded`/`incomplete` (missing counts are 0).
pub fn parse_scrape_reply(body: &[u8], limits: &ReplyLimits) -> Result<ScrapeResponse, ReplyError> {
    let top = top_dict(body, limits)?;
    let Some(d) = top.as_dict() else {
        return Err(ReplyError::NotADict {
            found: top.type_name(),
        });
    };
    check_failure(d)?;
    let mut r = ScrapeResponse::default();
    if let Some(flags) = d.get(b"flags") {
        let f = flags.as_dict().ok_or(ReplyError::WrongType {
            field: "flags",
            expected: "dictionary",
            found: flags.type_name(),
        })?;
        r.min_request_interval = opt_u32(f, b"min_request_interval", "min_request_interval")?;
    }
    let Some(files) = d.get(b"files") else {
        return Ok(r);
    };
    let files = files.as_dict().ok_or(ReplyError::WrongType {
        field: "files",
        expected: "dictionary",
        found: files.type_name(),
    })?;
    for (index, (k, v)) in files.iter().enumerate() {
        if r.files.len() >= limits.max_scrape_files {
            break;
        }
        let hash: [u8; 20] = k.try_into().map_err(|_| ReplyError::BadScrapeKey {
            index,
            len: k.len(),
        })?;
        let e = v.as_dict().ok_or(ReplyError::WrongType {
            field: "files entry",
            expected: "dictionary",
            found: v.type_name(),
        })?;
        let stats = ScrapeStats {
            complete: opt_u32(e, b"complete", "complete")?.unwrap_or(0),
            downloaded: opt_u32(e, b"downloaded", "downloaded")?.unwrap_or(0),
            incomplete: opt_u32(e, b"incomplete", "incomplete")?.unwrap_or(0),
        };
        r.files.push((InfoHash(hash), stats));
    }
    Ok(r)
}

/// Encodes an announce reply (the tracker side; used by the test server and
/// round-trip tests). IPv4 peers go compact into `peers`, IPv6 into `peers6`.
pub fn encode_announce_reply(r: &AnnounceResponse) -> Vec<u8> {
    let mut d = Dict::new();
    d.insert(&b"interval"[..], Value::Int(i64::from(r.interval)));
    let opt = |d: &mut Dict<'_>, k: &'static [u8], v: Option<u32>| {
        if let Some(v) = v {
            d.insert(k, Value::Int(i64::from(v)));
        }
    };
    opt(&mut d, b"min interval", r.min_interval);
    opt(&mut d, b"complete", r.complete);
    opt(&mut d, b"incomplete", r.incomplete);
    if let Some(w) = &r.warning {
        d.insert(&b"warning message"[..], Value::owned_bytes(w.as_bytes()));
    }
    if let Some(t) = &r.tracker_id {
        d.insert(&b"tracker id"[..], Value::owned_bytes(t.clone()));
    }
    match r.external_ip {
        Some(IpAddr::V4(ip)) => d.insert(&b"external ip"[..], Value::owned_bytes(ip.octets())),
        Some(IpAddr::V6(ip)) => d.insert(&b"external ip"[..], Value::owned_bytes(ip.octets())),
        None => {}
    }
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for p in &r.peers {
        match p {
            SocketAddr::V4(_) => crate::peers::encode_compact(p, &mut v4),
            SocketAddr::V6(_) => crate::peers::encode_compact(p, &mut v6),
        }
    }
    d.insert(&b"peers"[..], Value::owned_bytes(v4));
    if !v6.is_empty() {
        d.insert(&b"peers6"[..], Value::owned_bytes(v6));
    }
    shoal_bencode::encode(&Value::Dict(d))
}

/// Encodes a scrape reply (the tracker side). Duplicate hashes keep the last entry.
pub fn encode_scrape_reply(r: &ScrapeResponse) -> Vec<u8> {
    let mut files = Dict::new();
    for (h, s) in &r.files {
        let mut e = Dict::new();
        e.insert(&b"complete"[..], Value::Int(i64::from(s.complete)));
        e.insert(&b"downloaded"[..], Value::Int(i64::from(s.downloaded)));
        e.insert(&b"incomplete"[..], Value::Int(i64::from(s.incomplete)));
        files.insert(h.0.to_vec(), Value::Dict(e));
    }
    let mut d = Dict::new();
    d.insert(&b"files"[..], Value::Dict(files));
    if let Some(m) = r.min_request_interval {
        let mut f = Dict::new();
        f.insert(&b"min_request_interval"[..], Value::Int(i64::from(m)));
        d.insert(&b"flags"[..], Value::Dict(f));
    }
    shoal_bencode::encode(&Value::Dict(d))
}

/// Encodes a `failure reason` reply.
pub fn encode_failure_reply(reason: &str) -> Vec<u8> {
    let mut d = Dict::new();
    d.insert(
        &b"failure reason"[..],
        Value::owned_bytes(reason.as_bytes()),
    );
    shoal_bencode::encode(&Value::Dict(d))
}

#[cfg(test)]
#[path = "http_reply_tests.rs"]
mod tests;
