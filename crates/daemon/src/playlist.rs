//! `/stream/{info_hash}.m3u`: an extended M3U playlist of a torrent's audio
//! and video files, in file order, for VLC and mpv. Each entry is an
//! absolute URL of its [`crate::stream`] built from the request's `Host`
//! (already checked by [`crate::http::guard`]). When the daemon asks for
//! credentials, the URLs carry the torrent's [`crate::ui::stream_token`].
use crate::http::text;
use crate::stream::{find_by_hash, is_media};
use crate::Shared;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::Arc;

/// The playlist's media type.
pub const MEDIA_TYPE: &str = "audio/x-mpegurl";

/// The playlist of `files` (index, path) of the torrent `hash`, served at
/// `http://{host}`; with `token` (the daemon asks for credentials), each URL
/// carries it as `?token=`, so players open the streams without logging in.
pub fn render(
    host: &str,
    hash: &str,
    token: Option<&str>,
    files: impl Iterator<Item = (usize, String)>,
) -> String {
    let mut out = String::from("#EXTM3U\n");
    let query = token.map(|t| format!("?token={t}")).unwrap_or_default();
    for (i, path) in files {
        // A title on one line: no control characters.
        let title: String = path.chars().filter(|c| !c.is_control()).collect();
        let _ = write!(
            out,
            "#EXTINF:-1,{title}\nhttp://{host}/stream/{hash}/{i}{query}\n"
        );
    }
    out
}

/// `GET /stream/{info_hash}.m3u` (the router sends every one-segment
/// `/stream/…` here).
pub async fn handler(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    crate::service::bump(&shared.http.rest);
    let Some(hash) = name.strip_suffix(".m3u") else {
        return text(StatusCode::NOT_FOUND, "not found\n");
    };
    let Some(h) = find_by_hash(&shared, &hash.to_ascii_lowercase()) else {
        return text(StatusCode::NOT_FOUND, format!("no torrent {hash}\n"));
    };
    let Some(t) = h.torrent() else {
        let mut r = text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the torrent's metadata has not arrived yet\n",
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let files = t
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.pad && is_media(&f.path_string()))
        .map(|(i, f)| (i, f.path_string()));
    let hash = h.info_hashes().primary().to_hex();
    let token = shared
        .config
        .credentials()
        .map(|_| crate::ui::stream_token(&hash));
    let body = render(host, &hash, token.as_deref(), files);
    ([(header::CONTENT_TYPE, MEDIA_TYPE)], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_order_with_absolute_urls() {
        let files = [(0, "a/1.mkv".to_string()), (3, "a/b\nc.mp3".to_string())];
        let m = render("127.0.0.1:9091", "ab", None, files.into_iter());
        assert_eq!(
            m,
            "#EXTM3U\n#EXTINF:-1,a/1.mkv\nhttp://127.0.0.1:9091/stream/ab/0\n#EXTINF:-1,a/bc.mp3\nhttp://127.0.0.1:9091/stream/ab/3\n"
        );
    }
}
