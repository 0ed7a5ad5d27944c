//! Torrent files from the wild (issue 15): a corpus of irregular and broken
//! .torrent files, each with the verdict expected of shoal and of the reference
//! clients, compared with what libtorrent 2.0.8 (`lt.torrent_info`, then
//! `add_torrent`) and Transmission 3.00 (`transmission-show`) actually do.
//!
//! The corpus is written by `tests/interop/wild_corpus.py` (byte by byte,
//! with its manifest of verdicts and reasons). shoal loads what libtorrent
//! loads and refuses what it refuses, with two documented kinds of exception:
//! - shoal refuses what is ambiguous even where libtorrent (and Transmission)
//!   guess: duplicate keys, leading zeros, `-0` (each case says why);
//! - where Transmission disagrees with libtorrent (it refuses every v2 and
//!   hybrid torrent, and leading zeros in integers), shoal follows libtorrent,
//!   and the case says how Transmission differs.
//!
//! Where both load, shoal's info-hashes and file paths must be libtorrent's,
//! and its v1 info-hash Transmission's (except where Transmission hashes a
//! sorted re-encoding of an unsorted `info`: then it is the canonical file's).
//! Run with `--nocapture` to see the table of verdicts. Needs Debian's
//! python3-libtorrent and transmission-cli (`.ci/run` installs them);
//! SHOAL_SKIP_INTEROP=1 skips it.
mod interop_util;

use interop_util::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn corpus_script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/wild_corpus.py")
}

/// What shoal did with one file: its verdict, the JSON if it loaded, the error if not.
struct ShoalResult {
    verdict: &'static str,
    json: Value,
    error: String,
}

