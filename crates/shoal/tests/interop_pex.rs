//! Peer exchange (BEP 11 `ut_pex`) with real libtorrent on loopback, no
//! tracker and no DHT peers:
//! - shoal, given only a libtorrent peer L, learns the libtorrent seeder S
//!   from L's `ut_pex` message, connects to it and downloads;
//! - libtorrent, given only shoal, learns S from shoal's `ut_pex` message.
//!
//! libtorrent sends its first `ut_pex` message about a second after the
//! extension handshake, shoal 2 s after it, so each test takes seconds (the
//! downloads are rate-limited so the peers are still around by then).
//! Needs python3-libtorrent. Set SHOAL_SKIP_INTEROP=1 to skip.
mod interop_util;

use interop_util::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);

/// A 16 MiB dataset under `tmp/src/payload` and a trackerless v1 torrent of it.
fn setup(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let parent = tmp.join("src");
    let data = make_dataset(&parent, "payload", 16);
    let torrent = tmp.join("payload.torrent");
    lt_tool(&[
        "create",
        "--v1",
        data.to_str().unwrap(),
        torrent.to_str().unwrap(),
        "--piece-size",
        "262144",
    ]);
    (parent, data, torrent)
}

fn shoal_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(shoal_bin());
    c.args(args).env("RUST_LOG", "info");
    c
}

/// Every peer a `--report-peers` libtorrent helper has reported so far.
fn reported_peers(p: &Proc) -> Vec<Value> {
    json_lines(p)
        .iter()
        .filter_map(|v| v["peer_list"].as_array().cloned())
        .flatten()
        .collect()
}

fn has_peer_id_prefix(p: &Proc, prefix: &str) -> bool {
    reported_peers(p)
        .iter()
        .any(|v| v["pid"].as_str().is_some_and(|id| id.starts_with(prefix)))
}

fn start_seed(tmp: &Path, torrent: &Path, parent: &Path) -> (Proc, u16) {
    let (seed, port) = lt_seeding(
        "lt-seed",
        torrent,
        parent,
        &["--timeout", "150", "--report-peers"],
        tmp,
        LIMIT,
    );
    (seed, port)
}

#[test]
fn shoal_finds_the_seed_through_libtorrent_pex() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent) = setup(tmp.path());
    let (seed, seed_port) = start_seed(tmp.path(), &torrent, &parent);
    // L: a slow libtorrent leecher connected to S (it stays connected while
    // it downloads, so S is in its PEX list).
    let (peer, peer_port) = lt_swarm(
        "download",
        "lt-peer",
        &torrent,
        &tmp.path().join("l"),
        &[
            "--peer",
            &format!("127.0.0.1:{seed_port}"),
            "--max-download",
            "32768",
            "--timeout",
            "150",
        ],
        tmp.path(),
    );
    wait_for("L to connect to S", LIMIT, || {
        json_lines(&peer)
            .iter()
            .any(|v| v["peers"].as_u64().unwrap_or(0) >= 1)
            .then_some(())
    });
    let out = tmp.path().join("out");
    let mut shoal = Proc::spawn(
        "shoal-download",
        &mut shoal_cmd(&[
            "download",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &format!("127.0.0.1:{peer_port}"),
            // Slow enough that L's first ut_pex message arrives in time.
            "--max-download-rate",
            "2000000",
        ]),
        tmp.path(),
    );
    let st = shoal.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}\n{}",
        shoal.logs(),
        peer.logs(),
        seed.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    // shoal dialled S because of PEX ...
    let err = shoal.err();
    assert!(
        err.lines().any(|l| l.contains("learned from peer exchange")
            && l.contains(&format!("127.0.0.1:{seed_port}"))),
        "no PEX connection to S in shoal's log\n{}",
        shoal.logs()
    );
    // ... and S saw shoal as a peer.
    wait_for(
        "S to report shoal as a peer",
        Duration::from_secs(10),
        || has_peer_id_prefix(&seed, "-SH").then_some(()),
    );
}

#[test]
fn libtorrent_finds_the_seed_through_shoal_pex() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, _data, torrent) = setup(tmp.path());
    let (seed, seed_port) = start_seed(tmp.path(), &torrent, &parent);
    // shoal downloads from S slowly, so it is still there when L arrives.
    let out = tmp.path().join("out");
    let mut shoal = Proc::spawn(
        "shoal-download",
        &mut shoal_cmd(&[
            "download",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &format!("127.0.0.1:{seed_port}"),
            "--max-download-rate",
            "1000000",
        ]),
        tmp.path(),
    );
    let shoal_port = shoal_listen_port(&mut shoal);
    wait_for("S to see shoal", LIMIT, || {
        has_peer_id_prefix(&seed, "-SH").then_some(())
    });
    assert!(
        !has_peer_id_prefix(&seed, "-LT"),
        "S saw a libtorrent peer too early"
    );
    // L knows only shoal; slow, so S's periodic report catches it.
    let (peer, _) = lt_swarm(
        "download",
        "lt-peer",
        &torrent,
        &tmp.path().join("l"),
        &[
            "--peer",
            &format!("127.0.0.1:{shoal_port}"),
            "--max-download",
            "262144",
            "--timeout",
            "150",
        ],
        tmp.path(),
    );
    // S and L meet only if one of them used shoal's ut_pex message.
    wait_for("S and L to connect", Duration::from_secs(30), || {
        if !shoal.running() && !has_peer_id_prefix(&seed, "-LT") {
            panic!("shoal exited early\n{}", shoal.logs());
        }
        has_peer_id_prefix(&seed, "-LT").then_some(())
    });
    let _ = peer;
}
