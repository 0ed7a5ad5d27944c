//! Hostile HTTP input: a foreign Host (421), missing or wrong credentials
//! (401), cross-origin writes (403), bodies over the limit (413), broken
//! JSON and wrong types (clear errors), paths outside the allowed roots,
//! garbage on the socket; the daemon keeps answering throughout.

use crate::common::*;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use shoal_daemon::client::request;
use shoal_daemon::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn get(url: &str, headers: &[(&str, String)]) -> shoal_daemon::client::Response {
    request("GET", url, headers, Vec::new(), 1 << 20, LIMIT)
        .await
        .unwrap()
}

/// An HTTP Basic `Authorization` value for `user:pass`.
fn basic(user_pass: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

/// Sends raw bytes, returns what came back (until close or 5 s).
async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(bytes).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_clear_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let mut cfg = config(root);
    let allowed = root.join("downloads");
    cfg.download_roots = vec![allowed.clone()];
    cfg.max_body_bytes = 64 * 1024;
    let d = Daemon::start(cfg).await.unwrap();
    let base = format!("http://{}", d.http_addr());
    let mut rpc = Rpc::new(&d);
    rpc.ok("session-get", Value::Null).await;

    // DNS rebinding: a name that is not allowed.
    let r = get(&format!("{base}/"), &[("Host", "evil.example:9091".into())]).await;
    assert_eq!(r.status, 421, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("evil.example"));
    for ok_host in ["localhost:9091", "127.0.0.1", "[::1]:9091"] {
        let r = get(&format!("{base}/"), &[("Host", ok_host.into())]).await;
        assert_eq!(r.status, 200, "{ok_host}");
    }

    // A cross-site write is refused, even with a valid session id.
    let body = serde_json::to_vec(&json!({"method": "torrent-stop"})).unwrap();
    let r = rpc
        .raw(body.clone(), &[("Origin", "http://evil.example".into())])
        .await;
    assert_eq!(r.status, 403);
    let r = rpc
        .raw(body.clone(), &[("Sec-Fetch-Site", "cross-site".into())])
        .await;
    assert_eq!(r.status, 403);
    let same = format!("http://{}", d.http_addr());
    let r = rpc.raw(body, &[("Origin", same)]).await;
    assert_eq!(r.status, 200, "same origin is fine");

    // Too large a body.
    let r = rpc.raw(vec![b' '; 200 * 1024], &[]).await;
    assert_eq!(r.status, 413);

    // Broken JSON, wrong types, unknown methods: an error answer each.
    for (body, want) in [
        (&b"{\"method\": "[..], "json"),
        (b"[]", ""),
        (b"{\"method\": 5}", ""),
        (b"{\"method\": \"no-such-method\"}", "method"),
        (b"{\"method\": \"torrent-get\", \"arguments\": {\"fields\": 7}}", "fields"),
        (b"{\"method\": \"torrent-get\", \"arguments\": {\"fields\": [\"id\"], \"ids\": [{}]}}", "ids"),
        (b"{\"method\": \"torrent-add\", \"arguments\": {\"metainfo\": \"!!!not base64\"}}", ""),
        (b"{\"method\": \"torrent-add\", \"arguments\": {\"metainfo\": \"AAAA\"}}", ""),
        (b"{\"method\": \"torrent-add\", \"arguments\": {\"filename\": \"magnet:?xt=urn:btih:zz\"}}", ""),
        (b"{\"method\": \"torrent-add\", \"arguments\": {\"filename\": \"/etc/passwd\"}}", ""),
        (b"{\"method\": \"session-set\", \"arguments\": {\"download-dir\": \"relative/dir\"}}", "absolute"),
        (b"{\"method\": \"session-set\", \"arguments\": {\"download-dir\": \"/etc\"}}", ""),
        (b"{\"method\": \"torrent-set-location\", \"arguments\": {\"ids\": [1], \"location\": \"/tmp/../etc\"}}", ""),
        (b"{\"jsonrpc\": \"2.0\", \"method\": \"torrent_get\", \"params\": {\"fields\": \"x\"}, \"id\": 1}", ""),
    ] {
        let r = rpc.raw(body.to_vec(), &[]).await;
        let text = String::from_utf8_lossy(&r.body).into_owned();
        assert!(
            r.status == 200 || r.status == 400,
            "{}: HTTP {} {text}",
            String::from_utf8_lossy(body),
            r.status
        );
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {text}", String::from_utf8_lossy(body)));
        let failed = v.get("error").is_some()
            || v.get("result").is_some_and(|r| r != "success");
        assert!(failed, "{}: {text}", String::from_utf8_lossy(body));
        assert!(
            text.to_ascii_lowercase().contains(want),
            "{}: the error should mention {want:?}: {text}",
            String::from_utf8_lossy(body)
        );
    }
    // The default download directory did not move.
    let s = rpc
        .ok("session-get", json!({"fields": ["download-dir"]}))
        .await;
    assert_eq!(s["download-dir"], allowed.to_str().unwrap());

    // Random bytes as bodies: never a 5xx, never a hang.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..200 {
        let n = rng.gen_range(0..512);
        let mut b: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
        if rng.gen_bool(0.5) {
            b.splice(
                0..0,
                b"{\"method\":\"torrent-get\",\"arguments\":"
                    .iter()
                    .copied(),
            );
        }
        let r = rpc.raw(b, &[]).await;
        assert!(r.status < 500, "HTTP {}", r.status);
    }

    // Garbage on the socket: an HTTP error or a closed connection.
    let out = raw(d.http_addr(), b"\x16\x03\x01\x02\x00garbage\r\n\r\n").await;
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 400"), "{out}");
    let huge = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let out = raw(d.http_addr(), huge.as_bytes()).await;
    assert!(
        out.is_empty() || out.starts_with("HTTP/1.1 4"),
        "{}",
        &out[..out.len().min(200)]
    );

    // Still serving.
    rpc.ok("session-stats", Value::Null).await;
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_is_required_when_set() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = Some("me:s3cret".into());
    let d = Daemon::start(cfg).await.unwrap();
    let url = format!("http://{}/transmission/rpc", d.http_addr());
    let r = get(&url, &[]).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
    let r = get(&url, &[("Authorization", basic("me:wrong"))]).await;
    assert_eq!(r.status, 401);
    let r = get(&url, &[("Authorization", "Basic !!!".into())]).await;
    assert_eq!(r.status, 401);
    let r = get(&url, &[("Authorization", basic("me:s3cret"))]).await;
    assert_eq!(r.status, 409, "authenticated: the session-id handshake");
    let mut rpc = Rpc::new(&d);
    rpc.auth = Some(basic("me:s3cret"));
    rpc.ok("session-get", Value::Null).await;
    // The REST API and the status page are behind the same guard.
    let r = get(&format!("http://{}/api/v1/torrents", d.http_addr()), &[]).await;
    assert_eq!(r.status, 401);
    d.shutdown().await;
}