fn shoal_verdict(file: &str) -> ShoalResult {
    let out = run_bounded(
        Command::new(shoal_bin()).args(["info", "--json", file]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if out.status.success() {
        let json = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("bad JSON from shoal info {file}: {e}"));
        return ShoalResult {
            verdict: "load",
            json,
            error: stderr,
        };
    }
    ShoalResult {
        verdict: if out.status.code() == Some(2) && stderr.lines().count() == 1 {
            "refuse"
        } else {
            // Not the one-line "invalid input" refusal: report it as is.
            "failed"
        },
        json: Value::Null,
        error: stderr,
    }
}

/// Transmission's verdict and info-hash: `transmission-show` exits 0 either
/// way, printing the hash when it could parse the file.
fn transmission_verdict(file: &str) -> (&'static str, Option<String>) {
    let out = run_bounded(
        Command::new("transmission-show").args(["-u", file]),
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    match stdout.lines().find_map(|l| l.trim().strip_prefix("Hash: ")) {
        Some(h) => ("load", Some(h.to_string())),
        None => ("refuse", None),
    }
}

fn real_paths(shoal: &Value) -> Vec<String> {
    shoal["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter(|f| f["pad"] != true)
        .map(|f| f["path"].as_str().expect("path").to_string())
        .collect()
}

#[test]
fn wild_corpus_verdicts_match_the_reference_clients() {
    if skip_interop() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("corpus");
    let script = corpus_script();
    run_ok(
        "/usr/bin/python3",
        &[script.to_str().unwrap(), "write", dir.to_str().unwrap()],
    );
    let manifest: Vec<Value> =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let files: Vec<&str> = manifest
        .iter()
        .map(|c| c["file"].as_str().unwrap())
        .collect();
    let mut lt_args = vec![script.to_str().unwrap(), "libtorrent"];
    lt_args.extend(&files);
    let lt: Value = serde_json::from_str(&run_ok("/usr/bin/python3", &lt_args))
        .expect("the libtorrent verdicts are JSON");

    // The cases issue 15 asks for are all there.
    let names: Vec<&str> = manifest
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for wanted in [
        "v1_unsorted_info_keys",
        "v1_unsorted_top_keys",
        "v1_trailing_garbage",
        "v1_garbage_inside_top",
        "v1_duplicate_key_in_info",
        "v1_leading_zero_integer",
        "v1_negative_zero",
        "v1_truncated",
        "v2_no_piece_layers",
        "hybrid_incomplete_piece_layers",
        "v2_layer_inconsistent_with_root",
        "v2_pad_file_in_file_tree",
        "v2_file_without_pieces_root",
        "v1_dotdot_path",
    ] {
        assert!(names.contains(&wanted), "corpus lacks {wanted}");
    }

    let mut table = vec![format!(
        "{:<34} {:<7} {:<10} {:<12} reason / why",
        "case", "shoal", "libtorrent", "Transmission"
    )];
    let mut failures = Vec::new();
    for case in &manifest {
        let name = case["name"].as_str().unwrap();
        let file = case["file"].as_str().unwrap();
        let want = |k: &str| case[k].as_str().unwrap().to_string();
        let (reason, why, note) = (want("reason"), want("why"), want("note"));
        let ours = shoal_verdict(file);
        let theirs = &lt[file];
        let lt_verdict = theirs["verdict"].as_str().unwrap_or("missing");
        let (tr_verdict, tr_hash) = transmission_verdict(file);
        let mut fail = |what: String| failures.push(format!("{name}: {what}"));

        if ours.verdict != want("shoal") {
            fail(format!(
                "shoal: {} (expected {}) {}",
                ours.verdict,
                want("shoal"),
                ours.error.trim()
            ));
        }
        if lt_verdict != want("libtorrent") {
            fail(format!(
                "libtorrent: {lt_verdict} (recorded {}) {}",
                want("libtorrent"),
                theirs["error"]
            ));
        }
        if tr_verdict != want("transmission") {
            fail(format!(
                "Transmission: {tr_verdict} (recorded {})",
                want("transmission")
            ));
        }
        // Every departure from libtorrent is explained in the corpus.
        let departs = want("shoal") != want("libtorrent");
        if departs == why.is_empty() {
            fail(
                "shoal departs from libtorrent without saying why (or says why needlessly)".into(),
            );
        }
        if want("transmission") != want("libtorrent") && note.is_empty() {
            fail("Transmission differs from libtorrent: the case must say how".into());
        }
        // The reason shows: in the one-line error, or as an irregularity.
        match ours.verdict {
            "refuse" if !ours.error.contains(&reason) || reason.is_empty() => fail(format!(
                "error {:?} does not say {reason:?}",
                ours.error.trim()
            )),
            "load" => {
                let notes: Vec<&str> = ours.json["irregularities"]
                    .as_array()
                    .expect("irregularities is a list")
                    .iter()
                    .map(|i| i["message"].as_str().unwrap_or(""))
                    .collect();
                let said = if reason.is_empty() {
                    notes.is_empty()
                } else {
                    notes.iter().any(|n| n.contains(&reason))
                };
                if !said {
                    fail(format!("irregularities {notes:?}, expected {reason:?}"));
                }
            }
            _ => {}
        }
        // Where they load the same file, they read the same torrent.
        if ours.verdict == "load" && lt_verdict == "load" {
            for key in ["info_hash_v1", "info_hash_v2"] {
                if ours.json[key] != theirs[key] {
                    fail(format!(
                        "{key}: shoal {} libtorrent {}",
                        ours.json[key], theirs[key]
                    ));
                }
            }
            if Value::from(real_paths(&ours.json)) != theirs["files"] {
                fail(format!(
                    "files: shoal {:?} libtorrent {}",
                    real_paths(&ours.json),
                    theirs["files"]
                ));
            }
        }
        if ours.verdict == "load" && tr_verdict == "load" {
            let of = want("transmission_hash_of");
            let v1 = if of == name {
                ours.json["info_hash_v1"].as_str().map(str::to_owned)
            } else {
                let other = manifest.iter().find(|c| c["name"] == of.as_str());
                let other = other.unwrap_or_else(|| panic!("no case {of}"));
                let j = shoal_verdict(other["file"].as_str().unwrap()).json;
                j["info_hash_v1"].as_str().map(str::to_owned)
            };
            if v1 != tr_hash {
                fail(format!(
                    "info-hash: Transmission {tr_hash:?}, shoal's of {of} {v1:?}"
                ));
            }
        }
        let explain = [reason.as_str(), why.as_str(), note.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" | ");
        table.push(format!(
            "{name:<34} {:<7} {lt_verdict:<10} {tr_verdict:<12} {explain}",
            ours.verdict
        ));
    }
    eprintln!("{}", table.join("\n"));
    assert!(
        failures.is_empty(),
        "{} disagreement(s) with the corpus:\n{}\n\n{}",
        failures.len(),
        failures.join("\n"),
        table.join("\n")
    );
}
