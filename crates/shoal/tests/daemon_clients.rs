//! `shoal add`, `ls`, `pause`, `resume`, `watch` and `rm` against a running
//! `shoal daemon`; the peer is a `shoal seed` found through a `shoal
//! tracker`, all on loopback.
mod daemon_util;
mod interop_util;

use daemon_util::*;
use interop_util::*;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);

fn client(d: &DaemonProc, args: &[&str]) -> (bool, String, String) {
    let url = format!("http://{}", d.addr);
    let out = run_bounded(
        Command::new(shoal_bin()).args(args).args(["--url", &url]),
        LIMIT,
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn ls(d: &DaemonProc) -> Vec<Value> {
    let (ok, out, err) = client(d, &["ls", "--json"]);
    assert!(ok, "{err}");
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn shoal_clients_drive_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_tracker, announce) = shoal_tracker(root);
    let data = root.join("src").join("gamma.bin");
    write_random(&data, 2_500_000, 9);
    let t = root.join("gamma.torrent");
    shoal_ok(&[
        "create",
        "-t",
        &announce,
        "-o",
        t.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let (_seed, _) = shoal_seeding(&t, &data, &["--no-dht", "--no-dht-state"], root);
    let dl = root.join("dl");
    let d = start_daemon(&root.join("state"), &dl, &[], root, "daemon");

    let (ok, out, err) = client(&d, &["add", "--paused", t.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("added: gamma.bin"), "{out}");
    let l = ls(&d);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0]["state"], "paused", "{l:?}");
    let id = l[0]["id"].to_string();
    // The same again is reported, not an error.
    let (ok, out, _) = client(&d, &["add", t.to_str().unwrap()]);
    assert!(ok && out.contains("already there"), "{out}");

    let (ok, _, err) = client(&d, &["resume", &id]);
    assert!(ok, "{err}");
    // `watch ID` exits once it is complete.
    let (ok, _, err) = client(&d, &["watch", &id]);
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read(dl.join("gamma.bin")).unwrap(),
        std::fs::read(&data).unwrap()
    );
    let (ok, table, _) = client(&d, &["ls"]);
    assert!(
        ok && table.contains("gamma.bin") && table.contains("100.0%"),
        "{table}"
    );

    let (ok, _, err) = client(&d, &["pause", &id]);
    assert!(ok, "{err}");
    wait_for("paused", LIMIT, || {
        (ls(&d)[0]["state"] == "paused").then_some(())
    });

    // Unknown torrents and unreachable daemons: exit codes, one-line errors.
    let (ok, _, err) = client(&d, &["rm", "12345"]);
    assert!(!ok && err.contains("no torrent"), "{err}");
    let out = run_bounded(
        Command::new(shoal_bin()).args(["ls", "--url", "http://127.0.0.1:1"]),
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));

    let (ok, _, err) = client(&d, &["rm", "--delete", &id]);
    assert!(ok, "{err}");
    assert!(ls(&d).is_empty());
    wait_for("data deleted", LIMIT, || {
        (!dl.join("gamma.bin").exists()).then_some(())
    });
}
