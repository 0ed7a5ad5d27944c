//! `shoal info`: show what a .torrent file or a magnet URI holds, as text or
//! as one JSON object (`--json`).
//!
//! JSON keys (the same for both inputs; `null` where a magnet does not know):
//! `type` (`"torrent"` or `"magnet"`), `name`, `info_hash_v1` (40 hex),
//! `info_hash_v2` (64 hex), `version` (`v1`/`v2`/`hybrid`), `piece_length`,
//! `piece_count`, `total_length` (the piece stream, pad files included, as
//! libtorrent's `total_size`), `files` (list of `{path, length, pad}` with `path`
//! the sanitised relative path joined with `/`: the name for a single-file
//! torrent, starting with the name for a multi-file one), `trackers` (list of
//! tiers), `web_seeds`, `private`, `comment`, `created_by`, `creation_date`,
//! `nodes`, `magnet`, `irregularities` (what was irregular in the file but
//! loaded anyway: a list of `{kind, message}`, `kind` one of
//! `unsorted_info_keys`, `unsorted_keys`, `trailing_bytes`,
//! `missing_piece_layers`, `piece_layers_not_a_dict`; empty for a regular file);
//! for magnets also `peers` and `select_only` (`[first, last]` ranges).
//!
//! The text form shows the irregularities on one line, `irregular:`, after
//! the version; they are not errors (the exit status is 0).
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use serde_json::{json, Value};
use shoal_metainfo::{Magnet, MetaVersion, Torrent};

use super::InvalidInput;

/// Largest .torrent file `info` reads (the parser's limit, checked before reading it all).
const MAX_READ: u64 = shoal_metainfo::limits::MAX_TORRENT_SIZE as u64;

/// Arguments of `shoal info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// A .torrent file or a magnet URI (`magnet:?xt=...`).
    pub input: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs `shoal info`.
pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let value = if args.input.starts_with("magnet:") {
        let m = Magnet::parse(&args.input).context("magnet")?;
        magnet_json(&m)
    } else {
        let path = PathBuf::from(&args.input);
        let bytes = read_limited(&path)?;
        let t = Torrent::from_bytes(&bytes).with_context(|| args.input.clone())?;
        torrent_json(&t)
    };
    if args.json {
        println!("{value}");
    } else {
        print!("{}", text(&value));
    }
    Ok(())
}

/// Reads a file, refusing more than [`MAX_READ`] bytes without reading them.
fn read_limited(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let shown = path.display().to_string();
    let file = std::fs::File::open(path).with_context(|| shown.clone())?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1)
        .read_to_end(&mut bytes)
        .with_context(|| shown.clone())?;
    if bytes.len() as u64 > MAX_READ {
        return Err(InvalidInput(format!(
            "{shown}: torrent file is over the limit of {MAX_READ} bytes"
        ))
        .into());
    }
    Ok(bytes)
}

fn version_name(v: MetaVersion) -> &'static str {
    match v {
        MetaVersion::V1 => "v1",
        MetaVersion::V2 => "v2",
        MetaVersion::Hybrid => "hybrid",
    }
}

/// The JSON description of a torrent.
pub fn torrent_json(t: &Torrent) -> Value {
    let hashes = t.info_hashes();
    let files: Vec<Value> = t
        .files()
        .iter()
        .map(|f| json!({"path": f.path_string(), "length": f.length, "pad": f.pad}))
        .collect();
    let irregularities: Vec<Value> = t
        .irregularities()
        .iter()
        .map(|i| json!({"kind": i.code(), "message": i.to_string()}))
        .collect();
    json!({
        "type": "torrent",
        "name": t.name(),
        "info_hash_v1": hashes.v1.map(|h| h.to_hex()),
        "info_hash_v2": hashes.v2.map(|h| h.to_hex()),
        "version": version_name(t.version()),
        "piece_length": t.piece_length(),
        "piece_count": t.piece_count(),
        "total_length": t.total_length(),
        "files": files,
        "trackers": t.tracker_urls(),
        "web_seeds": t.web_seeds(),
        "private": t.is_private(),
        "comment": t.comment(),
        "created_by": t.created_by(),
        "creation_date": t.creation_date(),
        "nodes": t.nodes().iter().map(|n| n.to_string()).collect::<Vec<_>>(),
        "magnet": t.magnet().to_uri(),
        "irregularities": irregularities,
    })
}

/// The JSON description of a magnet URI (keys of [`torrent_json`] where they apply).
pub fn magnet_json(m: &Magnet) -> Value {
    let hashes = m.info_hashes();
    let trackers: Vec<Vec<String>> = m.trackers.iter().map(|t| vec![t.clone()]).collect();
    let select: Vec<[u32; 2]> = m
        .select_only
        .iter()
        .map(|r| [*r.start(), *r.end()])
        .collect();
    json!({
        "type": "magnet",
        "name": m.name,
        "info_hash_v1": hashes.v1.map(|h| h.to_hex()),
        "info_hash_v2": hashes.v2.map(|h| h.to_hex()),
        "version": Value::Null,
        "piece_length": Value::Null,
        "piece_count": Value::Null,
        "total_length": Value::Null,
        "files": Value::Null,
        "trackers": trackers,
        "web_seeds": m.web_seeds,
        "private": Value::Null,
        "comment": Value::Null,
        "created_by": Value::Null,
        "creation_date": Value::Null,
        "nodes": Value::Null,
        "peers": m.peers.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        "select_only": select,
        "magnet": m.to_uri(),
        "irregularities": Value::Null,
    })
}

