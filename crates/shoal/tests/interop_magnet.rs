//! Trackerless magnet download on loopback (issue 4): eight shoal DHT nodes in
//! this process form the DHT; a libtorrent seeder with no tracker joins it
//! (`add_dht_node`, IP restrictions relaxed) and announces its torrent; then
//! `shoal download MAGNET` given only the info-hash finds the seeder through the
//! DHT, fetches the info dictionary over `ut_metadata` and downloads
//! byte-identical data.
//!
//! Needs python3-libtorrent (`.ci/run` installs it); SHOAL_SKIP_INTEROP=1 skips.
mod interop_util;

use interop_util::*;
use shoal_dht::{Config, Dht, DhtConfig, Id20};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

/// Starts `n` DHT nodes on 127.0.0.1 and bootstraps them from each other.
async fn dht_cluster(n: usize) -> Vec<Dht> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        let cfg = DhtConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            node: Config {
                seed: 4000 + i as u64,
                ..Config::default()
            },
            ..DhtConfig::default()
        };
        nodes.push(Dht::bind(cfg).await.unwrap());
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|d| d.local_addr()).collect();
    for (i, d) in nodes.iter().enumerate() {
        let seeds: Vec<SocketAddr> = addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| *a)
            .collect();
        d.bootstrap(&seeds).await.unwrap();
    }
    nodes
}

#[test]
fn magnet_download_from_libtorrent_over_dht() {
    if skip_interop() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let nodes = rt.block_on(dht_cluster(8));
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("src");
    let data = make_dataset(&parent, "magnetdata", 4);
    let torrent = tmp.path().join("magnetdata.torrent");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--piece-size",
        "262144",
        "--v1",
    ]);
    let hash = shoal_info_json(&torrent)["info_hash_v1"]
        .as_str()
        .expect("v1 hash")
        .to_string();
    let boot = nodes[0].local_addr().to_string();
    let boot2 = nodes[1].local_addr().to_string();
    let (seeder, lt_port) = lt_swarm(
        "seed",
        "lt-seed",
        &torrent,
        &parent,
        &[
            "--dht-bootstrap",
            &boot,
            "--dht-bootstrap",
            &boot2,
            "--timeout",
            "240",
        ],
        tmp.path(),
    );

    // Wait until the DHT knows libtorrent as a peer for the hash.
    let ih = Id20::from_hex(&hash).unwrap();
    let want = SocketAddr::from(([127, 0, 0, 1], lt_port));
    let start = Instant::now();
    let mut found = false;
    while start.elapsed() < Duration::from_secs(90) {
        let r = rt
            .block_on(nodes[5].get_peers(shoal_base::InfoHash(ih.0)))
            .unwrap();
        if r.peers.contains(&want) {
            found = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        found,
        "libtorrent's announce did not reach the DHT\n{}",
        seeder.logs()
    );

    let out = tmp.path().join("out");
    let magnet = format!("magnet:?xt=urn:btih:{hash}&dn=magnetdata");
    let boot3 = nodes[3].local_addr().to_string();
    let mut cmd = Command::new(shoal_bin());
    cmd.args([
        "download",
        &magnet,
        "-o",
        out.to_str().unwrap(),
        "--no-default-bootstrap",
        "--dht-bootstrap",
        &boot3,
        "--listen",
        "127.0.0.1:0",
        "--metadata-timeout",
        "90",
    ])
    .env("RUST_LOG", "info");
    let mut shoal = Proc::spawn("shoal-magnet", &mut cmd, tmp.path());
    let status = shoal.wait(Duration::from_secs(180));
    assert!(status.success(), "shoal download failed\n{}", shoal.logs());
    let err = shoal.err();
    eprintln!("{err}");
    assert!(err.contains("fetching metadata from"), "{err}");
    assert!(err.contains("metadata: magnetdata"), "{err}");
    assert_same_tree(&data, &out.join("magnetdata"));
    drop(seeder);
    rt.block_on(async {
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    });
}

/// A magnet whose peers never answer: exits non-zero with a clear message
/// after `--metadata-timeout`.
#[test]
fn magnet_without_peers_times_out() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let nodes = rt.block_on(dht_cluster(2));
    let tmp = tempfile::tempdir().unwrap();
    let boot = nodes[0].local_addr().to_string();
    let mut cmd = Command::new(shoal_bin());
    cmd.args([
        "download",
        "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567",
        "-o",
        tmp.path().join("out").to_str().unwrap(),
        "--no-default-bootstrap",
        "--dht-bootstrap",
        &boot,
        "--listen",
        "127.0.0.1:0",
        "--metadata-timeout",
        "3",
    ]);
    let mut shoal = Proc::spawn("shoal-nopeers", &mut cmd, tmp.path());
    let status = shoal.wait(Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{}", shoal.logs());
    let err = shoal.err();
    assert!(err.contains("no metadata after"), "{err}");
    rt.block_on(async {
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    });
}

