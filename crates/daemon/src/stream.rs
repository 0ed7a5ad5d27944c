//! `/stream/{info_hash}/{file_index}`: serves one file of a torrent while it
//! downloads, the way media players read it.
//!
//! - the torrent is named by its v1 or v2 info-hash in hex, the file by its
//!   index as `shoal info` numbers them (pad files are not served);
//! - `Accept-Ranges: bytes`; one range (`bytes=a-b`, `bytes=a-`, `bytes=-n`)
//!   gets an exact `206` with `Content-Range`; a request with several ranges
//!   is answered with its first satisfiable range only (never multipart);
//!   no range gets `200`; a range past the end gets `416` with
//!   `Content-Range: bytes */len`; a malformed `Range` is ignored (200);
//! - a strong `ETag` from the info-hash, the file index and its length (the
//!   bytes of a verified torrent never change), `Last-Modified` from the
//!   time the torrent was added; `If-None-Match` (304) and `If-Range` (a
//!   stale validator gets the whole file) are honoured;
//! - `Content-Type` from the file's extension ([`content_type`]);
//! - the body is read through the engine's [`FileReader`] chunk by chunk as
//!   the client takes it (bounded memory whatever the range), so the
//!   reader's window, and with it the piece picker, follows what the player
//!   reads and a seek moves it. Each read waits for its bytes up to
//!   [`READ_WAIT`]; past that the connection is closed, never padded;
//! - an unknown torrent or file is `404`; a torrent whose metadata has not
//!   arrived yet is `503` with `Retry-After`.
//!
//! The `.m3u` playlist of a torrent's media files is in [`crate::playlist`].
use crate::http::text;
use crate::Shared;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::Response;
use shoal_engine::{FileReader, TorrentHandle};
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How long one read of the body waits for its bytes to be downloaded and
/// verified before the connection is closed.
pub const READ_WAIT: Duration = Duration::from_secs(60);
/// Bytes asked of the reader at a time.
const CHUNK: usize = 64 * 1024;
/// Seconds of data at the measured download rate fetched ahead of a reader.
const AHEAD_SECONDS: u64 = 4;
/// Bounds of the read-ahead window, in pieces.
const AHEAD_MIN: u32 = 2;
const AHEAD_MAX: u32 = 64;
/// What a client waiting for metadata is told to wait, in seconds.
const RETRY_AFTER: &str = "5";

/// The `Content-Type` of a file named `path`, from its extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        "avi" => "video/x-msvideo",
        "mov" => "video/quicktime",
        "ts" | "m2ts" => "video/mp2t",
        "mpg" | "mpeg" => "video/mpeg",
        "ogv" => "video/ogg",
        "mp3" => "audio/mpeg",
        "flac" => "audio/flac",
        "ogg" | "oga" => "audio/ogg",
        "opus" => "audio/ogg; codecs=opus",
        "m4a" | "m4b" => "audio/mp4",
        "aac" => "audio/aac",
        "wav" => "audio/wav",
        "srt" => "application/x-subrip",
        "vtt" => "text/vtt; charset=utf-8",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "txt" | "nfo" => "text/plain; charset=utf-8",
        "pdf" => "application/pdf",
        "epub" => "application/epub+zip",
        "zip" => "application/zip",
        _ => "application/octet-stream",
    }
}

/// Whether a file is audio or video, for the playlist.
pub fn is_media(path: &str) -> bool {
    let t = content_type(path);
    t.starts_with("video/") || t.starts_with("audio/")
}

/// What a `Range` header asks of a file of `len` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeAsk {
    /// No usable `Range`: the whole file.
    Whole,
    /// One satisfiable range (the first of several).
    Part(Range<u64>),
    /// Nothing asked lies inside the file: 416.
    Unsatisfiable,
}

/// Parses a `Range` header value (RFC 9110 §14.1.2) against a file of
/// `len` bytes. Anything malformed or in another unit is ignored (the whole
/// file); of several ranges the first satisfiable one is answered.
pub fn parse_range(value: &str, len: u64) -> RangeAsk {
    let Some(set) = value.trim().strip_prefix("bytes=") else {
        return RangeAsk::Whole;
    };
    let mut parsed = Vec::new();
    for spec in set.split(',') {
        let spec = spec.trim();
        if spec.is_empty() {
            continue;
        }
        let Some((a, b)) = spec.split_once('-') else {
            return RangeAsk::Whole;
        };
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| -> Option<u64> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                None
            } else {
                s.parse().ok()
            }
        };
        let r = if a.is_empty() {
            // Suffix: the last n bytes.
            let Some(n) = num(b) else {
                return RangeAsk::Whole;
            };
            (n > 0 && len > 0).then(|| len.saturating_sub(n)..len)
        } else {
            let Some(first) = num(a) else {
                return RangeAsk::Whole;
            };
            let last = if b.is_empty() {
                None
            } else {
                match num(b) {
                    Some(l) if l >= first => Some(l),
                    _ => return RangeAsk::Whole,
                }
            };
            (first < len).then(|| first..last.map_or(len, |l| l.saturating_add(1).min(len)))
        };
        parsed.push(r);
    }
    if parsed.is_empty() {
        return RangeAsk::Whole;
    }
    match parsed.into_iter().flatten().next() {
        Some(r) => RangeAsk::Part(r),
        None => RangeAsk::Unsatisfiable,
    }
}

