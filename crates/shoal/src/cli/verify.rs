//! `shoal verify`: check a torrent's data on disk against its piece hashes,
//! on all cores, and report the bad and missing pieces and the files they
//! touch.
//!
//! Exit code 0 when every piece is on disk and good, 1 when any piece is bad
//! or missing (or reading failed), 2 when the torrent or the options are
//! invalid. `--data` takes what `shoal seed --data` takes
//! ([`super::save_path`]). The reading and hashing are
//! [`shoal_storage::verify`]'s, the same path the session's check uses. A
//! hybrid torrent is checked with its v1 (SHA-1) piece hashes, as the
//! session checks it; a v2-only torrent with its merkle piece layers.
//!
//! Progress goes to stderr: a bar on a terminal, a plain line every second
//! otherwise. The report goes to stdout, as text or (`--json`) one JSON object.
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, ValueEnum};
use shoal_metainfo::{MetaVersion, Torrent};
use shoal_storage::{
    CheckProgress, PieceHashes, PieceStatus, ReadPath, Storage, StorageOptions, VerifyOptions,
};

use super::download::load_torrent;
use super::info::human;
use super::save_path::save_path;
use super::InvalidInput;

/// Arguments of `shoal verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// Where the data is: the directory holding the torrent's content, the
    /// content directory itself, or the file of a single-file torrent.
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Print one JSON object on stdout instead of text.
    #[arg(long)]
    pub json: bool,
    /// Hashing threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N")]
    pub threads: Option<usize>,
    /// How to read: `auto` (page cache for cached data, O_DIRECT for the
    /// rest), `cache` or `direct`.
    #[arg(long, value_enum, default_value = "auto", value_name = "HOW")]
    pub read: ReadArg,
}

/// `--read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReadArg {
    /// Per window, whichever the data is in.
    Auto,
    /// Through the page cache.
    Cache,
    /// With O_DIRECT.
    Direct,
}

/// What one file of the torrent looks like after the check.
struct FileReport {
    index: usize,
    path: String,
    length: u64,
    on_disk: Option<u64>,
    bad: Vec<u32>,
    missing: Vec<u32>,
}

/// Runs `shoal verify`.
pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let torrent = load_torrent(&args.torrent)?;
    let root = save_path(&torrent, &args.data)?;
    let layout = shoal_engine::layout::storage_layout(&torrent).map_err(|e| match e {
        shoal_engine::AddTorrentError::V2Only => anyhow::Error::new(InvalidInput(format!(
            "{}: a v2-only torrent without its piece layers cannot be verified",
            args.torrent.display()
        ))),
        e => anyhow::Error::new(InvalidInput(e.to_string())),
    })?;
    let checked = match layout.piece_hashes {
        PieceHashes::V1(_) => "v1",
        PieceHashes::V2(_) => "v2",
    };
    let storage = Storage::open(layout, &root, StorageOptions::default())
        .map_err(|e| InvalidInput(format!("{}: {e}", args.torrent.display())))?;
    let map = storage.map();
    let total_bytes = map.layout().total_length;
    let opts = VerifyOptions {
        threads: args.threads.unwrap_or(0),
        read: match args.read {
            ReadArg::Auto => ReadPath::Auto,
            ReadArg::Cache => ReadPath::PageCache,
            ReadArg::Direct => ReadPath::Direct,
        },
    };
    if !args.json {
        eprintln!(
            "verifying {} in {}: {} pieces of {} ({} hashes)",
            torrent.name(),
            root.display(),
            map.piece_count(),
            human(map.layout().piece_length),
            checked
        );
    }
    let display = ProgressDisplay::new(total_bytes);
    let started = Instant::now();
    let outcome = storage
        .verify_all(&opts, &|p| display.update(p))
        .with_context(|| format!("verifying {}", root.display()))?;
    let secs = started.elapsed().as_secs_f64();
    display.finish();

    let files = file_reports(&storage, &torrent, &outcome.status);
    let good = outcome
        .status
        .iter()
        .filter(|&&s| s == PieceStatus::Good)
        .count();
    let pieces_with = |want: PieceStatus| -> Vec<u32> {
        (0u32..)
            .zip(&outcome.status)
            .filter(|&(_, &s)| s == want)
            .map(|(p, _)| p)
            .collect()
    };
    let bad = pieces_with(PieceStatus::Bad);
    let missing = pieces_with(PieceStatus::Missing);
    let mib_s = total_bytes as f64 / f64::from(1 << 20) / secs.max(1e-9);
    if args.json {
        let hashes = torrent.info_hashes();
        let v = serde_json::json!({
            "name": torrent.name(),
            "data": root.display().to_string(),
            "version": version_name(torrent.version()),
            "hashes_checked": checked,
            "info_hash_v1": hashes.v1.map(|h| h.to_hex()),
            "info_hash_v2": hashes.v2.map(|h| h.to_hex()),
            "piece_length": map.layout().piece_length,
            "pieces": map.piece_count(),
            "total_length": torrent.total_length(),
            "ok": bad.is_empty() && missing.is_empty(),
            "good": good,
            "bad": bad,
            "missing": missing,
            "files": files.iter().map(|f| serde_json::json!({
                "index": f.index,
                "path": f.path,
                "length": f.length,
                "on_disk": f.on_disk,
                "ok": f.bad.is_empty() && f.missing.is_empty(),
                "bad_pieces": f.bad,
                "missing_pieces": f.missing,
            })).collect::<Vec<_>>(),
            "seconds": secs,
            "mib_per_s": mib_s,
            "bytes_cached": outcome.stats.bytes_cached,
            "bytes_direct": outcome.stats.bytes_direct,
            "bytes_buffered": outcome.stats.bytes_buffered,
            "sha_ni": shoal_storage::hash::sha_ni(),
        });
        println!("{v}");
    } else {
        print_text(&storage, &outcome.status, &files);
        println!(
            "{}: {good} of {} pieces good, {} bad, {} missing; {} in {secs:.2} s ({mib_s:.0} MiB/s)",
            torrent.name(),
            outcome.status.len(),
            bad.len(),
            missing.len(),
            human(total_bytes),
        );
    }
    if bad.is_empty() && missing.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(
            "verify: {} bad and {} missing of {} pieces",
            bad.len(),
            missing.len(),
            outcome.status.len()
        ))
    }
}

