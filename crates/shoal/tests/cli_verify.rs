//! Runs the built `shoal verify` as a user would, on data made by
//! `shoal create` (v1, v2, hybrid): good data exits 0; a flipped byte is
//! reported as exactly its piece and file, exit 1; a missing file as its
//! pieces missing; `--json` is parsed and checked; a torrent whose paths try
//! to leave `--data` cannot make verify read outside it; bad input exits 2.
//! Each run is bounded by a timeout.
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha1::{Digest, Sha1};
use shoal_metainfo::Torrent;

const TIMEOUT: Duration = Duration::from_secs(60);
const PIECE: u64 = 16384;

/// Runs `shoal ARGS`, killing it after [`TIMEOUT`].
fn shoal(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn shoal");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("shoal {args:?} took over {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deterministic pseudo-random bytes.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Files of the test tree: several pieces, a short one, one crossing piece
/// boundaries in v1, an empty one.
const TREE: &[(&str, usize)] = &[
    ("a.bin", 70_000),
    ("b/c.txt", 1_000),
    ("b/d.bin", 40_000),
    ("b/empty", 0),
    ("z.bin", 33_000),
];

/// Makes `dir/content/...` and a torrent of it; returns the torrent's path.
fn make(dir: &Path, mode: &str) -> std::path::PathBuf {
    let content = dir.join("content");
    for (i, (p, len)) in TREE.iter().enumerate() {
        let path = content.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data(*len, i as u64 + 1)).unwrap();
    }
    let t = dir.join(format!("t{mode}.torrent"));
    let out = shoal(&[
        "create",
        content.to_str().unwrap(),
        "-o",
        t.to_str().unwrap(),
        mode,
        "--piece-size",
        &PIECE.to_string(),
    ]);
    assert!(out.status.success(), "{out:?}");
    t
}

fn verify_json(torrent: &Path, data: &Path) -> (Option<i32>, Value) {
    let out = shoal(&[
        "verify",
        torrent.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code(), v)
}

/// The pieces holding bytes `[from, to)` of file `path` (torrent order).
fn pieces_of(torrent: &Path, path: &str, from: u64, to: u64) -> Vec<u64> {
    let t = Torrent::from_bytes(&fs::read(torrent).unwrap()).unwrap();
    let f = t
        .files()
        .iter()
        .find(|f| f.path_string() == path)
        .unwrap_or_else(|| panic!("{path} not in the torrent"));
    let pl = t.piece_length();
    ((f.offset + from) / pl..=(f.offset + to - 1) / pl).collect()
}

fn u64s(v: &Value) -> Vec<u64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

fn file<'a>(v: &'a Value, path: &str) -> &'a Value {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("{path} not reported: {v}"))
}