/// The strong entity tag of file `index` of the torrent `hash` (hex).
pub fn etag(hash: &str, index: usize, len: u64) -> String {
    format!("\"{hash}-{index}-{len:x}\"")
}

/// Whether an `If-None-Match` value names `tag` (weak comparison).
fn none_match(value: &str, tag: &str) -> bool {
    let tag = tag.trim_start_matches("W/");
    value
        .split(',')
        .map(|t| t.trim())
        .any(|t| t == "*" || t.trim_start_matches("W/") == tag)
}

/// Whether an `If-Range` value still names this representation (a strong
/// tag, or exactly the `Last-Modified` date).
fn if_range_holds(value: &str, tag: &str, last_modified: &str) -> bool {
    let v = value.trim();
    if v.starts_with('"') {
        v == tag
    } else {
        v == last_modified
    }
}

/// Bytes fetched ahead of a reader: a few seconds at `rate` (bytes per
/// second), in pieces of `piece_len`, between [`AHEAD_MIN`] and [`AHEAD_MAX`].
pub fn read_ahead(rate: u64, piece_len: u64) -> u32 {
    let bytes = rate.saturating_mul(AHEAD_SECONDS);
    let pieces = bytes.div_ceil(piece_len.max(1));
    u32::try_from(pieces)
        .unwrap_or(AHEAD_MAX)
        .clamp(AHEAD_MIN, AHEAD_MAX)
}

/// Finds a torrent by its v1 or v2 info-hash in hex.
pub fn find_by_hash(shared: &Shared, hash: &str) -> Option<TorrentHandle> {
    if hash.len() != 40 && hash.len() != 64 {
        return None;
    }
    let bytes = hex::decode(hash).ok()?;
    shared.session.find(&bytes)
}

