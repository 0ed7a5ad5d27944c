//! kill -9 of `shoal daemon` in the middle of a download, then a restart on
//! the same state directory: the acknowledged torrent is there with the
//! setting a client gave it, the download completes with the right bytes,
//! and the seeder (libtorrent, reporting every block it sends) sends no piece
//! again that the daemon showed as verified a moment (more than the resume
//! batch window) before the kill.
mod daemon_util;
mod interop_util;

use base64::Engine as _;
use daemon_util::*;
use interop_util::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LIMIT: Duration = Duration::from_secs(120);

/// The daemon's verified pieces of torrent `hash`, from the REST API.
fn verified(d: &DaemonProc, hash: &str) -> Option<(BTreeSet<u32>, u32)> {
    let addr = d.addr.parse().ok()?;
    let body = http_get(addr, &format!("/api/v1/torrents/{hash}/pieces"));
    let v: Value = serde_json::from_slice(&body).ok()?;
    let count = u32::try_from(v["count"].as_u64()?).ok()?;
    let bits = base64::engine::general_purpose::STANDARD
        .decode(v["bitfield"].as_str()?)
        .ok()?;
    let have = (0..count)
        .filter(|&i| {
            bits.get(i as usize / 8)
                .is_some_and(|b| b & (0x80 >> (i % 8)) != 0)
        })
        .collect();
    Some((have, count))
}

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn kill_9_during_a_download_then_restart() {
    if skip_interop() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_tracker, announce) = shoal_tracker(root);
    let src = root.join("src");
    let data = src.join("crash.bin");
    write_random(&data, 6_000_000, 9);
    let t = root.join("crash.torrent");
    shoal_ok(&[
        "create",
        "-t",
        &announce,
        "-l",
        "32768",
        "-o",
        t.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let hash = shoal_info_json(&t)["info_hash_v1"]
        .as_str()
        .unwrap()
        .to_owned();
    // About 10 s for the whole file: the kill lands mid-download.
    let (seeder, _) = lt_seeding(
        "lt-seed",
        &t,
        &src,
        &[
            "--max-upload",
            "600000",
            "--report-uploads",
            "--timeout",
            "300",
        ],
        root,
        Duration::from_secs(60),
    );

    let state = root.join("state");
    let dl = root.join("downloads");
    // Sparse files for this daemon (preallocation is the default, tested
    // in the engine): the flag must reach the session.
    let mut d = start_daemon(&state, &dl, &["--sparse"], root, "daemon-1");
    let out = d.remote_ok(&["-a", t.to_str().unwrap()]);
    assert!(out.contains("success"), "{out}");
    let id = parse_list(&d.remote_ok(&["-l"]))[0].id.to_string();
    // A setting acknowledged before the crash.
    d.remote_ok(&["-t", &id, "-sr", "2.5"]);

    // Somewhere in the middle: what the daemon shows as verified, then
    // more than the batch window (1 s of resume interval, 0.25 s of
    // database batching) before the kill.
    let (before, count) = wait_for("a quarter of the pieces", LIMIT, || {
        verified(&d, &hash).filter(|(h, n)| h.len() as u32 * 4 >= *n)
    });
    assert!(
        (before.len() as u32) < count,
        "the download finished before the kill: lower the seeder's rate"
    );
    let allocated = allocated_bytes(&dl.join("crash.bin"));
    assert!(
        allocated < 6_000_000 * 9 / 10,
        "--sparse: only what was written takes room ({allocated} bytes of 6000000)"
    );
    std::thread::sleep(Duration::from_millis(2500));
    d.proc.kill_hard();
    let killed_at = now_secs();
    let at_kill = pieces_sent(&seeder);
    assert!(
        at_kill < count as usize,
        "the seeder had sent every piece before the kill"
    );

    let mut d = start_daemon(&state, &dl, &[], root, "daemon-2");
    let rows = parse_list(&d.remote_ok(&["-l"]));
    assert_eq!(rows.len(), 1, "the acknowledged torrent is back: {rows:?}");
    let info = d.remote_ok(&["-t", &rows[0].id.to_string(), "-i"]);
    assert!(
        field(&info, "Ratio Limit").is_some_and(|r| r.starts_with("2.5")),
        "its seed ratio survived the crash:\n{info}"
    );
    let (after_restart, _) = wait_for("the restarted daemon's pieces", LIMIT, || {
        verified(&d, &hash).filter(|(h, _)| !h.is_empty())
    });
    assert!(
        before.is_subset(&after_restart),
        "pieces verified before the kill are verified after it: lost {:?}",
        before.difference(&after_restart).collect::<Vec<_>>()
    );
    wait_for("the download to complete", LIMIT, || {
        verified(&d, &hash).filter(|(h, n)| h.len() as u32 == *n)
    });
    assert_eq!(
        std::fs::read(dl.join("crash.bin")).unwrap(),
        std::fs::read(&data).unwrap(),
        "the file is complete and right"
    );

    // The seeder's own record: blocks it sent after the kill.
    let resent: BTreeSet<u64> = json_lines(&seeder)
        .iter()
        .filter(|v| v["t"].as_f64().is_some_and(|t| t > killed_at))
        .filter_map(|v| v["sent"][0].as_u64())
        .collect();
    assert!(
        !resent.is_empty(),
        "the rest came from the seeder after the restart"
    );
    let twice: Vec<&u64> = resent
        .iter()
        .filter(|p| before.contains(&(**p as u32)))
        .collect();
    assert!(
        twice.is_empty(),
        "pieces verified before the kill were sent again: {twice:?}"
    );
    d.stop();
}

/// Bytes of disk a file takes (its allocated blocks).
fn allocated_bytes(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

/// Distinct pieces the seeder has reported sending blocks of.
fn pieces_sent(seeder: &Proc) -> usize {
    json_lines(seeder)
        .iter()
        .filter_map(|v| v["sent"][0].as_u64())
        .collect::<BTreeSet<_>>()
        .len()
}
