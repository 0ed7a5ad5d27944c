//! The DHT node of `shoal seed` and `shoal download` end to end on loopback: a
//! cluster of DHT nodes runs inside the test process; `shoal seed` joins it through
//! `--dht-bootstrap` and announces itself; after a restart it rejoins from its saved
//! routing table alone; a `shoal download` with no tracker and no `--peer` finds the
//! seeder through the DHT, and so does libtorrent (unless SHOAL_SKIP_INTEROP=1).
//! Only 127.0.0.1 is used (`--no-default-bootstrap`
//! everywhere), every wait is bounded, every process is killed on drop, and HOME
//! points into a temporary directory.
#[path = "../../dht/tests/common/mod.rs"]
mod common;
mod interop_util;

use interop_util::{
    json_lines, lt_swarm, shoal_info_json, shoal_listen_port, skip_interop, wait_for, write_random,
    Proc,
};
use serde_json::Value;
use shoal_dht::{Dht, Id20};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Bound on every wait for the DHT.
const LIMIT: Duration = Duration::from_secs(60);

/// A runtime whose worker threads keep the in-test DHT cluster answering while the
/// test thread waits on processes.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A `shoal` command whose home directory is `home`.
fn shoal(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_shoal"));
    c.args(args)
        .env("HOME", home)
        .env("XDG_DATA_HOME", home)
        .env_remove("RUST_LOG");
    c
}

/// Test data: one file of random bytes and a trackerless torrent of it.
struct Data {
    file: PathBuf,
    torrent: PathBuf,
    info_hash: Id20,
}

