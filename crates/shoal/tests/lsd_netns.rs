//! Local Service Discovery (BEP 14) between real processes on a LAN of
//! network namespaces (`netns_util`: one bridge, 10.98.0.N per node): no
//! tracker, no DHT, no peer given. Two shoal nodes find each other and
//! complete a download; libtorrent (LSD on) finds shoal, and shoal finds
//! libtorrent; two shoal nodes with IPv6 addresses only find each other
//! through the IPv6 group. Who found whom follows from the order of starts (an announce
//! goes out when a torrent is added; the next one only minutes later):
//! the node started second is heard by the first. Skipped (with a note)
//! when not root; the namespaces are always deleted.
#![cfg(target_os = "linux")]
mod interop_util;
mod netns_util;

use interop_util::*;
use netns_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// A 2 MiB dataset and a v1 torrent of it with no tracker: (data parent
/// dir, data dir, torrent).
fn setup(tmp: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let parent = tmp.join("src");
    let data = make_dataset(&parent, "payload", 2);
    let torrent = tmp.join("payload.torrent");
    shoal_ok(&[
        "create".to_string(),
        data.display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--piece-size".into(),
        "65536".into(),
        "--v1".into(),
    ]);
    (parent, data, torrent)
}

/// shoal in `ns`, listening on `ip`, without the DHT; LSD on (the default)
/// and its debug lines on stderr.
fn shoal_in(ns: &str, ip: &str, args: &[&str]) -> Command {
    let mut c = in_ns(ns, &shoal_bin());
    c.args(args)
        .args(["--listen", &format!("{ip}:6881"), "--no-dht"])
        .env("RUST_LOG", "info,shoal_engine::session::lsd=debug");
    c
}

fn shoal_seed(ns: &str, ip: &str, torrent: &Path, parent: &Path, logs: &Path) -> Proc {
    let mut p = Proc::spawn(
        "shoal-seed",
        &mut shoal_in(
            ns,
            ip,
            &[
                "seed",
                torrent.to_str().unwrap(),
                "--data",
                parent.to_str().unwrap(),
            ],
        ),
        logs,
    );
    shoal_listen_port(&mut p);
    p
}

fn shoal_download(ns: &str, ip: &str, torrent: &Path, out: &Path, logs: &Path) -> Proc {
    Proc::spawn(
        "shoal-download",
        &mut shoal_in(
            ns,
            ip,
            &[
                "download",
                torrent.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
            ],
        ),
        logs,
    )
}

/// libtorrent (`lt_tool.py MODE`) in `ns` with LSD on, reporting its peers.
fn lt_in(ns: &str, ip: &str, mode: &str, torrent: &Path, save: &Path, logs: &Path) -> Proc {
    let mut c = in_ns(ns, Path::new("/usr/bin/python3"));
    c.arg(lt_script()).arg(mode).arg(torrent).arg(save).args([
        "--listen-ip",
        ip,
        "--lsd",
        "--report-peers",
        "--timeout",
        "60",
    ]);
    Proc::spawn(&format!("lt-{mode}"), &mut c, logs)
}

fn heard_by_lsd(p: &Proc) -> bool {
    p.err().contains("lsd: peer heard")
}

fn libtorrent_ok() -> bool {
    if skip_interop() {
        return false;
    }
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipping: python3-libtorrent not available");
    }
    ok
}

/// A shoal seed in `a` (listening on `a_ip`), then a shoal leech in `b`
/// (on `b_ip`) that finds it with no peer given; asserts the download is
/// complete and right, and returns both for the caller's checks.
fn seed_then_download(
    tmp: &Path,
    (a, a_ip): (&str, &str),
    (b, b_ip): (&str, &str),
) -> (Proc, Proc) {
    let (parent, data, torrent) = setup(tmp);
    let seed = shoal_seed(a, a_ip, &torrent, &parent, tmp);
    let out = tmp.join("out");
    let mut leech = shoal_download(b, b_ip, &torrent, &out, tmp);
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "download failed: {st}\n{}\n{}",
        leech.logs(),
        seed.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    (seed, leech)
}

