//! v2-only magnet links (`xt=urn:btmh:1220…`, no btih) with libtorrent on
//! loopback (issue 4): the info dictionary comes by BEP 9, the piece layers it
//! lacks by BEP 52 hash requests (verified against each file's pieces root),
//! then the data as for a .torrent.
//!
//! - libtorrent seeds a libtorrent-made v2-only torrent with 16 KiB pieces
//!   (a file of 577 pieces, so its layer takes two requests of 512 hashes);
//!   `shoal download MAGNET` with only `x.pe` completes byte-identical;
//! - shoal seeds the same kind of torrent and libtorrent downloads its
//!   v2-only magnet, fetching the layers from shoal's hash answers;
//! - shoal downloads the v2-only magnet of a shoal-made torrent from a shoal
//!   seeder (both halves of the hash exchange on our side).
//!
//! Needs python3-libtorrent. SHOAL_SKIP_INTEROP=1 skips.
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const PIECE: u64 = 16 * 1024;

/// About 9.6 MiB under `root/name`: files of many pieces, one exact piece,
/// one smaller than a piece.
fn dataset(root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let sizes = [
        ("big.bin", 576 * PIECE + 17),
        ("exact.bin", PIECE),
        ("sub/mid.bin", 300_001),
        ("sub/small.txt", 5_000),
    ];
    for (i, (p, len)) in sizes.iter().enumerate() {
        write_random(&dir.join(p), *len, 4200 + i as u64);
    }
    dir
}

/// The data set under `tmp/src/<name>` and a libtorrent-made v2-only torrent
/// of it; returns (data parent, data dir, torrent, full v2 info-hash in hex).
fn v2_torrent(tmp: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf, String) {
    let parent = tmp.join("src");
    let data = dataset(&parent, name);
    let torrent = tmp.join(format!("{name}.torrent"));
    let made = lt_tool(&[
        "create",
        "--v2",
        data.to_str().unwrap(),
        torrent.to_str().unwrap(),
        "--piece-size",
        &PIECE.to_string(),
    ]);
    assert!(made["info_hash_v1"].is_null(), "{made}");
    let v2 = made["info_hash_v2"].as_str().expect("v2 hash").to_string();
    assert_eq!(v2.len(), 64);
    (parent, data, torrent, v2)
}

#[test]
fn shoal_downloads_v2_only_magnet_from_libtorrent() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent, v2) = v2_torrent(tmp.path(), "v2mag");
    let (mut seeder, port) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "150"],
        tmp.path(),
        LIMIT,
    );
    let out = tmp.path().join("out");
    let magnet = format!("magnet:?xt=urn:btmh:1220{v2}&dn=v2mag&x.pe=127.0.0.1:{port}");
    let mut cmd = Command::new(shoal_bin());
    cmd.args([
        "download",
        &magnet,
        "-o",
        out.to_str().unwrap(),
        "--no-dht",
        "--listen",
        "127.0.0.1:0",
        "--metadata-timeout",
        "60",
    ])
    .env("RUST_LOG", "info,shoal_engine::piece_layers=debug");
    let mut shoal = Proc::spawn("shoal-v2-magnet", &mut cmd, tmp.path());
    let st = shoal.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        shoal.logs(),
        seeder.logs()
    );
    let err = shoal.err();
    assert!(err.contains("metadata: v2mag"), "{err}");
    assert!(err.contains("piece layers of 2 files"), "{err}");
    assert_same_tree(&data, &out.join("v2mag"));
    seeder.kill_hard();
}

#[test]
fn libtorrent_downloads_v2_only_magnet_from_shoal_seed() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent, v2) = v2_torrent(tmp.path(), "v2seed");
    let mut seeder = Proc::spawn(
        "shoal-seed",
        Command::new(shoal_bin())
            .args([
                "seed",
                torrent.to_str().unwrap(),
                "--data",
                parent.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--no-dht",
            ])
            .env("RUST_LOG", "info,shoal_engine::peer=debug"),
        tmp.path(),
    );
    let port = shoal_listen_port(&mut seeder);
    let lt_out = tmp.path().join("lt");
    let magnet = format!("magnet:?xt=urn:btmh:1220{v2}&dn=v2seed");
    let peer = format!("127.0.0.1:{port}");
    let (mut lt, _) = lt_swarm(
        "download",
        "lt-leech",
        Path::new(&magnet),
        &lt_out,
        &["--peer", &peer, "--timeout", "100"],
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
    // libtorrent asked shoal for piece-layer hashes and got them.
    let log = strip_ansi(&seeder.err());
    let asked: Vec<&str> = log.lines().filter(|l| l.contains("hash request")).collect();
    assert!(
        asked.iter().any(|l| l.contains("served=true")),
        "no hash request served\n{log}"
    );
    assert!(
        !asked.iter().any(|l| l.contains("served=false")),
        "a hash request rejected\n{log}"
    );
    seeder.interrupt();
    let st = seeder.wait(Duration::from_secs(30));
    assert!(
        st.success(),
        "seeder exit on SIGINT: {st}\n{}",
        seeder.logs()
    );
}

/// `s` without ANSI escape sequences (the log may be coloured).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // ESC [ ... final byte in '@'..='~'
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) && d != '[' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn shoal_downloads_v2_only_magnet_from_shoal_seed() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("src");
    let data = dataset(&parent, "v2ss");
    let torrent = tmp.path().join("v2ss.torrent");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--piece-size",
        &PIECE.to_string(),
        "--v2",
    ]);
    let info = shoal_info_json(&torrent);
    let v2 = info["info_hash_v2"].as_str().expect("v2 hash").to_string();
    let mut seeder = Proc::spawn(
        "shoal-seed",
        Command::new(shoal_bin())
            .args([
                "seed",
                torrent.to_str().unwrap(),
                "--data",
                parent.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--no-dht",
            ])
            .env("RUST_LOG", "info,shoal_engine::peer=debug"),
        tmp.path(),
    );
    let port = shoal_listen_port(&mut seeder);
    let out = tmp.path().join("out");
    let magnet = format!("magnet:?xt=urn:btmh:1220{v2}&x.pe=127.0.0.1:{port}");
    let mut leech = Proc::spawn(
        "shoal-leech",
        Command::new(shoal_bin())
            .args([
                "download",
                &magnet,
                "-o",
                out.to_str().unwrap(),
                "--no-dht",
                "--listen",
                "127.0.0.1:0",
                "--metadata-timeout",
                "60",
            ])
            .env("RUST_LOG", "info"),
        tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        seeder.logs()
    );
    assert!(
        leech.err().contains("piece layers of 2 files"),
        "{}",
        leech.logs()
    );
    assert_same_tree(&data, &out.join("v2ss"));
    let log = strip_ansi(&seeder.err());
    assert!(log.contains("served=true"), "no hash request served\n{log}");
    seeder.interrupt();
    let st = seeder.wait(Duration::from_secs(30));
    assert!(
        st.success(),
        "seeder exit on SIGINT: {st}\n{}",
        seeder.logs()
    );
}
