//! The web UI: plain HTML, CSS and ES modules from `crates/daemon/ui/`,
//! embedded in the binary (`include_bytes!`, no build step, no CDN) and
//! served at `/` and `/ui/{file}` with a strong `ETag` (a hash of the
//! content) and `Cache-Control: no-cache`, so a browser revalidates and gets
//! `304 Not Modified` while the binary is the same. For work on the UI,
//! `SHOAL_UI_DIR=crates/daemon/ui` serves the files from that directory
//! instead, read at each request (no rebuild between edits).
//!
//! Also the UI's own endpoints: `POST /api/v1/login` checks a user and
//! password (JSON `{"user", "password"}`) and sets an `HttpOnly`,
//! `SameSite=Strict` session cookie, which [`crate::http::guard`] accepts
//! as well as Basic auth (an `EventSource` cannot send `Authorization`);
//! `POST /api/v1/logout` clears it; and `POST /api/v1/torrents/{key}/files`
//! sets file priorities; `GET /api/v1/dht` gives the DHT's numbers for the
//! session panel. The page, its assets and the login endpoint are
//! served without credentials (they hold no data); everything else is
//! guarded as before.
use crate::service::bump;
use crate::Shared;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;
use std::sync::{Arc, OnceLock};

/// One embedded file.
struct Asset {
    name: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "index.html",
        mime: "text/html; charset=utf-8",
        body: include_bytes!("../ui/index.html"),
    },
    Asset {
        name: "app.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../ui/app.js"),
    },
    Asset {
        name: "details.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../ui/details.js"),
    },
    Asset {
        name: "util.js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("../ui/util.js"),
    },
    Asset {
        name: "style.css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("../ui/style.css"),
    },
    Asset {
        name: "icon.svg",
        mime: "image/svg+xml",
        body: include_bytes!("../ui/icon.svg"),
    },
];

/// The name of the session cookie.
pub const COOKIE: &str = "shoal_session";

/// 64-bit FNV-1a: a content hash for the `ETag` (not a security check).
fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325, |h, &x| {
        (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The `ETag` of an embedded file.
fn etag(a: &Asset) -> String {
    format!("\"{:016x}\"", fnv(a.body))
}

/// Whether `If-None-Match` lists `tag` (or `*`).
fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == tag || t == "*")
}

/// The file from `SHOAL_UI_DIR`, when set (development).
fn from_dir(name: &str) -> Option<Vec<u8>> {
    let dir = std::env::var_os("SHOAL_UI_DIR")?;
    std::fs::read(std::path::Path::new(&dir).join(name)).ok()
}

fn serve(name: &str, headers: &HeaderMap) -> Response {
    let Some(a) = ASSETS.iter().find(|a| a.name == name) else {
        return crate::http::text(StatusCode::NOT_FOUND, "not found\n");
    };
    let dev = from_dir(a.name);
    let tag = match &dev {
        Some(b) => format!("\"{:016x}\"", fnv(b)),
        None => etag(a),
    };
    let mut r = if not_modified(headers, &tag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else if let Some(b) = dev {
        ([(header::CONTENT_TYPE, a.mime)], b).into_response()
    } else {
        ([(header::CONTENT_TYPE, a.mime)], a.body).into_response()
    };
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; frame-ancestors 'none'",
        ),
    );
    r
}

/// `GET /`: the page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /ui/{file}`: a script, style sheet or icon.
pub async fn asset(Path(name): Path<String>, headers: HeaderMap) -> Response {
    serve(&name, &headers)
}

/// Paths served without credentials: the page, its assets, the login.
pub fn public_path(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/") || path == "/api/v1/login"
}

/// This process's session token (random, made on first use).
fn token() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| {
        use rand::Rng;
        let mut b = [0u8; 32];
        rand::thread_rng().fill(&mut b);
        hex::encode(b)
    })
}

