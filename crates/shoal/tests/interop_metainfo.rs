//! Interoperability of torrent files with real clients (issue 2):
//! torrents made by `shoal create` load in libtorrent (same info-hashes, same
//! files, and libtorrent verifies every piece of the data against them) and,
//! for v1, in Transmission; torrents made by libtorrent and mktorrent load in
//! shoal with the same info-hashes and files.
//!
//! Needs Debian's python3-libtorrent, transmission-cli and mktorrent (`.ci/run`
//! installs them). Set SHOAL_SKIP_INTEROP=1 to skip on a machine without them.
mod interop_util;

use interop_util::*;
use serde_json::Value;
use std::path::Path;

/// Files of awkward sizes: not piece-aligned, an empty file, nested directories.
fn nested_fixture(root: &Path) -> std::path::PathBuf {
    let dir = root.join("nested data");
    write_random(&dir.join("a.bin"), 3_000_001, 1);
    write_random(&dir.join("sub/b.txt"), 100, 2);
    write_random(&dir.join("sub/deeper/c.dat"), 70_000, 3);
    write_random(&dir.join("empty"), 0, 4);
    write_random(&dir.join("z/last.bin"), 1_048_576, 5);
    dir
}

fn single_fixture(root: &Path) -> std::path::PathBuf {
    let f = root.join("single.iso");
    write_random(&f, 5_000_003, 6);
    f
}

/// (path, length) of the real (non-pad) files, in order.
fn real_files(info: &Value) -> Vec<(String, u64)> {
    info["files"]
        .as_array()
        .expect("files is a list")
        .iter()
        .filter(|f| !f["pad"].as_bool().unwrap_or(false))
        .map(|f| {
            (
                f["path"].as_str().expect("path").to_string(),
                f["length"].as_u64().expect("length"),
            )
        })
        .collect()
}

/// (path-less) layout of all files including pads: (length, pad) in order.
fn layout(info: &Value) -> Vec<(u64, bool)> {
    info["files"]
        .as_array()
        .expect("files is a list")
        .iter()
        .map(|f| (f["length"].as_u64().unwrap(), f["pad"].as_bool().unwrap()))
        .collect()
}

#[test]
fn shoal_created_torrents_load_and_verify_in_libtorrent() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let inputs = [nested_fixture(tmp.path()), single_fixture(tmp.path())];
    for input in &inputs {
        for mode in ["--v1", "--v2", "--hybrid"] {
            for piece in [None, Some("16384"), Some("262144")] {
                let out = tmp.path().join("made.torrent");
                let mut args = vec![
                    "create".to_string(),
                    input.display().to_string(),
                    "-o".into(),
                    out.display().to_string(),
                    mode.into(),
                    "--tracker".into(),
                    "http://127.0.0.1:6969/announce".into(),
                ];
                if let Some(p) = piece {
                    args.push("--piece-size".into());
                    args.push(p.into());
                }
                shoal_ok(&args);
                let ours = shoal_info_json(&out);
                let theirs = lt_tool(&["info", out.to_str().unwrap()]);
                let ctx = format!("{} {mode} piece {piece:?}", input.display());
                assert_eq!(ours["info_hash_v1"], theirs["info_hash_v1"], "{ctx}");
                assert_eq!(ours["info_hash_v2"], theirs["info_hash_v2"], "{ctx}");
                assert_eq!(mode != "--v2", !ours["info_hash_v1"].is_null(), "{ctx}");
                assert_eq!(mode != "--v1", !ours["info_hash_v2"].is_null(), "{ctx}");
                assert_eq!(ours["name"], theirs["name"], "{ctx}");
                assert_eq!(ours["piece_length"], theirs["piece_length"], "{ctx}");
                assert_eq!(real_files(&ours), real_files(&theirs), "{ctx}");
                if mode != "--v2" {
                    // v1 and hybrid carry their pad files in the torrent: same layout.
                    assert_eq!(layout(&ours), layout(&theirs), "{ctx}");
                    assert_eq!(ours["total_length"], theirs["total_length"], "{ctx}");
                }
                assert_eq!(
                    ours["trackers"],
                    serde_json::json!([["http://127.0.0.1:6969/announce"]]),
                    "{ctx}"
                );
                // libtorrent hashes the data against the torrent: every piece passes.
                let v = lt_tool(&[
                    "verify",
                    out.to_str().unwrap(),
                    input.parent().unwrap().to_str().unwrap(),
                ]);
                assert_eq!(v["pieces_ok"], v["num_pieces"], "{ctx}: {v}");
                assert!(v["num_pieces"].as_u64().unwrap() > 0, "{ctx}");
            }
        }
    }
}

#[test]
fn shoal_v1_torrents_load_in_transmission() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for input in [nested_fixture(tmp.path()), single_fixture(tmp.path())] {
        let out = tmp.path().join("t.torrent");
        shoal_ok(&[
            "create",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--v1",
        ]);
        let ours = shoal_info_json(&out);
        let show = run_ok("transmission-show", &[out.to_str().unwrap()]);
        let hash = show
            .lines()
            .find_map(|l| l.trim().strip_prefix("Hash: "))
            .expect("transmission-show prints the hash");
        assert_eq!(Some(hash), ours["info_hash_v1"].as_str(), "{show}");
        // Every real file is listed by transmission under the same path.
        let files_section = show.split("FILES").nth(1).expect("FILES section");
        for (path, _) in real_files(&ours) {
            assert!(
                files_section.contains(&format!("  {path} (")),
                "transmission does not list {path}:\n{show}"
            );
        }
    }
}

#[test]
fn libtorrent_and_mktorrent_torrents_load_in_shoal() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for input in [nested_fixture(tmp.path()), single_fixture(tmp.path())] {
        for mode in ["--v1", "--v2", "--hybrid"] {
            let out = tmp.path().join("lt.torrent");
            let theirs = lt_tool(&[
                "create",
                mode,
                input.to_str().unwrap(),
                out.to_str().unwrap(),
            ]);
            let ours = shoal_info_json(&out);
            let ctx = format!("libtorrent {mode} {}", input.display());
            assert_eq!(ours["info_hash_v1"], theirs["info_hash_v1"], "{ctx}");
            assert_eq!(ours["info_hash_v2"], theirs["info_hash_v2"], "{ctx}");
            assert_eq!(ours["piece_length"], theirs["piece_length"], "{ctx}");
            assert_eq!(real_files(&ours), real_files(&theirs), "{ctx}");
            if mode != "--v2" {
                assert_eq!(layout(&ours), layout(&theirs), "{ctx}");
            }
        }
        let out = tmp.path().join("mk.torrent");
        let _ = std::fs::remove_file(&out); // mktorrent refuses to overwrite
        run_ok(
            "mktorrent",
            &[
                "-l",
                "16",
                "-t",
                "2",
                "-a",
                "http://127.0.0.1:6969/announce",
                "-o",
                out.to_str().unwrap(),
                input.to_str().unwrap(),
            ],
        );
        let ours = shoal_info_json(&out);
        let theirs = lt_tool(&["info", out.to_str().unwrap()]);
        assert_eq!(ours["info_hash_v1"], theirs["info_hash_v1"]);
        assert_eq!(real_files(&ours), real_files(&theirs));
        assert_eq!(ours["piece_length"], serde_json::json!(65536));
    }
}