#[test]
fn two_shoal_nodes_find_each_other_by_lsd() {
    if !can_netns() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("shlsd-ss");
    let (a, a_ip) = lan.node(1);
    let (b, b_ip) = lan.node(2);
    let (seed, _) = seed_then_download(tmp.path(), (&a, &a_ip), (&b, &b_ip));
    assert!(
        heard_by_lsd(&seed),
        "the seed never heard the leech\n{}",
        seed.logs()
    );
}

/// Over IPv6 alone: both nodes listen only on an IPv6 address, so the
/// leech can reach the seed only at the address its IPv6 announce
/// ([ff15::efc0:988f]:6771) came from.
#[test]
fn two_shoal_nodes_find_each_other_by_lsd_over_ipv6() {
    if !can_netns() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut lan = Lan::new("shlsd-v6");
    let (a, _) = lan.node(1);
    let (b, _) = lan.node(2);
    for (ns, ip) in [(&a, "fd98::1/64"), (&b, "fd98::2/64")] {
        // No duplicate address detection: usable at once.
        run(&["ip", "-n", ns, "addr", "add", ip, "dev", "eth0", "nodad"]).unwrap();
    }
    let (seed, leech) = seed_then_download(tmp.path(), (&a, "[fd98::1]"), (&b, "[fd98::2]"));
    let heard_v6 = |p: &Proc| {
        p.err()
            .lines()
            .any(|l| l.contains("lsd: peer heard") && l.contains("[fd98::"))
    };
    assert!(
        heard_v6(&seed) || heard_v6(&leech),
        "no IPv6 LSD announce was heard\n{}\n{}",
        seed.logs(),
        leech.logs()
    );
}

#[test]
fn libtorrent_finds_shoal_by_lsd() {
    if !can_netns() || !libtorrent_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, _, torrent) = setup(tmp.path());
    let mut lan = Lan::new("shlsd-lf");
    let (a, a_ip) = lan.node(1);
    let (c, c_ip) = lan.node(3);
    // libtorrent seeds first; shoal's announce, when it starts, is heard
    // by libtorrent, which connects to it.
    let lt = lt_in(&c, &c_ip, "seed", &torrent, &parent, tmp.path());
    wait_for("libtorrent to seed", LIMIT, || {
        json_lines(&lt)
            .iter()
            .any(|v| v["seeding"] == true)
            .then_some(())
    });
    let out = tmp.path().join("out");
    // Slow enough (2 s) for libtorrent's twice-a-second peer list to show it.
    let mut leech = Proc::spawn(
        "shoal-download",
        &mut shoal_in(
            &a,
            &a_ip,
            &[
                "download",
                torrent.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--max-download-rate",
                "1000000",
            ],
        ),
        tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "download failed: {st}\n{}\n{}",
        leech.logs(),
        lt.logs()
    );
    let lsd_peer = json_lines(&lt).iter().any(|v| {
        v["peer_list"].as_array().is_some_and(|l| {
            l.iter().any(|p| {
                p["ip"] == a_ip.as_str() && p["source"].as_u64().is_some_and(|s| s & 8 != 0)
            })
        })
    });
    assert!(
        lsd_peer,
        "libtorrent did not find shoal by LSD\n{}",
        lt.logs()
    );
}

#[test]
fn shoal_finds_libtorrent_by_lsd() {
    if !can_netns() || !libtorrent_ok() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (parent, data, torrent) = setup(tmp.path());
    let mut lan = Lan::new("shlsd-sf");
    let (a, a_ip) = lan.node(1);
    let (c, c_ip) = lan.node(3);
    // shoal seeds first; libtorrent's announce, when it starts, is heard
    // by shoal, which connects to it.
    let seed = shoal_seed(&a, &a_ip, &torrent, &parent, tmp.path());
    let out = tmp.path().join("lt");
    let mut lt = lt_in(&c, &c_ip, "download", &torrent, &out, tmp.path());
    let st = lt.wait(LIMIT);
    assert!(
        st.success(),
        "libtorrent failed: {st}\n{}\n{}",
        lt.logs(),
        seed.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    assert!(
        heard_by_lsd(&seed),
        "shoal never heard libtorrent\n{}",
        seed.logs()
    );
}
