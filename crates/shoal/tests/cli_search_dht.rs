//! `shoal publish` and `shoal search` over the DHT keyword index, on a
//! loopback DHT where only libtorrent nodes store items: the shoal nodes of
//! the test process route but refuse every BEP 44 put (no item room), and
//! the CLI's own nodes are read-only. So the keyword slots and records that
//! `shoal search` finds were stored and served by libtorrent, which knows
//! nothing of the scheme (plain BEP 44 mutable items).
//!
//! Fails when the bindings are missing, unless SHOAL_SKIP_INTEROP=1.
#[path = "../../dht/tests/common/mod.rs"]
mod common;
mod interop_util;

use interop_util::*;
use serde_json::Value;
use shoal_dht::Dht;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Lifetime of each libtorrent node (it exits by itself after this).
const LT_LIFETIME_S: u64 = 150;

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn libtorrent_missing() -> bool {
    if std::env::var("SHOAL_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("skipped: SHOAL_SKIP_INTEROP=1");
        return true;
    }
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3-libtorrent is missing (set SHOAL_SKIP_INTEROP=1 to skip)"
    );
    false
}

/// Shoal nodes that route and answer but store no item.
async fn routing_only_cluster(n: usize, seed: u64) -> Vec<Dht> {
    let mut nodes = Vec::new();
    for i in 0..n {
        let mut cfg = common::config(seed * 1000 + i as u64);
        cfg.node.store.max_items = 0;
        nodes.push(Dht::bind(cfg).await.unwrap());
    }
    let first = nodes[0].local_addr();
    for d in &nodes[1..] {
        d.bootstrap(&[first]).await.unwrap();
    }
    for d in &nodes {
        d.bootstrap(&[first]).await.unwrap();
    }
    nodes
}

/// Starts a libtorrent node joined through `boot`; returns it once it has 3 nodes.
fn lt_node(boot: &[SocketAddr]) -> Child {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/lt_dht.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script).args([
        "--port",
        &port.to_string(),
        "--timeout",
        &LT_LIFETIME_S.to_string(),
    ]);
    for b in boot {
        cmd.args(["--bootstrap", &b.to_string()]);
    }
    cmd.args(["wait-nodes", "3", "serve", &LT_LIFETIME_S.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = Child(cmd.spawn().unwrap());
    let out = child.0.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
    assert_eq!(
        v["action"], "wait-nodes",
        "libtorrent did not join: {line:?}"
    );
    child
}

fn shoal_json(args: &[&str]) -> Value {
    let out = run_bounded(
        Command::new(shoal_bin()).args(args),
        Duration::from_secs(60),
    );
    assert!(
        out.status.success(),
        "shoal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_nodes_hold_the_keyword_index() {
    if libtorrent_missing() {
        return;
    }
    let nodes = routing_only_cluster(5, 31).await;
    let addrs: Vec<SocketAddr> = nodes.iter().map(|d| d.local_addr()).collect();
    let lts: Vec<Child> = (0..3).map(|i| lt_node(&addrs[i..i + 2])).collect();
    // The shoal nodes learn the libtorrent nodes.
    for d in &nodes {
        d.bootstrap(&addrs[..1]).await.unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    let mut torrents = Vec::new();
    for name in ["Sintel 2010 Open Movie 4K", "Tears of Steel Open Movie"] {
        let data = make_dataset(&src, name, 1);
        let t = d.join(format!("{}.torrent", torrents.len()));
        shoal_ok(&["create", data.to_str().unwrap(), "-o", t.to_str().unwrap()]);
        torrents.push(t);
    }
    let boot = |i: usize| addrs[i].to_string();
    for (i, t) in torrents.iter().enumerate() {
        let v = shoal_json(&[
            "publish",
            t.to_str().unwrap(),
            "--json",
            "--no-default-bootstrap",
            "--dht-bind",
            "127.0.0.1:0",
            "--dht-bootstrap",
            &boot(i),
        ]);
        assert_eq!(v["errors"], serde_json::json!([]), "{v}");
        assert!(
            v["published"][0].as_str().unwrap().starts_with("dht"),
            "{v}"
        );
    }

    let search = |q: &str, i: usize| {
        shoal_json(&[
            "search",
            "--json",
            "--no-default-bootstrap",
            "--dht-bind",
            "127.0.0.1:0",
            "--dht-bootstrap",
            &boot(i),
            "--timeout",
            "40",
            q,
        ])
    };
    let start = Instant::now();
    let v = search("open movie", 3);
    let names: Vec<&str> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{v}");
    assert!(names.contains(&"Sintel 2010 Open Movie 4K"), "{v}");
    let r = &v["results"][0];
    assert_eq!(r["found"], serde_json::json!(["dht"]));
    assert!(r["download"]
        .as_str()
        .unwrap()
        .starts_with("shoal download 'magnet:?xt=urn:btih:"));
    let v = search("sintel", 4);
    assert_eq!(v["results"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["results"][0]["size"], 1 << 20);
    assert!(search("steel sintel", 2)["results"]
        .as_array()
        .unwrap()
        .is_empty());
    eprintln!("searches took {:?}", start.elapsed());

    drop(lts);
    common::shutdown(&nodes).await;
}
