//! MSE/PE (message stream encryption) against the real clients on loopback
//! (issue 12): shoal with its default settings (`--encryption prefer`)
//! downloads from and uploads to libtorrent forcing RC4 both ways,
//! Transmission requiring encryption and aria2 with `--bt-require-crypto`.
//! Each test checks the bytes, and that the connection really was RC4:
//! libtorrent's `rc4_encrypted` peer flag, and shoal's own debug log line
//! for the MSE connection (`encryption=Rc4`).
//!
//! Needs python3-libtorrent, aria2, transmission-cli and opentracker (`.ci/run`
//! installs them). Set SHOAL_SKIP_INTEROP=1 to skip on a machine without them.
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(180);
/// Size of the test data: big enough for a transfer of a few seconds at the
/// upload limits below, so the clients' peer lists are sampled mid-transfer.
const MIB: u64 = 16;

/// Makes a dataset under `tmp/src/payload` and a v1 torrent of it (announcing
/// to `tracker` if given); returns (data parent dir, data dir, torrent, v1 hash).
fn setup(tmp: &Path, tracker: Option<&str>) -> (PathBuf, PathBuf, PathBuf, String) {
    let parent = tmp.join("src");
    let data = make_dataset(&parent, "payload", MIB);
    let torrent = tmp.join("payload.torrent");
    let mut args = vec![
        "create".to_string(),
        data.display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--piece-size".into(),
        "262144".into(),
        "--v1".into(),
    ];
    if let Some(t) = tracker {
        args.extend(["--tracker".into(), t.to_string()]);
    }
    shoal_ok(&args);
    let hash = shoal_info_json(&torrent)["info_hash_v1"]
        .as_str()
        .expect("v1 hash")
        .to_string();
    (parent, data, torrent, hash)
}

/// shoal with default encryption settings, no DHT, and the engine's MSE
/// debug lines on stderr.
fn shoal_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(shoal_bin());
    c.args(args).arg("--no-dht").env(
        "RUST_LOG",
        "info,shoal_engine::peer=debug,shoal_engine::session::listener=debug",
    );
    c
}

/// `shoal seed` listening on loopback; returns it with its port.
fn shoal_seed(torrent: &Path, parent: &Path, extra: &[&str], dir: &Path) -> (Proc, u16) {
    let mut args = vec![
        "seed",
        torrent.to_str().unwrap(),
        "--data",
        parent.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--max-upload-rate",
        "8000000",
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::spawn("shoal-seed", &mut shoal_cmd(&args), dir);
    let port = shoal_listen_port(&mut p);
    (p, port)
}

/// `shoal download` into `out`, dialing `peers`.
fn shoal_download(torrent: &Path, out: &Path, peers: &[String], dir: &Path) -> Proc {
    let mut args = vec![
        "download",
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    for p in peers {
        args.extend(["--peer", p.as_str()]);
    }
    Proc::spawn("shoal-download", &mut shoal_cmd(&args), dir)
}

/// Asserts shoal logged an RC4 MSE connection in direction `dir`
/// (`"outgoing"` or `"incoming"`).
fn assert_shoal_rc4(p: &Proc, dir: &str) {
    let needle = format!("{dir} MSE connection");
    let found = p
        .err()
        .lines()
        .any(|l| l.contains(&needle) && l.contains("Rc4"));
    assert!(found, "no {dir} RC4 connection logged\n{}", p.logs());
}

/// Asserts the libtorrent helper saw an RC4-encrypted peer at some point.
fn assert_lt_rc4(p: &Proc) {
    let n = json_lines(p)
        .iter()
        .filter_map(|v| v["rc4_peers"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(n >= 1, "libtorrent never had an RC4 peer\n{}", p.logs());
}

#[test]
fn shoal_downloads_from_libtorrent_forcing_rc4() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent, _) = setup(tmp.path(), None);
    let (seeder, port) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &[
            "--timeout",
            "200",
            "--enc-forced",
            "--max-upload",
            "8000000",
        ],
        tmp.path(),
        LIMIT,
    );
    let out = tmp.path().join("out");
    let mut leech = shoal_download(&torrent, &out, &[format!("127.0.0.1:{port}")], tmp.path());
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert_shoal_rc4(&leech, "outgoing");
    assert_lt_rc4(&seeder);
}

#[test]
fn libtorrent_forcing_rc4_downloads_from_shoal() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent, _) = setup(tmp.path(), None);
    let (seeder, port) = shoal_seed(&torrent, &parent, &[], tmp.path());
    let out = tmp.path().join("lt");
    let peer = format!("127.0.0.1:{port}");
    let (mut lt, _) = lt_swarm(
        "download",
        "lt-leech",
        &torrent,
        &out,
        &["--timeout", "150", "--enc-forced", "--peer", &peer],
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
    assert_lt_rc4(&lt);
    assert_shoal_rc4(&seeder, "incoming");
}

