//! HTTP tracker URLs: the announce query (BEP 3, 7, 23) with byte-exact
//! percent-encoding of binary values, and the scrape URL (BEP 48).
//!
//! Binary values (`info_hash`, `peer_id`, `trackerid`) are encoded byte by
//! byte: every byte outside RFC 3986's unreserved set (`A-Z a-z 0-9 - . _ ~`)
//! becomes `%XX` (upper-case hex), as libtorrent does. An existing query in
//! the announce URL (a passkey, say) is kept, and our parameters follow it.
use crate::error::UrlError;
use crate::types::AnnounceRequest;
use percent_encoding::{percent_encode, AsciiSet, NON_ALPHANUMERIC};
use shoal_base::InfoHash;
use std::fmt::Write;
use url::Url;

/// Every byte but RFC 3986 unreserved characters is escaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes arbitrary bytes for a query value (byte-exact, see module docs).
pub fn encode_query_bytes(bytes: &[u8]) -> String {
    percent_encode(bytes, QUERY_VALUE).to_string()
}

/// Parses an `http`/`https` tracker URL.
pub fn parse_http_url(url: &str) -> Result<Url, UrlError> {
    let u = Url::parse(url).map_err(|source| UrlError::Parse {
        url: url.to_owned(),
        source,
    })?;
    match u.scheme() {
        "http" | "https" => Ok(u),
        other => Err(UrlError::UnsupportedScheme {
            url: url.to_owned(),
            scheme: other.to_owned(),
        }),
    }
}

fn append_query(mut base: Url, ours: &str) -> Url {
    let q = match base.query() {
        Some(existing) if !existing.is_empty() => format!("{existing}&{ours}"),
        _ => ours.to_owned(),
    };
    // Our part holds only unreserved characters, `%XX`, `&` and `=`, which
    // the URL serializer leaves as they are.
    base.set_query(Some(&q));
    base
}

/// Builds the announce URL for `req` on the tracker at `announce`.
///
/// `tracker_id` is the `tracker id` a previous reply from this tracker gave.
/// Parameters: `info_hash`, `peer_id`, `port`, `uploaded`, `downloaded`,
/// `left`, plus `compact=1` (and `no_peer_id=1`)
/// when compact, `event` unless [`crate::Event::None`], `numwant`, `key`
/// (8 hex digits), `ip`, `ipv6` (BEP 7) and `trackerid`.
pub fn announce_url(
    announce: &str,
    req: &AnnounceRequest,
    tracker_id: Option<&[u8]>,
) -> Result<Url, UrlError> {
    let base = parse_http_url(announce)?;
    let mut q = String::with_capacity(256);
    // Writing to a String cannot fail.
    let _ = write!(
        q,
        "info_hash={}&peer_id={}&port={}&uploaded={}&downloaded={}&left={}",
        encode_query_bytes(&req.info_hash.0),
        encode_query_bytes(&req.peer_id.0),
        req.port,
        req.uploaded,
        req.downloaded,
        req.left
    );
    if req.compact {
        q.push_str("&compact=1&no_peer_id=1");
    }
    if let Some(ev) = req.event.as_http_str() {
        let _ = write!(q, "&event={ev}");
    }
    if let Some(n) = req.numwant {
        let _ = write!(q, "&numwant={n}");
    }
    let _ = write!(q, "&key={:08x}", req.key);
    if let Some(ip) = req.ip {
        let _ = write!(q, "&ip={ip}");
    }
    if let Some(ip6) = req.ipv6 {
        let _ = write!(
            q,
            "&ipv6={}",
            encode_query_bytes(ip6.to_string().as_bytes())
        );
    }
    if let Some(id) = tracker_id {
        let _ = write!(q, "&trackerid={}", encode_query_bytes(id));
    }
    Ok(append_query(base, &q))
}

/// Derives the scrape URL from an announce URL (BEP 48 convention): the last
/// path segment must start with `announce`, which is replaced by `scrape`
/// (`/announce.php?x=1` becomes `/scrape.php?x=1`). Errors otherwise.
pub fn scrape_url(announce: &str) -> Result<Url, UrlError> {
    let mut u = parse_http_url(announce)?;
    let path = u.path().to_owned();
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let (dir, last) = path.split_at(cut);
    let Some(rest) = last.strip_prefix("announce") else {
        return Err(UrlError::NoScrape {
            url: announce.to_owned(),
        });
    };
    u.set_path(&format!("{dir}scrape{rest}"));
    Ok(u)
}

