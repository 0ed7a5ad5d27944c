//! The web UI's HTTP side without a browser: the embedded page and its
//! `ETag`s, the public paths under auth, the login cookie (accepted like
//! Basic auth, refused cross-origin, cleared by the logout), the UI's 401
//! without a browser prompt, and `POST /api/v1/torrents/{key}/files`.

use crate::common::*;
use serde_json::{json, Value};
use shoal_daemon::client::{request, Response};
use shoal_daemon::Daemon;

async fn call(method: &str, url: &str, headers: &[(&str, String)], body: Value) -> Response {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    request(method, url, headers, body, 1 << 20, LIMIT)
        .await
        .unwrap()
}

fn json_of(r: &Response) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_assets_and_login_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.auth = Some("me:s3cret".into());
    let d = Daemon::start(cfg).await.unwrap();
    let base = format!("http://{}", d.http_addr());

    // The page and its assets need no credentials; ETag, then 304.
    let r = call("GET", &format!("{base}/"), &[], Value::Null).await;
    assert_eq!(r.status, 200);
    assert!(String::from_utf8_lossy(&r.body).contains("/ui/app.js"));
    let r = call("GET", &format!("{base}/ui/app.js"), &[], Value::Null).await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    let tag = r.headers["etag"].to_str().unwrap().to_owned();
    let r = call(
        "GET",
        &format!("{base}/ui/app.js"),
        &[("If-None-Match", tag.clone())],
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = call("GET", &format!("{base}/ui/nope.js"), &[], Value::Null).await;
    assert_eq!(r.status, 404);

    // The API asks browsers for Basic auth, except the UI's own requests.
    let list = format!("{base}/api/v1/torrents");
    let r = call("GET", &list, &[], Value::Null).await;
    assert_eq!(r.status, 401);
    assert!(r.headers.contains_key("www-authenticate"));
    let r = call("GET", &list, &[("x-shoal-ui", "1".into())], Value::Null).await;
    assert_eq!(r.status, 401);
    assert!(!r.headers.contains_key("www-authenticate"));

    let login = format!("{base}/api/v1/login");
    let st = json_of(&call("GET", &login, &[], Value::Null).await);
    assert_eq!(st, json!({"auth_required": true, "logged_in": false}));
    let r = call(
        "POST",
        &login,
        &[],
        json!({"user": "me", "password": "wrong"}),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(!r.headers.contains_key("set-cookie"));
    // A login form posted from another site is refused like any write.
    let r = call(
        "POST",
        &login,
        &[("Origin", "http://evil.example".into())],
        json!({"user": "me", "password": "s3cret"}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(
        "POST",
        &login,
        &[],
        json!({"user": "me", "password": "s3cret"}),
    )
    .await;
    assert_eq!(r.status, 200);
    let set = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_owned();
    let r = call("GET", &list, &[("Cookie", cookie.clone())], Value::Null).await;
    assert_eq!(r.status, 200, "the cookie is accepted like Basic auth");
    let st = json_of(&call("GET", &login, &[("Cookie", cookie.clone())], Value::Null).await);
    assert_eq!(st["logged_in"], true);
    let r = call(
        "GET",
        &list,
        &[("Cookie", "shoal_session=forged".into())],
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 401);
    // Writes with the cookie keep the cross-origin rule.
    let r = call(
        "POST",
        &list,
        &[
            ("Cookie", cookie.clone()),
            ("Origin", "http://evil.example".into()),
        ],
        json!({"magnet": "magnet:?xt=urn:btih:0000000000000000000000000000000000000000"}),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = call(
        "GET",
        &format!("{base}/api/v1/dht"),
        &[("Cookie", cookie.clone())],
        Value::Null,
    )
    .await;
    assert_eq!(json_of(&r), json!({"enabled": false}), "no DHT in tests");
    let r = call("POST", &format!("{base}/api/v1/logout"), &[], Value::Null).await;
    assert_eq!(r.status, 401, "logging out needs to be logged in");
    let r = call(
        "POST",
        &format!("{base}/api/v1/logout"),
        &[("Cookie", cookie)],
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    d.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_priorities_over_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let src = root.join("src").join("pair");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.bin"), vec![1u8; 70_000]).unwrap();
    std::fs::write(src.join("b.bin"), vec![2u8; 50_000]).unwrap();
    let opts = shoal_metainfo::CreateOptions {
        piece_length: Some(16 * 1024),
        ..shoal_metainfo::CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&src, &opts, &|_| {}).unwrap();
    let d = Daemon::start(config(root)).await.unwrap();
    let base = format!("http://{}/api/v1", d.http_addr());
    let r = call(
        "POST",
        &format!("{base}/torrents"),
        &[],
        json!({"metainfo": b64(&bytes), "paused": true}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let id = json_of(&r)["id"].as_u64().unwrap();
    let files_url = format!("{base}/torrents/{id}/files");
    let files = json_of(&call("GET", &files_url, &[], Value::Null).await);
    let names: Vec<&str> = files
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["pad"] == false)
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["pair/a.bin", "pair/b.bin"]);
    let b_index = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "pair/b.bin")
        .unwrap()["index"]
        .as_u64()
        .unwrap();

    // Skip b.bin: its priority reads back 0, and the wanted size drops.
    let r = call(
        "POST",
        &files_url,
        &[],
        json!({"set": {b_index.to_string(): 0}}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let files = json_of(&call("GET", &files_url, &[], Value::Null).await);
    assert_eq!(files[b_index as usize]["priority"], 0);
    let t = json_of(&call("GET", &format!("{base}/torrents/{id}"), &[], Value::Null).await);
    assert!(t["wanted_bytes"].as_u64().unwrap() < 120_000, "{t}");

    // Wrong requests: clear errors.
    let n = files.as_array().unwrap().len();
    let r = call("POST", &files_url, &[], json!({"priorities": vec![0; n]})).await;
    assert_eq!(r.status, 400);
    assert!(json_of(&r)["error"]
        .as_str()
        .unwrap()
        .contains("at least one"));
    let r = call("POST", &files_url, &[], json!({"priorities": [1]})).await;
    assert_eq!(r.status, 400);
    let r = call("POST", &files_url, &[], json!({"set": {"99": 1}})).await;
    assert_eq!(r.status, 400);
    let r = call("POST", &files_url, &[], json!({"bogus": 1})).await;
    assert_eq!(r.status, 400);
    let r = call(
        "POST",
        &format!("{base}/torrents/4242/files"),
        &[],
        json!({"set": {}}),
    )
    .await;
    assert_eq!(r.status, 404);
    // Everything back to high.
    let r = call("POST", &files_url, &[], json!({"priorities": vec![3; n]})).await;
    assert_eq!(r.status, 200);
    let t = json_of(&call("GET", &format!("{base}/torrents/{id}"), &[], Value::Null).await);
    assert_eq!(t["wanted_bytes"], 120_000, "{t}");
    d.shutdown().await;
}
