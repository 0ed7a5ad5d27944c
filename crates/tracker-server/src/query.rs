//! Parsing an HTTP tracker request target (`/announce?…`, `/scrape?…`) on
//! the tracker side: one pass over the query, byte-exact for the binary
//! parameters (info_hash, peer_id), bounded in length, parameter count and
//! scrape size. Unknown parameters are ignored; for repeated ones the first
//! counts (except `info_hash` in a scrape, which repeats by design).
use shoal_base::InfoHash;
use shoal_tracker::{AnnounceRequest, Event};

/// Longest request target accepted.
pub const MAX_TARGET_LEN: usize = 8192;
/// Most query parameters accepted.
pub const MAX_PARAMS: usize = 128;
/// Most info-hashes in one scrape.
pub const MAX_SCRAPE_HASHES: usize = 100;

/// What a client asked the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerQuery {
    /// An announce. `compact` is false only for an explicit `compact=0`.
    Announce(AnnounceRequest),
    /// A scrape of these info-hashes (empty: a full scrape).
    Scrape(Vec<InfoHash>),
}

/// Why a request target was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Longer than [`MAX_TARGET_LEN`], more than [`MAX_PARAMS`] parameters
    /// or more than [`MAX_SCRAPE_HASHES`] hashes.
    #[error("request too long")]
    TooLong,
    /// The last path segment starts with neither `announce` nor `scrape`.
    #[error("unknown path")]
    UnknownPath,
    /// A required parameter is absent.
    #[error("missing parameter {name}")]
    Missing {
        /// Its name.
        name: &'static str,
    },
    /// A parameter does not parse.
    #[error("invalid parameter {name}")]
    Invalid {
        /// Its name.
        name: &'static str,
    },
}

fn hash20(name: &'static str, v: &str) -> Result<[u8; 20], QueryError> {
    let mut out = [0u8; 20];
    let mut n = 0;
    for b in percent_encoding::percent_decode_str(v) {
        *out.get_mut(n).ok_or(QueryError::Invalid { name })? = b;
        n += 1;
    }
    if n == 20 {
        Ok(out)
    } else {
        Err(QueryError::Invalid { name })
    }
}

fn num<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, QueryError> {
    v.parse().map_err(|_| QueryError::Invalid { name })
}

/// Which endpoint a path names: `Some(true)` announce, `Some(false)` scrape.
pub fn endpoint(path: &str) -> Option<bool> {
    let last = path.rsplit('/').next().unwrap_or("");
    if last.starts_with("announce") {
        Some(true)
    } else if last.starts_with("scrape") {
        Some(false)
    } else {
        None
    }
}

