//! The optional, advisory keys of a torrent: trackers (BEP 3 `announce`,
//! BEP 12 `announce-list`), web seeds (BEP 19 `url-list`), DHT `nodes` (BEP 5),
//! text fields and BEP 38 `similar` / `collections`.
//!
//! These are lenient as libtorrent is: an item of the wrong type inside a list
//! is skipped, but a key of the wrong type at the top, or more items than the
//! limits allow, is an error.
use crate::error::{opt, Field, MetainfoError, Problem};
use crate::files::prefer_utf8;
use crate::limits::ParseLimits;
use crate::magnet::HostPort;
use crate::torrent::TrackerTier;
use shoal_bencode::{Dict, Value};

fn text(v: &Value<'_>) -> Option<String> {
    let s = String::from_utf8_lossy(v.as_bytes()?).trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn too_many(f: &Field<'_, '_>, what: &'static str, limit: usize) -> MetainfoError {
    f.err(Problem::TooMany {
        what,
        limit: limit as u64,
    })
}

/// Tiers of tracker URLs: `announce-list` if it yields any, else `announce`.
/// Duplicates (across all tiers) and empty tiers are removed. The URLs are
/// the process's shared copies ([`shoal_base::intern`]), and every list
/// its exact length: a daemon keeps thousands of torrents naming the same
/// few trackers.
pub(crate) fn trackers(
    top: &Dict<'_>,
    limits: &ParseLimits,
) -> Result<Box<[TrackerTier]>, MetainfoError> {
    let tiers = tracker_strings(top, limits)?;
    Ok(tiers
        .into_iter()
        .map(|t| t.iter().map(|u| shoal_base::intern(u)).collect())
        .collect())
}

fn tracker_strings(
    top: &Dict<'_>,
    limits: &ParseLimits,
) -> Result<Vec<Vec<String>>, MetainfoError> {
    let mut tiers: Vec<Vec<String>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut count = 0usize;
    if let Some(f) = opt(top, "", "announce-list") {
        for tier in f.list()? {
            let mut urls = Vec::new();
            for u in tier.as_list().unwrap_or_default() {
                if let Some(s) = text(u) {
                    if seen.insert(s.clone()) {
                        count += 1;
                        if count > limits.max_trackers {
                            return Err(too_many(&f, "trackers", limits.max_trackers));
                        }
                        urls.push(s);
                    }
                }
            }
            if !urls.is_empty() {
                tiers.push(urls);
            }
        }
    }
    if tiers.is_empty() {
        if let Some(f) = opt(top, "", "announce") {
            if let Some(s) = text(f.value) {
                tiers.push(vec![s]);
            } else if f.value.as_bytes().is_none() {
                f.bytes()?;
            }
        }
    }
    Ok(tiers)
}

/// BEP 19 `url-list`: one string or a list of strings.
pub(crate) fn web_seeds(
    top: &Dict<'_>,
    limits: &ParseLimits,
) -> Result<Vec<String>, MetainfoError> {
    let Some(f) = opt(top, "", "url-list") else {
        return Ok(Vec::new());
    };
    let items: Vec<&Value<'_>> = match f.value {
        Value::Bytes(_) => vec![f.value],
        Value::List(l) => l.iter().collect(),
        _ => {
            f.list()?;
            Vec::new()
        }
    };
    let mut out: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for s in items.into_iter().filter_map(text) {
        if seen.insert(s.clone()) {
            if out.len() >= limits.max_urls {
                return Err(too_many(&f, "web seeds", limits.max_urls));
            }
            out.push(s);
        }
    }
    Ok(out)
}

/// BEP 5 `nodes`: a list of `[host, port]` pairs; malformed pairs are skipped.
pub(crate) fn nodes(top: &Dict<'_>, limits: &ParseLimits) -> Result<Vec<HostPort>, MetainfoError> {
    let Some(f) = opt(top, "", "nodes") else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in f.list()? {
        let Some([host, port]) = item.as_list() else {
            continue;
        };
        let (Some(host), Some(port)) = (text(host), port.as_int()) else {
            continue;
        };
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        if port == 0 {
            continue;
        }
        if out.len() >= limits.max_urls {
            return Err(too_many(&f, "nodes", limits.max_urls));
        }
        out.push(HostPort { host, port });
    }
    Ok(out)
}

/// A text key (preferring `key.utf-8`), decoded lossily; wrong types are ignored.
pub(crate) fn text_field(d: &Dict<'_>, key: &str) -> Option<String> {
    prefer_utf8(d, "", key).and_then(|f| text(f.value))
}

/// Byte-string items of the list under `key` in `info`, then in the top dict,
/// without duplicates; at most `max_urls` are kept (the rest is ignored).
pub(crate) fn byte_list(
    info: &Dict<'_>,
    top: &Dict<'_>,
    key: &str,
    limits: &ParseLimits,
) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for d in [info, top] {
        if let Some(Value::List(l)) = d.get(key.as_bytes()) {
            for b in l.iter().filter_map(Value::as_bytes) {
                if out.len() >= limits.max_urls {
                    return out;
                }
                if seen.insert(b) {
                    out.push(b.to_vec());
                }
            }
        }
    }
    out
}
