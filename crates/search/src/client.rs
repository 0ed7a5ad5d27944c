//! Asking a tracker's central index ([`crate::central`]) from its announce
//! URL: the search URL is the announce URL with its last path segment
//! `announce` replaced by `search` (as BEP 48 derives `scrape`), and a UDP
//! announce URL names the same host and port over HTTP (`shoal tracker`
//! serves both on one port). Replies are bounded ([`MAX_REPLY_BYTES`],
//! [`crate::index::MAX_RESULTS`] hits, names clipped) and every hit is
//! checked (a 40-digit hex info-hash) before it is returned.
use crate::doc::{clip_str, MAX_NAME_BYTES};
use crate::hit::SearchHit;
use crate::index::MAX_RESULTS;
use std::time::Duration;
use url::Url;

/// Largest reply read from a tracker.
pub const MAX_REPLY_BYTES: usize = 2 << 20;

/// Why asking a tracker failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The announce URL cannot be turned into a search URL.
    #[error("{url}: cannot derive a search URL ({why})")]
    BadUrl {
        /// The announce URL.
        url: String,
        /// Why.
        why: &'static str,
    },
    /// The HTTP request failed.
    #[error("{url}: {source}")]
    Http {
        /// The URL asked.
        url: String,
        /// The error.
        source: reqwest::Error,
    },
    /// The tracker answered with an error status.
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        /// The URL asked.
        url: String,
        /// The status code.
        status: u16,
        /// The error text it gave.
        message: String,
    },
    /// The reply is too large.
    #[error("{url}: reply larger than {MAX_REPLY_BYTES} bytes")]
    TooLarge {
        /// The URL asked.
        url: String,
    },
    /// The reply is not the expected JSON.
    #[error("{url}: bad reply: {source}")]
    BadReply {
        /// The URL asked.
        url: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}

/// The URL of `endpoint` (`search`, `upload`) of the tracker behind `announce`.
pub fn endpoint_url(announce: &str, endpoint: &str) -> Result<Url, ClientError> {
    let bad = |why| ClientError::BadUrl {
        url: announce.to_string(),
        why,
    };
    let mut u = Url::parse(announce).map_err(|_| bad("not a URL"))?;
    match u.scheme() {
        "http" | "https" => {}
        "udp" => {
            let host = u.host_str().ok_or_else(|| bad("no host"))?.to_string();
            let port = u.port().ok_or_else(|| bad("no port"))?;
            let host = if host.contains(':') && !host.starts_with('[') {
                format!("[{host}]")
            } else {
                host
            };
            return Url::parse(&format!("http://{host}:{port}/{endpoint}"))
                .map_err(|_| bad("bad host"));
        }
        _ => return Err(bad("not http, https or udp")),
    }
    let path = u.path().to_string();
    let (dir, last) = path.rsplit_once('/').unwrap_or(("", &path));
    if !last.starts_with("announce") {
        return Err(bad("its last path segment is not `announce`"));
    }
    u.set_path(&format!("{dir}/{endpoint}"));
    u.set_query(None);
    Ok(u)
}

async fn read_bounded(url: &str, mut resp: reqwest::Response) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > MAX_REPLY_BYTES {
                    return Err(ClientError::TooLarge {
                        url: url.to_string(),
                    });
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => return Ok(body),
            Err(source) => {
                return Err(ClientError::Http {
                    url: url.to_string(),
                    source,
                })
            }
        }
    }
}

async fn call(req: reqwest::RequestBuilder, url: &str) -> Result<Vec<u8>, ClientError> {
    let resp = req.send().await.map_err(|source| ClientError::Http {
        url: url.to_string(),
        source,
    })?;
    let status = resp.status().as_u16();
    let body = read_bounded(url, resp).await?;
    if status != 200 {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(|s| clip_str(s, 200)))
            .unwrap_or_else(|| clip_str(&String::from_utf8_lossy(&body), 200));
        return Err(ClientError::Status {
            url: url.to_string(),
            status,
            message,
        });
    }
    Ok(body)
}

#[derive(serde::Deserialize)]
struct Reply {
    results: Vec<SearchHit>,
}