/// shoal serves its metadata too: a shoal seeder, and a shoal leecher given a
/// magnet whose only peer is the seeder (`x.pe`), with a DHT that knows nothing.
/// The torrent is private (BEP 27), so the leecher stops using the DHT once it
/// has the metadata, and its `so` (BEP 53) selects the files.
#[test]
fn magnet_download_from_shoal_seeder_via_x_pe() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let nodes = rt.block_on(dht_cluster(2));
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("src");
    let data = make_dataset(&parent, "xpedata", 2);
    let torrent = tmp.path().join("xpedata.torrent");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--piece-size",
        "65536",
        "--private",
    ]);
    let hash = shoal_info_json(&torrent)["info_hash_v1"]
        .as_str()
        .expect("v1 hash")
        .to_string();
    let mut seed_cmd = Command::new(shoal_bin());
    seed_cmd.args([
        "seed",
        torrent.to_str().unwrap(),
        "--data",
        parent.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let mut seeder = Proc::spawn("shoal-seed", &mut seed_cmd, tmp.path());
    let port = shoal_listen_port(&mut seeder);
    let out = tmp.path().join("out");
    // so=0,2-3: only those files (BEP 53).
    let magnet = format!("magnet:?xt=urn:btih:{hash}&x.pe=127.0.0.1:{port}&so=0,2-3");
    let boot = nodes[0].local_addr().to_string();
    let mut cmd = Command::new(shoal_bin());
    cmd.args([
        "download",
        &magnet,
        "-o",
        out.to_str().unwrap(),
        "--no-default-bootstrap",
        "--dht-bootstrap",
        &boot,
        "--listen",
        "127.0.0.1:0",
        "--metadata-timeout",
        "60",
    ]);
    let mut shoal = Proc::spawn("shoal-xpe", &mut cmd, tmp.path());
    let status = shoal.wait(Duration::from_secs(120));
    assert!(
        status.success(),
        "shoal download failed\n{}\n{}",
        shoal.logs(),
        seeder.logs()
    );
    let err = shoal.err();
    assert!(err.contains("private torrent: not using the DHT"), "{err}");
    // The files selected by `so` are complete; the others were not wanted
    // (small ones may still arrive whole in pieces shared with wanted files).
    let files = shoal_info_json(&torrent)["files"].clone();
    let files = files.as_array().expect("files");
    for (i, f) in files.iter().enumerate() {
        let path = f["path"].as_str().expect("path");
        // Paths start with the torrent's name.
        let got = out.join(path);
        let want = std::fs::read(parent.join(path)).unwrap();
        if [0, 2, 3].contains(&i) {
            assert_eq!(std::fs::read(&got).unwrap(), want, "{path}");
        } else if f["length"].as_u64().unwrap_or(0) >= 2 * 65536 {
            // Big enough to have pieces of its own, which are not fetched.
            let bytes = std::fs::read(&got).unwrap_or_default();
            assert_ne!(bytes, want, "{path} was not selected but is complete");
        }
    }
    drop(seeder);
    rt.block_on(async {
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    });
}

/// A magnet whose only source is its tracker (`tr`, opentracker on loopback):
/// the libtorrent seeder announces there (no DHT), shoal asks it for peers
/// while fetching the metadata, then downloads.
#[test]
fn magnet_download_via_tr_tracker() {
    if skip_interop() {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let nodes = rt.block_on(dht_cluster(2));
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("src");
    let data = make_dataset(&parent, "trdata", 2);
    let torrent = tmp.path().join("trdata.torrent");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/announce");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        &url,
        "--piece-size",
        "65536",
    ]);
    let hash = shoal_info_json(&torrent)["info_hash_v1"]
        .as_str()
        .expect("v1 hash")
        .to_string();
    let _tracker = OpenTracker::start(port, &[&hash]);
    let (seeder, _) = lt_swarm(
        "seed",
        "lt-seed-tr",
        &torrent,
        &parent,
        &["--timeout", "200"],
        tmp.path(),
    );
    wait_for("libtorrent to seed", Duration::from_secs(60), || {
        json_lines(&seeder)
            .iter()
            .find(|v| v["seeding"] == true)
            .map(|_| ())
    });
    let out = tmp.path().join("out");
    let tr: String = url
        .bytes()
        .map(|b| match b {
            b':' | b'/' => format!("%{b:02X}"),
            _ => (b as char).to_string(),
        })
        .collect();
    let magnet = format!("magnet:?xt=urn:btih:{hash}&tr={tr}");
    let boot = nodes[0].local_addr().to_string();
    let mut cmd = Command::new(shoal_bin());
    cmd.args([
        "download",
        &magnet,
        "-o",
        out.to_str().unwrap(),
        "--no-default-bootstrap",
        "--dht-bootstrap",
        &boot,
        "--listen",
        "127.0.0.1:0",
        "--metadata-timeout",
        "90",
    ]);
    let mut shoal = Proc::spawn("shoal-tr", &mut cmd, tmp.path());
    let status = shoal.wait(Duration::from_secs(150));
    assert!(
        status.success(),
        "shoal download failed\n{}\n{}",
        shoal.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("trdata"));
    drop(seeder);
    rt.block_on(async {
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    });
}