/// Human-readable text from the JSON description (one `key: value` per line,
/// lists indented), so text and JSON never disagree.
fn text(v: &Value) -> String {
    let mut out = String::new();
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let line = |out: &mut String, label: &str, val: String| {
        out.push_str(&format!("{label:<14}{val}\n"));
    };
    if let Some(name) = s("name") {
        line(&mut out, "name:", name);
    }
    if let Some(h) = s("info_hash_v1") {
        line(&mut out, "info-hash v1:", h);
    }
    if let Some(h) = s("info_hash_v2") {
        line(&mut out, "info-hash v2:", h);
    }
    if let Some(ver) = s("version") {
        line(&mut out, "version:", ver);
    }
    if let Some(list) = v.get("irregularities").and_then(Value::as_array) {
        let msgs: Vec<&str> = list
            .iter()
            .filter_map(|i| i.get("message").and_then(Value::as_str))
            .collect();
        if !msgs.is_empty() {
            line(&mut out, "irregular:", msgs.join("; "));
        }
    }
    if let (Some(pl), Some(pc)) = (n("piece_length"), n("piece_count")) {
        line(&mut out, "pieces:", format!("{pc} x {pl} bytes"));
    }
    if let Some(total) = n("total_length") {
        line(
            &mut out,
            "total size:",
            format!("{total} bytes ({})", human(total)),
        );
    }
    if let Some(p) = v.get("private").and_then(Value::as_bool) {
        line(
            &mut out,
            "private:",
            if p { "yes" } else { "no" }.to_owned(),
        );
    }
    if let Some(c) = s("created_by") {
        line(&mut out, "created by:", c);
    }
    if let Some(d) = v.get("creation_date").and_then(Value::as_i64) {
        line(&mut out, "created:", format!("{d} (unix time)"));
    }
    if let Some(c) = s("comment") {
        line(&mut out, "comment:", c);
    }
    if let Some(tiers) = v.get("trackers").and_then(Value::as_array) {
        if !tiers.is_empty() {
            out.push_str("trackers:\n");
            for (i, tier) in tiers.iter().enumerate() {
                for url in tier.as_array().into_iter().flatten() {
                    out.push_str(&format!("  tier {i}: {}\n", url.as_str().unwrap_or("")));
                }
            }
        }
    }
    for (key, label) in [
        ("web_seeds", "web seeds"),
        ("nodes", "dht nodes"),
        ("peers", "peers"),
    ] {
        if let Some(list) = v.get(key).and_then(Value::as_array) {
            if !list.is_empty() {
                out.push_str(&format!("{label}:\n"));
                for item in list {
                    out.push_str(&format!("  {}\n", item.as_str().unwrap_or("")));
                }
            }
        }
    }
    if let Some(sel) = v.get("select_only").and_then(Value::as_array) {
        if !sel.is_empty() {
            let ranges: Vec<String> = sel
                .iter()
                .filter_map(|r| Some((r.get(0)?.as_u64()?, r.get(1)?.as_u64()?)))
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            line(&mut out, "select only:", ranges.join(","));
        }
    }
    if let Some(files) = v.get("files").and_then(Value::as_array) {
        out.push_str(&format!("files ({}):\n", files.len()));
        for f in files {
            let len = f.get("length").and_then(Value::as_u64).unwrap_or(0);
            let pad = f.get("pad").and_then(Value::as_bool).unwrap_or(false);
            let path = f.get("path").and_then(Value::as_str).unwrap_or("");
            let mark = if pad { "  [pad]" } else { "" };
            out.push_str(&format!("  {len:>14}  {path}{mark}\n"));
        }
    }
    if let Some(m) = s("magnet") {
        line(&mut out, "magnet:", m);
    }
    out
}

/// A byte count with a binary unit, e.g. `1.5 GiB`.
/// Human-readable bytes (binary units).
pub(crate) fn human(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(1 << 30), "1.0 GiB");
    }

    #[test]
    fn magnet_text_and_json_agree() {
        let m = Magnet::parse(
            "magnet:?xt=urn:btih:0123456789abcdef0123456789abcdef01234567&dn=x&tr=http%3A%2F%2Ft%2Fa",
        )
        .unwrap();
        let v = magnet_json(&m);
        assert_eq!(
            v["info_hash_v1"],
            "0123456789abcdef0123456789abcdef01234567"
        );
        assert_eq!(v["name"], "x");
        assert_eq!(v["trackers"][0][0], "http://t/a");
        assert!(v["files"].is_null());
        let t = text(&v);
        assert!(
            t.contains("info-hash v1: 0123456789abcdef0123456789abcdef01234567"),
            "{t}"
        );
        assert!(t.contains("tier 0: http://t/a"), "{t}");
        assert!(!t.contains("irregular"), "{t}");
    }

    #[test]
    fn irregularities_in_json_and_on_one_text_line() {
        let regular: &[u8] =
            b"d4:infod6:lengthi1e4:name1:x12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee";
        let v = torrent_json(&Torrent::from_bytes(regular).unwrap());
        assert_eq!(v["irregularities"], json!([]));
        assert!(!text(&v).contains("irregular"));
        let mut wild =
            b"d4:infod4:name1:x6:lengthi1e12:piece lengthi16384e6:pieces20:aaaaaaaaaaaaaaaaaaaaee"
                .to_vec();
        wild.extend_from_slice(b"\n\n");
        let v = torrent_json(&Torrent::from_bytes(&wild).unwrap());
        let kinds: Vec<&str> = v["irregularities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["trailing_bytes", "unsorted_info_keys"]);
        let t = text(&v);
        let lines: Vec<&str> = t.lines().filter(|l| l.contains("irregular")).collect();
        assert_eq!(lines.len(), 1, "{t}");
        assert!(lines[0].starts_with("irregular:"), "{t}");
        assert!(lines[0].contains("2 bytes after the end"), "{t}");
        assert!(lines[0].contains("keys out of order inside info"), "{t}");
    }
}
