//! Runs the built `shoal` binary: `create` (v1, v2, hybrid; single file and
//! nested directory) then `info --json`, determinism, and bad input handling
//! (exit codes, one line on stderr). Each run is bounded by a timeout.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sha1::{Digest, Sha1};
use sha2::Sha256;

const TIMEOUT: Duration = Duration::from_secs(60);

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

fn ok(args: &[&str]) -> String {
    let out = shoal(args);
    assert!(
        out.status.success(),
        "shoal {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No progress bar or log noise when stderr is not a terminal.
    assert!(
        out.stderr.is_empty(),
        "shoal {args:?} wrote to stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 stdout")
}

fn info_json(torrent: &Path) -> Value {
    let s = ok(&["info", "--json", torrent.to_str().unwrap()]);
    serde_json::from_str(&s).expect("one JSON object")
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

/// The exact bytes of the top-level `info` value of a torrent file.
fn info_span(torrent: &[u8]) -> &[u8] {
    let v = shoal_bencode::decode(torrent, &shoal_bencode::Limits::default()).unwrap();
    let d = v.as_dict().unwrap();
    let info = d.get(b"info").unwrap().as_dict().unwrap();
    let start = info.offset();
    let (_, end) =
        shoal_bencode::decode_prefix(&torrent[start..], &shoal_bencode::Limits::default()).unwrap();
    &torrent[start..start + end]
}

/// A nested directory: (relative path, length).
const TREE: &[(&str, usize)] = &[
    ("b/deep/er/x.bin", 70_000),
    ("a.txt", 100_000),
    ("b/y.bin", 1),
    ("c/empty", 0),
    ("z", 300_000),
];

fn make_tree(root: &Path) {
    for (i, (p, len)) in TREE.iter().enumerate() {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, data(*len, i as u64 + 1)).unwrap();
    }
}

fn expected_paths(name: &str) -> Vec<(String, u64)> {
    let mut v: Vec<(Vec<&str>, u64)> = TREE
        .iter()
        .map(|(p, l)| (p.split('/').collect(), *l as u64))
        .collect();
    v.sort();
    v.into_iter()
        .map(|(p, l)| (format!("{name}/{}", p.join("/")), l))
        .collect()
}

fn check_common(v: &Value, torrent: &Path, mode: &str) {
    let bytes = fs::read(torrent).unwrap();
    let info = info_span(&bytes);
    let v1 = hex(&Sha1::digest(info));
    let v2 = hex(&Sha256::digest(info));
    match mode {
        "--v1" => {
            assert_eq!(v["info_hash_v1"], Value::from(v1));
            assert!(v["info_hash_v2"].is_null());
        }
        "--v2" => {
            assert!(v["info_hash_v1"].is_null());
            assert_eq!(v["info_hash_v2"], Value::from(v2));
        }
        _ => {
            assert_eq!(v["info_hash_v1"], Value::from(v1));
            assert_eq!(v["info_hash_v2"], Value::from(v2));
        }
    }
    let pl = v["piece_length"].as_u64().unwrap();
    let total = v["total_length"].as_u64().unwrap();
    let files = v["files"].as_array().unwrap();
    let sum: u64 = files.iter().map(|f| f["length"].as_u64().unwrap()).sum();
    assert_eq!(sum, total);
    assert_eq!(v["piece_count"].as_u64().unwrap(), total.div_ceil(pl));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn create_then_info_nested_dir_all_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    make_tree(&root);
    for mode in ["--v1", "--v2", "--hybrid"] {
        let out = tmp.path().join(format!("t{mode}.torrent"));
        let o = out.to_str().unwrap();
        ok(&[
            "create",
            root.to_str().unwrap(),
            "-o",
            o,
            mode,
            "--piece-size",
            "32768",
            "--tracker",
            "http://127.0.0.1:6969/announce",
            "--tracker",
            "udp://127.0.0.1:6969",
            "--web-seed",
            "http://127.0.0.1:8080/files/",
            "--private",
            "--comment",
            "hello",
        ]);
        let v = info_json(&out);
        check_common(&v, &out, mode);
        assert_eq!(v["name"], "tree");
        assert_eq!(v["piece_length"], 32768);
        assert_eq!(v["private"], true);
        assert_eq!(v["comment"], "hello");
        assert_eq!(
            v["trackers"],
            serde_json::json!([["http://127.0.0.1:6969/announce"], ["udp://127.0.0.1:6969"]])
        );
        assert_eq!(
            v["web_seeds"],
            serde_json::json!(["http://127.0.0.1:8080/files/"])
        );
        assert!(v["creation_date"].is_null());
        let files = v["files"].as_array().unwrap();
        let real: Vec<(String, u64)> = files
            .iter()
            .filter(|f| !f["pad"].as_bool().unwrap())
            .map(|f| {
                (
                    f["path"].as_str().unwrap().to_owned(),
                    f["length"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(real, expected_paths("tree"), "{mode}");
        let pads: Vec<&Value> = files.iter().filter(|f| f["pad"] == true).collect();
        if mode == "--v1" {
            assert!(pads.is_empty());
        } else {
            // Every non-empty file starts on a piece boundary.
            let mut off = 0u64;
            for f in files {
                let len = f["length"].as_u64().unwrap();
                if f["pad"] == false && len > 0 {
                    assert_eq!(off % 32768, 0, "{mode}: {f}");
                }
                off += len;
            }
            if mode == "--hybrid" {
                assert!(!pads.is_empty());
                for p in pads {
                    let n = p["length"].as_u64().unwrap();
                    assert_eq!(p["path"], Value::from(format!("tree/.pad/{n}")));
                }
            }
        }
    }
}

#[test]
fn single_file_and_default_piece_size() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("movie.bin");
    fs::write(&file, data(1_000_000, 7)).unwrap();
    for mode in ["--v1", "--v2", "--hybrid"] {
        let out = tmp.path().join("movie.torrent");
        ok(&[
            "create",
            file.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            mode,
        ]);
        let v = info_json(&out);
        check_common(&v, &out, mode);
        assert_eq!(v["name"], "movie.bin");
        assert_eq!(
            v["files"],
            serde_json::json!([{"path": "movie.bin", "length": 1_000_000, "pad": false}])
        );
        assert_eq!(v["total_length"], 1_000_000);
        // 1 MB: 16 KiB pieces give 62, the smallest size under 2000 pieces.
        assert_eq!(v["piece_length"], 16384);
        assert_eq!(v["trackers"], serde_json::json!([]));
        assert_eq!(v["private"], false);
        assert!(v["magnet"]
            .as_str()
            .unwrap()
            .starts_with("magnet:?xt=urn:bt"));
    }
}

#[test]
fn create_is_deterministic() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    make_tree(&root);
    let a = tmp.path().join("a.torrent");
    let b = tmp.path().join("sub").join("b.torrent");
    fs::create_dir(tmp.path().join("sub")).unwrap();
    for mode in ["--v1", "--hybrid"] {
        for out in [&a, &b] {
            ok(&[
                "create",
                root.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                mode,
            ]);
        }
        let (x, y) = (fs::read(&a).unwrap(), fs::read(&b).unwrap());
        assert!(!x.is_empty());
        assert_eq!(x, y, "{mode}");
    }
    // Changing one byte of content changes the output.
    let f = root.join("z");
    let mut d = fs::read(&f).unwrap();
    d[12345] ^= 1;
    fs::write(&f, d).unwrap();
    ok(&[
        "create",
        root.to_str().unwrap(),
        "-o",
        b.to_str().unwrap(),
        "--hybrid",
    ]);
    assert_ne!(fs::read(&a).unwrap(), fs::read(&b).unwrap());
}

fn assert_one_line_error(out: &Output, code: i32, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(code), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "stderr: {err:?}");
    assert!(err.starts_with("error: "), "{err:?}");
    for n in needles {
        assert!(err.contains(n), "{err:?} lacks {n:?}");
    }
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_torrents_exit_2_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[u8], &[&str])] = &[
        ("garbage.torrent", b"this is not bencode", &["garbage.torrent", "offset"]),
        ("noinfo.torrent", b"d8:announce3:urle", &["noinfo.torrent", "info"]),
        (
            "zero.torrent",
            b"d4:infod6:lengthi5e4:name1:a12:piece lengthi0e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
            &["zero.torrent", "piece length", "offset"],
        ),
        (
            "neg.torrent",
            b"d4:infod5:filesld6:lengthi-5e4:pathl1:aeee4:name1:a12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee",
            &["neg.torrent", "info.files[0].length", "offset"],
        ),
    ];
    for (name, bytes, needles) in cases {
        let p = tmp.path().join(name);
        fs::write(&p, bytes).unwrap();
        let out = shoal(&["info", p.to_str().unwrap()]);
        assert_one_line_error(&out, 2, needles);
        let out = shoal(&["info", "--json", p.to_str().unwrap()]);
        assert_one_line_error(&out, 2, needles);
    }
    let out = shoal(&["info", "magnet:?xt=urn:btih:nothex"]);
    assert_one_line_error(&out, 2, &["magnet"]);
    // A missing file is a failure, not invalid input.
    let missing = tmp.path().join("missing.torrent");
    let out = shoal(&["info", missing.to_str().unwrap()]);
    assert_one_line_error(&out, 1, &["missing.torrent"]);
}