/// Parses a request target such as `/announce?info_hash=%AA…&port=6881`.
pub fn parse_request_target(target: &str) -> Result<TrackerQuery, QueryError> {
    if target.len() > MAX_TARGET_LEN {
        return Err(QueryError::TooLong);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let announce = endpoint(path).ok_or(QueryError::UnknownPath)?;
    let mut params = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")));
    if !announce {
        let mut hashes = Vec::new();
        for (i, (k, v)) in params.by_ref().enumerate() {
            if i >= MAX_PARAMS {
                return Err(QueryError::TooLong);
            }
            if k == "info_hash" {
                if hashes.len() >= MAX_SCRAPE_HASHES {
                    return Err(QueryError::TooLong);
                }
                hashes.push(InfoHash(hash20("info_hash", v)?));
            }
        }
        return Ok(TrackerQuery::Scrape(hashes));
    }
    let mut r = AnnounceRequest::new(InfoHash([0; 20]), shoal_base::PeerId([0; 20]), 0, 0);
    let (mut info_hash, mut peer_id, mut port) = (false, false, false);
    let mut seen_event = false;
    for (i, (k, v)) in params.enumerate() {
        if i >= MAX_PARAMS {
            return Err(QueryError::TooLong);
        }
        match k {
            "info_hash" if !info_hash => {
                r.info_hash = InfoHash(hash20("info_hash", v)?);
                info_hash = true;
            }
            "peer_id" if !peer_id => {
                r.peer_id = shoal_base::PeerId(hash20("peer_id", v)?);
                peer_id = true;
            }
            "port" if !port => {
                r.port = num("port", v)?;
                port = true;
            }
            "left" => r.left = num("left", v)?,
            "uploaded" => r.uploaded = num("uploaded", v)?,
            "downloaded" => r.downloaded = num("downloaded", v)?,
            "event" if !seen_event => {
                seen_event = true;
                r.event = match v {
                    "" | "empty" | "paused" => Event::None,
                    "started" => Event::Started,
                    "completed" => Event::Completed,
                    "stopped" => Event::Stopped,
                    _ => return Err(QueryError::Invalid { name: "event" }),
                }
            }
            "compact" => r.compact = v != "0",
            "numwant" => {
                r.numwant = Some(num::<i64>("numwant", v)?.clamp(0, i64::from(u32::MAX)) as u32)
            }
            "key" => r.key = u32::from_str_radix(v, 16).unwrap_or(0),
            _ => {}
        }
    }
    for (ok, name) in [
        (info_hash, "info_hash"),
        (peer_id, "peer_id"),
        (port, "port"),
    ] {
        if !ok {
            return Err(QueryError::Missing { name });
        }
    }
    Ok(TrackerQuery::Announce(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_tracker::http_url::{announce_url, scrape_request_url};

    #[test]
    fn round_trips_our_own_urls() {
        let mut r =
            AnnounceRequest::new([0xfe; 20], *b"%&= abc\x00\x01\x02\xff-SH0001-X", 6881, 77);
        r.event = Event::Completed;
        r.numwant = Some(9);
        r.key = 0xabc;
        r.uploaded = 1;
        r.downloaded = 2;
        let u = announce_url("http://x/announce", &r, None).unwrap();
        let target = format!("{}?{}", u.path(), u.query().unwrap());
        assert_eq!(parse_request_target(&target), Ok(TrackerQuery::Announce(r)));
        let u = scrape_request_url(
            "http://x/announce",
            &[shoal_base::InfoHash([1; 20]), shoal_base::InfoHash([2; 20])],
        )
        .unwrap();
        let target = format!("{}?{}", u.path(), u.query().unwrap());
        assert_eq!(
            parse_request_target(&target),
            Ok(TrackerQuery::Scrape(vec![
                shoal_base::InfoHash([1; 20]),
                shoal_base::InfoHash([2; 20])
            ]))
        );
    }

    #[test]
    fn client_quirks() {
        let ih = "%AA".repeat(20);
        let t = format!("/announce?info_hash={ih}&peer_id={}&port=1&compact=0&numwant=-1&event=paused&ip=1.2.3.4", "a".repeat(20));
        let Ok(TrackerQuery::Announce(r)) = parse_request_target(&t) else {
            panic!("should parse")
        };
        assert!(!r.compact);
        assert_eq!(r.numwant, Some(0));
        assert_eq!(r.event, Event::None);
        assert_eq!(r.info_hash, shoal_base::InfoHash([0xaa; 20]));
        assert_eq!(
            parse_request_target("/scrape"),
            Ok(TrackerQuery::Scrape(vec![]))
        );
        assert_eq!(endpoint("/x/announce.php"), Some(true));
        assert_eq!(endpoint("/scrape"), Some(false));
        assert_eq!(endpoint("/stats"), None);
    }

    #[test]
    fn rejects_bad_requests() {
        assert_eq!(parse_request_target("/x"), Err(QueryError::UnknownPath));
        assert_eq!(
            parse_request_target("/announce?port=1"),
            Err(QueryError::Missing { name: "info_hash" })
        );
        assert_eq!(
            parse_request_target("/announce?info_hash=abc&peer_id=x&port=1"),
            Err(QueryError::Invalid { name: "info_hash" })
        );
        let t = format!(
            "/announce?info_hash={}&peer_id={}&port=99999",
            "a".repeat(20),
            "b".repeat(20)
        );
        assert_eq!(
            parse_request_target(&t),
            Err(QueryError::Invalid { name: "port" })
        );
        let long = format!("/announce?{}", "a&".repeat(200));
        assert_eq!(parse_request_target(&long), Err(QueryError::TooLong));
        let many = format!(
            "/scrape?{}",
            format!("info_hash={}&", "a".repeat(20)).repeat(101)
        );
        assert_eq!(parse_request_target(&many), Err(QueryError::TooLong));
        let huge = format!("/announce?{}", "a".repeat(MAX_TARGET_LEN));
        assert_eq!(parse_request_target(&huge), Err(QueryError::TooLong));
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use shoal_tracker::http_url::announce_url;

    proptest! {
        /// Whatever shoal's client sends, the server reads back exactly.
        #[test]
        fn client_urls_round_trip(
            info_hash in any::<[u8; 20]>(),
            peer_id in any::<[u8; 20]>(),
            port in any::<u16>(),
            left in any::<u64>(),
            up in any::<u64>(),
            down in any::<u64>(),
            event in 0u32..4,
            numwant in proptest::option::of(0u32..10_000),
            key in any::<u32>(),
        ) {
            let mut r = AnnounceRequest::new(info_hash, peer_id, port, left);
            r.uploaded = up;
            r.downloaded = down;
            r.event = Event::from_udp_code(event).unwrap_or_default();
            r.numwant = numwant;
            r.key = key;
            let u = announce_url("http://t/announce", &r, None).unwrap();
            let target = format!("{}?{}", u.path(), u.query().unwrap());
            prop_assert_eq!(parse_request_target(&target), Ok(TrackerQuery::Announce(r)));
        }

        /// Arbitrary targets never panic and stay within the bounds.
        #[test]
        fn arbitrary_targets_are_bounded(t in "/(announce|scrape)?[?]?[a-z_=&%0-9A-F]{0,300}") {
            if let Ok(TrackerQuery::Scrape(h)) = parse_request_target(&t) {
                prop_assert!(h.len() <= MAX_SCRAPE_HASHES);
            }
        }
    }
}