/// The token that opens the streams of one torrent without credentials
/// (players given a playlist cannot log in): SHA-256 of this process's
/// session token and the info-hash as it appears in the URL (lowercase
/// hex), 32 hex digits. Valid until the daemon restarts.
pub fn stream_token(hash_hex: &str) -> String {
    use sha2::Digest as _;
    let mut h = sha2::Sha256::new();
    h.update(token().as_bytes());
    h.update(b"/stream/");
    h.update(hash_hex.to_ascii_lowercase().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Whether `uri` is a stream or playlist of one torrent
/// (`/stream/{hash}/…` or `/stream/{hash}.m3u`) carrying that torrent's
/// [`stream_token`] as `?token=`.
pub fn stream_token_ok(uri: &axum::http::Uri) -> bool {
    let Some(rest) = uri.path().strip_prefix("/stream/") else {
        return false;
    };
    let hash = rest
        .split_once('/')
        .map_or_else(|| rest.strip_suffix(".m3u").unwrap_or(""), |(h, _)| h);
    if hash.is_empty() {
        return false;
    }
    let want = stream_token(hash);
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| {
            k == "token"
                && v.len() == want.len()
                && v.bytes()
                    .zip(want.bytes())
                    .fold(0u8, |a, (x, y)| a | (x ^ y))
                    == 0
        })
}

/// Whether the request carries the session cookie of this process.
pub fn cookie_ok(headers: &HeaderMap) -> bool {
    let want = token().as_bytes();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| {
            k == COOKIE
                && v.len() == want.len()
                && v.bytes().zip(want).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
        })
}

/// The body of `POST /api/v1/login`.
#[derive(Debug, Deserialize)]
pub struct LoginBody {
    user: String,
    password: String,
}

fn cookie_header(value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age.map_or(String::new(), |s| format!("; Max-Age={s}"));
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `GET /api/v1/login`: whether credentials are needed and present.
pub async fn login_state(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let required = shared.config.credentials().is_some();
    let ok = match shared.config.credentials() {
        None => true,
        Some((u, p)) => {
            cookie_ok(&headers) || crate::http::auth_ok(headers.get(header::AUTHORIZATION), u, p)
        }
    };
    Json(json!({"auth_required": required, "logged_in": ok})).into_response()
}

/// `POST /api/v1/login`.
pub async fn login(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    body: axum::body::Bytes,
) -> Response {
    bump(&shared.http.rest);
    if shared.config.credentials().is_some() {
        if let Some(r) = crate::http::too_many_logins(&shared, client.ip()) {
            return r;
        }
    }
    let b: LoginBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("bad request body: {e}")})),
            )
                .into_response()
        }
    };
    if let Some((u, p)) = shared.config.credentials() {
        let same = |a: &str, b: &str| {
            a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |x, (c, d)| x | (c ^ d)) == 0
        };
        // Both compared, so the time does not tell which one was wrong.
        let (ok_u, ok_p) = (same(&b.user, u), same(&b.password, p));
        if !(ok_u & ok_p) {
            shared.logins.failed(client.ip(), std::time::Instant::now());
            bump(&shared.http.refused);
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "wrong user name or password"})),
            )
                .into_response();
        }
    }
    shared.logins.succeeded(client.ip());
    let mut r = Json(json!({"logged_in": true})).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie_header(token(), None));
    r
}

/// `POST /api/v1/logout`: clears the cookie.
pub async fn logout() -> Response {
    let mut r = Json(json!({"logged_in": false})).into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, cookie_header("", Some(0)));
    r
}

/// The body of `POST /api/v1/torrents/{key}/files`: engine priorities by
/// file index (0 skips the file, 1 low, 2 normal, 3 high), either the whole
/// list (`priorities`) or some files (`set`: `{"index": priority}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesBody {
    priorities: Option<Vec<u8>>,
    set: Option<std::collections::BTreeMap<usize, u8>>,
}

