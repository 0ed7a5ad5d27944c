//! Swarming with real clients on loopback (issue 3), through a real tracker
//! (opentracker on 127.0.0.1): shoal downloads a 64 MiB multi-file torrent from
//! a libtorrent seeder; libtorrent, aria2 and Transmission each download it from
//! a shoal seeder; every result is byte-identical to the original data.
//!
//! Needs python3-libtorrent, aria2, transmission-cli and opentracker (`.ci/run`
//! installs them). Set SHOAL_SKIP_INTEROP=1 to skip on a machine without them.
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(240);

/// Makes a dataset of `mib` MiB under `tmp/src/<name>`, a v1 torrent of it announcing
/// to `tracker`, and returns (data parent dir, data dir, torrent path, v1 info-hash).
fn torrent_for(
    tmp: &Path,
    name: &str,
    mib: u64,
    tracker: &str,
    mode: &str,
) -> (PathBuf, PathBuf, PathBuf, String) {
    let parent = tmp.join("src");
    let data = make_dataset(&parent, name, mib);
    let torrent = tmp.join(format!("{name}.torrent"));
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        tracker,
        "--piece-size",
        "262144",
        mode,
    ]);
    let info = shoal_info_json(&torrent);
    let hash = info["info_hash_v1"].as_str().expect("v1 hash").to_string();
    (parent, data, torrent, hash)
}

fn shoal_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(shoal_bin());
    c.args(args).env("RUST_LOG", "info");
    c
}

