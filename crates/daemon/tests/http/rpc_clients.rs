//! The daemon as the *arr apps (Sonarr/Radarr's TransmissionProxy) and a
//! browser see it: the *arr request sequence replayed, and server-sent
//! events following a download. Peers are engine sessions on loopback.

use crate::common::*;
use serde_json::{json, Value};
use shoal_daemon::Daemon;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fields Sonarr's and Radarr's TransmissionProxy ask `torrent-get` for.
const ARR_FIELDS: &[&str] = &[
    "id",
    "hashString",
    "name",
    "downloadDir",
    "totalSize",
    "leftUntilDone",
    "isFinished",
    "eta",
    "status",
    "secondsDownloading",
    "secondsSeeding",
    "errorString",
    "uploadedEver",
    "downloadedEver",
    "seedRatioLimit",
    "seedRatioMode",
    "seedIdleLimit",
    "seedIdleMode",
    "fileCount",
    "labels",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arr_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (bytes_a, ta, _) = make_torrent(root, "episode-a.mkv", 200_000, 1);
    let (_, tb, src_b) = make_torrent(root, "episode-b.mkv", 300_000, 2);
    let (seed, seed_addr) = seeder(&tb, &src_b).await;
    let d = Daemon::start(config(root)).await.unwrap();
    let mut rpc = Rpc::new(&d);

    // GetSessionId: a bare request gets 409 and the id.
    let r = shoal_daemon::client::request("GET", &rpc.url, &[], Vec::new(), 1 << 16, LIMIT)
        .await
        .unwrap();
    assert_eq!(r.status, 409);
    let sid = r.headers["x-transmission-session-id"].to_str().unwrap();
    assert!(sid.len() >= 16, "{sid}");

    // GetConfig / GetVersion.
    let s = rpc.ok("session-get", Value::Null).await;
    let version = s["version"].as_str().unwrap();
    assert!(
        version.starts_with(|c: char| c.is_ascii_digit()),
        "{version}"
    );
    assert!(s["rpc-version"].as_u64().unwrap() >= 14, "{s}");
    let default_dir = s["download-dir"].as_str().unwrap().to_owned();
    assert_eq!(default_dir, root.join("downloads").to_str().unwrap());

    // AddTorrentFromData into a category directory.
    let cat = root.join("downloads").join("tv-sonarr");
    let added = rpc
        .ok(
            "torrent-add",
            json!({"metainfo": b64(&bytes_a), "download-dir": cat.to_str().unwrap()}),
        )
        .await;
    let ha = ta.info_hashes().v1.unwrap().to_hex();
    assert_eq!(added["torrent-added"]["hashString"], ha.as_str(), "{added}");
    // The same again is a duplicate, not an error.
    let dup = rpc
        .ok("torrent-add", json!({"metainfo": b64(&bytes_a)}))
        .await;
    assert_eq!(dup["torrent-duplicate"]["hashString"], ha.as_str(), "{dup}");

    // AddTorrentFromUrl with a magnet.
    let hb = tb.info_hashes().v1.unwrap().to_hex();
    let added = rpc
        .ok(
            "torrent-add",
            json!({"filename": magnet_with_peer(&tb, seed_addr), "download-dir": cat.to_str().unwrap()}),
        )
        .await;
    assert_eq!(added["torrent-added"]["hashString"], hb.as_str(), "{added}");

    // SetTorrentSeedingConfiguration and MoveTorrentToTopInQueue, by hash.
    rpc.ok(
        "torrent-set",
        json!({"ids": [hb], "seedRatioLimit": 2.5, "seedRatioMode": 1, "seedIdleLimit": 30, "seedIdleMode": 1}),
    )
    .await;
    rpc.ok("queue-move-top", json!({"ids": [hb]})).await;

    // GetTorrents: every field present, b completes.
    let end = tokio::time::Instant::now() + LIMIT;
    let torrents = loop {
        let a = rpc.ok("torrent-get", json!({ "fields": ARR_FIELDS })).await;
        let ts = a["torrents"].as_array().unwrap().clone();
        if ts
            .iter()
            .any(|t| t["hashString"] == hb.as_str() && t["status"] == 6)
        {
            break ts;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "episode-b never finished: {ts:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(torrents.len(), 2);
    for t in &torrents {
        for f in ARR_FIELDS {
            assert!(t.get(*f).is_some(), "{f} missing in {t}");
        }
        assert_eq!(t["downloadDir"], cat.to_str().unwrap());
    }
    let b = torrents
        .iter()
        .find(|t| t["hashString"] == hb.as_str())
        .unwrap();
    assert_eq!(b["totalSize"], 300_000);
    assert_eq!(b["seedRatioLimit"], 2.5);
    assert_eq!(b["seedRatioMode"], 1);
    assert_eq!(b["seedIdleLimit"], 30);
    assert_eq!(b["seedIdleMode"], 1);
    assert_eq!(b["downloadedEver"], 300_000);
    let a = torrents
        .iter()
        .find(|t| t["hashString"] == ha.as_str())
        .unwrap();
    assert_eq!(a["leftUntilDone"], 200_000, "no peer has a: {a}");
    assert_eq!(b["errorString"], "");
    assert!(cat.join("episode-b.mkv").exists());

    // A stale session id (the daemon restarted meanwhile) gets 409 again.
    rpc.sid = "stale".into();
    rpc.ok("session-stats", Value::Null).await;
    assert_ne!(rpc.sid, "stale");

    // RemoveTorrent with its data.
    rpc.ok(
        "torrent-remove",
        json!({"ids": [hb], "delete-local-data": true}),
    )
    .await;
    let left = rpc
        .ok("torrent-get", json!({"ids": [hb], "fields": ["id"]}))
        .await;
    assert_eq!(left["torrents"], json!([]));
    wait_for("b's data to be deleted", || async {
        (!cat.join("episode-b.mkv").exists()).then_some(())
    })
    .await;
    d.shutdown().await;
    seed.shutdown().await;
}

/// Reads server-sent events from `stream` until `done` holds for one;
/// returns every (event, data) seen.
async fn read_events(
    stream: &mut tokio::net::TcpStream,
    mut done: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut buf = Vec::new();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(LIMIT, stream.read(&mut chunk))
            .await
            .expect("events arrive in time")
            .unwrap();
        assert!(n > 0, "the stream ended; seen {seen:?}");
        buf.extend_from_slice(&chunk[..n]);
        // Events are separated by a blank line; the chunked framing's
        // lines in between carry no `event:`/`data:` and are skipped.
        let text = String::from_utf8_lossy(&buf).into_owned();
        let mut consumed = 0;
        for block in text.split_inclusive("\n\n") {
            if !block.ends_with("\n\n") {
                break;
            }
            consumed += block.len();
            let mut ev = None;
            let mut data = None;
            for l in block.lines() {
                if let Some(e) = l.strip_prefix("event:") {
                    ev = Some(e.trim().to_owned());
                } else if let Some(d) = l.strip_prefix("data:") {
                    data = serde_json::from_str::<Value>(d.trim()).ok();
                }
            }
            if let (Some(e), Some(d)) = (ev, data) {
                let stop = done(&e, &d);
                seen.push((e, d));
                if stop {
                    return seen;
                }
            }
        }
        buf.drain(..consumed);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_follows_a_download() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_, t, src) = make_torrent(root, "movie.mkv", 2_000_000, 3);
    let (seed, seed_addr) = seeder(&t, &src).await;
    let d = Daemon::start(config(root)).await.unwrap();
    let mut s = tokio::net::TcpStream::connect(d.http_addr()).await.unwrap();
    s.write_all(
        b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = [0u8; 512];
    let n = tokio::time::timeout(LIMIT, s.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );

    let mut rpc = Rpc::new(&d);
    let added = rpc
        .ok(
            "torrent-add",
            json!({"filename": magnet_with_peer(&t, seed_addr)}),
        )
        .await;
    let id = added["torrent-added"]["id"].as_u64().unwrap();
    let seen = read_events(&mut s, |e, v| e == "completed" && v["id"] == id).await;
    let kinds: Vec<&str> = seen
        .iter()
        .filter(|(_, v)| v["id"] == id)
        .map(|(e, _)| e.as_str())
        .collect();
    assert!(kinds.contains(&"added"), "{kinds:?}");
    assert!(kinds.contains(&"metadata"), "{kinds:?}");
    let progress: Vec<u64> = seen
        .iter()
        .filter(|(e, v)| e == "progress" && v["id"] == id)
        .map(|(_, v)| v["verified_bytes"].as_u64().unwrap())
        .collect();
    assert!(!progress.is_empty(), "{kinds:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(kinds.last(), Some(&"completed"));
    d.shutdown().await;
    seed.shutdown().await;
}
