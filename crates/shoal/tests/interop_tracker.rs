//! Real clients use `shoal tracker` as their only way to find each other (no
//! DHT, no peer exchange, no `--peer`), on loopback:
//! - over HTTP: libtorrent seeds, aria2 downloads;
//! - over UDP: libtorrent seeds, `shoal download` downloads;
//! - over UDP: Transmission announces first (checked at the tracker: its
//!   port is listed), then `shoal seed` announces, is told of Transmission
//!   and dials it (Transmission ignores loopback peers from trackers but
//!   accepts incoming connections), and Transmission completes.
//!
//! - `shoal daemon --tracker-http --tracker-udp`, the tracker built into
//!   the daemon: libtorrent seeds (UDP), aria2 downloads (HTTP), the daemon
//!   downloads the torrent itself through its own tracker; its index names
//!   the torrent; a restart brings the swarm and the index back.
//!
//! Each transfer is byte-checked and the scrape counts (complete,
//! incomplete, downloaded) are checked after it, over HTTP and UDP.
//! Needs python3-libtorrent, aria2 and transmission-cli (`.ci/run` installs
//! them); SHOAL_SKIP_INTEROP=1 skips.
mod daemon_util;
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
fn wait_scrape(
    t: &Tracker,
    h: &shoal_base::InfoHash,
    want: ScrapeStats,
    what: &str,
    logs: &[&Proc],
) {
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

/// A tracker, a dataset with a torrent announcing to its `scheme` URL
/// only, and a libtorrent seeder the tracker has heard from.
struct Seeded {
    tmp: tempfile::TempDir,
    t: Tracker,
    data: PathBuf,
    torrent: PathBuf,
    h: [u8; 20],
    seeder: Proc,
}

fn libtorrent_seeding(scheme: &str) -> Seeded {
    let tmp = tempfile::tempdir().unwrap();
    let t = start_tracker(tmp.path(), "tracker", &[]);
    let url = match scheme {
        "http" => format!("http://{}/announce", t.http),
        _ => format!("udp://{}/announce", t.udp),
    };
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
        &shoal_base::InfoHash(h),
        stats(1, 0, 0),
        "libtorrent announced as a seed",
        &[&seeder, &t.proc],
    );
    Seeded {
        tmp,
        t,
        data,
        torrent,
        h,
        seeder,
    }
}

#[test]
fn libtorrent_seeds_aria2_leeches_over_http() {
    if skip_interop() {
        return;
    }
    let s = libtorrent_seeding("http");
    let out = s.tmp.path().join("aria2");
    let mut aria = Proc::spawn(
        "aria2",
        &mut aria2(&s.torrent, &out, free_port()),
        s.tmp.path(),
    );
    let st = aria.wait(LIMIT);
    assert!(
        st.success(),
        "aria2 failed\n{}\n{}",
        aria.logs(),
        s.seeder.logs()
    );
    assert_same_tree(&s.data, &out.join("payload"));
    // aria2 with --seed-time=0 sends no `completed`, only `stopped` with left=0.
    wait_scrape(
        &s.t,
        &shoal_base::InfoHash(s.h),
        stats(1, 0, 1),
        "after aria2's download",
        &[&aria, &s.t.proc],
    );
}

#[test]
fn libtorrent_seeds_shoal_leeches_over_udp() {
    if skip_interop() {
        return;
    }
    let s = libtorrent_seeding("udp");
    let out = s.tmp.path().join("out");
    let mut leech = Proc::spawn(
        "shoal-download",
        Command::new(shoal_bin()).args([
            "download",
            s.torrent.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--no-dht",
        ]),
        s.tmp.path(),
    );
    let st = leech.wait(LIMIT);
    assert!(
        st.success(),
        "shoal download failed\n{}\n{}",
        leech.logs(),
        s.seeder.logs()
    );
    assert_same_tree(&s.data, &out.join("payload"));
    wait_scrape(
        &s.t,
        &shoal_base::InfoHash(s.h),
        stats(1, 0, 1),
        "after shoal's download",
        &[&leech, &s.t.proc],
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
    std::fs::create_dir_all(&dir).unwrap();
    let tr_port = free_port();
    let tr = Proc::spawn(
        "transmission",
        &mut transmission(&torrent, &dir, tr_port),
        tmp.path(),
    );
    // What Transmission announced: a leecher at its peer port.
    wait_scrape(
        &t,
        &shoal_base::InfoHash(h),
        stats(0, 1, 0),
        "Transmission announced",
        &[&tr, &t.proc],
    );
    let mut probe = AnnounceRequest::new(h, [9; 20], 1, 1);
    probe.numwant = Some(50);
    let listed = http_announce(&t, &probe).peers;
    probe.event = Event::Stopped;
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
    assert_same_tree(&data, &dir.join("data/payload"));
    wait_scrape(
        &t,
        &shoal_base::InfoHash(h),
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
        &shoal_base::InfoHash(h),
        stats(1, 0, 1),
        "after the seeder stopped",
        &[&tr, &t.proc],
    );
}

/// `shoal daemon` with its built-in tracker on fresh ports, as a [`Tracker`]
/// (its process is the daemon's), and the daemon's HTTP address.
fn daemon_with_tracker(tmp: &Path, name: &str) -> (Tracker, SocketAddr) {
    let d = daemon_util::start_daemon(
        &tmp.join("state"),
        &tmp.join("dl"),
        &[
            "--tracker-http",
            "127.0.0.1:0",
            "--tracker-udp",
            "127.0.0.1:0",
        ],
        tmp,
        name,
    );
    let (http, udp) = wait_for("the built-in tracker", Duration::from_secs(30), || {
        let err = d.proc.err();
        Some((listening(&err, "http")?, listening(&err, "udp")?))
    });
    let api = d.addr.parse().expect("the daemon's address");
    (
        Tracker {
            proc: d.proc,
            http,
            udp,
        },
        api,
    )
}

fn get_json(addr: SocketAddr, target: &str) -> serde_json::Value {
    let body = http_get(addr, target);
    serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("{target}: {e}: {}", String::from_utf8_lossy(&body)))
}

