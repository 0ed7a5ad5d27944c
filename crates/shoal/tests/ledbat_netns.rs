//! LEDBAT at a real bottleneck: a uTP transfer between two network
//! namespaces whose path is shaped by `tbf` on the bridge between them
//! (20 Mbit/s, a buffer of 600 ms),
//! probed by UDP echoes through the same queue, then joined by a TCP flow.
//!
//! What it shows, in one timeline:
//! - uTP alone fills the link while the queueing delay stays near LEDBAT's
//!   100 ms target, far under the 600 ms the buffer holds;
//! - the TCP flow, once it starts, fills the buffer (the probe sees the
//!   delay rise), which shows the queue was there to fill;
//! - uTP yields: the TCP flow gets most of the link while both run;
//! - the download completes and its data is right.
//!
//! libtorrent's uTP (seeder and leecher, TCP off) runs the same timeline on
//! its own bottleneck at the same time: the anchor, reported beside
//! shoal's, and shoal must keep the queue and yield about as well.
//!
//! (`tc netem` is not available on every kernel; `tbf` is, and a
//! bottleneck is all this needs. Loss and reordering are covered by the
//! uTP simulator, crates/utp/tests/sim.rs.) Skipped (with a note) when not
//! root; the namespaces are always deleted.
#![cfg(target_os = "linux")]
mod interop_util;
mod netns_util;

use interop_util::*;
use netns_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The bottleneck's rate, bytes per second (20 Mbit/s).
const LINK: f64 = 20e6 / 8.0;
/// The probe's length, and when the TCP flow starts and for how long.
const PROBE_SECS: f64 = 26.0;
const FLOOD_AT: f64 = 7.0;
const FLOOD_SECS: f64 = 16.0;
/// Seconds into the flow when the shares are measured: LEDBAT's decrease
/// is linear (3,000 bytes per RTT at most, as libtorrent's), so a full
/// window takes seconds to give back.
const SHARE_FROM: f64 = 9.0;
const DATA_MIB: u64 = 40;
const PORT: u16 = 5001;

fn flows() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ledbat/flows.py")
}

fn py(ns: &str, args: &[&str]) -> Command {
    let mut c = in_ns(ns, Path::new("/usr/bin/python3"));
    c.arg(flows()).args(args);
    c
}

/// Median of the values whose time falls in `[from, to)`.
fn median_in(samples: &[(f64, f64)], from: f64, to: f64) -> Option<f64> {
    let mut v: Vec<f64> = samples
        .iter()
        .filter(|(t, _)| *t >= from && *t < to)
        .map(|&(_, x)| x)
        .collect();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v.get(v.len() / 2).copied()
}

/// `tag T X` lines of a helper's output.
fn series(out: &str, tag: &str) -> Vec<(f64, f64)> {
    out.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == tag).then_some(())?;
            Some((w.next()?.parse().ok()?, w.next()?.parse().ok()?))
        })
        .collect()
}

/// The last `progress N%` the leecher printed.
fn progress(p: &Proc) -> Option<f64> {
    p.err()
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("progress ")?.split('%').next()?.parse().ok())
}

/// The clients at both ends of a timeline.
#[derive(Clone, Copy, Debug)]
enum Pair {
    Shoal,
    Libtorrent,
}

/// What one timeline measured.
struct Timeline {
    utp_alone: f64,
    utp_shared: f64,
    tcp_rate: f64,
    q_alone: Option<f64>,
    q_shared: Option<f64>,
    /// Percent downloaded at the end of the shared interval.
    done_at_share_end: f64,
    report: String,
}

