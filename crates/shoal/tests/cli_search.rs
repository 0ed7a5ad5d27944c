//! `shoal search` against the central index of `shoal tracker`, on
//! loopback: a seeder announces a torrent, the tracker fetches its name with
//! BEP 9 and indexes it, `shoal search --tracker` finds it, and the printed
//! `shoal download` line downloads it. A torrent uploaded with `shoal
//! publish` is found too, the index survives a restart of the tracker, and
//! hostile requests (long queries, bad UTF-8, garbage and oversized
//! uploads) get bounded error answers.
mod interop_util;
mod tracker_util;

use interop_util::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tracker_util::*;

fn search_json(url: &str, query: &str) -> Value {
    let out = run_bounded(
        Command::new(shoal_bin())
            .args([
                "search",
                "--json",
                "--no-dht",
                "--timeout",
                "10",
                "--tracker",
                url,
            ])
            .arg(query),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "shoal search failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn hashes(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["info_hash"].as_str().unwrap().to_string())
        .collect()
}

/// One raw HTTP request; returns (status, body).
fn raw(addr: SocketAddr, method: &str, target: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let status = String::from_utf8_lossy(&all[9..12]).parse().unwrap();
    (status, all[at + 4..].to_vec())
}

fn create(data: &Path, out: &Path, tracker: &str) -> String {
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--tracker",
        tracker,
    ]);
    shoal_info_json(out)["info_hash_v1"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn tracker_indexes_announced_and_uploaded_torrents() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let state = d.join("tracker.state");
    let st = state.to_str().unwrap();
    let t = start_tracker(d, "tracker", &["--state", st]);
    let url = format!("http://{}/announce", t.http);

    // A seeder announces; the tracker learns the name from it (BEP 9).
    let src = d.join("src");
    let data = make_dataset(&src, "Holiday Photos Lisbon 2024", 1);
    let torrent = d.join("photos.torrent");
    let ih = create(&data, &torrent, &url);
    let (mut seeder, _) = shoal_seeding(&torrent, &src, &["--no-dht"], d);
    let found = wait_for(
        "the tracker to index the name",
        Duration::from_secs(60),
        || {
            if !seeder.running() {
                panic!("seeder exited\n{}", seeder.logs());
            }
            let v = search_json(&url, "lisbon photos");
            hashes(&v).contains(&ih).then_some(v)
        },
    );
    let hit = &found["results"][0];
    assert_eq!(hit["name"], "Holiday Photos Lisbon 2024");
    assert_eq!(hit["size"], 1 << 20);
    assert_eq!(hit["files"], 5);
    assert_eq!(hit["seeds"], 1);
    assert!(hit["found"][0].as_str().unwrap().contains(&url), "{hit}");

    // The printed download line works as it is.
    let line = hit["download"].as_str().unwrap();
    let magnet = line
        .strip_prefix("shoal download '")
        .and_then(|r| r.strip_suffix('\''))
        .expect("a shoal download line");
    assert_eq!(magnet, hit["magnet"].as_str().unwrap());
    let out = d.join("out");
    let r = run_bounded(
        Command::new(shoal_bin())
            // No LSD: it listens on every interface, and tests stay off the LAN.
            .args([
                "download",
                magnet,
                "-o",
                out.to_str().unwrap(),
                "--no-dht",
                "--no-lsd",
            ])
            .env("XDG_DATA_HOME", d),
        Duration::from_secs(120),
    );
    assert!(
        r.status.success(),
        "download failed: {}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_same_tree(&data, &out.join("Holiday Photos Lisbon 2024"));

    // An uploaded torrent nobody announces is found too.
    let other = make_dataset(&src, "Concert Recording Vienna", 1);
    let other_torrent = d.join("other.torrent");
    let other_ih = create(&other, &other_torrent, &url);
    let p = shoal_ok(&[
        "publish",
        other_torrent.to_str().unwrap(),
        "--tracker",
        &url,
        "--no-dht",
        "--json",
    ]);
    let p: Value = serde_json::from_str(&p).unwrap();
    assert_eq!(p["info_hash"], other_ih.as_str());
    let v = wait_for(
        "the upload to be searchable",
        Duration::from_secs(20),
        || {
            let v = search_json(&url, "vienna concert");
            (!hashes(&v).is_empty()).then_some(v)
        },
    );
    assert_eq!(hashes(&v), std::slice::from_ref(&other_ih));
    assert!(v["results"][0].get("seeds").is_none_or(|s| s == 0));
    // Keywords must all match: no torrent is both.
    assert!(hashes(&search_json(&url, "vienna lisbon")).is_empty());

    // Hostile requests get bounded answers.
    let long = format!("/search?q={}", "a".repeat(5000));
    assert_eq!(raw(t.http, "GET", &long, b"").0, 414);
    let (s, b) = raw(t.http, "GET", "/search?q=%FF%FE%C0lisbon", b"");
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert_eq!(raw(t.http, "GET", "/search", b"").0, 400);
    assert_eq!(raw(t.http, "POST", "/upload", b"garbage").0, 400);
    assert_eq!(raw(t.http, "POST", "/upload", &vec![b'x'; 5 << 20]).0, 413);
    let many = format!("/search?q={}", "word%20".repeat(120));
    assert_eq!(raw(t.http, "GET", &many, b"").0, 200);

    // The index's counters are on the tracker's /metrics, beside its own.
    let (s, m) = raw(t.http, "GET", "/metrics", b"");
    let m = String::from_utf8_lossy(&m);
    assert_eq!(s, 200, "{m}");
    assert!(m.contains("shoal_tracker_announces_total"), "{m}");
    assert!(m.contains("shoal_index_documents 2\n"), "{m}");
    assert!(m.contains("shoal_index_fetched_total 1\n"), "{m}");
    assert!(m.contains("shoal_index_uploaded_total 1\n"), "{m}");
    let searches: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("shoal_index_searches_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no search counter\n{m}"));
    assert!(searches >= 4, "{m}");

    // The index survives a restart, without any announce.
    drop(seeder);
    t.proc.interrupt();
    let mut proc = t.proc;
    proc.wait(Duration::from_secs(20));
    let t2 = start_tracker(d, "tracker2", &["--state", st]);
    assert!(t2.proc.err().contains("search index"), "{}", t2.proc.err());
    let url2 = format!("http://{}/announce", t2.http);
    let v = search_json(&url2, "holiday");
    assert_eq!(hashes(&v), [ih]);
    assert_eq!(hashes(&search_json(&url2, "recording")), [other_ih]);
}
