//! Real clients use `shoal tracker` as their only way to find each other (no
//! DHT, no peer exchange, no `--peer`), on loopback:
//! - over HTTP: libtorrent seeds, aria2 downloads;
//! - over UDP: libtorrent seeds, `shoal download` downloads;
//! - over UDP: Transmission announces first (checked at the tracker: its
//!   port is listed), then `shoal seed` announces, is told of Transmission
//!   and dials it (Transmission ignores loopback peers from trackers but
//!   accepts incoming connections), and Transmission completes.
//!
//! Each transfer is byte-checked and the scrape counts (complete,
//! incomplete, downloaded) are checked after it, over HTTP and UDP.
//! Needs python3-libtorrent, aria2 and transmission-cli (`.ci/run` installs
//! them); SHOAL_SKIP_INTEROP=1 skips.
mod interop_util;
mod tracker_util;

use interop_util::*;
use shoal_tracker::{AnnounceRequest, Event, ScrapeStats};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tracker_util::*;

const LIMIT: Duration = Duration::from_secs(180);

/// A dataset of `mib` MiB and a v1 torrent announcing only to `url`;
/// returns (data parent, data dir, torrent, info-hash).
fn torrent_for(tmp: &Path, mib: u64, url: &str) -> (PathBuf, PathBuf, PathBuf, [u8; 20]) {
    let parent = tmp.join("src");
    let data = make_dataset(&parent, "payload", mib);
    let torrent = tmp.join("payload.torrent");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--tracker",
        url,
        "--piece-size",
        "262144",
    ]);
    let info = shoal_info_json(&torrent);
    let hex = info["info_hash_v1"].as_str().expect("v1 hash");
    let mut h = [0u8; 20];
    hex::decode_to_slice(hex, &mut h).unwrap();
    (parent, data, torrent, h)
}

/// Waits until both the HTTP and the UDP scrape of `h` say `want`.
fn wait_scrape(t: &Tracker, h: &[u8; 20], want: ScrapeStats, what: &str, logs: &[&Proc]) {
    let mut last = None;
    let ok = (0..400).any(|_| {
        let now = (http_scrape(t, h), udp_scrape(t, h));
        let good = now.0 == Some(want) && now.1 == want;
        last = Some(now);
        if !good {
            std::thread::sleep(Duration::from_millis(100));
        }
        good
    });
    let all: String = logs.iter().map(|p| p.logs()).collect();
    assert!(ok, "{what}: scrape {last:?}, want {want:?}\n{all}");
}

fn stats(complete: u32, incomplete: u32, downloaded: u32) -> ScrapeStats {
    ScrapeStats {
        complete,
        downloaded,
        incomplete,
    }
}

#[test]
fn libtorrent_seeds_aria2_leeches_over_http() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = start_tracker(tmp.path(), "tracker", &[]);
    let url = format!("http://{}/announce", t.http);
    let (parent, data, torrent, h) = torrent_for(tmp.path(), 8, &url);
    let (seeder, _) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "200"],
        tmp.path(),
        LIMIT,
    );
    wait_scrape(
        &t,
        &h,
        stats(1, 0, 0),
        "libtorrent announced as a seed",
        &[&seeder, &t.proc],
    );
    let out = tmp.path().join("aria2");
    let mut aria = Proc::spawn(
        "aria2",
        Command::new("aria2c")
            .args([
                "--no-conf",
                &format!("--dir={}", out.display()),
                "--seed-time=0",
                "--enable-dht=false",
                "--enable-dht6=false",
                "--bt-enable-lpd=false",
                "--enable-peer-exchange=false",
                &format!("--listen-port={}", free_port()),
                "--interface=127.0.0.1",
                "--disable-ipv6=true",
                "--console-log-level=warn",
                "--summary-interval=0",
                "--bt-stop-timeout=120",
            ])
            .arg(&torrent),
        tmp.path(),
    );
    let st = aria.wait(LIMIT);
    assert!(
        st.success(),
        "aria2 failed\n{}\n{}",
        aria.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    // aria2 sent `completed`, then `stopped` on exit.
    wait_scrape(
        &t,
        &h,
        stats(1, 0, 1),
        "after aria2's download",
        &[&aria, &t.proc],
    );
}

