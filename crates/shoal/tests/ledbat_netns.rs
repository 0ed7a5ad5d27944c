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

    let mut lan = Lan::new("shledbat");
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

    let logs = tmp.path();
    let mut seed_cmd = in_ns(&a, &shoal_bin());
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
    let mut sink = Proc::spawn(
        "sink",
        &mut py(&b, &["sink", &PORT.to_string(), "90"]),
        logs,
    );
    std::thread::sleep(Duration::from_millis(300));

    let out = tmp.path().join("out");
    let mut leech_cmd = in_ns(&b, &shoal_bin());
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
    let start = Instant::now();
    let mut leech = Proc::spawn("shoal-download", &mut leech_cmd, logs);
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
        if let Some(p) = progress(&leech) {
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
    drop(probe);
    let logs_all = || format!("{}\n{}\n{}", leech.logs(), seed.logs(), sink.logs());
    assert!(st.success(), "download failed: {st}\n{}", logs_all());
    assert_same_tree(&data, &out.join("payload"));

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
        "uTP alone: {:.0} KiB/s, queue {q_alone:?} ms; with TCP: uTP {:.0} KiB/s, TCP {:.0} KiB/s, \
         queue {q_shared:?} ms (link {:.0} KiB/s)",
        utp_alone / 1024.0,
        utp_shared / 1024.0,
        tcp_rate / 1024.0,
        LINK / 1024.0
    );
    eprintln!("{report}");
    let q_alone = q_alone.unwrap_or_else(|| panic!("no probe answers\n{report}"));
    let q_shared = q_shared.unwrap_or_else(|| panic!("no probe answers\n{report}"));
    assert!(
        at(both_to) < 100.0,
        "the download ended before the shares were measured\n{report}"
    );
    assert!(
        utp_alone >= 0.5 * LINK,
        "uTP alone does not use the link\n{report}\n{}",
        logs_all()
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
        tcp_rate >= 0.7 * LINK && utp_shared <= 0.3 * LINK,
        "uTP did not yield to TCP\n{report}"
    );
}
