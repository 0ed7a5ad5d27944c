//! `/stream/…` over HTTP: a file served while it downloads from an engine
//! seeder, range answers compared byte for byte with the file (a-b, a-,
//! -n, several ranges, 416), HEAD, validators (ETag, If-None-Match,
//! If-Range), 404 and 503, the `.m3u` playlist and `stream_url` in the
//! files listing.

use crate::common::*;
use serde_json::{json, Value};
use shoal_daemon::client::{request, Response};
use shoal_daemon::Daemon;

async fn call(method: &str, url: &str, headers: &[(&str, String)]) -> Response {
    request(method, url, headers, Vec::new(), 16 << 20, LIMIT)
        .await
        .unwrap()
}

/// Adds `magnet` through the REST API (`extra`: more headers).
async fn add_magnet(base: &str, magnet: &str, extra: &[(&str, String)]) {
    let body = serde_json::to_vec(&json!({ "magnet": magnet })).unwrap();
    let mut headers = vec![("Content-Type", "application/json".to_owned())];
    headers.extend(extra.iter().cloned());
    let r = request(
        "POST",
        &format!("{base}/api/v1/torrents"),
        &headers,
        body,
        1 << 20,
        LIMIT,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
}

fn header(r: &Response, name: &str) -> String {
    r.headers
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_validators_and_playlist() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let len = 700_001usize;
    let (_bytes, t, src) = make_torrent(root, "clip.mp4", len, 7);
    let data = std::fs::read(src.join("clip.mp4")).unwrap();
    let (seed, seed_addr) = seeder(&t, &src).await;
    let d = Daemon::start(config(root)).await.unwrap();
    let base = format!("http://{}", d.http_addr());
    let hash = t.info_hashes().v1.unwrap().to_hex();

    add_magnet(&base, &magnet_with_peer(&t, seed_addr), &[]).await;
    let url = format!("{base}/stream/{hash}/0");
    // Metadata arrives from the seeder.
    wait_for("metadata", || async {
        let r = call("HEAD", &url, &[]).await;
        (r.status == 200).then_some(())
    })
    .await;

    // Read while it downloads: a suffix first (players read the index at
    // the end), then ranges anywhere.
    let r = call("GET", &url, &[("Range", "bytes=-1000".into())]).await;
    assert_eq!(r.status, 206);
    assert_eq!(
        header(&r, "content-range"),
        format!("bytes {}-{}/{len}", len - 1000, len - 1)
    );
    assert_eq!(&r.body[..], &data[len - 1000..]);
    for (ask, want) in [
        ("bytes=0-0", 0..1),
        ("bytes=100000-165535", 100_000..165_536),
        ("bytes=650000-", 650_000..len),
        ("bytes=-5000000", 0..len),
        ("bytes=699999-800000", 699_999..len),
        ("bytes=900000-, 10-19", 10..20),
        ("bytes=5-9, 20-29", 5..10),
    ] {
        let r = call("GET", &url, &[("Range", ask.into())]).await;
        assert_eq!(r.status, 206, "{ask}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes {}-{}/{len}", want.start, want.end - 1),
            "{ask}"
        );
        assert_eq!(
            header(&r, "content-length"),
            (want.end - want.start).to_string(),
            "{ask}"
        );
        assert!(r.body[..] == data[want.clone()], "{ask}: bytes differ");
    }
    for ask in ["bytes=700001-", "bytes=800000-800001", "bytes=-0"] {
        let r = call("GET", &url, &[("Range", ask.into())]).await;
        assert_eq!(r.status, 416, "{ask}");
        assert_eq!(
            header(&r, "content-range"),
            format!("bytes */{len}"),
            "{ask}"
        );
    }
    let whole = call("GET", &url, &[]).await;
    assert_eq!(whole.status, 200);
    assert!(whole.body[..] == data[..], "the whole file differs");
    assert_eq!(header(&whole, "accept-ranges"), "bytes");
    assert_eq!(header(&whole, "content-type"), "video/mp4");

    // HEAD: the same headers, no body.
    let head = call("HEAD", &url, &[("Range", "bytes=10-".into())]).await;
    assert_eq!(head.status, 206);
    assert!(head.body.is_empty());
    assert_eq!(header(&head, "content-length"), (len - 10).to_string());
    assert_eq!(
        header(&head, "content-range"),
        format!("bytes 10-{}/{len}", len - 1)
    );
    let tag = header(&whole, "etag");
    let modified = header(&whole, "last-modified");
    assert!(tag.starts_with('"') && tag.contains(&hash), "{tag}");
    assert!(modified.ends_with(" GMT"), "{modified}");
    assert_eq!(header(&head, "etag"), tag, "the tag is stable");
    assert_eq!(header(&head, "last-modified"), modified);

    // Validators.
    let r = call("GET", &url, &[("If-None-Match", tag.clone())]).await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = call(
        "GET",
        &url,
        &[("Range", "bytes=0-9".into()), ("If-Range", tag.clone())],
    )
    .await;
    assert_eq!(r.status, 206);
    let r = call(
        "GET",
        &url,
        &[
            ("Range", "bytes=0-9".into()),
            ("If-Range", "\"old\"".into()),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "a stale If-Range gets the whole file");
    assert_eq!(r.body.len(), len);
    let r = call(
        "GET",
        &url,
        &[
            ("Range", "bytes=0-9".into()),
            ("If-Range", modified.clone()),
        ],
    )
    .await;
    assert_eq!(r.status, 206);

    // A magnet nobody serves: no metadata yet.
    let lonely = format!("magnet:?xt=urn:btih:{}", "ab".repeat(20));
    let body = serde_json::to_vec(&json!({"magnet": lonely})).unwrap();
    let r = request(
        "POST",
        &format!("{base}/api/v1/torrents"),
        &[("Content-Type", "application/json".into())],
        body,
        1 << 20,
        LIMIT,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let r = call("GET", &format!("{base}/stream/{}/0", "ab".repeat(20)), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(header(&r, "retry-after"), "5");

    // Unknown torrent or file.
    for bad in [
        format!("{base}/stream/{hash}/1"),
        format!("{base}/stream/{hash}/x"),
        format!("{base}/stream/{}/0", "cd".repeat(20)),
        format!("{base}/stream/nothex/0"),
    ] {
        assert_eq!(call("GET", &bad, &[]).await.status, 404, "{bad}");
    }

    // The files listing links the stream; the playlist lists the file.
    let r = call("GET", &format!("{base}/api/v1/torrents/{hash}/files"), &[]).await;
    let files: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(files[0]["stream_url"], format!("/stream/{hash}/0"));
    let r = call(
        "GET",
        &format!("{base}/stream/{hash}.m3u"),
        &[("Host", "localhost:1234".into())],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(header(&r, "content-type"), "audio/x-mpegurl");
    assert_eq!(
        String::from_utf8_lossy(&r.body),
        format!("#EXTM3U\n#EXTINF:-1,clip.mp4\nhttp://localhost:1234/stream/{hash}/0\n")
    );
    assert_eq!(
        call("GET", &format!("{base}/stream/{hash}.txt"), &[])
            .await
            .status,
        404
    );

    d.shutdown().await;
    seed.shutdown().await;
}

/// With credentials set, a playlist's URLs carry the torrent's stream
/// token: a player opens them without logging in, while a wrong token, or
/// the token of one torrent on another's path, is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlist_urls_open_streams_behind_auth() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_bytes, t, src) = make_torrent(root, "song.mp3", 50_001, 3);
    let (seed, seed_addr) = seeder(&t, &src).await;
    let mut cfg = config(root);
    cfg.auth = Some("me:s3cret".into());
    let d = Daemon::start(cfg).await.unwrap();
    let base = format!("http://{}", d.http_addr());
    let auth = (
        "Authorization",
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("me:s3cret")
        ),
    );
    let hash = t.info_hashes().v1.unwrap().to_hex();
    add_magnet(
        &base,
        &magnet_with_peer(&t, seed_addr),
        std::slice::from_ref(&auth),
    )
    .await;
    let m3u = format!("{base}/stream/{hash}.m3u");
    assert_eq!(call("GET", &m3u, &[]).await.status, 401);
    let playlist = wait_for("metadata", || async {
        let r = call("GET", &m3u, std::slice::from_ref(&auth)).await;
        (r.status == 200).then(|| String::from_utf8_lossy(&r.body).into_owned())
    })
    .await;
    let url = playlist
        .lines()
        .find(|l| l.starts_with("http://"))
        .expect("an entry")
        .to_owned();
    let token = url.split_once("?token=").expect("a token").1.to_owned();
    assert_eq!(token.len(), 32, "{url}");
    // The player's request: no credentials.
    let r = call("GET", &url, &[]).await;
    assert_eq!(r.status, 200, "{url}");
    assert_eq!(r.body.len(), 50_001);
    let plain = format!("{base}/stream/{hash}/0");
    assert_eq!(call("GET", &plain, &[]).await.status, 401);
    let wrong = format!("{plain}?token={}", "0".repeat(32));
    assert_eq!(call("GET", &wrong, &[]).await.status, 401);
    let other = format!("{base}/stream/{}/0?token={token}", "ab".repeat(20));
    assert_eq!(call("GET", &other, &[]).await.status, 401);
    // The token opens streams only: not the API.
    let api = format!("{base}/api/v1/torrents?token={token}");
    assert_eq!(call("GET", &api, &[]).await.status, 401);
    d.shutdown().await;
    seed.shutdown().await;
}
