//! `shoal dht …` against libtorrent's DHT on loopback (Debian `python3-libtorrent`,
//! driven by `tests/interop/lt_dht.py`): a small DHT of shoal nodes runs in the test
//! process, libtorrent joins it, and the `shoal` binary and libtorrent find each
//! other's announces and read each other's BEP 44 immutable and mutable items (both
//! sides sign mutable items with the same ed25519 seed from shoal's key file).
//!
//! Fails when the bindings are missing, unless SHOAL_SKIP_INTEROP=1.
#[path = "../../dht/tests/common/mod.rs"]
mod common;

use serde_json::Value;
use sha1::{Digest, Sha1};
use shoal_dht::{Dht, Id20};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Deadline of one `shoal` run.
const RUN_LIMIT: Duration = Duration::from_secs(40);
/// Lifetime of the libtorrent script (it exits by itself after this).
const LT_LIFETIME_S: u64 = 120;
/// How long to wait for one of libtorrent's answers, or to find its data.
const STEP_LIMIT: Duration = Duration::from_secs(45);

fn skip_or_require_libtorrent() -> bool {
    if std::env::var("SHOAL_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("skipped: SHOAL_SKIP_INTEROP=1");
        return false;
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
    true
}

/// Kills the libtorrent process when dropped (the test never leaves it behind).
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `shoal dht ARGS` through `via` on loopback; returns exit code, stdout, stderr.
async fn dht(home: &Path, via: &Dht, args: &[&str]) -> (i32, String, String) {
    let boot = via.local_addr().to_string();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.arg("dht")
        .args(args)
        .args([
            "--json",
            "--no-default-bootstrap",
            "--no-state",
            "--bind",
            "127.0.0.1:0",
        ])
        .args(["--timeout", "30", "--bootstrap", &boot])
        .env("XDG_DATA_HOME", home)
        .env("HOME", home)
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("shoal dht {args:?} did not finish"))
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn dht_ok(home: &Path, via: &Dht, args: &[&str]) -> Value {
    let (code, out, err) = dht(home, via, args).await;
    assert_eq!(code, 0, "shoal dht {args:?}: {err}");
    serde_json::from_str(out.trim()).unwrap()
}

/// Retries `shoal dht ARGS` until `done` accepts its JSON or [`STEP_LIMIT`] passes.
async fn dht_until(home: &Path, via: &Dht, args: &[&str], done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (code, out, err) = dht(home, via, args).await;
        let v: Value = serde_json::from_str(out.trim()).unwrap_or(Value::Null);
        if code == 0 && done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < STEP_LIMIT,
            "shoal dht {args:?} never succeeded: code {code}, {out} {err}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Reads libtorrent's JSON lines until the one for `action`; asserts it is ok.
/// On failure, shows the shoal nodes' counters.
async fn next_line(rx: &mut mpsc::UnboundedReceiver<String>, nodes: &[Dht], action: &str) -> Value {
    let end = tokio::time::Instant::now() + STEP_LIMIT;
    loop {
        let Some(line) = tokio::time::timeout_at(end, rx.recv()).await.ok().flatten() else {
            for d in nodes {
                eprintln!("{} {:?}", d.local_addr(), d.counters().await);
            }
            panic!("libtorrent printed no `{action}` line in time");
        };
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if v["action"] == action {
            assert_eq!(v["ok"], true, "libtorrent {action}: {v}");
            return v;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shoal_cli_and_libtorrent_share_the_dht() {
    if !skip_or_require_libtorrent() {
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let nodes = common::cluster(8, 21).await;

    // shoal's side first: an announce, an immutable item and a mutable item.
    let shoal_hash = Id20(Sha1::digest(b"interop_dht: shoal's torrent").into());
    let lt_hash = Id20(Sha1::digest(b"interop_dht: libtorrent's torrent").into());
    let v = dht_ok(
        h,
        &nodes[1],
        &["announce", &shoal_hash.to_hex(), "--port", "5555"],
    )
    .await;
    assert!(v["stored"].as_u64().unwrap() >= 1);
    let v = dht_ok(h, &nodes[2], &["put", "--immutable", "from shoal"]).await;
    let shoal_item = v["target"].as_str().unwrap().to_string();
    let key = h.join("key");
    let k = key.to_str().unwrap();
    let v = dht_ok(
        h,
        &nodes[3],
        &[
            "put",
            "--mutable",
            "shoal mutable",
            "--key",
            k,
            "--salt",
            "s1",
        ],
    )
    .await;
    assert_eq!(v["key_created"], true);
    let pk = v["public_key"].as_str().unwrap().to_string();
    let seed = std::fs::read_to_string(&key).unwrap().trim().to_string();

    // libtorrent joins through three shoal nodes and does its part in order.
    let lt_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/lt_dht.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script).args([
        "--port",
        &lt_port.to_string(),
        "--timeout",
        &LT_LIFETIME_S.to_string(),
    ]);
    for n in &nodes[..3] {
        cmd.args(["--bootstrap", &n.local_addr().to_string()]);
    }
    cmd.args(["wait-nodes", "3", "announce", &lt_hash.to_hex()])
        .args(["get-peers", &shoal_hash.to_hex()])
        .args(["get-immutable", &shoal_item])
        .args(["get-mutable", &pk, "s1"])
        .args(["put-immutable", "from lt"])
        .args(["put-mutable", &seed, &pk, "lt mutable", "s2"])
        .args(["serve", &LT_LIFETIME_S.to_string()])
        .stdout(Stdio::piped())
        .stderr(if std::env::var_os("LT_DEBUG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
    let mut child = Child(cmd.spawn().unwrap());
    let stdout = child.0.stdout.take().unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    next_line(&mut rx, &nodes, "wait-nodes").await;
    next_line(&mut rx, &nodes, "announce").await;
    // libtorrent finds shoal's announce.
    let v = next_line(&mut rx, &nodes, "get-peers").await;
    assert!(
        v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "127.0.0.1:5555"),
        "{v}"
    );
    // shoal finds libtorrent's announce.
    let want = format!("127.0.0.1:{lt_port}");
    dht_until(h, &nodes[5], &["get-peers", &lt_hash.to_hex()], |v| {
        v["peers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x.as_str() == Some(want.as_str())))
    })
    .await;
    // libtorrent reads shoal's items (signed with the same key for the mutable one).
    let v = next_line(&mut rx, &nodes, "get-immutable").await;
    assert_eq!(v["item"], "from shoal");
    let v = next_line(&mut rx, &nodes, "get-mutable").await;
    assert_eq!(
        (&v["item"], &v["seq"]),
        (&Value::from("shoal mutable"), &Value::from(1))
    );

    // shoal reads libtorrent's items.
    next_line(&mut rx, &nodes, "put-immutable").await;
    let lt_item = hex::encode(Sha1::digest(b"7:from lt"));
    let v = dht_until(h, &nodes[6], &["get", &lt_item], |v| {
        v["value"] == "from lt"
    })
    .await;
    assert_eq!(v["target"], lt_item);
    let v = next_line(&mut rx, &nodes, "put-mutable").await;
    let lt_seq = v["seq"].clone();
    let v = dht_until(
        h,
        &nodes[7],
        &["get", "--mutable", &pk, "--salt", "s2"],
        |v| v["value"] == "lt mutable",
    )
    .await;
    assert_eq!(v["seq"], lt_seq);

    drop(child);
    common::shutdown(&nodes).await;
}