#[test]
fn failed_create_keeps_existing_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("keep.torrent");
    fs::write(&out, b"precious").unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"abc").unwrap();
    let o = out.to_str().unwrap();
    let r = shoal(&[
        "create",
        file.to_str().unwrap(),
        "-o",
        o,
        "--piece-size",
        "1000",
    ]);
    assert_one_line_error(&r, 2, &["piece length 1000", "power of two"]);
    let missing: PathBuf = tmp.path().join("nope");
    let r = shoal(&["create", missing.to_str().unwrap(), "-o", o]);
    assert_one_line_error(&r, 1, &["nope"]);
    let empty = tmp.path().join("emptydir");
    fs::create_dir(&empty).unwrap();
    let r = shoal(&["create", empty.to_str().unwrap(), "-o", o]);
    assert_one_line_error(&r, 2, &["no files"]);
    assert_eq!(fs::read(&out).unwrap(), b"precious");
    // Only the output file and the inputs: no temporary file left behind.
    let names: Vec<String> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    // Conflicting version flags are a usage error.
    let r = shoal(&["create", file.to_str().unwrap(), "-o", o, "--v1", "--v2"]);
    assert_eq!(r.status.code(), Some(2));
    // A success replaces it.
    ok(&["create", file.to_str().unwrap(), "-o", o]);
    assert_ne!(fs::read(&out).unwrap(), b"precious");
}