#[test]
fn libtorrent_seeds_shoal_leeches_over_udp() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = start_tracker(tmp.path(), "tracker", &[]);
    let url = format!("udp://{}/announce", t.udp);
    let (parent, data, torrent, h) = torrent_for(tmp.path(), 8, &url);
    let (seeder, _) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "200"],
        tmp.path(),
        LIMIT,
    );
    wait_scrape(
        &t,
        &h,
        stats(1, 0, 0),
        "libtorrent announced as a seed",
        &[&seeder, &t.proc],
    );
    let out = tmp.path().join("out");
    let mut leech = Proc::spawn(
        "shoal-download",
        Command::new(shoal_bin()).args([
            "download",
            torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-dht",
        ]),
        tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed\n{}\n{}",
        leech.logs(),
        seeder.logs()
    );
    assert_same_tree(&data, &out.join("payload"));
    wait_scrape(
        &t,
        &h,
        stats(1, 0, 1),
        "after shoal's download",
        &[&leech, &t.proc],
    );
}

#[test]
fn transmission_announces_over_udp_and_shoal_seeds_it() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let t = start_tracker(tmp.path(), "tracker", &[]);
    let url = format!("udp://{}/announce", t.udp);
    let (parent, data, torrent, h) = torrent_for(tmp.path(), 4, &url);

    let dir = tmp.path().join("transmission");
    let cfg = dir.join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    let tr_port = free_port();
    std::fs::write(
        cfg.join("settings.json"),
        format!(
            r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
"utp-enabled": false, "port-forwarding-enabled": false, "peer-port": {tr_port},
"bind-address-ipv4": "127.0.0.1", "rpc-enabled": false, "ratio-limit-enabled": false,
"message-level": 1, "encryption": 1}}"#
        ),
    )
    .unwrap();
    let script = dir.join("done.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", dir.join("done").display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let out = dir.join("data");
    std::fs::create_dir_all(&out).unwrap();
    let tr = Proc::spawn(
        "transmission",
        Command::new("transmission-cli")
            .arg("-g")
            .arg(&cfg)
            .arg("-w")
            .arg(&out)
            .arg("-p")
            .arg(tr_port.to_string())
            .arg("-f")
            .arg(&script)
            .arg(&torrent),
        tmp.path(),
    );
    // What Transmission announced: a leecher at its peer port.
    wait_scrape(
        &t,
        &h,
        stats(0, 1, 0),
        "Transmission announced",
        &[&tr, &t.proc],
    );
    let mut probe = AnnounceRequest::new(h, [9; 20], 1, 1);
    probe.event = Event::Stopped;
    probe.numwant = Some(50);
    let listed = http_announce(&t, &{
        let mut p = probe.clone();
        p.event = Event::None;
        p
    })
    .peers;
    http_announce(&t, &probe);
    let want: SocketAddr = format!("127.0.0.1:{tr_port}").parse().unwrap();
    assert_eq!(
        listed,
        vec![want],
        "the tracker lists Transmission at its port"
    );

    // The seeder finds Transmission only through the tracker.
    let (mut seeder, _) = shoal_seeding(&torrent, &parent, &["--no-dht"], tmp.path());
    wait_for("Transmission to complete", LIMIT, || {
        dir.join("done").exists().then_some(())
    });
    assert_same_tree(&data, &out.join("payload"));
    wait_scrape(
        &t,
        &h,
        stats(2, 0, 1),
        "after Transmission's download",
        &[&tr, &seeder, &t.proc],
    );
    seeder.interrupt();
    assert!(
        seeder.wait(Duration::from_secs(30)).success(),
        "{}",
        seeder.logs()
    );
    wait_scrape(
        &t,
        &h,
        stats(1, 0, 1),
        "after the seeder stopped",
        &[&tr, &t.proc],
    );
}
