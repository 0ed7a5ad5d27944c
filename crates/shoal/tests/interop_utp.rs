//! uTP against libtorrent on loopback (issue 12): libtorrent with TCP off
//! both ways (uTP only), shoal on its default settings (TCP and uTP on).
//! shoal downloads from it (shoal dials TCP first, libtorrent closes the
//! TCP connection at once, shoal retries over uTP) and it downloads from
//! shoal (libtorrent dials uTP; shoal accepts it on its listen port's UDP
//! socket). Each test checks the bytes, libtorrent's `utp_socket` peer flag
//! and shoal's own `peer handshake … transport="utp"` debug line.
//!
//! Needs python3-libtorrent (`.ci/run` installs it). Set SHOAL_SKIP_INTEROP=1
//! to skip on a machine without it.
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
/// Size of the test data: a transfer of a few seconds at the upload limits
/// below, so the clients' peer lists are sampled mid-transfer.
const MIB: u64 = 8;

/// A dataset under `tmp/src/payload` and a v1 torrent of it; returns (data
/// parent dir, data dir, torrent).
fn setup(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let parent = tmp.join("src");
    let data = make_dataset(&parent, "payload", MIB);
    let torrent = tmp.join("payload.torrent");
    shoal_ok(&[
        "create".to_string(),
        data.display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--piece-size".into(),
        "262144".into(),
        "--v1".into(),
    ]);
    (parent, data, torrent)
}

/// shoal with default transports, no DHT, and the peer tasks' debug lines.
fn shoal_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(shoal_bin());
    c.args(args)
        .arg("--no-dht")
        .env("RUST_LOG", "info,shoal_engine::peer=debug");
    c
}

/// `s` without ANSI colour sequences (`ESC [ … m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Asserts shoal logged a peer handshake over uTP.
fn assert_shoal_utp(p: &Proc) {
    let found = strip_ansi(&p.err()).lines().any(|l| {
        l.contains("peer handshake")
            && (l.contains("transport=\"utp\"") || l.contains("transport=utp"))
    });
    assert!(found, "shoal logged no uTP peer\n{}", p.logs());
}

/// Asserts the libtorrent helper saw a uTP peer at some point.
fn assert_lt_utp(p: &Proc) {
    let n = json_lines(p)
        .iter()
        .filter_map(|v| v["utp_peers"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(n >= 1, "libtorrent never had a uTP peer\n{}", p.logs());
}

#[test]
fn shoal_downloads_from_libtorrent_over_utp() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent) = setup(tmp.path());
    let (seeder, port) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "150", "--utp-only", "--max-upload", "4000000"],
        tmp.path(),
        LIMIT,
    );
    let out = tmp.path().join("out");
    let peer = format!("127.0.0.1:{port}");
    let mut leech = Proc::spawn(
        "shoal-download",
        &mut shoal_cmd(&[
            "download",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &peer,
        ]),
        tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert_shoal_utp(&leech);
    assert_lt_utp(&seeder);
}

#[test]
fn libtorrent_downloads_from_shoal_over_utp() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent) = setup(tmp.path());
    let mut seeder = Proc::spawn(
        "shoal-seed",
        &mut shoal_cmd(&[
            "seed",
            torrent.to_str().unwrap(),
            "--data",
            parent.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--max-upload-rate",
            "4000000",
        ]),
        tmp.path(),
    );
    let port = shoal_listen_port(&mut seeder);
    let out = tmp.path().join("lt");
    let peer = format!("127.0.0.1:{port}");
    let (mut lt, _) = lt_swarm(
        "download",
        "lt-leech",
        &torrent,
        &out,
        &["--timeout", "100", "--utp-only", "--peer", &peer],
        tmp.path(),
    );
    let st = lt.wait(LIMIT);
    assert!(
        st.success(),
        "libtorrent failed\n{}\n{}",
        lt.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert_lt_utp(&lt);
    assert_shoal_utp(&seeder);
}