/// Waits until the daemon's search (`sources=tracker`: its tracker's index)
/// and the tracker's own `/search` both name the torrent `h`.
fn wait_indexed(t: &Tracker, api: SocketAddr, h: &[u8; 20]) {
    let hex = hex::encode(h);
    let names = |v: &serde_json::Value| {
        v["results"]
            .as_array()
            .is_some_and(|r| r.iter().any(|x| x["info_hash"] == hex.as_str()))
    };
    wait_for("the index to name the torrent", LIMIT, || {
        let daemon = get_json(
            api,
            "/api/v1/search?q=payload&sources=tracker&timeout_ms=2000",
        );
        let tracker = get_json(t.http, "/search?q=payload");
        if names(&daemon) && names(&tracker) {
            return Some(());
        }
        std::thread::sleep(Duration::from_millis(300));
        None
    });
}

fn sigterm(p: &mut Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &p.child.id().to_string()])
        .status();
    let st = p.wait(Duration::from_secs(30));
    assert!(st.success(), "exited with {st}\n{}", p.logs());
}

#[test]
fn the_daemon_runs_the_tracker() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (mut t, api) = daemon_with_tracker(tmp.path(), "daemon");
    // One dataset, two .torrent files that differ only in their announce URL.
    let (parent, data, torrent, h) =
        torrent_for(tmp.path(), 8, &format!("udp://{}/announce", t.udp));
    let by_http = tmp.path().join("by-http");
    let (_, _, torrent_http, h2) = torrent_for(&by_http, 8, &format!("http://{}/announce", t.http));
    assert_eq!(h, h2, "the same info dictionary");

    let (seeder, _) = lt_seeding(
        "lt-seed",
        &torrent,
        &parent,
        &["--timeout", "300"],
        tmp.path(),
        LIMIT,
    );
    wait_scrape(
        &t,
        &shoal_base::InfoHash(h),
        stats(1, 0, 0),
        "libtorrent announced over UDP",
        &[&seeder, &t.proc],
    );

    let out = tmp.path().join("aria2");
    let mut aria = Proc::spawn(
        "aria2",
        &mut aria2(&torrent_http, &out, free_port()),
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
    wait_scrape(
        &t,
        &shoal_base::InfoHash(h),
        stats(1, 0, 1),
        "after aria2's download over HTTP",
        &[&aria, &t.proc],
    );

    // The daemon downloads the torrent itself, finding libtorrent through
    // its own tracker.
    shoal_ok(&[
        "add",
        "--url",
        &format!("http://{api}"),
        torrent.to_str().unwrap(),
    ]);
    wait_for("the daemon to complete", LIMIT, || {
        let v = get_json(api, "/api/v1/torrents");
        let done = v
            .as_array()?
            .iter()
            .any(|x| x["info_hash"] == hex::encode(h).as_str() && x["progress"] == 1.0);
        if !done {
            std::thread::sleep(Duration::from_millis(200));
        }
        done.then_some(())
    });
    assert_same_tree(&data, &tmp.path().join("dl/payload"));
    wait_scrape(
        &t,
        &shoal_base::InfoHash(h),
        stats(2, 0, 2),
        "after the daemon's download",
        &[&seeder, &t.proc],
    );

    wait_indexed(&t, api, &h);
    let session = get_json(api, "/api/v1/session");
    assert_eq!(session["tracker"]["enabled"], true, "{session}");
    assert_eq!(session["tracker"]["torrents"], 1, "{session}");
    assert_eq!(session["tracker"]["indexed"], 1, "{session}");
    let announce = session["tracker"]["announce"].to_string();
    assert!(announce.contains(&t.udp.to_string()), "{announce}");
    let metrics = String::from_utf8(http_get(api, "/metrics")).unwrap();
    assert!(metrics.contains("shoal_tracker_torrents 1"), "{metrics}");
    // The disk pool's counters: every piece of the download was verified.
    let verified = metrics
        .lines()
        .find_map(|l| l.strip_prefix("shoal_disk_pieces_verified_total "))
        .and_then(|v| v.parse::<u64>().ok());
    assert!(verified.is_some_and(|v| v > 0), "{metrics}");
    assert!(metrics.contains("shoal_disk_upload_file_blocks_total "));
    let page = String::from_utf8(http_get(t.http, "/metrics")).unwrap();
    assert!(page.contains("shoal_index_documents 1"), "{page}");

    // A restart (new ports): the swarm and the index come back from the
    // state directory. `downloaded` 2 is only in the saved state (clients
    // do not send `completed` twice), and libtorrent is still listed; the
    // daemon's own peer is not (the state is saved after its `stopped`,
    // and its torrent names the old port).
    sigterm(&mut t.proc);
    let (t, api) = daemon_with_tracker(tmp.path(), "daemon-again");
    wait_scrape(
        &t,
        &shoal_base::InfoHash(h),
        stats(1, 0, 2),
        "after the restart",
        &[&seeder, &t.proc],
    );
    wait_indexed(&t, api, &h);
}
