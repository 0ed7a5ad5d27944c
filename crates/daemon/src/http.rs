//! The HTTP side: one axum router on one port.
//!
//! | path | what |
//! |---|---|
//! | `/transmission/rpc` | Transmission RPC ([`crate::rpc`]) |
//! | `/api/v1/…` | shoal's REST API and server-sent events ([`crate::rest`]) |
//! | `/metrics` | Prometheus text ([`crate::metrics`]) |
//! | `/`, `/ui/…` | the web UI ([`crate::ui`]) |
//! | `/status` | a small server-rendered status page ([`crate::page`]) |
//! | `/stream/{info_hash}/{file_index}` | a file while it downloads ([`crate::stream`]) |
//! | `/stream/{info_hash}.m3u` | a playlist of its media files ([`crate::playlist`]) |
//!
//! Every request passes [`guard`] first: the `Host` header must be an IP
//! address, `localhost` or an allowed name (DNS rebinding; 421 as
//! Transmission answers), Basic auth or the web UI's session cookie when
//! configured (401; the page, its assets and the login are public), and a browser's
//! cross-origin request that changes state is refused (403). Bodies are
//! limited to `max-body-bytes` (413). The RPC adds Transmission's CSRF
//! handshake: a request without the current `X-Transmission-Session-Id`
//! gets 409 with it.
use crate::service::bump;
use crate::Shared;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine as _;
use std::sync::Arc;

/// The Transmission session-id header.
pub const SESSION_ID: &str = "x-transmission-session-id";

/// The whole router.
pub fn router(shared: Arc<Shared>) -> Router {
    let limit = shared.config.max_body_bytes;
    Router::new()
        .route("/transmission/rpc", any(rpc))
        .route("/transmission/rpc/", any(rpc))
        .route("/metrics", get(crate::metrics::handler))
        .route("/", get(crate::ui::index))
        .route("/ui/{file}", get(crate::ui::asset))
        .route("/status", get(crate::page::handler))
        .route(
            "/api/v1/login",
            get(crate::ui::login_state).post(crate::ui::login),
        )
        .route("/api/v1/logout", axum::routing::post(crate::ui::logout))
        .route("/api/v1/dht", get(crate::ui::dht))
        .route(
            "/stream/{info_hash}/{file_index}",
            get(crate::stream::handler),
        )
        .route("/stream/{name}", get(crate::playlist::handler))
        .nest("/api/v1", crate::rest::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

async fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found\n")
}

/// A plain-text answer.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

/// Whether a `Host` header names something the daemon answers to.
pub fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let host = host.trim();
    // `[::1]:9091`, `127.0.0.1:9091`, `name:9091`, `name`.
    let name = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, _)) => return ip.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        }
    } else {
        host.rsplit_once(':').map_or(host, |(n, _)| n)
    };
    if name.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || allowed
            .iter()
            .any(|a| a.trim_end_matches('.').eq_ignore_ascii_case(&name))
}

/// Whether a Basic `Authorization` header carries `user:pass`.
pub fn auth_ok(h: Option<&HeaderValue>, user: &str, pass: &str) -> bool {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(b64) = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))
    else {
        return false;
    };
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
        return false;
    };
    let want = format!("{user}:{pass}");
    // Compare without an early exit on the first differing byte.
    raw.len() == want.len()
        && raw
            .iter()
            .zip(want.as_bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Whether a browser sent this request from another site.
fn cross_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if site.eq_ignore_ascii_case("cross-site") {
            return true;
        }
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // `Origin: http://host:port` must name the host the request went to.
    let origin_host = origin
        .split_once("://")
        .map_or(origin, |(_, rest)| rest)
        .trim_end_matches('/');
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

/// See the module docs.
pub async fn guard(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !host_allowed(host, &shared.config.allowed_hosts) {
        bump(&shared.http.refused);
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            format!(
                "421: Misdirected Request\nUnauthorized host name {host:?}: add it to allowed-hosts, or use an IP address or localhost\n"
            ),
        );
    }
    if let Some((user, pass)) = shared.config.credentials() {
        let basic = headers.get(header::AUTHORIZATION);
        let ip = client_ip(&req);
        if basic.is_some() {
            if let Some(r) = ip.and_then(|ip| too_many_logins(&shared, ip)) {
                return r;
            }
        }
        let ok = auth_ok(basic, user, pass);
        if let (Some(ip), true) = (ip, basic.is_some()) {
            if ok {
                shared.logins.succeeded(ip);
            } else {
                shared.logins.failed(ip, std::time::Instant::now());
            }
        }
        if !ok
            && !crate::ui::cookie_ok(headers)
            && !crate::ui::public_path(req.uri().path())
            && !crate::ui::stream_token_ok(req.uri())
        {
            bump(&shared.http.refused);
            let mut r = text(StatusCode::UNAUTHORIZED, "401: Unauthorized\n");
            // The web UI asks with its own form: no browser prompt for it.
            if !headers.contains_key("x-shoal-ui") {
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"shoal\""),
                );
            }
            return r;
        }
    }
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes && cross_origin(headers) {
        bump(&shared.http.refused);
        return text(
            StatusCode::FORBIDDEN,
            "403: Forbidden\ncross-origin requests that change state are refused\n",
        );
    }
    next.run(req).await
}