fn version_name(v: MetaVersion) -> &'static str {
    match v {
        MetaVersion::V1 => "v1",
        MetaVersion::V2 => "v2",
        MetaVersion::Hybrid => "hybrid",
    }
}

/// The bad and missing pieces of every (non-pad) file.
fn file_reports(storage: &Storage, torrent: &Torrent, status: &[PieceStatus]) -> Vec<FileReport> {
    let map = storage.map();
    torrent
        .files()
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.pad)
        .map(|(i, f)| {
            let pieces = map.pieces_of_file(i);
            let with = |want: PieceStatus| -> Vec<u32> {
                pieces
                    .clone()
                    .filter(|&p| status.get(p as usize) == Some(&want))
                    .collect()
            };
            FileReport {
                index: i,
                path: f.path_string(),
                length: f.length,
                on_disk: storage
                    .file_path(i)
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len()),
                bad: with(PieceStatus::Bad),
                missing: with(PieceStatus::Missing),
            }
        })
        .collect()
}

/// Lines for the failed pieces (consecutive pieces with the same verdict and
/// files as one range) and for each file that is not whole.
fn print_text(storage: &Storage, status: &[PieceStatus], files: &[FileReport]) {
    let map = storage.map();
    let touched = |p: u32| -> Vec<String> {
        map.piece_spans(p)
            .map(|spans| {
                let mut v: Vec<String> = spans
                    .filter(|s| !s.pad)
                    .filter_map(|s| files.iter().find(|f| f.index == s.file))
                    .map(|f| f.path.clone())
                    .collect();
                v.dedup();
                v
            })
            .unwrap_or_default()
    };
    let mut p = 0u32;
    while (p as usize) < status.len() {
        let s = status.get(p as usize).copied().unwrap_or(PieceStatus::Good);
        if s == PieceStatus::Good {
            p += 1;
            continue;
        }
        let names = touched(p);
        let mut q = p;
        while status.get(q as usize + 1) == Some(&s) && touched(q + 1) == names {
            q += 1;
        }
        let what = if s == PieceStatus::Bad {
            "bad"
        } else {
            "missing"
        };
        let range = if q == p {
            format!("piece {p}")
        } else {
            format!("pieces {p}-{q}")
        };
        println!("{what} {range}: {}", names.join(", "));
        p = q + 1;
    }
    for f in files
        .iter()
        .filter(|f| !f.bad.is_empty() || !f.missing.is_empty())
    {
        let disk = match f.on_disk {
            None => "absent".to_owned(),
            Some(l) if l < f.length => format!("{l} of {} bytes", f.length),
            Some(_) => "present".to_owned(),
        };
        println!(
            "file {}: {disk}; {} bad, {} missing piece{}",
            f.path,
            f.bad.len(),
            f.missing.len(),
            if f.missing.len() == 1 { "" } else { "s" }
        );
    }
}

/// Progress on stderr: an indicatif bar on a terminal, else a plain line at
/// most once a second.
struct ProgressDisplay {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    last_line: Mutex<Instant>,
}

impl ProgressDisplay {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "verify [{bar:30}] {percent:>3}% {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        ProgressDisplay {
            bar,
            total,
            last_line: Mutex::new(Instant::now()),
        }
    }

    fn update(&self, p: CheckProgress) {
        match &self.bar {
            Some(b) => {
                if p.bytes_done > b.position() {
                    b.set_position(p.bytes_done);
                }
            }
            None => {
                let mut last = self.last_line.lock().unwrap_or_else(|e| e.into_inner());
                if last.elapsed() >= Duration::from_secs(1) {
                    *last = Instant::now();
                    eprintln!(
                        "verify {:.1}% {}/{} ({} of {} pieces)",
                        p.bytes_done as f64 * 100.0 / self.total.max(1) as f64,
                        human(p.bytes_done),
                        human(self.total),
                        p.pieces_done,
                        p.pieces_total
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