/// Parses a `/search` reply from the tracker behind `announce`: at most
/// [`MAX_RESULTS`] hits with valid info-hashes, names clipped, each marked
/// as found on that tracker with it in its magnet.
pub fn parse_reply(announce: &str, body: &[u8]) -> Result<Vec<SearchHit>, serde_json::Error> {
    let r: Reply = serde_json::from_slice(body)?;
    Ok(r.results
        .into_iter()
        .filter(|h| h.info_hash.len() == 40 && h.info_hash_bytes().is_some())
        .take(MAX_RESULTS)
        .map(|mut h| {
            h.info_hash.make_ascii_lowercase();
            h.name = clip_str(&h.name, MAX_NAME_BYTES);
            h.found = vec![format!("tracker {announce}")];
            h.trackers = vec![announce.to_string()];
            h.score = 0.0;
            h
        })
        .collect())
}

/// Searches the central index of the tracker behind `announce`.
pub async fn search_tracker(
    http: &reqwest::Client,
    announce: &str,
    query: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<SearchHit>, ClientError> {
    let mut url = endpoint_url(announce, "search")?;
    url.query_pairs_mut()
        .append_pair("q", query)
        .append_pair("limit", &limit.clamp(1, MAX_RESULTS).to_string());
    let s = url.to_string();
    let body = call(http.get(url).timeout(timeout), &s).await?;
    parse_reply(announce, &body).map_err(|source| ClientError::BadReply { url: s, source })
}

/// Uploads a .torrent to the central index of the tracker behind
/// `announce`; returns the info-hash (hex) and name it indexed.
pub async fn upload_torrent(
    http: &reqwest::Client,
    announce: &str,
    torrent: Vec<u8>,
    timeout: Duration,
) -> Result<(String, String), ClientError> {
    let url = endpoint_url(announce, "upload")?;
    let s = url.to_string();
    let body = call(http.post(url).body(torrent).timeout(timeout), &s).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&body).map_err(|source| ClientError::BadReply {
            url: s.clone(),
            source,
        })?;
    Ok((
        clip_str(v["info_hash"].as_str().unwrap_or(""), 64),
        clip_str(v["name"].as_str().unwrap_or(""), MAX_NAME_BYTES),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_search_urls() {
        let s = |a: &str| endpoint_url(a, "search").map(|u| u.to_string());
        assert_eq!(
            s("http://127.0.0.1:6969/announce").unwrap(),
            "http://127.0.0.1:6969/search"
        );
        assert_eq!(
            s("https://t.example/x/announce.php?passkey=1").unwrap(),
            "https://t.example/x/search"
        );
        assert_eq!(
            s("udp://127.0.0.1:6969/announce").unwrap(),
            "http://127.0.0.1:6969/search"
        );
        assert_eq!(s("udp://[::1]:6969").unwrap(), "http://[::1]:6969/search");
        assert!(s("http://t.example/a").is_err());
        assert!(s("ftp://t.example/announce").is_err());
        assert!(s("not a url").is_err());
    }

    #[test]
    fn replies_are_checked() {
        let body = serde_json::json!({ "results": [
            { "info_hash": "AB".repeat(20), "name": "x".repeat(5000), "seeds": 3 },
            { "info_hash": "zz", "name": "bad" },
            { "info_hash": "cd".repeat(20), "name": "ok", "found": ["forged"] },
        ]});
        let hits = parse_reply("http://t/announce", body.to_string().as_bytes()).unwrap();
        assert_eq!(hits.len(), 2);
        assert_eq!(hits[0].info_hash, "ab".repeat(20));
        assert_eq!(hits[0].name.len(), MAX_NAME_BYTES);
        assert_eq!(hits[1].found, ["tracker http://t/announce"]);
        assert!(parse_reply("t", b"\xff\xfe").is_err());
        let many: Vec<_> = (0..1000)
            .map(|_| serde_json::json!({ "info_hash": "ab".repeat(20), "name": "n" }))
            .collect();
        let body = serde_json::json!({ "results": many }).to_string();
        assert_eq!(
            parse_reply("t", body.as_bytes()).unwrap().len(),
            MAX_RESULTS
        );
    }
}