/// Starts the seeder in `a` and the uTP-only leecher in `b`; returns them.
fn start_pair(
    pair: Pair,
    (a, a_ip): (&str, &str),
    (b, b_ip): (&str, &str),
    torrent: &Path,
    parent: &Path,
    out: &Path,
    logs: &Path,
) -> (Proc, Proc) {
    match pair {
        Pair::Shoal => {
            let mut seed_cmd = in_ns(a, &shoal_bin());
            seed_cmd.args([
                "seed",
                torrent.to_str().unwrap(),
                "--data",
                parent.to_str().unwrap(),
                "--listen",
                &format!("{a_ip}:6881"),
                "--no-dht",
                "--no-lsd",
                "--no-tcp",
            ]);
            let mut seed = Proc::spawn("shoal-seed", &mut seed_cmd, logs);
            shoal_listen_port(&mut seed);
            let mut leech_cmd = in_ns(b, &shoal_bin());
            leech_cmd.args([
                "download",
                torrent.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "--listen",
                &format!("{b_ip}:6881"),
                "--peer",
                &format!("{a_ip}:6881"),
                "--no-dht",
                "--no-lsd",
                "--no-tcp",
            ]);
            (seed, Proc::spawn("shoal-download", &mut leech_cmd, logs))
        }
        Pair::Libtorrent => {
            let lt = |ns: &str, args: &[&str]| {
                let mut c = in_ns(ns, Path::new("/usr/bin/python3"));
                c.arg(lt_script()).args(args);
                c
            };
            let mut seed = Proc::spawn(
                "lt-seed",
                &mut lt(
                    a,
                    &[
                        "seed",
                        torrent.to_str().unwrap(),
                        parent.to_str().unwrap(),
                        "--listen-ip",
                        a_ip,
                        "--port",
                        "6881",
                        "--utp-only",
                        "--timeout",
                        "120",
                    ],
                ),
                logs,
            );
            wait_for("libtorrent to seed", Duration::from_secs(30), || {
                assert!(seed.running(), "lt-seed exited\n{}", seed.logs());
                json_lines(&seed)
                    .iter()
                    .find(|v| v["seeding"] == true)
                    .map(|_| ())
            });
            std::fs::create_dir_all(out).unwrap();
            let leech = Proc::spawn(
                "lt-download",
                &mut lt(
                    b,
                    &[
                        "download",
                        torrent.to_str().unwrap(),
                        out.to_str().unwrap(),
                        "--listen-ip",
                        b_ip,
                        "--port",
                        "6881",
                        "--peer",
                        &format!("{a_ip}:6881"),
                        "--utp-only",
                        "--timeout",
                        "90",
                    ],
                ),
                logs,
            );
            (seed, leech)
        }
    }
}

/// The leecher's latest progress, percent.
fn progress_of(pair: Pair, p: &Proc) -> Option<f64> {
    match pair {
        Pair::Shoal => progress(p),
        Pair::Libtorrent => json_lines(p)
            .iter()
            .rev()
            .find_map(|v| v["progress"].as_f64())
            .map(|x| x * 100.0),
    }
}