#[test]
fn good_data_exits_0_with_every_form_of_data() {
    for mode in ["--v1", "--v2", "--hybrid"] {
        let tmp = tempfile::tempdir().unwrap();
        let t = make(tmp.path(), mode);
        // The save path and the content directory itself.
        for data in [tmp.path().to_path_buf(), tmp.path().join("content")] {
            let (code, v) = verify_json(&t, &data);
            assert_eq!(code, Some(0), "{mode} {v}");
            assert_eq!(v["ok"], true);
            assert_eq!(v["good"], v["pieces"]);
            assert!(u64s(&v["bad"]).is_empty() && u64s(&v["missing"]).is_empty());
            assert_eq!(v["version"], &mode[2..]);
            let checked = if mode == "--v2" { "v2" } else { "v1" };
            assert_eq!(v["hashes_checked"], checked);
            assert_eq!(v["files"].as_array().unwrap().len(), TREE.len());
            assert!(v["sha_ni"].is_boolean());
            for f in v["files"].as_array().unwrap() {
                assert_eq!(f["ok"], true);
                assert_eq!(f["on_disk"], f["length"]);
            }
        }
        // Text output: a summary line on stdout, progress and header on stderr.
        let out = shoal(&[
            "verify",
            t.to_str().unwrap(),
            "--data",
            tmp.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("0 bad, 0 missing"), "{text}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("verifying content"));
    }
}

#[test]
fn single_file_torrent_takes_the_file_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let f = tmp.path().join("one.bin");
    fs::write(&f, data(50_000, 9)).unwrap();
    let t = tmp.path().join("one.torrent");
    let out = shoal(&[
        "create",
        f.to_str().unwrap(),
        "-o",
        t.to_str().unwrap(),
        "-l",
        "16K",
    ]);
    assert!(out.status.success(), "{out:?}");
    for data in [f.clone(), tmp.path().to_path_buf()] {
        let (code, v) = verify_json(&t, &data);
        assert_eq!(code, Some(0), "{v}");
        assert_eq!(v["good"], 4);
    }
    // The wrong file is refused as invalid input.
    let other = tmp.path().join("other.bin");
    fs::write(&other, b"x").unwrap();
    let out = shoal(&[
        "verify",
        t.to_str().unwrap(),
        "--data",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn a_flipped_byte_is_exactly_its_piece_and_file() {
    for mode in ["--v1", "--v2", "--hybrid"] {
        let tmp = tempfile::tempdir().unwrap();
        let t = make(tmp.path(), mode);
        let path = tmp.path().join("content/b/d.bin");
        let mut bytes = fs::read(&path).unwrap();
        let at = 20_000;
        bytes[at] ^= 0x01;
        fs::write(&path, &bytes).unwrap();
        let want = pieces_of(&t, "content/b/d.bin", at as u64, at as u64 + 1);
        assert_eq!(want.len(), 1);
        let (code, v) = verify_json(&t, tmp.path());
        assert_eq!(code, Some(1), "{mode} {v}");
        assert_eq!(v["ok"], false);
        assert_eq!(u64s(&v["bad"]), want, "{mode}");
        assert!(u64s(&v["missing"]).is_empty());
        assert_eq!(
            v["good"].as_u64().unwrap() + 1,
            v["pieces"].as_u64().unwrap()
        );
        let d = file(&v, "content/b/d.bin");
        assert_eq!(d["ok"], false);
        assert_eq!(u64s(&d["bad_pieces"]), want);
        // Only files sharing that piece (v1 has no alignment) are affected.
        for f in v["files"].as_array().unwrap() {
            let shares = u64s(&f["bad_pieces"]) == want;
            assert!(f["ok"] == true || shares, "{mode} {f}");
            if mode != "--v1" && f["path"] != "content/b/d.bin" {
                assert_eq!(f["ok"], true, "{mode} {f}");
            }
        }
        // The text names the piece and the file; exit 1 with one error line.
        let out = shoal(&[
            "verify",
            t.to_str().unwrap(),
            "--data",
            tmp.path().to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8(out.stdout).unwrap();
        let line = format!("bad piece {}: ", want[0]);
        let l = text
            .lines()
            .find(|l| l.starts_with(&line))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(l.contains("content/b/d.bin"), "{l}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.lines()
                .last()
                .unwrap()
                .starts_with("error: verify: 1 bad and 0 missing"),
            "{err}"
        );
    }
}

#[test]
fn a_missing_file_makes_its_pieces_missing() {
    for mode in ["--v1", "--v2", "--hybrid"] {
        let tmp = tempfile::tempdir().unwrap();
        let t = make(tmp.path(), mode);
        fs::remove_file(tmp.path().join("content/a.bin")).unwrap();
        let want = pieces_of(&t, "content/a.bin", 0, 70_000);
        let (code, v) = verify_json(&t, tmp.path());
        assert_eq!(code, Some(1), "{mode} {v}");
        assert_eq!(u64s(&v["missing"]), want, "{mode}");
        assert!(u64s(&v["bad"]).is_empty());
        let a = file(&v, "content/a.bin");
        assert!(a["on_disk"].is_null());
        assert_eq!(u64s(&a["missing_pieces"]), want);
        // A truncated file: the pieces past its end are missing.
        let tmp2 = tempfile::tempdir().unwrap();
        let t2 = make(tmp2.path(), mode);
        let z = tmp2.path().join("content/z.bin");
        fs::OpenOptions::new()
            .write(true)
            .open(&z)
            .unwrap()
            .set_len(20_000)
            .unwrap();
        let (code, v) = verify_json(&t2, tmp2.path());
        assert_eq!(code, Some(1));
        assert_eq!(
            u64s(&v["missing"]),
            pieces_of(&t2, "content/z.bin", 20_000, 33_000),
            "{mode}"
        );
        assert_eq!(file(&v, "content/z.bin")["on_disk"], 20_000);
    }
}

/// A bencoded multi-file v1 torrent named `name` with one file at `path`
/// holding `content` (one piece).
fn hostile_torrent(name: &str, path: &[&str], content: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(b"d4:infod5:filesld6:lengthi");
    out.extend_from_slice(content.len().to_string().as_bytes());
    out.extend_from_slice(b"e4:pathl");
    for c in path {
        out.extend_from_slice(format!("{}:{c}", c.len()).as_bytes());
    }
    out.extend_from_slice(b"eee4:name");
    out.extend_from_slice(format!("{}:{name}", name.len()).as_bytes());
    out.extend_from_slice(b"12:piece lengthi16384e6:pieces20:");
    out.extend_from_slice(&Sha1::digest(content));
    out.extend_from_slice(b"ee");
    out
}

#[test]
fn a_traversing_torrent_cannot_read_outside_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    fs::create_dir_all(&data_dir).unwrap();
    let secret = data(1000, 77);
    // Where a naive join of each hostile path would land, outside `data`.
    fs::write(tmp.path().join("secret.bin"), &secret).unwrap();
    fs::create_dir_all(tmp.path().join("t")).unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("t", &["..", "..", "secret.bin"]),
        ("..", &["secret.bin"]),
        ("t", &["../../secret.bin"]),
        ("t", &["/", "secret.bin"]),
    ];
    for (i, (name, path)) in cases.iter().enumerate() {
        let t = tmp.path().join(format!("hostile{i}.torrent"));
        fs::write(&t, hostile_torrent(name, path, &secret)).unwrap();
        let out = shoal(&[
            "verify",
            t.to_str().unwrap(),
            "--data",
            data_dir.to_str().unwrap(),
            "--json",
        ]);
        // Refused (2) or nothing found inside `data` (1); never "good".
        let code = out.status.code();
        assert!(code == Some(1) || code == Some(2), "{path:?}: {out:?}");
        if code == Some(1) {
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["good"], 0, "{path:?}: {v}");
            assert_eq!(u64s(&v["missing"]), vec![0]);
            let reported = v["files"][0]["path"].as_str().unwrap();
            assert!(!reported.split('/').any(|c| c == ".."), "{reported}");
        }
    }
}

#[test]
fn bad_input_exits_2() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.torrent");
    fs::write(&bad, b"not bencode").unwrap();
    let out = shoal(&[
        "verify",
        bad.to_str().unwrap(),
        "--data",
        tmp.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // A multi-file torrent given a file as its data.
    let t = make(tmp.path(), "--v1");
    let f = tmp.path().join("content/a.bin");
    let out = shoal(&["verify", t.to_str().unwrap(), "--data", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}