#[test]
fn shoal_leeches_64mib_from_libtorrent_via_opentracker() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = torrent_for(tmp.path(), "payload", 64, &tracker, "--v1");
    let _ot = OpenTracker::start(port, &[&hash]);
    let (seeder, _) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "300"],
        tmp.path(),
        LIMIT,
    );
    let out = tmp.path().join("out");
    let mut leech = Proc::spawn(
        "shoal-download",
        &mut shoal_cmd(&[
            "download",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
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
}

#[test]
fn libtorrent_aria2_and_transmission_leech_64mib_from_shoal() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = torrent_for(tmp.path(), "payload", 64, &tracker, "--v1");
    let _ot = OpenTracker::start(port, &[&hash]);

    // Transmission ignores loopback peers from trackers: the seeder dials it.
    let tr_dir = tmp.path().join("transmission");
    std::fs::create_dir_all(&tr_dir).unwrap();
    let tr_port = free_port();
    let _tr = Proc::spawn(
        "transmission",
        &mut transmission(&torrent, &tr_dir, tr_port),
        tmp.path(),
    );
    std::thread::sleep(Duration::from_millis(500));

    let (mut seeder, _) = shoal_seeding(
        &torrent,
        &parent,
        &["--peer", &format!("127.0.0.1:{tr_port}")],
        tmp.path(),
    );

    let lt_out = tmp.path().join("lt");
    let (mut lt, _) = lt_swarm(
        "download",
        "lt-leech",
        &torrent,
        &lt_out,
        &["--timeout", "200"],
        tmp.path(),
    );
    let aria_out = tmp.path().join("aria2");
    let mut aria = Proc::spawn(
        "aria2",
        &mut aria2(&torrent, &aria_out, free_port()),
        tmp.path(),
    );

    let st = lt.wait(LIMIT);
    assert!(
        st.success(),
        "libtorrent failed\n{}\n{}",
        lt.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &lt_out.join("payload"));
    let st = aria.wait(LIMIT);
    assert!(
        st.success(),
        "aria2 failed\n{}\n{}",
        aria.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &aria_out.join("payload"));
    wait_for("transmission to complete", LIMIT, || {
        tr_dir.join("done").exists().then_some(())
    });
    assert_same_tree(&data, &tr_dir.join("data/payload"));

    // Ctrl-C: the seeder announces `stopped` and exits cleanly.
    seeder.interrupt();
    let st = seeder.wait(Duration::from_secs(30));
    assert!(
        st.success(),
        "seeder exit on SIGINT: {st}\n{}",
        seeder.logs()
    );
}

/// The last `progress N%` a shoal downloader printed.
fn shoal_progress(p: &Proc) -> Option<f64> {
    p.err()
        .lines()
        .filter_map(|l| l.strip_prefix("progress "))
        .filter_map(|l| l.split('%').next()?.trim().parse().ok())
        .next_back()
}

/// The last `uploaded` figure the libtorrent helper reported.
fn lt_uploaded(p: &Proc) -> u64 {
    json_lines(p)
        .iter()
        .filter_map(|v| v["uploaded"].as_u64())
        .next_back()
        .unwrap_or(0)
}

#[test]
fn killed_at_half_then_restarted_completes_without_refetching_verified_pieces() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = torrent_for(tmp.path(), "payload", 64, &tracker, "--v1");
    let _ot = OpenTracker::start(port, &[&hash]);
    let (seeder, _) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "300", "--max-upload", "8000000"],
        tmp.path(),
        LIMIT,
    );
    let out = tmp.path().join("out");
    let args = [
        "download",
        torrent.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ];
    let mut first = Proc::spawn("shoal-first", &mut shoal_cmd(&args), tmp.path());
    let at_kill = wait_for("the download to reach 50%", LIMIT, || {
        if !first.running() {
            panic!("first run ended early\n{}", first.logs());
        }
        shoal_progress(&first).filter(|&p| p >= 50.0)
    });
    first.kill_hard();
    assert!(
        at_kill < 100.0,
        "killed too late ({at_kill}%) to test a restart"
    );

    let mut second = Proc::spawn("shoal-second", &mut shoal_cmd(&args), tmp.path());
    let st = second.wait(LIMIT);
    assert!(st.success(), "restart failed\n{}", second.logs());
    assert_same_tree(&data, &out.join("payload"));

    // The restart started from the verified pieces of the first run.
    let pieces: u64 = 64 * 4; // 64 MiB in 256 KiB pieces
    let resumed: u64 = second
        .err()
        .lines()
        .find_map(|l| {
            l.strip_prefix("resuming: ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("restart did not resume\n{}", second.logs()));
    assert!(
        resumed as f64 >= (at_kill / 100.0 * pieces as f64).floor() - 1.0,
        "resumed {resumed} pieces but {at_kill}% was verified before the kill"
    );
    // The only source of data sent little more than the torrent in total: only
    // pieces that were in flight at the kill were fetched twice.
    std::thread::sleep(Duration::from_millis(1500));
    let uploaded = lt_uploaded(&seeder);
    let size = 64u64 << 20;
    assert!(
        uploaded <= size + (8 << 20),
        "the seeder sent {uploaded} bytes for a {size}-byte torrent: verified pieces were fetched again"
    );
}

#[test]
fn mixed_swarm_shoal_seeder_with_shoal_libtorrent_and_aria2_leechers() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let tracker = format!("http://127.0.0.1:{port}/announce");
    let (parent, data, torrent, hash) = torrent_for(tmp.path(), "payload", 24, &tracker, "--v1");
    let _ot = OpenTracker::start(port, &[&hash]);
    // A slow seeder (3 MB/s): three leechers finish in time only by trading pieces.
    let (mut seeder, _) = shoal_seeding(
        &torrent,
        &parent,
        &["--max-upload-rate", "3000000"],
        tmp.path(),
    );

    let shoal_out = tmp.path().join("shoal-leech");
    let mut shoal_leech = Proc::spawn(
        "shoal-leech",
        &mut shoal_cmd(&[
            "download",
            torrent.to_str().unwrap(),
            "-o",
            shoal_out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--seed",
        ]),
        tmp.path(),
    );
    let lt_out = tmp.path().join("lt");
    let (mut lt, _) = lt_swarm(
        "download",
        "lt-leech",
        &torrent,
        &lt_out,
        &["--timeout", "200", "--linger", "8"],
        tmp.path(),
    );
    let aria_out = tmp.path().join("aria2");
    let mut aria = Proc::spawn(
        "aria2",
        &mut aria2(&torrent, &aria_out, free_port()),
        tmp.path(),
    );

    let st = aria.wait(LIMIT);
    assert!(
        st.success(),
        "aria2 failed\n{}\n{}",
        aria.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &aria_out.join("payload"));
    let st = lt.wait(LIMIT);
    assert!(st.success(), "libtorrent failed\n{}", lt.logs());
    assert_same_tree(&data, &lt_out.join("payload"));
    wait_for("the shoal leecher to complete", LIMIT, || {
        shoal_leech
            .err()
            .contains("download complete")
            .then_some(())
    });
    assert_same_tree(&data, &shoal_out.join("payload"));
    // Leechers uploaded to one another (the seeder never downloads).
    let lt_up = lt_uploaded(&lt);
    assert!(
        lt_up > 0,
        "libtorrent leecher uploaded nothing\n{}",
        lt.logs()
    );
    shoal_leech.interrupt();
    shoal_leech.wait(Duration::from_secs(30));
    let summary = shoal_leech
        .err()
        .lines()
        .rev()
        .find(|l| l.contains(" uploaded "))
        .unwrap_or_default()
        .to_string();
    assert!(
        !summary.contains("uploaded 0 B"),
        "shoal leecher uploaded nothing: {summary}\n{}",
        shoal_leech.logs()
    );
    seeder.interrupt();
    seeder.wait(Duration::from_secs(30));
}
