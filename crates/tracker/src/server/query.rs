//! Parsing an HTTP tracker request target (`/announce?…`, `/scrape?…`) on
//! the tracker side, byte-exact for binary parameters and bounded in length
//! and parameter count.
use crate::types::{AnnounceRequest, Event};

/// Longest request target accepted.
pub const MAX_TARGET_LEN: usize = 8192;
/// Most query parameters accepted.
pub const MAX_PARAMS: usize = 128;

/// What a client asked the tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackerQuery {
    /// An announce.
    Announce(AnnounceRequest),
    /// A scrape of these info-hashes (empty: all, which this tracker refuses to list).
    Scrape(Vec<[u8; 20]>),
}

/// Why a request target was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// Longer than [`MAX_TARGET_LEN`] or more than [`MAX_PARAMS`] parameters.
    #[error("request too long")]
    TooLong,
    /// The path is neither an announce nor a scrape path.
    #[error("unknown path {path:?}")]
    UnknownPath {
        /// The path.
        path: String,
    },
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

fn decode(v: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(v).collect()
}

fn hash20(name: &'static str, v: &str) -> Result<[u8; 20], QueryError> {
    decode(v)
        .as_slice()
        .try_into()
        .map_err(|_| QueryError::Invalid { name })
}

fn num<T: std::str::FromStr>(name: &'static str, v: &str) -> Result<T, QueryError> {
    v.parse().map_err(|_| QueryError::Invalid { name })
}

/// Parses a request target such as `/announce?info_hash=%AA…&port=6881`.
pub fn parse_request_target(target: &str) -> Result<TrackerQuery, QueryError> {
    if target.len() > MAX_TARGET_LEN {
        return Err(QueryError::TooLong);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let last = path.rsplit('/').next().unwrap_or("");
    let params: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    if params.len() > MAX_PARAMS {
        return Err(QueryError::TooLong);
    }
    if last.starts_with("scrape") {
        let hashes = params
            .iter()
            .filter(|(k, _)| *k == "info_hash")
            .map(|(_, v)| hash20("info_hash", v))
            .collect::<Result<_, _>>()?;
        return Ok(TrackerQuery::Scrape(hashes));
    }
    if !last.starts_with("announce") {
        return Err(QueryError::UnknownPath {
            path: path.to_owned(),
        });
    }
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let info_hash = hash20(
        "info_hash",
        get("info_hash").ok_or(QueryError::Missing { name: "info_hash" })?,
    )?;
    let peer_id = hash20(
        "peer_id",
        get("peer_id").ok_or(QueryError::Missing { name: "peer_id" })?,
    )?;
    let port = num(
        "port",
        get("port").ok_or(QueryError::Missing { name: "port" })?,
    )?;
    let mut r = AnnounceRequest::new(info_hash, peer_id, port, 0);
    if let Some(v) = get("left") {
        r.left = num("left", v)?;
    }
    if let Some(v) = get("uploaded") {
        r.uploaded = num("uploaded", v)?;
    }
    if let Some(v) = get("downloaded") {
        r.downloaded = num("downloaded", v)?;
    }
    r.event = match get("event") {
        None | Some("") | Some("empty") => Event::None,
        Some("started") => Event::Started,
        Some("completed") => Event::Completed,
        Some("stopped") => Event::Stopped,
        Some(_) => return Err(QueryError::Invalid { name: "event" }),
    };
    r.compact = get("compact") == Some("1");
    if let Some(v) = get("numwant") {
        r.numwant = Some(num("numwant", v)?);
    }
    if let Some(v) = get("key") {
        r.key = u32::from_str_radix(v, 16).unwrap_or(0);
    }
    Ok(TrackerQuery::Announce(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http_url::{announce_url, scrape_request_url};

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
        let u = scrape_request_url("http://x/announce", &[[1; 20], [2; 20]]).unwrap();
        let target = format!("{}?{}", u.path(), u.query().unwrap());
        assert_eq!(
            parse_request_target(&target),
            Ok(TrackerQuery::Scrape(vec![[1; 20], [2; 20]]))
        );
    }

    #[test]
    fn rejects_bad_requests() {
        assert!(matches!(
            parse_request_target("/x"),
            Err(QueryError::UnknownPath { .. })
        ));
        assert_eq!(
            parse_request_target("/announce?port=1"),
            Err(QueryError::Missing { name: "info_hash" })
        );
        assert_eq!(
            parse_request_target("/announce?info_hash=abc&peer_id=x&port=1"),
            Err(QueryError::Invalid { name: "info_hash" })
        );
        let long = format!("/announce?{}", "a&".repeat(200));
        assert_eq!(parse_request_target(&long), Err(QueryError::TooLong));
    }
}