fn make_data(dir: &Path, len: u64) -> Data {
    let file = dir.join("src").join("payload.bin");
    write_random(&file, len, 7);
    let torrent = dir.join("payload.torrent");
    let out = shoal(
        dir,
        &[
            "create",
            file.to_str().unwrap(),
            "-o",
            torrent.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = shoal_info_json(&torrent);
    let hex = v["info_hash_v1"]
        .as_str()
        .expect("a v1 info-hash")
        .to_string();
    Data {
        file,
        torrent,
        info_hash: Id20::from_hex(&hex).unwrap(),
    }
}

/// `shoal seed` of `d` on an ephemeral port with the given DHT options.
fn seed(home: &Path, name: &str, d: &Data, dht: &[&str]) -> Proc {
    let mut args = vec![
        "seed",
        d.torrent.to_str().unwrap(),
        "--data",
        d.file.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--no-default-bootstrap",
    ];
    args.extend_from_slice(dht);
    Proc::spawn(name, &mut shoal(home, &args), home)
}

/// Waits until a lookup from `via` lists `peer` for `ih`.
fn wait_peer(rt: &tokio::runtime::Runtime, via: &Dht, ih: Id20, peer: SocketAddr, p: &mut Proc) {
    wait_for(&format!("{peer} on the DHT"), LIMIT, || {
        assert!(p.running(), "{} exited\n{}", p.name, p.logs());
        let r = rt
            .block_on(via.get_peers(shoal_base::InfoHash(ih.0)))
            .ok()?;
        if r.peers.contains(&peer) {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(200));
        None
    });
}

/// The UDP address the process printed in `dht on ADDR: …`.
fn dht_addr(p: &mut Proc) -> SocketAddr {
    wait_for("the DHT to bootstrap", LIMIT, || {
        assert!(p.running(), "{} exited\n{}", p.name, p.logs());
        p.err().lines().find_map(|l| {
            l.strip_prefix("dht on ")
                .and_then(|r| r.split(": ").next())
                .and_then(|a| a.parse().ok())
        })
    })
}

/// SIGINT, then a bounded wait for a clean exit.
fn stop(p: &mut Proc) {
    p.interrupt();
    let st = p.wait(Duration::from_secs(30));
    assert!(st.success(), "{} on SIGINT: {st}\n{}", p.name, p.logs());
}

#[test]
fn seed_announces_saves_its_table_and_rejoins_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let rt = runtime();
    let nodes = rt.block_on(common::cluster(12, 41));
    let data = make_data(home, 200_000);
    let state = home.join("state").join("seed-dht.json");
    let boot: Vec<String> = nodes[..2]
        .iter()
        .map(|n| n.local_addr().to_string())
        .collect();

    let mut s1 = seed(
        home,
        "seed1",
        &data,
        &[
            "--dht-bootstrap",
            &boot[0],
            "--dht-bootstrap",
            &boot[1],
            "--dht-state",
            state.to_str().unwrap(),
        ],
    );
    let port = shoal_listen_port(&mut s1);
    let udp = dht_addr(&mut s1);
    assert_eq!(
        udp.ip().to_string(),
        "127.0.0.1",
        "DHT bound next to --listen"
    );
    // The seeder announced its TCP port: found by a node that never talked to it.
    let me = SocketAddr::from(([127, 0, 0, 1], port));
    wait_peer(&rt, &nodes[9], data.info_hash, me, &mut s1);
    // The shoal CLI finds it too.
    let out = shoal(
        home,
        &[
            "dht",
            "get-peers",
            &data.info_hash.to_hex(),
            "--bootstrap",
            &boot[1],
            "--no-default-bootstrap",
            "--no-state",
            "--bind",
            "127.0.0.1:0",
            "--timeout",
            "30",
            "--json",
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        v["peers"]
            .as_array()
            .unwrap()
            .contains(&Value::from(me.to_string())),
        "{v}"
    );
    assert!(v["nodes_answered"].as_u64().unwrap() >= 1, "{v}");
    // Its DHT node answers queries while it seeds.
    let (id, _) = rt
        .block_on(nodes[3].ping(udp))
        .expect("the seeder's DHT node answers");
    // Saved after the bootstrap; removed here to see that the exit saves it again.
    wait_for("the state file", LIMIT, || state.exists().then_some(()));
    std::fs::remove_file(&state).unwrap();
    stop(&mut s1);

    // The routing table was saved at exit, with the node's ID.
    let saved = shoal_dht::persist::load(&state).expect("the state file");
    assert_eq!(saved.id, id.to_hex());
    assert!(saved.nodes.len() >= 2, "{saved:?}");

    // Restart with the state file only: it rejoins and announces its new port.
    let mut s2 = seed(
        home,
        "seed2",
        &data,
        &["--dht-state", state.to_str().unwrap()],
    );
    let port2 = shoal_listen_port(&mut s2);
    let udp2 = dht_addr(&mut s2);
    let me2 = SocketAddr::from(([127, 0, 0, 1], port2));
    wait_peer(&rt, &nodes[5], data.info_hash, me2, &mut s2);
    // Same node ID as before (reused from the file).
    let (id2, _) = rt.block_on(nodes[4].ping(udp2)).unwrap();
    assert_eq!(id2, id);
    stop(&mut s2);
    rt.block_on(common::shutdown(&nodes));
}

#[test]
fn trackerless_download_finds_the_seeder_through_the_dht() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let rt = runtime();
    let nodes = rt.block_on(common::cluster(10, 43));
    let data = make_data(home, 700_000);
    let b0 = nodes[0].local_addr().to_string();
    let b1 = nodes[6].local_addr().to_string();
    let mut s = seed(
        home,
        "seed",
        &data,
        &["--dht-bootstrap", &b0, "--no-dht-state"],
    );
    let port = shoal_listen_port(&mut s);
    wait_peer(
        &rt,
        &nodes[8],
        data.info_hash,
        SocketAddr::from(([127, 0, 0, 1], port)),
        &mut s,
    );

    let out_dir = home.join("out");
    let mut d = Proc::spawn(
        "download",
        &mut shoal(
            home,
            &[
                "download",
                data.torrent.to_str().unwrap(),
                "-o",
                out_dir.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--dht-bootstrap",
                &b1,
                "--no-default-bootstrap",
                "--no-dht-state",
            ],
        ),
        home,
    );
    let st = d.wait(LIMIT);
    assert!(st.success(), "download: {st}\n{}", d.logs());
    assert_eq!(
        std::fs::read(out_dir.join("payload.bin")).unwrap(),
        std::fs::read(&data.file).unwrap()
    );
    // No state file was written anywhere under HOME with --no-dht-state.
    assert!(!home.join("shoal").join("dht.json").exists());
    stop(&mut s);
    rt.block_on(common::shutdown(&nodes));
}

#[test]
fn libtorrent_finds_the_shoal_seeder_through_the_dht() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let rt = runtime();
    let nodes = rt.block_on(common::cluster(10, 47));
    let data = make_data(home, 600_000);
    let b0 = nodes[0].local_addr().to_string();
    let mut s = seed(
        home,
        "seed",
        &data,
        &["--dht-bootstrap", &b0, "--no-dht-state"],
    );
    let port = shoal_listen_port(&mut s);
    wait_peer(
        &rt,
        &nodes[7],
        data.info_hash,
        SocketAddr::from(([127, 0, 0, 1], port)),
        &mut s,
    );
    // libtorrent gets no peer and no tracker: only DHT nodes.
    let save = home.join("lt");
    std::fs::create_dir_all(&save).unwrap();
    let (b1, b2) = (
        nodes[3].local_addr().to_string(),
        nodes[5].local_addr().to_string(),
    );
    let (mut lt, _) = lt_swarm(
        "download",
        "lt",
        &data.torrent,
        &save,
        &[
            "--dht-bootstrap",
            &b1,
            "--dht-bootstrap",
            &b2,
            "--timeout",
            "90",
            "--report-peers",
            // Slow enough that a stats line shows the connected seeder.
            "--max-download",
            "300000",
        ],
        home,
    );
    let st = lt.wait(Duration::from_secs(120));
    let done = json_lines(&lt)
        .iter()
        .any(|v| v["complete"].as_bool() == Some(true));
    assert!(
        st.success() && done,
        "libtorrent: {st}\n{}\n{}",
        lt.logs(),
        s.logs()
    );
    assert_eq!(
        std::fs::read(save.join("payload.bin")).unwrap(),
        std::fs::read(&data.file).unwrap()
    );
    // The seeder came from the DHT (libtorrent's peer source bit 2).
    let from_dht = json_lines(&lt).iter().any(|v| {
        v["peer_list"].as_array().is_some_and(|l| {
            l.iter().any(|p| {
                p["port"].as_u64() == Some(u64::from(port))
                    && p["source"].as_u64().is_some_and(|s| s & 2 != 0)
            })
        })
    });
    assert!(from_dht, "{}", lt.logs());
    stop(&mut s);
    rt.block_on(common::shutdown(&nodes));
}

#[test]
fn no_dht_and_private_torrents_start_no_node() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let data = make_data(home, 50_000);
    let mut s = seed(home, "seed", &data, &["--no-dht"]);
    shoal_listen_port(&mut s);
    wait_for("the data check", LIMIT, || {
        assert!(s.running(), "{}", s.logs());
        s.err().contains("seeding").then_some(())
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!s.err().contains("dht on"), "{}", s.logs());
    stop(&mut s);
    // A private torrent: the DHT is not used, said once.
    let private = home.join("private.torrent");
    let out = shoal(
        home,
        &[
            "create",
            data.file.to_str().unwrap(),
            "-o",
            private.to_str().unwrap(),
            "--private",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success());
    let mut p = Proc::spawn(
        "private",
        &mut shoal(
            home,
            &[
                "seed",
                private.to_str().unwrap(),
                "--data",
                data.file.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--no-default-bootstrap",
            ],
        ),
        home,
    );
    shoal_listen_port(&mut p);
    wait_for("the private notice", LIMIT, || {
        assert!(p.running(), "{}", p.logs());
        p.err()
            .contains("private torrent: not using the DHT")
            .then_some(())
    });
    assert!(!p.err().contains("dht on"), "{}", p.logs());
    stop(&mut p);
}