#[test]
fn magnet_info_json() {
    let uri = "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=hello&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce&x.pe=127.0.0.1:6881&so=0,2-3";
    let v: Value = serde_json::from_str(&ok(&["info", "--json", uri])).unwrap();
    assert_eq!(v["type"], "magnet");
    assert_eq!(v["name"], "hello");
    assert_eq!(
        v["info_hash_v1"],
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert!(v["info_hash_v2"].is_null());
    assert!(v["piece_length"].is_null());
    assert_eq!(
        v["trackers"],
        serde_json::json!([["http://127.0.0.1:1/announce"]])
    );
    assert_eq!(v["peers"], serde_json::json!(["127.0.0.1:6881"]));
    assert_eq!(v["select_only"], serde_json::json!([[0, 0], [2, 3]]));
    // The printed magnet parses back to the same thing.
    let again: Value =
        serde_json::from_str(&ok(&["info", "--json", v["magnet"].as_str().unwrap()])).unwrap();
    assert_eq!(again, v);
    let text = ok(&["info", uri]);
    assert!(
        text.contains("0123456789abcdef0123456789abcdef01234567"),
        "{text}"
    );
    assert!(text.contains("hello"), "{text}");
}

#[test]
fn torrent_text_output() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("tree");
    make_tree(&root);
    let out = tmp.path().join("t.torrent");
    let summary = ok(&[
        "create",
        root.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--hybrid",
        "--json",
    ]);
    let s: Value = serde_json::from_str(&summary).unwrap();
    let v = info_json(&out);
    assert_eq!(s["info_hash_v1"], v["info_hash_v1"]);
    assert_eq!(s["info_hash_v2"], v["info_hash_v2"]);
    let text = ok(&["info", out.to_str().unwrap()]);
    assert!(text.contains(v["info_hash_v2"].as_str().unwrap()), "{text}");
    assert!(text.contains("tree/b/deep/er/x.bin"), "{text}");
    assert!(text.contains("[pad]"), "{text}");
}
