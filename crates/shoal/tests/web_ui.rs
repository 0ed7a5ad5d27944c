//! The web UI in a real browser: Debian `chromium`, headless, driven by
//! playwright-core (`crates/daemon/ui-tests/web_ui.mjs`) against a `shoal
//! daemon` on loopback, with a `shoal seed` found through a `shoal tracker`.
//! Each test leaves screenshots in `target/ui-screenshots/`.
//!
//! Needs node with `npm ci` run in `crates/daemon/ui-tests` and
//! `/usr/bin/chromium` (`.ci/run` installs both); without them the tests
//! fail and say how to install them.
mod daemon_util;
mod interop_util;

use daemon_util::*;
use interop_util::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Bound of one browser run (the script bounds itself a little under it).
const LIMIT: Duration = Duration::from_secs(150);

fn ui_tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../daemon/ui-tests")
}

/// `target/ui-screenshots`, beside the profile directory of the binary.
fn screenshots() -> PathBuf {
    let bin = shoal_bin();
    let target = bin
        .parent()
        .and_then(Path::parent)
        .expect("the shoal binary lives in target/PROFILE");
    target.join("ui-screenshots")
}

/// Runs the browser script in `mode` with `cfg`; panics with its output
/// unless it passed.
fn run_browser(mode: &str, mut cfg: serde_json::Value) {
    let dir = ui_tests_dir();
    assert!(
        dir.join("node_modules/playwright-core/package.json").is_file(),
        "playwright-core is not installed: run `npm ci` in {} (needs node and npm; .ci/run does it)",
        dir.display()
    );
    assert!(
        Path::new("/usr/bin/chromium").is_file(),
        "/usr/bin/chromium is missing: `apt-get install chromium` (.ci/run installs it)"
    );
    cfg["mode"] = json!(mode);
    cfg["shots"] = json!(screenshots());
    cfg["limit_ms"] = json!(LIMIT.as_millis() - 10_000);
    let out = run_bounded(
        Command::new("node")
            .arg(dir.join("web_ui.mjs"))
            .current_dir(&dir)
            .env("SHOAL_UI_TEST", cfg.to_string()),
        LIMIT,
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "the browser test failed:\n{text}");
}

#[test]
fn web_ui_adds_by_file_and_magnet_pauses_resumes_removes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (_tracker, announce) = shoal_tracker(root);
    let data = root.join("src").join("ui-test.bin");
    write_random(&data, 3_000_000, 11);
    let t = root.join("ui-test.torrent");
    shoal_ok(&[
        "create",
        "-t",
        &announce,
        "-o",
        t.to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    let magnet = shoal_info_json(&t)["magnet"]
        .as_str()
        .expect("a magnet in shoal info --json")
        .to_owned();
    let (_seed, _) = shoal_seeding(&t, &data, &["--no-dht", "--no-dht-state"], root);
    let dl = root.join("dl");
    let d = start_daemon(&root.join("state"), &dl, &[], root, "daemon");
    run_browser(
        "flow",
        json!({
            "url": format!("http://{}", d.addr),
            "torrent": t,
            "magnet": magnet,
            "name": "ui-test.bin",
            // 3 MB at 1000 kB/s: a few seconds of progress to watch.
            "limit_kbps": 1000,
        }),
    );
    // The magnet's download, after the first one was removed with its data.
    assert_eq!(
        std::fs::read(dl.join("ui-test.bin")).unwrap(),
        std::fs::read(&data).unwrap()
    );
}

#[test]
fn web_ui_login_and_ten_thousand_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let d = start_daemon(
        &root.join("state"),
        &root.join("dl"),
        &["--auth", "me:s3cret"],
        root,
        "daemon",
    );
    run_browser(
        "login-virtual",
        json!({
            "url": format!("http://{}", d.addr),
            "user": "me",
            "password": "s3cret",
        }),
    );
}