/// Password guessing is throttled per client address: after ten wrong
/// attempts, that address gets 429 with Retry-After, even with the right
/// password and on the web UI's login; another address still gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_is_throttled() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = Some("me:s3cret".into());
    let d = Daemon::start(cfg).await.unwrap();
    let url = format!("http://{}/transmission/rpc", d.http_addr());
    for i in 0..shoal_daemon::throttle::MAX_FAILURES {
        let r = get(&url, &[("Authorization", basic(&format!("me:guess{i}")))]).await;
        assert_eq!(r.status, 401, "guess {i}");
    }
    let r = get(&url, &[("Authorization", basic("me:s3cret"))]).await;
    assert_eq!(r.status, 429, "locked out, even with the right password");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=61).contains(&wait), "{wait}");
    let login = format!("http://{}/api/v1/login", d.http_addr());
    let body = serde_json::to_vec(&json!({"user": "me", "password": "s3cret"})).unwrap();
    let r = request(
        "POST",
        &login,
        &[("Content-Type", "application/json".into())],
        body.clone(),
        1 << 20,
        LIMIT,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 429, "the web UI's login too");
    // From another loopback address, the right password works.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut s = socket.connect(d.http_addr()).await.unwrap();
    let req = format!(
        "GET /transmission/rpc HTTP/1.1\r\nHost: {}\r\nAuthorization: {}\r\nConnection: close\r\n\r\n",
        d.http_addr(),
        basic("me:s3cret")
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 409"), "{out}");
    d.shutdown().await;
}