/// The address of the client that sent `req` (the server runs with
/// connect info; `None` only for requests built in tests).
fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// `429 Too Many Requests` with `Retry-After` when `ip` is locked out for
/// wrong credentials ([`crate::throttle`]).
pub fn too_many_logins(shared: &Shared, ip: std::net::IpAddr) -> Option<Response> {
    let wait = shared.logins.blocked(ip, std::time::Instant::now())?;
    bump(&shared.http.refused);
    let secs = wait.as_secs() + 1;
    let mut r = text(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "429: Too Many Requests
too many wrong user names or passwords: try again in {secs} s
"
        ),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    Some(r)
}

fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

/// The Transmission RPC endpoint.
async fn rpc(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let id_ok = headers
        .get(SESSION_ID)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == shared.session_id);
    if !id_ok {
        let mut r = Response::new(Body::from(format!(
            "<h1>409: Conflict</h1><p>Your request had an invalid session-id header.</p><p><code>X-Transmission-Session-Id: {}</code></p>",
            shared.session_id
        )));
        *r.status_mut() = StatusCode::CONFLICT;
        let h = r.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&shared.session_id) {
            h.insert(SESSION_ID, v);
        }
        h.insert(
            "x-transmission-rpc-version",
            HeaderValue::from_static(crate::rpc::RPC_VERSION_SEMVER),
        );
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=ISO-8859-1"),
        );
        return r;
    }
    bump(&shared.http.rpc);
    match crate::rpc::handle(&shared, &body).await {
        crate::rpc::Reply::Json(raw) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
            String::from(Box::<str>::from(raw)),
        )
            .into_response(),
        crate::rpc::Reply::BadRequest(v) => {
            bump(&shared.http.refused);
            json_response(StatusCode::BAD_REQUEST, &v)
        }
        crate::rpc::Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let allowed = vec!["box.lan".to_string()];
        for ok in [
            "127.0.0.1:9091",
            "localhost:9091",
            "localhost.",
            "LOCALHOST",
            "[::1]:9091",
            "10.1.2.3",
            "box.lan:80",
            "BOX.LAN.",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for bad in [
            "evil.example:9091",
            "localhost.evil.example",
            "",
            "[nope]:1",
            "box.lan.evil",
        ] {
            assert!(!host_allowed(bad, &allowed), "{bad}");
        }
    }

    #[test]
    fn basic_auth() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("u:p w")
        );
        assert!(auth_ok(Some(&v(&good)), "u", "p w"));
        assert!(!auth_ok(Some(&v(&good)), "u", "p"));
        assert!(!auth_ok(Some(&v("Basic !!!")), "u", "p"));
        assert!(!auth_ok(Some(&v("Bearer x")), "u", "p"));
        assert!(!auth_ok(None, "u", "p"));
    }

    #[test]
    fn origins() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9091"));
        assert!(
            !cross_origin(&h),
            "no Origin: not a browser's cross-site request"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:9091"),
        );
        assert!(!cross_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(cross_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_origin(&h));
        let mut h2 = HeaderMap::new();
        h2.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_origin(&h2));
    }
}
