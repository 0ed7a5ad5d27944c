//! BitTorrent v2-only torrents (BEP 52) with libtorrent on loopback: pieces
//! verified by SHA-256 merkle roots, files aligned to piece boundaries, the
//! truncated v2 info-hash on the wire and at the tracker (opentracker).
//!
//! - a `shoal create --v2` torrent (64 KiB pieces, files smaller than a piece,
//!   of exactly one piece, of many pieces, and an empty one): libtorrent seeds,
//!   shoal downloads (finding it through the tracker); shoal seeds (after a
//!   full check), libtorrent downloads; both byte-identical;
//! - a libtorrent-made v2-only torrent downloaded by shoal.
//!
//! Needs python3-libtorrent and opentracker. SHOAL_SKIP_INTEROP=1 skips.
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const PIECE: u64 = 64 * 1024;

/// A data set of about 3 MiB under `root/name` with awkward v2 shapes.
fn dataset(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let sizes = [
        ("big.bin", 1_500_000),
        ("exact.bin", PIECE),
        ("sub/a.dat", 3 * PIECE + 1),
        ("sub/deep/small.bin", 40_000),
        ("sub/tiny.txt", 123),
        ("sub/zz.bin", 900_001),
        ("z_last.bin", 5 * 16384 + 17),
    ];
    for (i, (p, len)) in sizes.iter().enumerate() {
        write_random(&dir.join(p), *len, 900 + i as u64);
    }
    std::fs::write(dir.join("sub/empty"), b"").unwrap();
    dir
}

/// Makes the data set under `tmp/src/<name>` and a v2-only torrent of it with
/// `shoal create`, announcing to `tracker`; returns (data parent, data dir,
/// torrent, the 20-byte truncated v2 info-hash in hex).
fn shoal_v2_torrent(tmp: &Path, name: &str, tracker: &str) -> (PathBuf, PathBuf, PathBuf, String) {
    let parent = tmp.join("src");
    let data = dataset(&parent, name);
    let torrent = tmp.join(format!("{name}.torrent"));
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        tracker,
        "--piece-size",
        &PIECE.to_string(),
        "--v2",
    ]);
    let info = shoal_info_json(&torrent);
    assert!(
        info["info_hash_v1"].is_null(),
        "a v2-only torrent has no v1 hash: {info}"
    );
    let v2 = info["info_hash_v2"].as_str().expect("v2 hash").to_string();
    assert_eq!(v2.len(), 64);
    // libtorrent reads the same torrent as v2-only with the same hash.
    let lt = lt_tool(&["info", torrent.to_str().unwrap()]);
    assert_eq!(lt["info_hash_v2"].as_str(), Some(v2.as_str()), "{lt}");
    assert!(lt["info_hash_v1"].is_null(), "{lt}");
    (parent, data, torrent, v2[..40].to_string())
}

fn shoal_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(shoal_bin());
    c.args(args).env("RUST_LOG", "info");
    c
}

/// `shoal download TORRENT -o OUT` on loopback without DHT, plus `extra`.
fn shoal_download(torrent: &Path, out: &Path, extra: &[&str], logs: &Path) -> Proc {
    let mut args = vec![
        "download",
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--no-dht",
    ];
    args.extend_from_slice(extra);
    Proc::spawn("shoal-download", &mut shoal_cmd(&args), logs)
}

fn wait_lt_seeding(seeder: &Proc) {
    wait_for("libtorrent to seed", LIMIT, || {
        json_lines(seeder)
            .iter()
            .find(|v| v["seeding"] == true)
            .map(|_| ())
    });
}

#[test]
fn shoal_downloads_shoal_made_v2_torrent_from_libtorrent_via_tracker() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = shoal_v2_torrent(tmp.path(), "v2set", &tracker);
    let _ot = OpenTracker::start(port, &[&hash]);
    let (mut seeder, _) = lt_swarm(
        "seed",
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "150"],
        tmp.path(),
    );
    wait_lt_seeding(&seeder);
    let out = tmp.path().join("out");
    // No --peer: shoal must find libtorrent through the tracker, which only
    // knows the truncated v2 info-hash.
    let mut leech = shoal_download(&torrent, &out, &[], tmp.path());
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("v2set"));
    assert!(out.join("v2set/sub/empty").is_file());
    // The alignment pads never reach the disk.
    assert!(!out.join("v2set/.pad").exists());
    seeder.kill_hard();
}

#[test]
fn libtorrent_downloads_v2_torrent_from_shoal_seed_via_tracker() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = shoal_v2_torrent(tmp.path(), "v2seed", &tracker);
    let _ot = OpenTracker::start(port, &[&hash]);
    // `shoal seed` fully checks the data (merkle roots) before seeding.
    let (mut seeder, _) = shoal_seeding(&torrent, &parent, &["--no-dht"], tmp.path());
    let lt_out = tmp.path().join("lt");
    let (mut lt, _) = lt_swarm(
        "download",
        "lt-leech",
        &torrent,
        &lt_out,
        &["--timeout", "100"],
        tmp.path(),
    );
    let st = lt.wait(LIMIT);
    assert!(
        st.success(),
        "libtorrent failed\n{}\n{}",
        lt.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &lt_out.join("v2seed"));
    seeder.interrupt();
    let st = seeder.wait(Duration::from_secs(30));
    assert!(
        st.success(),
        "seeder exit on SIGINT: {st}\n{}",
        seeder.logs()
    );
}

#[test]
fn shoal_downloads_libtorrent_made_v2_torrent() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("src");
    let data = dataset(&parent, "ltv2");
    let torrent = tmp.path().join("ltv2.torrent");
    let made = lt_tool(&[
        "create",
        "--v2",
        data.to_str().unwrap(),
        torrent.to_str().unwrap(),
        "--piece-size",
        "32768",
    ]);
    assert!(made["info_hash_v1"].is_null(), "{made}");
    let v2 = made["info_hash_v2"].as_str().expect("v2 hash").to_string();
    let info = shoal_info_json(&torrent);
    assert_eq!(info["info_hash_v2"].as_str(), Some(v2.as_str()), "{info}");
    let (mut seeder, lt_port) = lt_swarm(
        "seed",
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "150"],
        tmp.path(),
    );
    wait_lt_seeding(&seeder);
    let out = tmp.path().join("out");
    let peer = format!("127.0.0.1:{lt_port}");
    let mut leech = shoal_download(&torrent, &out, &["--peer", &peer], tmp.path());
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("ltv2"));
    seeder.kill_hard();
}
