//! Flooding search (issue 13) among five real `shoal daemon` processes on
//! loopback, connected as a chain A–B–C–D–E. Each link is a torrent both
//! ends seed (a different one per link, so peer exchange cannot shortcut
//! the chain); B and C share two torrents, so C hears every query twice.
//! Only E has "Rare Penguin Documentary 1080p". A's
//! `/api/v1/search?q=penguin documentary` finds it through four hops
//! (the default TTL) with the right info-hash and magnet; C drops the
//! second copy of the query (same query id); E answers once; `shoal
//! search --daemon` prints the same hit; a word nobody has finds nothing.
//! Every process is stopped by PID.
mod daemon_util;
mod interop_util;

use base64::Engine as _;
use daemon_util::*;
use interop_util::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const RARE: &str = "Rare Penguin Documentary 1080p";

/// One HTTP request on a fresh connection; returns the status and the JSON body.
fn request(addr: &str, method: &str, target: &str, body: Option<&Value>) -> (u16, Value) {
    let addr: SocketAddr = addr.parse().unwrap();
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    write!(
        s,
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read");
    let text = String::from_utf8_lossy(&all);
    let (head, body) = text.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("a status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn get(d: &DaemonProc, target: &str) -> Value {
    let (status, v) = request(&d.addr, "GET", target, None);
    assert_eq!(status, 200, "GET {target}: {v}");
    v
}

/// A torrent of one file `name` (`len` random bytes) under `src`.
fn make(root: &Path, src: &Path, name: &str, len: u64, seed: u64) -> Vec<u8> {
    let data = src.join(name);
    write_random(&data, len, seed);
    let t = root.join(format!("{name}.torrent"));
    shoal_ok(&["create", "-o", t.to_str().unwrap(), data.to_str().unwrap()]);
    std::fs::read(t).unwrap()
}

/// Adds `metainfo` with its data in `src`; waits until it seeds; returns its info-hash.
fn seed(d: &DaemonProc, metainfo: &[u8], src: &Path) -> String {
    let body = json!({
        "metainfo": base64::engine::general_purpose::STANDARD.encode(metainfo),
        "download_dir": src.to_str().unwrap(),
    });
    let (status, v) = request(&d.addr, "POST", "/api/v1/torrents", Some(&body));
    assert_eq!(status, 201, "{v}\n{}", d.proc.logs());
    let hash = v["info_hash"].as_str().unwrap().to_string();
    wait_for("the torrent to seed", LIMIT, || {
        let v = get(d, &format!("/api/v1/torrents/{hash}"));
        (v["state"] == "seeding").then_some(())
    });
    hash
}

/// Tells `d`'s torrent `hash` to connect to `to`.
fn connect(d: &DaemonProc, hash: &str, to: &DaemonProc) {
    let listen = get(to, "/api/v1/session")["listen"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({ "peers": [listen] });
    let (status, v) = request(
        &d.addr,
        "POST",
        &format!("/api/v1/torrents/{hash}/peers"),
        Some(&body),
    );
    assert_eq!(status, 200, "{v}");
}

fn flood(d: &DaemonProc) -> Value {
    get(d, "/api/v1/session")["flood"].clone()
}

fn search(d: &DaemonProc, q: &str) -> Value {
    let q = q.replace(' ', "+");
    get(
        d,
        &format!("/api/v1/search?q={q}&timeout_ms=4000&sources=flood"),
    )
}

#[test]
fn flooding_search_crosses_five_daemons() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let src = root.join("src");
    let links: Vec<Vec<u8>> = ["link-ab", "link-bc", "link-bc2", "link-cd", "link-de"]
        .iter()
        .zip(1u64..)
        .map(|(n, i)| make(root, &src, &format!("{n}.bin"), 40_000 + i, i))
        .collect();
    let rare = make(root, &src, RARE, 100_000, 99);

    let mut d: Vec<DaemonProc> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|n| {
            start_daemon(
                &root.join(format!("state-{n}")),
                &root.join(format!("dl-{n}")),
                &[],
                root,
                &format!("daemon-{n}"),
            )
        })
        .collect();
    // Who seeds which link: link i joins daemon `ends[i].0` and `ends[i].1`.
    let ends = [(0, 1), (1, 2), (1, 2), (2, 3), (3, 4)];
    for (t, &(x, y)) in links.iter().zip(&ends) {
        let h = seed(&d[x], t, &src);
        assert_eq!(seed(&d[y], t, &src), h);
        // The later daemon in the chain dials the earlier one.
        connect(&d[y], &h, &d[x]);
    }
    let rare_hash = seed(&d[4], &rare, &src);
    // Neighbours: one per connection (B–C counts twice).
    let want = [1, 3, 3, 2, 1];
    for (i, w) in want.iter().enumerate() {
        wait_for("the flood neighbours", LIMIT, || {
            (flood(&d[i])["peers"] == *w).then_some(())
        });
    }

    let v = search(&d[0], "penguin documentary");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{v}");
    let r = &results[0];
    assert_eq!(r["info_hash"], rare_hash.as_str(), "{v}");
    assert_eq!(r["name"], RARE);
    assert_eq!(r["size"], 100_000);
    let magnet = r["magnet"].as_str().unwrap();
    assert!(
        magnet.starts_with(&format!("magnet:?xt=urn:btih:{rare_hash}")),
        "{magnet}"
    );
    let found = r["found"].as_array().unwrap();
    assert!(
        found.len() == 1 && found[0].as_str().unwrap().starts_with("flood "),
        "{v}"
    );
    assert_eq!(v["flood"]["peers"], 1, "{v}");

    // E got the query once (TTL 4: A→B→C→D→E) and answered it once; C got
    // it from B over both shared torrents and dropped the second copy.
    let e = flood(&d[4]);
    assert_eq!(
        (e["queries_in"].clone(), e["answered"].clone()),
        (json!(1), json!(1)),
        "{e}"
    );
    let c = flood(&d[2]);
    assert_eq!(c["queries_in"], 2, "{c}");
    assert_eq!(c["duplicates"], 1, "{c}");
    assert_eq!(flood(&d[0])["answered"], 0);

    // The CLI asks the daemon and prints the same hit.
    let url = format!("http://{}", d[0].addr);
    let out = run_bounded(
        std::process::Command::new(shoal_bin()).args([
            "search",
            "--daemon",
            &url,
            "--json",
            "--timeout",
            "3",
            "penguin",
            "documentary",
        ]),
        LIMIT,
    );
    assert!(out.status.success(), "{out:?}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][0]["info_hash"], rare_hash.as_str(), "{v}");
    assert!(v["results"][0]["magnet"]
        .as_str()
        .unwrap()
        .contains(&rare_hash));

    // A word nobody has: no result, nobody answered.
    let v = search(&d[0], "zebra");
    assert!(v["results"].as_array().unwrap().is_empty(), "{v}");
    assert_eq!(flood(&d[4])["queries_in"], 3);
    assert_eq!(flood(&d[4])["answered"], 2);

    // Bounded input: an over-long query is refused.
    let long = "a".repeat(300);
    let (status, _) = request(&d[0].addr, "GET", &format!("/api/v1/search?q={long}"), None);
    assert_eq!(status, 400);

    for x in d.iter_mut() {
        x.stop();
    }
}