/// The path of the stream of file `index` of `h`.
pub fn stream_path(h: &TorrentHandle, index: usize) -> String {
    format!("/stream/{}/{index}", h.info_hashes().primary().to_hex())
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn insert(r: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// `GET|HEAD /stream/{info_hash}/{file_index}`.
pub async fn handler(
    State(shared): State<Arc<Shared>>,
    Path((hash, index)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    crate::service::bump(&shared.http.rest);
    let Some(h) = find_by_hash(&shared, &hash.to_ascii_lowercase()) else {
        return text(StatusCode::NOT_FOUND, format!("no torrent {hash}\n"));
    };
    let Ok(index) = index.parse::<usize>() else {
        return text(StatusCode::NOT_FOUND, format!("no file {index}\n"));
    };
    let meta = h.meta();
    let Some(t) = meta.torrent.clone() else {
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the torrent's metadata has not arrived yet\n",
        );
        insert(&mut r, header::RETRY_AFTER, RETRY_AFTER);
        return r;
    };
    let Some(file) = t.files().get(index).filter(|f| !f.pad) else {
        return text(StatusCode::NOT_FOUND, format!("no file {index}\n"));
    };
    let len = file.length;
    let path = file.path_string();
    let tag = etag(&h.info_hashes().primary().to_hex(), index, len);
    let modified =
        httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(meta.added_at));

    let mut r = Response::new(Body::empty());
    insert(&mut r, header::ACCEPT_RANGES, "bytes");
    insert(&mut r, header::ETAG, &tag);
    insert(&mut r, header::LAST_MODIFIED, &modified);
    insert(&mut r, header::CONTENT_TYPE, content_type(&path));

    if let Some(v) = header_str(&headers, header::IF_NONE_MATCH) {
        if none_match(v, &tag) {
            *r.status_mut() = StatusCode::NOT_MODIFIED;
            r.headers_mut().remove(header::CONTENT_TYPE);
            return r;
        }
    }
    let mut ask =
        header_str(&headers, header::RANGE).map_or(RangeAsk::Whole, |v| parse_range(v, len));
    if let Some(v) = header_str(&headers, header::IF_RANGE) {
        if !if_range_holds(v, &tag, &modified) {
            ask = RangeAsk::Whole;
        }
    }
    let range = match ask {
        RangeAsk::Whole => 0..len,
        RangeAsk::Part(p) => {
            *r.status_mut() = StatusCode::PARTIAL_CONTENT;
            insert(
                &mut r,
                header::CONTENT_RANGE,
                &format!("bytes {}-{}/{len}", p.start, p.end - 1),
            );
            p
        }
        RangeAsk::Unsatisfiable => {
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            insert(&mut r, header::CONTENT_RANGE, &format!("bytes */{len}"));
            insert(&mut r, header::CONTENT_TYPE, "text/plain; charset=utf-8");
            insert(&mut r, header::CONTENT_LENGTH, "0");
            return r;
        }
    };
    insert(
        &mut r,
        header::CONTENT_LENGTH,
        &(range.end - range.start).to_string(),
    );
    if method == Method::HEAD || range.is_empty() {
        return r;
    }
    let reader = match h.open_file(index) {
        Ok(reader) => reader,
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
    };
    *r.body_mut() = Body::from_stream(body(reader, h, t.piece_length(), range));
    r
}

/// The body: reads `range` through `reader` one chunk at a time, as the
/// client takes it; an error ends the stream, and hyper closes the
/// connection short of `Content-Length` rather than sending anything else.
fn body(
    reader: FileReader,
    h: TorrentHandle,
    piece_len: u64,
    range: Range<u64>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, shoal_engine::ReadError>> + Send {
    let state = (reader, h, range.start, 0u32);
    futures_util::stream::unfold(state, move |(mut reader, h, pos, ahead)| {
        let end = range.end;
        async move {
            if pos >= end {
                return None;
            }
            let want = read_ahead(h.status().download_rate, piece_len);
            if want != ahead {
                reader.set_read_ahead(want);
            }
            let max = usize::try_from(end - pos).unwrap_or(CHUNK).min(CHUNK);
            match reader.read_at(pos, max, READ_WAIT).await {
                Ok(b) if b.is_empty() => None,
                Ok(b) => {
                    let next = pos + b.len() as u64;
                    Some((Ok(b), (reader, h, next, want)))
                }
                Err(e) => {
                    tracing::debug!(error = %e, pos, "stream read failed: closing");
                    Some((Err(e), (reader, h, end, want)))
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        use RangeAsk::*;
        let p = |s: &str| parse_range(s, 1000);
        assert_eq!(p("bytes=0-0"), Part(0..1));
        assert_eq!(p("bytes=10-19"), Part(10..20));
        assert_eq!(p("bytes=990-5000"), Part(990..1000));
        assert_eq!(p("bytes=500-"), Part(500..1000));
        assert_eq!(p("bytes=-10"), Part(990..1000));
        assert_eq!(p("bytes=-5000"), Part(0..1000));
        assert_eq!(p("bytes=1000-"), Unsatisfiable);
        assert_eq!(p("bytes=1000-1001"), Unsatisfiable);
        assert_eq!(p("bytes=-0"), Unsatisfiable);
        assert_eq!(p("bytes=2000-, 5-9"), Part(5..10));
        assert_eq!(p("bytes=0-1, 5-9"), Part(0..2));
        for bad in [
            "bytes=9-5",
            "bytes=a-",
            "items=0-1",
            "bytes=",
            "bytes=--1",
            "bytes=1",
        ] {
            assert_eq!(p(bad), Whole, "{bad}");
        }
        assert_eq!(parse_range("bytes=0-", 0), Unsatisfiable);
        assert_eq!(parse_range("bytes=-1", 0), Unsatisfiable);
    }

    #[test]
    fn validators() {
        let tag = etag("ab", 1, 16);
        assert_eq!(tag, "\"ab-1-10\"");
        assert!(none_match("\"x\", \"ab-1-10\"", &tag));
        assert!(none_match("W/\"ab-1-10\"", &tag));
        assert!(none_match("*", &tag));
        assert!(!none_match("\"ab-1-11\"", &tag));
        let date = "Thu, 01 Jan 1970 00:00:00 GMT";
        assert!(if_range_holds("\"ab-1-10\"", &tag, date));
        assert!(!if_range_holds("\"ab-2-10\"", &tag, date));
        assert!(if_range_holds(date, &tag, date));
        assert!(!if_range_holds("Fri, 02 Jan 1970 00:00:00 GMT", &tag, date));
    }

    #[test]
    fn types() {
        assert_eq!(content_type("a/Film.MP4"), "video/mp4");
        assert_eq!(content_type("x.mkv"), "video/x-matroska");
        assert_eq!(content_type("x.flac"), "audio/flac");
        assert_eq!(content_type("x.srt"), "application/x-subrip");
        assert_eq!(content_type("README"), "application/octet-stream");
        assert_eq!(content_type("x.bin"), "application/octet-stream");
        assert!(is_media("a.webm") && is_media("b.m4a") && !is_media("c.srt"));
    }

    #[test]
    fn read_ahead_follows_the_rate() {
        let piece = 256 * 1024;
        assert_eq!(read_ahead(0, piece), AHEAD_MIN);
        assert_eq!(read_ahead(1024 * 1024, piece), 16);
        assert_eq!(read_ahead(u64::MAX, piece), AHEAD_MAX);
        assert!(read_ahead(2 << 20, piece) > read_ahead(1 << 20, piece));
    }
}