/// `POST /api/v1/torrents/{key}/files`.
pub async fn set_files(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    bump(&shared.http.rest);
    let err = |s: StatusCode, m: String| (s, Json(json!({"error": m}))).into_response();
    let b: FilesBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return err(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let Some(h) = shared.lookup(&key) else {
        return err(StatusCode::NOT_FOUND, format!("no torrent {key}"));
    };
    let m = h.meta();
    let Some(t) = m.torrent.as_deref() else {
        return err(
            StatusCode::CONFLICT,
            "file priorities need the torrent's metadata, which has not arrived yet".into(),
        );
    };
    let n = t.files().len();
    let mut prio: Vec<u8> = (0..n)
        .map(|i| m.file_priorities.get(i).copied().unwrap_or(1))
        .collect();
    if let Some(p) = b.priorities {
        if p.len() != n {
            return err(
                StatusCode::BAD_REQUEST,
                format!("priorities: {} given, the torrent has {n} files", p.len()),
            );
        }
        prio = p;
    }
    for (i, p) in b.set.unwrap_or_default() {
        match prio.get_mut(i) {
            Some(x) => *x = p,
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!("file {i}: the torrent has {n} files"),
                )
            }
        }
    }
    for (p, f) in prio.iter_mut().zip(t.files()) {
        if f.pad {
            *p = 0;
        }
    }
    if prio.iter().all(|&p| p == 0) {
        return err(
            StatusCode::BAD_REQUEST,
            "at least one file must stay wanted".into(),
        );
    }
    match h.set_file_priorities(prio.clone()).await {
        Ok(()) => Json(json!({"priorities": prio})).into_response(),
        Err(e) => err(StatusCode::CONFLICT, e.to_string()),
    }
}

/// `GET /api/v1/dht`: the DHT's address, id, routing table size and
/// counters (`{"enabled": false}` without a DHT).
pub async fn dht(State(shared): State<Arc<Shared>>) -> Response {
    bump(&shared.http.rest);
    let Some(d) = shared.session.dht() else {
        return Json(json!({"enabled": false})).into_response();
    };
    let nodes = d.nodes().await.map(|n| n.len()).unwrap_or(0);
    let c = d.counters().await.unwrap_or_default();
    Json(json!({
        "enabled": true,
        "address": d.local_addr().to_string(),
        "node_id": d.id().to_hex(),
        "nodes": nodes,
        "packets_in": c.packets_in,
        "packets_out": c.packets_out,
        "queries_answered": c.queries_answered,
        "timeouts": c.timeouts,
        "decode_errors": c.decode_errors,
        "rate_limited": c.rate_limited,
        "errors_received": c.errors_received,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_and_revalidation() {
        let a = &ASSETS[0];
        let tag = etag(a);
        assert_eq!(tag.len(), 18);
        let mut h = HeaderMap::new();
        assert!(!not_modified(&h, &tag));
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"x\", W/{tag}")).unwrap(),
        );
        assert!(not_modified(&h, &tag));
        assert_eq!(serve("index.html", &h).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(serve("app.js", &h).status(), StatusCode::OK);
        assert_eq!(serve("../Cargo.toml", &h).status(), StatusCode::NOT_FOUND);
        // Every asset differs, so every tag does.
        let tags: std::collections::HashSet<String> = ASSETS.iter().map(etag).collect();
        assert_eq!(tags.len(), ASSETS.len());
    }

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        assert!(!cookie_ok(&h));
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}=nope")).unwrap(),
        );
        assert!(!cookie_ok(&h));
        h.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("a=b; {COOKIE}={}", token())).unwrap(),
        );
        assert!(cookie_ok(&h));
        let c = cookie_header("v", None);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict"),
            "{c}"
        );
    }

    #[test]
    fn public_paths() {
        assert!(public_path("/") && public_path("/ui/app.js") && public_path("/api/v1/login"));
        assert!(!public_path("/api/v1/torrents") && !public_path("/metrics"));
    }
}
