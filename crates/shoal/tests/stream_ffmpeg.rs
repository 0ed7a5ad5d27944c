//! Streaming the way players read: an MP4 whose `moov` index is at the end,
//! served by `shoal daemon` from `/stream/…` while a rate-limited libtorrent
//! seeder is still sending it. ffprobe opens it and ffmpeg seeks into its
//! middle and decodes a frame, each while the torrent is still incomplete;
//! range answers (a-b, a-, -n, 416, HEAD) are compared byte for byte with
//! the file.
mod daemon_util;
mod interop_util;

use daemon_util::*;
use interop_util::*;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// Bound of any one wait.
const LIMIT: Duration = Duration::from_secs(60);
/// The seeder's upload limit, bytes per second: the whole file takes ~20 s.
const SEED_RATE: u64 = 220_000;

/// One HTTP/1.1 request with `body` (`Connection: close`); returns the status, the
/// headers (lower-case names) and the body.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, HashMap<String, String>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(LIMIT)).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a complete header");
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let h: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw[end + 4..].to_vec();
    if method == "GET" {
        if let Some(n) = h.get("content-length") {
            assert_eq!(body.len().to_string(), *n, "{path}: a short body");
        }
    }
    (status, h, body)
}

/// An MP4 of a few MiB with `moov` at the end (ffmpeg's default).
fn make_mp4(path: &Path) {
    let out = run_bounded(
        Command::new("ffmpeg")
            .args([
                "-y",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=640x360:rate=25:duration=6",
                "-vf",
                "noise=alls=25:allf=t",
                "-c:v",
                "mpeg4",
                "-q:v",
                "12",
            ])
            .arg(path),
        LIMIT,
    );
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn torrent_json(d: &DaemonProc, hash: &str) -> Value {
    let (st, _, body) = http(
        &d.addr,
        "GET",
        &format!("/api/v1/torrents/{hash}"),
        &[],
        &[],
    );
    assert_eq!(st, 200);
    serde_json::from_slice(&body).unwrap()
}

fn assert_incomplete(d: &DaemonProc, hash: &str, after: &str) {
    let t = torrent_json(d, hash);
    assert!(
        t["pieces_have"].as_u64().unwrap() < t["pieces"].as_u64().unwrap(),
        "the download completed before {after} returned: {t}"
    );
    eprintln!(
        "after {after}: {} of {} pieces",
        t["pieces_have"], t["pieces"]
    );
}

#[test]
fn players_read_an_mp4_while_it_downloads() {
    if skip_interop() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let file = src.join("clip.mp4");
    make_mp4(&file);
    let data = std::fs::read(&file).unwrap();
    let len = data.len();
    let moov = data.windows(4).rposition(|w| w == b"moov").unwrap();
    assert!(
        len > 2 << 20 && moov > len / 2,
        "{len} bytes, moov at {moov}"
    );
    let t = root.join("clip.torrent");
    shoal_ok(&[
        "create",
        "-l",
        "64K",
        "-o",
        t.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let hash = shoal_info_json(&t)["info_hash_v1"]
        .as_str()
        .unwrap()
        .to_owned();
    let rate = SEED_RATE.to_string();
    let (_seed, port) = lt_seeding("lt-seed", &t, &src, &["--max-upload", &rate], root, LIMIT);
    let d = start_daemon(&root.join("state"), &root.join("dl"), &[], root, "daemon");
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=clip.mp4&x.pe=127.0.0.1:{port}");
    let body = serde_json::json!({ "magnet": magnet }).to_string();
    let (st, _, out) = http(
        &d.addr,
        "POST",
        "/api/v1/torrents",
        &[
            ("Content-Type", "application/json"),
            ("Content-Length", &body.len().to_string()),
        ],
        body.as_bytes(),
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&out));
    let path = format!("/stream/{hash}/0");
    let url = format!("http://{}{path}", d.addr);
    wait_for("the metadata", LIMIT, || {
        (http(&d.addr, "HEAD", &path, &[], &[]).0 == 200).then_some(())
    });

    // ffprobe reads the start, then the moov at the end.
    let probe = run_bounded(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-rw_timeout",
            "60000000",
            "-show_entries",
            "format=duration:stream=codec_name,width,height",
            "-of",
            "json",
            &url,
        ]),
        LIMIT,
    );
    assert!(
        probe.status.success(),
        "ffprobe: {}\n{}",
        String::from_utf8_lossy(&probe.stderr),
        d.proc.logs()
    );
    assert_incomplete(&d, &hash, "ffprobe");
    let p: Value = serde_json::from_slice(&probe.stdout).unwrap();
    assert_eq!(p["streams"][0]["codec_name"], "mpeg4", "{p}");
    assert_eq!(p["streams"][0]["width"], 640, "{p}");

    // A seek into the middle, one frame decoded.
    let frame = root.join("frame.png");
    let seek = run_bounded(
        Command::new("ffmpeg")
            .args([
                "-y",
                "-v",
                "error",
                "-rw_timeout",
                "60000000",
                "-ss",
                "3",
                "-i",
                &url,
                "-frames:v",
                "1",
            ])
            .arg(&frame),
        LIMIT,
    );
    assert!(
        seek.status.success(),
        "ffmpeg -ss: {}\n{}",
        String::from_utf8_lossy(&seek.stderr),
        d.proc.logs()
    );
    assert!(std::fs::metadata(&frame).unwrap().len() > 0);
    assert_incomplete(&d, &hash, "ffmpeg -ss");

    // Ranges, byte for byte (the bytes come first wherever they are).
    let lens = len.to_string();
    let (st, h, _) = http(&d.addr, "HEAD", &path, &[], &[]);
    assert_eq!(st, 200);
    assert_eq!(h["content-length"], lens);
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["content-type"], "video/mp4");
    assert!(h["etag"].contains(&hash));
    let mid = len / 2;
    let cases = [
        (format!("bytes=0-{}", 99_999), 0..100_000),
        (format!("bytes={mid}-{}", mid + 70_000), mid..mid + 70_001),
        (format!("bytes={moov}-"), moov..len),
        ("bytes=-4096".to_owned(), len - 4096..len),
    ];
    for (ask, want) in cases {
        let (st, h, body) = http(&d.addr, "GET", &path, &[("Range", &ask)], &[]);
        assert_eq!(st, 206, "{ask}");
        assert_eq!(
            h["content-range"],
            format!("bytes {}-{}/{len}", want.start, want.end - 1)
        );
        assert!(body == data[want], "{ask}: the bytes differ");
    }
    let (st, h, _) = http(
        &d.addr,
        "HEAD",
        &path,
        &[("Range", &format!("bytes={mid}-"))],
        &[],
    );
    assert_eq!(st, 206);
    assert_eq!(h["content-length"], (len - mid).to_string());
    let (st, h, _) = http(
        &d.addr,
        "GET",
        &path,
        &[("Range", &format!("bytes={len}-"))],
        &[],
    );
    assert_eq!(st, 416);
    assert_eq!(h["content-range"], format!("bytes */{len}"));
}
