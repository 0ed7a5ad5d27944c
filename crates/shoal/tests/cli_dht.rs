//! `shoal dht …` end to end on loopback: a cluster of shoal DHT nodes runs inside
//! the test process and the `shoal` binary talks to it through `--bootstrap`.
//! Every child process has a deadline and is killed when dropped; nothing but
//! 127.0.0.1 is contacted (`--no-default-bootstrap` everywhere).
#[path = "../../dht/tests/common/mod.rs"]
mod common;

use serde_json::Value;
use sha1::{Digest, Sha1};
use shoal_dht::{Dht, Id20};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Deadline of one `shoal` run.
const RUN_LIMIT: Duration = Duration::from_secs(40);

struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Out {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON object ({e}): {}", self.stdout))
    }
}

/// Runs `shoal` with `args`, its data dir pointed at `home` (never the real one).
async fn shoal(home: &Path, args: &[&str]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_shoal"));
    cmd.args(args)
        .env("XDG_DATA_HOME", home)
        .env("HOME", home)
        .env_remove("RUST_LOG")
        .kill_on_drop(true);
    let out = tokio::time::timeout(RUN_LIMIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("shoal {args:?} did not finish in {RUN_LIMIT:?}"))
        .unwrap();
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs a DHT command through `via` (loopback, no state, JSON output).
async fn dht(home: &Path, via: &Dht, args: &[&str]) -> Out {
    let boot = via.local_addr().to_string();
    let mut all = vec!["dht"];
    all.extend_from_slice(args);
    all.extend_from_slice(&[
        "--json",
        "--no-default-bootstrap",
        "--no-state",
        "--bind",
        "127.0.0.1:0",
        "--timeout",
        "30",
        "--bootstrap",
        &boot,
    ]);
    shoal(home, &all).await
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_find_node_announce_get_peers_sample() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let nodes = common::cluster(30, 11).await;

    let v = dht(h, &nodes[0], &["ping", &nodes[3].local_addr().to_string()])
        .await
        .json();
    assert_eq!(s(&v, "id"), nodes[3].id().to_hex());
    assert!(v["rtt_ms"].as_f64().unwrap() >= 0.0);

    let want = nodes[7].id();
    let v = dht(h, &nodes[1], &["find-node", &want.to_hex()])
        .await
        .json();
    let found = v["nodes"].as_array().unwrap();
    assert!(!found.is_empty() && found.len() <= 8);
    assert_eq!(s(&found[0], "id"), want.to_hex(), "closest first: {v}");
    assert_eq!(s(&found[0], "addr"), nodes[7].local_addr().to_string());

    let ih = Id20(Sha1::digest(b"cli_dht announce").into());
    let v = dht(h, &nodes[2], &["announce", &ih.to_hex(), "--port", "4567"])
        .await
        .json();
    assert!(v["stored"].as_u64().unwrap() >= 1, "{v}");
    assert_eq!(v["port"], 4567);

    let v = dht(h, &nodes[20], &["get-peers", &ih.to_hex()])
        .await
        .json();
    let peers: Vec<&str> = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(peers.contains(&"127.0.0.1:4567"), "{v}");
    assert!(v["nodes_answered"].as_u64().unwrap() >= 1);

    // A different info-hash has no peers, which is not an error.
    let other = Id20(Sha1::digest(b"nobody").into());
    let v = dht(h, &nodes[4], &["get-peers", &other.to_hex()])
        .await
        .json();
    assert_eq!(v["peers"].as_array().unwrap().len(), 0);

    // BEP 51: sampling near the announced info-hash finds it, with num and interval.
    let prefix = &ih.to_hex()[..16];
    let v = dht(h, &nodes[9], &["sample", prefix]).await.json();
    let samples: Vec<&str> = v["samples"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(samples.contains(&ih.to_hex().as_str()), "{v}");
    assert!(v["num"].as_i64().unwrap() >= 1, "{v}");
    assert!(v["interval"].as_i64().unwrap() >= 0, "{v}");
    assert!(!v["nodes"].as_array().unwrap().is_empty());

    // The routing table is saved at exit and used at the next start.
    let state = h.join("table.json");
    let st = state.to_str().unwrap();
    let boot = nodes[0].local_addr().to_string();
    let base = [
        "--json",
        "--no-default-bootstrap",
        "--bind",
        "127.0.0.1:0",
        "--timeout",
        "30",
    ];
    let want_hex = want.to_hex();
    let mut args = vec![
        "dht",
        "find-node",
        &want_hex[..],
        "--state",
        st,
        "--bootstrap",
        &boot,
    ];
    args.extend_from_slice(&base);
    shoal(h, &args).await.json();
    let saved: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert!(!saved["nodes"].as_array().unwrap().is_empty(), "{saved}");
    let mut args = vec!["dht", "find-node", &want_hex[..], "--state", st];
    args.extend_from_slice(&base);
    let v = shoal(h, &args).await.json();
    assert_eq!(s(&v["nodes"][0], "id"), want.to_hex());

    common::shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_immutable_and_mutable() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let nodes = common::cluster(30, 12).await;

    // Immutable: a string is stored bencoded; its target is the SHA-1 of that.
    let v = dht(h, &nodes[0], &["put", "--immutable", "hello dht"])
        .await
        .json();
    let target = hex_sha1(b"9:hello dht");
    assert_eq!(s(&v, "target"), target);
    assert!(v["stored"].as_u64().unwrap() >= 1);
    let v = dht(h, &nodes[15], &["get", &target]).await.json();
    assert_eq!(s(&v, "value"), "hello dht");
    assert_eq!(s(&v, "bencoded"), hex::encode(b"9:hello dht"));
    // Any bencoded value with --bencoded.
    let v = dht(
        h,
        &nodes[1],
        &[
            "put",
            "--immutable",
            "--bencoded",
            &hex::encode(b"li1ei2ee"),
        ],
    )
    .await
    .json();
    let list_target = s(&v, "target").to_string();
    assert_eq!(list_target, hex_sha1(b"li1ei2ee"));
    let v = dht(h, &nodes[2], &["get", &list_target]).await.json();
    assert_eq!(v["value"], Value::Null);
    assert_eq!(s(&v, "bencoded"), hex::encode(b"li1ei2ee"));
    // Missing item: exit 1.
    let missing = dht(h, &nodes[3], &["get", &hex_sha1(b"3:abc")]).await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);

    // Mutable: keygen refuses to overwrite without --force.
    let key = h.join("key");
    let k = key.to_str().unwrap();
    let v = shoal(h, &["dht", "keygen", "--key", k, "--json"])
        .await
        .json();
    let pk = s(&v, "public_key").to_string();
    let again = shoal(h, &["dht", "keygen", "--key", k]).await;
    assert_eq!(again.code, 2, "{}", again.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let v = shoal(h, &["dht", "keygen", "--key", k, "--force", "--json"])
        .await
        .json();
    let pk2 = s(&v, "public_key").to_string();
    assert_ne!(pk, pk2);
    let pk = pk2;

    let v = dht(
        h,
        &nodes[4],
        &["put", "--mutable", "first", "--key", k, "--salt", "cli"],
    )
    .await
    .json();
    assert_eq!(v["seq"], 1, "{v}");
    assert_eq!(v["key_created"], false);
    assert!(v["stored"].as_u64().unwrap() >= 1);
    let mut th = Sha1::new();
    th.update(hex::decode(&pk).unwrap());
    th.update(b"cli");
    assert_eq!(s(&v, "target"), hex::encode(th.finalize()));
    let v = dht(h, &nodes[25], &["get", "--mutable", &pk, "--salt", "cli"])
        .await
        .json();
    assert_eq!((s(&v, "value"), &v["seq"]), ("first", &Value::from(1)));
    // Without the salt it is another target: not found.
    let unsalted = dht(h, &nodes[25], &["get", "--mutable", &pk]).await;
    assert_eq!(unsalted.code, 1);

    // Default seq: the current one plus 1.
    let v = dht(
        h,
        &nodes[5],
        &["put", "--mutable", "second", "--key", k, "--salt", "cli"],
    )
    .await
    .json();
    assert_eq!(v["seq"], 2, "{v}");
    // Explicit seq with a matching CAS.
    let v = dht(
        h,
        &nodes[6],
        &[
            "put",
            "--mutable",
            "third",
            "--key",
            k,
            "--salt",
            "cli",
            "--seq",
            "5",
            "--cas",
            "2",
        ],
    )
    .await
    .json();
    assert_eq!(v["seq"], 5);
    let v = dht(h, &nodes[7], &["get", "--mutable", &pk, "--salt", "cli"])
        .await
        .json();
    assert_eq!((s(&v, "value"), &v["seq"]), ("third", &Value::from(5)));
    // A CAS that does not match, and a seq that is not newer, are refused (exit 1).
    let bad_cas = dht(
        h,
        &nodes[8],
        &[
            "put",
            "--mutable",
            "x",
            "--key",
            k,
            "--salt",
            "cli",
            "--cas",
            "4",
        ],
    )
    .await;
    assert_eq!(bad_cas.code, 1, "{}", bad_cas.stderr);
    assert!(bad_cas.stderr.contains("301"), "{}", bad_cas.stderr);
    let old_seq = dht(
        h,
        &nodes[8],
        &[
            "put",
            "--mutable",
            "y",
            "--key",
            k,
            "--salt",
            "cli",
            "--seq",
            "3",
        ],
    )
    .await;
    assert_eq!(old_seq.code, 1, "{}", old_seq.stderr);
    assert!(old_seq.stderr.contains("302"), "{}", old_seq.stderr);
    let v = dht(h, &nodes[9], &["get", "--mutable", &pk, "--salt", "cli"])
        .await
        .json();
    assert_eq!((s(&v, "value"), &v["seq"]), ("third", &Value::from(5)));

    // put --mutable makes the key file when it is missing.
    let fresh = h.join("fresh.key");
    let v = dht(
        h,
        &nodes[10],
        &["put", "--mutable", "new", "--key", fresh.to_str().unwrap()],
    )
    .await
    .json();
    assert_eq!(v["key_created"], true);
    assert_eq!(v["seq"], 1);
    assert!(fresh.exists());

    common::shutdown(&nodes).await;
}

fn hex_sha1(b: &[u8]) -> String {
    hex::encode(Sha1::digest(b))
}

fn strip_wall(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    assert!(o.remove("wall_s").is_some());
    o.remove("build_s");
    v
}

#[tokio::test]
async fn simulate_is_deterministic() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let args = [
        "dht",
        "simulate",
        "--nodes",
        "300",
        "--lookups",
        "100",
        "--seed",
        "5",
        "--json",
    ];
    let a = shoal(h, &args).await.json();
    for key in [
        "nodes",
        "lookups",
        "churn",
        "success_rate",
        "messages_per_lookup",
        "wall_s",
    ] {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    for key in ["hops", "latency_ms"] {
        for p in ["p50", "p90", "p99"] {
            assert!(a[key][p].is_number(), "{key}.{p}: {a}");
        }
    }
    assert_eq!(a["nodes"], 300);
    assert_eq!(a["lookups"], 100);
    assert_eq!(a["success_rate"], 1.0);
    let b = shoal(h, &args).await.json();
    assert_eq!(strip_wall(a.clone()), strip_wall(b));
    // Churn, latency and loss options reach the simulator.
    let c = shoal(
        h,
        &[
            "dht",
            "simulate",
            "--nodes",
            "300",
            "--lookups",
            "50",
            "--churn",
            "0.3",
            "--rtt-ms",
            "100..100",
            "--loss",
            "0.01",
            "--json",
        ],
    )
    .await
    .json();
    assert_eq!(c["churn"], 0.3);
    assert_eq!(c["loss"], 0.01);
    assert!(c["success_rate"].as_f64().unwrap() > 0.5);
    assert_ne!(strip_wall(c), strip_wall(a));
}

#[tokio::test]
async fn bad_input_exits_2_and_no_answer_exits_1() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let key = h.join("bad.key");
    std::fs::write(&key, "not a key\n").unwrap();
    let kf = key.to_str().unwrap();
    let big = "x".repeat(1000);
    let salt = "s".repeat(65);
    let zero_pk = "00".repeat(32);
    let net = [
        "--no-default-bootstrap",
        "--no-state",
        "--bootstrap",
        "127.0.0.1:9",
    ];
    let cases: Vec<Vec<&str>> = vec![
        vec!["get-peers", "xyz"],
        vec!["get-peers", "00112233445566778899aabbccddeeff0011223g"],
        vec!["find-node", "abcd"],
        vec!["ping", "not-an-address"],
        vec!["ping", "127.0.0.1"],
        vec!["put", "--immutable", &big],
        vec!["put", "--immutable", "--bencoded", "6934"],
        vec!["put", "--mutable", "v", "--key", kf],
        vec!["put", "--mutable", "v", "--key", kf, "--salt", &salt],
        vec!["get", "--mutable", "abcd"],
        vec!["get", "--mutable", &zero_pk, "--salt", &salt],
        vec!["sample", "zz"],
        vec!["simulate", "--nodes", "1"],
        vec!["simulate", "--churn", "1.5"],
    ];
    for case in cases {
        let mut args = vec!["dht"];
        args.extend_from_slice(&case);
        args.extend_from_slice(&net);
        let out = shoal(h, &args).await;
        assert_eq!(out.code, 2, "{case:?}: {}", out.stderr);
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{case:?}: {}", out.stderr);
        assert!(lines[0].starts_with("error: "), "{}", lines[0]);
        assert!(out.stdout.is_empty());
    }
    let bad_boot = shoal(
        h,
        &[
            "dht",
            "get-peers",
            &"ab".repeat(20),
            "--no-state",
            "--bootstrap",
            "nowhere:1",
        ],
    )
    .await;
    assert_eq!(bad_boot.code, 2, "{}", bad_boot.stderr);

    // No node answers: exit 1 with a clear message.
    let dead = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let dead_addr: SocketAddr = dead.local_addr().unwrap();
    drop(dead);
    let out = shoal(
        h,
        &[
            "dht",
            "get-peers",
            &"ab".repeat(20),
            "--no-default-bootstrap",
            "--no-state",
            "--bind",
            "127.0.0.1:0",
            "--timeout",
            "20",
            "--bootstrap",
            &dead_addr.to_string(),
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no node answered"), "{}", out.stderr);
    // A run where nothing answers keeps the saved table (it is not replaced by an
    // empty one).
    let state = h.join("kept.json");
    let saved = format!(
        r#"{{"id": "{}", "nodes": [{{"id": "{}", "addr": "{dead_addr}"}}]}}"#,
        "11".repeat(20),
        "22".repeat(20)
    );
    std::fs::write(&state, &saved).unwrap();
    let out = shoal(
        h,
        &[
            "dht",
            "find-node",
            &"ab".repeat(20),
            "--no-default-bootstrap",
            "--state",
            state.to_str().unwrap(),
            "--bind",
            "127.0.0.1:0",
            "--timeout",
            "20",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
    let after: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(after["nodes"][0]["addr"], dead_addr.to_string(), "{after}");
    // And none given at all.
    let out = shoal(
        h,
        &[
            "dht",
            "find-node",
            &"ab".repeat(20),
            "--no-default-bootstrap",
            "--no-state",
            "--bind",
            "127.0.0.1:0",
        ],
    )
    .await;
    assert_eq!(out.code, 1, "{}", out.stderr);
}