/// Builds a scrape request URL for `info_hashes` (one `info_hash` parameter each).
pub fn scrape_request_url(announce: &str, info_hashes: &[InfoHash]) -> Result<Url, UrlError> {
    let base = scrape_url(announce)?;
    let q: Vec<String> = info_hashes
        .iter()
        .map(|h| format!("info_hash={}", encode_query_bytes(&h.0)))
        .collect();
    if q.is_empty() {
        return Ok(base);
    }
    Ok(append_query(base, &q.join("&")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Event;

    fn req() -> AnnounceRequest {
        let mut info_hash = [0u8; 20];
        for (i, b) in info_hash.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(0x7e);
        }
        let mut r = AnnounceRequest::new(info_hash, *b"-SH0001-abc~._ /%&=\xff", 6881, 1000);
        r.uploaded = 5;
        r.downloaded = 7;
        r.key = 0xdeadbeef;
        r
    }

    #[test]
    fn percent_encoding_is_byte_exact() {
        assert_eq!(encode_query_bytes(b"aZ09-._~"), "aZ09-._~");
        assert_eq!(
            encode_query_bytes(&[0x00, 0x20, 0x2f, 0xff, 0x80, b'%']),
            "%00%20%2F%FF%80%25"
        );
        // Every byte round-trips through the percent decoder.
        let all: Vec<u8> = (0..=255u8).collect();
        let enc = encode_query_bytes(&all);
        let dec: Vec<u8> = percent_encoding::percent_decode_str(&enc).collect();
        assert_eq!(dec, all);
        assert_eq!(enc.len(), 66 + 3 * (256 - 66));
    }

    #[test]
    fn announce_url_exact() {
        let mut r = req();
        r.event = Event::Started;
        r.numwant = Some(50);
        let u = announce_url("http://127.0.0.1:6969/announce", &r, Some(b"id 1")).unwrap();
        let expect = format!(
            "http://127.0.0.1:6969/announce?info_hash={}&peer_id=-SH0001-abc~._%20%2F%25%26%3D%FF\
             &port=6881&uploaded=5&downloaded=7&left=1000&compact=1&no_peer_id=1&event=started\
             &numwant=50&key=deadbeef&trackerid=id%201",
            encode_query_bytes(&r.info_hash.0)
        );
        assert_eq!(u.as_str(), expect);
        // the info-hash decodes back to the same 20 bytes
        let ih = u.query_pairs().find(|(k, _)| k == "info_hash").unwrap();
        let _ = ih; // query_pairs decodes to UTF-8 lossily; check raw instead
        let raw = u
            .query()
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .strip_prefix("info_hash=")
            .unwrap();
        let dec: Vec<u8> = percent_encoding::percent_decode_str(raw).collect();
        assert_eq!(dec, r.info_hash.0);
    }

    #[test]
    fn announce_url_keeps_passkey_and_omits_none_event() {
        let mut r = req();
        r.compact = false;
        r.ip = Some("127.0.0.2".parse().unwrap());
        r.ipv6 = Some("::1".parse().unwrap());
        let u = announce_url("https://t.example/a/announce?passkey=abc", &r, None).unwrap();
        let q = u.query().unwrap();
        assert!(q.starts_with("passkey=abc&info_hash="), "{q}");
        assert!(!q.contains("event="));
        assert!(!q.contains("compact"));
        assert!(
            q.ends_with("&key=deadbeef&ip=127.0.0.2&ipv6=%3A%3A1"),
            "{q}"
        );
    }

    #[test]
    fn announce_url_rejects_other_schemes() {
        assert!(matches!(
            announce_url("udp://x:1", &req(), None),
            Err(UrlError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            announce_url("::", &req(), None),
            Err(UrlError::Parse { .. })
        ));
    }

    #[test]
    fn scrape_urls_per_bep48() {
        let cases = [
            (
                "http://example.com/announce",
                Some("http://example.com/scrape"),
            ),
            (
                "http://example.com/x/announce",
                Some("http://example.com/x/scrape"),
            ),
            (
                "http://example.com/announce.php",
                Some("http://example.com/scrape.php"),
            ),
            (
                "http://example.com/announce?x2%0644",
                Some("http://example.com/scrape?x2%0644"),
            ),
            ("http://example.com/a", None),
            (
                "http://example.com/announce?x=2/4",
                Some("http://example.com/scrape?x=2/4"),
            ),
            ("http://example.com/x%064announce", None),
            ("http://example.com/announce/x", None),
        ];
        for (a, want) in cases {
            let got = scrape_url(a).ok().map(|u| u.to_string());
            assert_eq!(got.as_deref(), want, "{a}");
        }
        let u = scrape_request_url(
            "http://h/announce",
            &[
                shoal_base::InfoHash([0xff; 20]),
                shoal_base::InfoHash([b'a'; 20]),
            ],
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            format!(
                "http://h/scrape?info_hash={}&info_hash={}",
                "%FF".repeat(20),
                "a".repeat(20)
            )
        );
    }
}
