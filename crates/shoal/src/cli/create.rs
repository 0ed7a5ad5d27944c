//! `shoal create`: make a .torrent of a file or a directory.
//!
//! Hashing runs on all cores with a progress bar on stderr when it is a
//! terminal. The output is written to a temporary file next to `-o` and renamed
//! over it only after success, so a failure never destroys an existing file.
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shoal_metainfo::create::Version;
use shoal_metainfo::{CreateOptions, CreatePlan, Torrent};

use super::InvalidInput;

/// Arguments of `shoal create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// File or directory to make a torrent of.
    pub path: PathBuf,
    /// Where to write the .torrent (replaced only on success).
    #[arg(short, long, value_name = "OUT")]
    pub output: PathBuf,
    /// Tracker announce URL; repeat for more, each becomes its own tier.
    #[arg(short, long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Web seed URL (BEP 19); repeat for more.
    #[arg(short, long = "web-seed", value_name = "URL")]
    pub web_seeds: Vec<String>,
    /// Piece size in bytes (power of two, 16 KiB..64 MiB; suffixes K, M accepted);
    /// default: chosen for about 1000-2000 pieces.
    #[arg(short = 'l', long, value_name = "BYTES", value_parser = parse_size)]
    pub piece_size: Option<u64>,
    /// Mark the torrent private (BEP 27): no DHT, no peer exchange.
    #[arg(long)]
    pub private: bool,
    /// A comment to embed.
    #[arg(short, long, value_name = "TEXT")]
    pub comment: Option<String>,
    /// Creation date to embed, in seconds since the Unix epoch (none by default,
    /// so that the output is deterministic).
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub creation_date: Option<i64>,
    /// v1 torrent (BEP 3), the default.
    #[arg(long, conflicts_with_all = ["v2", "hybrid"])]
    pub v1: bool,
    /// v2-only torrent (BEP 52); not loadable by v1-only clients.
    #[arg(long, conflicts_with_all = ["v1", "hybrid"])]
    pub v2: bool,
    /// Hybrid v1+v2 torrent (BEP 52 with BEP 47 pad files).
    #[arg(long, conflicts_with_all = ["v1", "v2"])]
    pub hybrid: bool,
    /// Hashing threads (default: twice the number of cores).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// Print a JSON summary on stdout instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Why a byte count was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum SizeError {
    /// The last character is a letter other than K, M or G.
    #[error("unknown size suffix in {0:?}")]
    UnknownSuffix(String),
    /// The number is missing, malformed or too large.
    #[error("not a byte count: {0:?}")]
    NotACount(String),
}

/// Parses a byte count with an optional K/M/G (binary) suffix.
fn parse_size(s: &str) -> Result<u64, SizeError> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m = match c.to_ascii_uppercase() {
                'K' => 1u64 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                _ => return Err(SizeError::UnknownSuffix(s.to_owned())),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| SizeError::NotACount(s.to_owned()))
}

/// Runs `shoal create`.
pub fn run(args: CreateArgs) -> anyhow::Result<()> {
    let version = if args.hybrid {
        Version::Hybrid
    } else if args.v2 {
        Version::V2
    } else {
        Version::V1
    };
    let opts = CreateOptions {
        trackers: args.trackers.iter().map(|t| vec![t.clone()]).collect(),
        web_seeds: args.web_seeds.clone(),
        piece_length: args.piece_size,
        private: args.private,
        comment: args.comment.clone(),
        created_by: Some(format!("shoal/{}", env!("CARGO_PKG_VERSION"))),
        creation_date: args.creation_date,
        version,
        threads: args.threads,
    };
    let display = args.path.display().to_string();
    let plan = CreatePlan::new(&args.path, opts).with_context(|| display.clone())?;
    tracing::info!(
        name = plan.name(),
        files = plan.files().len(),
        bytes = plan.total_length(),
        piece_length = plan.piece_length(),
        "hashing"
    );

    let bar =
        ProgressBar::with_draw_target(Some(plan.total_length()), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] [{wide_bar}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let shown = AtomicU64::new(0);
    let started = Instant::now();
    let bytes = plan.build(&|n| {
        if shown.fetch_max(n, Ordering::Relaxed) < n {
            bar.set_position(n);
        }
    });
    bar.finish_and_clear();
    let bytes = bytes.with_context(|| display.clone())?;
    let secs = started.elapsed().as_secs_f64();

    // Parse what we made: proves it loads, and gives the info-hashes to print.
    let torrent = Torrent::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("internal error: created torrent does not parse: {e}"))?;
    write_atomically(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;

    let hashes = torrent.info_hashes();
    let mib_s = plan.total_length() as f64 / (1 << 20) as f64 / secs.max(1e-9);
    if args.json {
        let v = serde_json::json!({
            "output": args.output.display().to_string(),
            "name": plan.name(),
            "version": version.to_string(),
            "info_hash_v1": hashes.v1.map(|h| h.to_hex()),
            "info_hash_v2": hashes.v2.map(|h| h.to_hex()),
            "piece_length": plan.piece_length(),
            "piece_count": plan.num_pieces(),
            "total_length": plan.total_length(),
            "files": plan.files().len(),
            "seconds": secs,
            "mib_per_s": mib_s,
        });
        println!("{v}");
    } else {
        println!(
            "{}: {} ({} file{}, {} bytes, {} pieces of {} bytes, {version}) in {secs:.2} s, {mib_s:.0} MiB/s",
            args.output.display(),
            plan.name(),
            plan.files().len(),
            if plan.files().len() == 1 { "" } else { "s" },
            plan.total_length(),
            plan.num_pieces(),
            plan.piece_length(),
        );
        if let Some(h) = hashes.v1 {
            println!("info-hash v1: {h}");
        }
        if let Some(h) = hashes.v2 {
            println!("info-hash v2: {h}");
        }
    }
    Ok(())
}

/// Writes `bytes` to a temporary file in `out`'s directory, syncs it and renames
/// it over `out`; the temporary file is removed on failure.
fn write_atomically(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let file_name = out
        .file_name()
        .ok_or_else(|| InvalidInput(format!("{}: not a file name", out.display())))?;
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, out)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(result?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("16384"), Ok(16384));
        assert_eq!(parse_size("16K"), Ok(16384));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert!(parse_size("x").is_err());
        assert!(parse_size("1Q").is_err());
        assert!(parse_size("").is_err());
        assert!(parse_size("99999999999999999999G").is_err());
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.torrent");
        fs::write(&out, b"old").unwrap();
        write_atomically(&out, b"new").unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        // A directory in the way: the write fails, the temp file is gone.
        let blocked = dir.path().join("sub");
        fs::create_dir(&blocked).unwrap();
        fs::write(blocked.join("f"), b"keep").unwrap();
        assert!(write_atomically(&blocked, b"new").is_err());
        assert_eq!(fs::read(blocked.join("f")).unwrap(), b"keep");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