/// One timeline on its own bottleneck (namespaces tagged `tag`): uTP alone,
/// then joined by a TCP flow. Checks the download's data.
fn timeline(pair: Pair, tag: &str, data: &Path, torrent: &Path, dir: &Path) -> Timeline {
    let parent = data.parent().unwrap();
    let mut lan = Lan::new(tag);
    let (a, a_ip) = lan.node(1);
    let (b, b_ip) = lan.node(2);
    // The bottleneck: the bridge's port towards B, a hop away from the
    // senders as a router's queue is (a queue on the sender's own device
    // would hold TCP back by TCP Small Queues, never by delay). Data,
    // probes and the TCP flow all go from A to B through it.
    run(&[
        "tc",
        "-n",
        lan.bridge(),
        "qdisc",
        "add",
        "dev",
        "v2",
        "root",
        "tbf",
        "rate",
        "20mbit",
        "burst",
        "20kb",
        "latency",
        "600ms",
    ])
    .unwrap();

    let logs = dir;
    let mut sink = Proc::spawn(
        "sink",
        &mut py(&b, &["sink", &PORT.to_string(), "90"]),
        logs,
    );
    let out = dir.join("out");
    let (mut seed, mut leech) =
        start_pair(pair, (&a, &a_ip), (&b, &b_ip), torrent, parent, &out, logs);
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let probe = Proc::spawn(
        "probe",
        &mut py(
            &a,
            &["probe", &b_ip, &PORT.to_string(), &PROBE_SECS.to_string()],
        ),
        logs,
    );

    // The leecher's progress over time, and the TCP flow at FLOOD_AT.
    let mut seen: Vec<(f64, f64)> = Vec::new();
    let mut flood = None;
    while start.elapsed() < Duration::from_secs(60) && leech.running() {
        let t = start.elapsed().as_secs_f64();
        if let Some(p) = progress_of(pair, &leech) {
            seen.push((t, p));
        }
        if flood.is_none() && t >= FLOOD_AT {
            flood = Some(Proc::spawn(
                "flood",
                &mut py(
                    &a,
                    &["flood", &b_ip, &PORT.to_string(), &FLOOD_SECS.to_string()],
                ),
                logs,
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let st = leech.wait(Duration::from_secs(5));
    // The flow ended before the download did; the sink printed as it went.
    sink.kill_hard();
    seed.kill_hard();
    drop(probe);
    let logs_all = || format!("{}\n{}\n{}", leech.logs(), seed.logs(), sink.logs());
    assert!(
        st.success(),
        "{pair:?}: download failed: {st}\n{}",
        logs_all()
    );
    assert_same_tree(data, &out.join("payload"));

    let rtts = series(
        &std::fs::read_to_string(logs.join("probe.out")).unwrap(),
        "rtt",
    );
    let tcp = series(&sink.out(), "tcp");
    let at = |t: f64| {
        seen.iter()
            .rev()
            .find(|(s, _)| *s <= t)
            .map_or(0.0, |&(_, p)| p)
    };
    let bytes = (DATA_MIB << 20) as f64;
    let utp_alone = (at(FLOOD_AT) - at(3.0)) / 100.0 * bytes / (FLOOD_AT - 3.0);
    let both_from = FLOOD_AT + SHARE_FROM;
    let both_to = FLOOD_AT + FLOOD_SECS - 0.5;
    let utp_shared = (at(both_to) - at(both_from)) / 100.0 * bytes / (both_to - both_from);
    let tcp_bytes: f64 = tcp
        .iter()
        .filter(|(t, _)| *t >= SHARE_FROM && *t < FLOOD_SECS - 0.5)
        .map(|&(_, b)| b)
        .sum();
    let tcp_rate = tcp_bytes / (FLOOD_SECS - 0.5 - SHARE_FROM);
    let q_alone = median_in(&rtts, 3.0, FLOOD_AT);
    let q_shared = median_in(&rtts, both_from, both_to);
    let report = format!(
        "{pair:?}: uTP alone: {:.0} KiB/s, queue {q_alone:?} ms; with TCP: uTP {:.0} KiB/s, \
         TCP {:.0} KiB/s, queue {q_shared:?} ms (link {:.0} KiB/s)",
        utp_alone / 1024.0,
        utp_shared / 1024.0,
        tcp_rate / 1024.0,
        LINK / 1024.0
    );
    eprintln!("{report}");
    Timeline {
        utp_alone,
        utp_shared,
        tcp_rate,
        q_alone,
        q_shared,
        done_at_share_end: at(both_to),
        report,
    }
}

#[test]
fn utp_keeps_the_queue_near_its_target_and_yields_to_tcp() {
    if !can_netns() || skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().join("src");
    let data = make_dataset(&parent, "payload", DATA_MIB);
    let torrent = tmp.path().join("payload.torrent");
    shoal_ok(&[
        "create".to_string(),
        data.display().to_string(),
        "-o".into(),
        torrent.display().to_string(),
        "--v1".into(),
    ]);
    // Two bottlenecks side by side: shoal's timeline and libtorrent's.
    let dirs = [tmp.path().join("shoal"), tmp.path().join("lt")];
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let (ours, anchor) = std::thread::scope(|s| {
        let lt = s.spawn(|| timeline(Pair::Libtorrent, "shledlt", &data, &torrent, &dirs[1]));
        let ours = timeline(Pair::Shoal, "shledbat", &data, &torrent, &dirs[0]);
        (ours, lt.join())
    });
    let anchor = anchor.unwrap_or_else(|e| std::panic::resume_unwind(e));
    let report = format!("{}\n{}", ours.report, anchor.report);
    let q_alone = ours
        .q_alone
        .unwrap_or_else(|| panic!("no probe answers\n{report}"));
    let q_shared = ours
        .q_shared
        .unwrap_or_else(|| panic!("no probe answers\n{report}"));
    assert!(
        ours.done_at_share_end < 100.0,
        "the download ended before the shares were measured\n{report}"
    );
    assert!(
        ours.utp_alone >= 0.5 * LINK,
        "uTP alone does not use the link\n{report}"
    );
    assert!(
        q_alone <= 250.0,
        "uTP alone fills the queue beyond LEDBAT's target\n{report}"
    );
    assert!(
        q_shared >= 300.0,
        "the TCP flow did not fill the queue: the bottleneck is not one\n{report}"
    );
    assert!(
        ours.tcp_rate >= 0.7 * LINK && ours.utp_shared <= 0.3 * LINK,
        "uTP did not yield to TCP\n{report}"
    );
    // Against the anchor: a queue no longer than libtorrent's by more than
    // 100 ms, and a share beside TCP no larger than libtorrent's by more
    // than a tenth of the link.
    if let Some(lt_q) = anchor.q_alone {
        assert!(
            q_alone <= lt_q + 100.0,
            "shoal's uTP queues longer than libtorrent's\n{report}"
        );
    }
    if anchor.done_at_share_end < 100.0 {
        assert!(
            ours.utp_shared <= anchor.utp_shared + 0.1 * LINK,
            "shoal's uTP yields less than libtorrent's\n{report}"
        );
    }
}
