//! `shoal crawl` on a loopback DHT of shoal nodes (in the test process) that
//! libtorrent joins as a seeder: libtorrent announces its torrent, the crawl
//! finds the info-hash by BEP 51 sampling, fetches the name from libtorrent
//! with BEP 9 and indexes it, and `shoal search --index` finds it by name.
#[path = "../../dht/tests/common/mod.rs"]
mod common;
mod interop_util;

use interop_util::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_finds_a_libtorrent_torrent() {
    if skip_interop() {
        return;
    }
    let nodes = common::cluster(8, 53).await;
    let boot = nodes[0].local_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src");
    let data = make_dataset(&src, "Elephants Dream 2006 Remastered", 1);
    let torrent = d.join("ed.torrent");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
    ]);
    let ih = shoal_info_json(&torrent)["info_hash_v1"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut seeder, port) = lt_seeding(
        "lt-seed",
        &torrent,
        &src,
        &["--dht-bootstrap", &boot, "--timeout", "150"],
        d,
        Duration::from_secs(60),
    );

    // Wait until libtorrent's announce is stored in the DHT.
    let want = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let r = nodes[5]
            .get_peers(ih.parse::<shoal_base::InfoHash>().unwrap())
            .await
            .unwrap();
        if r.peers.contains(&want) {
            break;
        }
        assert!(seeder.running(), "seeder exited\n{}", seeder.logs());
        assert!(
            tokio::time::Instant::now() < deadline,
            "libtorrent never announced"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let index = d.join("index");
    let out = run_bounded(
        Command::new(shoal_bin()).args([
            "crawl",
            "--json",
            "--index",
            index.to_str().unwrap(),
            "--no-default-bootstrap",
            "--dht-bind",
            "127.0.0.1:0",
            "--dht-bootstrap",
            &boot,
            "--duration",
            "60",
            "--max-torrents",
            "1",
            "--sample-interval",
            "200",
        ]),
        Duration::from_secs(90),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["crawl"]["indexed"], 1, "{v}");
    assert_eq!(
        v["crawl"]["names"][0], "Elephants Dream 2006 Remastered",
        "{v}"
    );
    assert_eq!(v["torrents"], 1);

    // The crawled index answers `shoal search`.
    let out = run_bounded(
        Command::new(shoal_bin()).args([
            "search",
            "--json",
            "--no-dht",
            "--index",
            index.to_str().unwrap(),
            "elephants remastered",
        ]),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["results"][0]["info_hash"], ih.as_str(), "{v}");
    assert_eq!(v["results"][0]["size"], 1 << 20);

    drop(seeder);
    common::shutdown(&nodes).await;
}