#[test]
fn transmission_requiring_encryption_downloads_from_shoal() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent, _) = setup(tmp.path(), None);
    // Transmission ignores loopback peers from trackers: the seeder dials it.
    let tr_dir = tmp.path().join("transmission");
    std::fs::create_dir_all(&tr_dir).unwrap();
    let tr_port = free_port();
    let mut tr = Proc::spawn(
        "transmission",
        &mut transmission_enc(&torrent, &tr_dir, tr_port, 2),
        tmp.path(),
    );
    std::thread::sleep(Duration::from_millis(500));
    let peer = format!("127.0.0.1:{tr_port}");
    let (seeder, _) = shoal_seed(&torrent, &parent, &["--peer", &peer], tmp.path());
    wait_for("transmission to complete", LIMIT, || {
        if !tr.running() {
            panic!("transmission exited\n{}\n{}", tr.logs(), seeder.logs());
        }
        tr_dir.join("done").exists().then_some(())
    });
    assert_same_tree(&data, &tr_dir.join("data/payload"));
    assert_shoal_rc4(&seeder, "outgoing");
}

#[test]
fn shoal_downloads_from_transmission_requiring_encryption() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (_, data, torrent, _) = setup(tmp.path(), None);
    // Transmission seeds its own copy (the same pseudo-random bytes), which
    // it verifies when the torrent is added.
    let tr_dir = tmp.path().join("transmission");
    make_dataset(&tr_dir.join("data"), "payload", MIB);
    let tr_port = free_port();
    let mut tr = Proc::spawn(
        "transmission",
        &mut transmission_enc(&torrent, &tr_dir, tr_port, 2),
        tmp.path(),
    );
    wait_for("transmission to seed", LIMIT, || {
        if !tr.running() {
            panic!("transmission exited\n{}", tr.logs());
        }
        tr_dir.join("done").exists().then_some(())
    });
    let out = tmp.path().join("out");
    let mut leech = shoal_download(
        &torrent,
        &out,
        &[format!("127.0.0.1:{tr_port}")],
        tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        tr.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert_shoal_rc4(&leech, "outgoing");
}

/// aria2c arguments requiring RC4 MSE on every connection.
const ARIA2_CRYPTO: [&str; 2] = ["--bt-require-crypto=true", "--bt-min-crypto-level=arc4"];

#[test]
fn aria2_requiring_crypto_downloads_from_shoal() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = setup(tmp.path(), Some(&tracker));
    let _ot = OpenTracker::start(port, &[&hash]);
    let (seeder, _) = shoal_seed(&torrent, &parent, &[], tmp.path());
    let out = tmp.path().join("aria2");
    let mut cmd = aria2(&torrent, &out, free_port());
    cmd.args(ARIA2_CRYPTO);
    let mut aria = Proc::spawn("aria2", &mut cmd, tmp.path());
    let st = aria.wait(LIMIT);
    assert!(
        st.success(),
        "aria2 failed\n{}\n{}",
        aria.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert_shoal_rc4(&seeder, "incoming");
}

#[test]
fn shoal_downloads_from_aria2_requiring_crypto() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent, _) = setup(tmp.path(), None);
    let aria_port = free_port();
    let mut cmd = Command::new("aria2c");
    cmd.args([
        "--no-conf",
        &format!("--dir={}", parent.display()),
        "--seed-ratio=0.0",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        &format!("--listen-port={aria_port}"),
        "--interface=127.0.0.1",
        "--disable-ipv6=true",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--check-integrity=true",
        "--bt-seed-unverified=false",
    ])
    .args(ARIA2_CRYPTO)
    .arg(&torrent);
    let mut aria = Proc::spawn("aria2-seed", &mut cmd, tmp.path());
    // aria2 listens once it has checked the data.
    wait_for("aria2 to listen", LIMIT, || {
        if !aria.running() {
            panic!("aria2 exited\n{}", aria.logs());
        }
        std::net::TcpStream::connect(("127.0.0.1", aria_port))
            .ok()
            .map(|_| ())
    });
    let out = tmp.path().join("out");
    let mut leech = shoal_download(
        &torrent,
        &out,
        &[format!("127.0.0.1:{aria_port}")],
        tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed: {st}\n{}\n{}",
        leech.logs(),
        aria.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert_shoal_rc4(&leech, "outgoing");
}
