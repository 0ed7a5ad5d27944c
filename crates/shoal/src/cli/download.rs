//! `shoal download`: fetch a torrent's wanted files from the swarm into a
//! directory, with a progress bar on a terminal (plain lines every second
//! otherwise), then exit (default) or keep seeding (`--seed`). The torrent is
//! a .torrent file or a magnet link; everything about peers (trackers, the
//! DHT, peer exchange, a magnet's metadata and v2 piece layers, BEP 27 for
//! private torrents) is the engine's session's work: this command is a thin
//! client that adds one torrent and follows it.
//!
//! Exit code 0 only when every wanted byte is on disk and verified; a disk
//! error (or a magnet whose metadata never came) stops the torrent and exits
//! non-zero with its message; Ctrl-C and SIGTERM send `stopped` to the
//! trackers and exit (non-zero if incomplete). Resume data is kept beside the
//! data (`.shoal/<info-hash>.resume`), so a restart fetches nothing twice.
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use shoal_engine::{
    AddTorrentError, AddTorrentParams, FileSelection, ResumeFiles, Session, SessionConfig,
    TorrentHandle, TorrentSource, TorrentState, TorrentStatus,
};
use shoal_metainfo::{Magnet, Torrent};

use super::dht_node::report_bootstrap;
use super::info::human;
use super::InvalidInput;

/// Arguments of `shoal download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The .torrent file or a magnet URI (found through the DHT).
    pub torrent: String,
    /// Directory to download into (the torrent's files go under it).
    #[arg(short = 'o', long = "output", default_value = ".")]
    pub output: PathBuf,
    /// Keep seeding after the download completes, until interrupted.
    #[arg(long, conflicts_with = "exit_on_complete")]
    pub seed: bool,
    /// Exit as soon as the download completes (the default without --seed).
    #[arg(long)]
    pub exit_on_complete: bool,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    pub listen: SocketAddr,
    /// A peer to connect to (repeatable).
    #[arg(long = "peer", value_name = "ADDR:PORT")]
    pub peers: Vec<SocketAddr>,
    /// An extra tracker URL (repeatable).
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// Only these files: `INDEX[,INDEX...]` or a glob matched against the path.
    #[arg(long, value_name = "SPEC")]
    pub only: Option<String>,
    /// Session-wide upload limit in bytes per second.
    #[arg(long, value_name = "BYTES/S")]
    pub max_upload_rate: Option<u64>,
    /// Session-wide download limit in bytes per second.
    #[arg(long, value_name = "BYTES/S")]
    pub max_download_rate: Option<u64>,
    /// Write through the page cache instead of with O_DIRECT (which shoal
    /// uses for aligned runs of downloaded data where the filesystem allows).
    #[arg(long)]
    pub buffered_writes: bool,
    /// Make sparse files instead of reserving each file's space when it is
    /// first written (which lets O_DIRECT writes run two at a time on ext4).
    #[arg(long)]
    pub sparse: bool,
    /// MSE/PE encryption of peer connections.
    #[arg(long, value_enum, default_value_t)]
    pub encryption: super::Encryption,
    /// No peer connections over uTP (BEP 29).
    #[arg(long)]
    pub no_utp: bool,
    /// No peer connections over TCP (uTP only).
    #[arg(long)]
    pub no_tcp: bool,
    /// No local peer discovery (BEP 14 multicast on the LAN).
    #[arg(long)]
    pub no_lsd: bool,
    /// Options for magnet links (metadata timeout).
    #[command(flatten)]
    pub magnet: MagnetArgs,
    /// DHT options (bootstrap, state file, off switch).
    #[command(flatten)]
    pub dht: super::dht_node::DhtNodeArgs,
}

/// Options of `shoal download` that only matter for magnet links.
#[derive(Debug, Clone, Args)]
pub struct MagnetArgs {
    /// Give up when no peer gave the metadata within this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub metadata_timeout: u64,
}

/// Runs `shoal download`.
pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    let source = if args.torrent.starts_with("magnet:") {
        let m = Magnet::parse(&args.torrent).context("download")?;
        if m.v1.is_none() && m.v2.is_none() {
            return Err(InvalidInput("download: the magnet names no info-hash".into()).into());
        }
        TorrentSource::Magnet(Box::new(m))
    } else {
        TorrentSource::Torrent(load_torrent(Path::new(&args.torrent))?)
    };
    runtime()?.block_on(download(args, source))
}

/// The tokio runtime of `download` and `seed`: ONE network thread. Hashing
/// and writing run on the disk actor's thread, upload reads on the blocking
/// pool and checking on rayon, so one thread carries the sockets (well over
/// 1 GiB/s) and a second worker only adds cross-thread wake-ups: measured on
/// 1 GiB over loopback, one worker took 15-20% less CPU and wall time.
pub(crate) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Reads and parses a .torrent file.
pub(crate) fn load_torrent(path: &Path) -> anyhow::Result<Arc<Torrent>> {
    let bytes = std::fs::read(path).with_context(|| path.display().to_string())?;
    let t = Torrent::from_bytes(&bytes).with_context(|| path.display().to_string())?;
    Ok(Arc::new(t))
}

/// Starts the session of a one-torrent command (resume files beside the
/// data; no DHT node for a private torrent: BEP 27, said once).
pub(crate) async fn start_session(
    mut config: SessionConfig,
    dht: &super::dht_node::DhtNodeArgs,
    private: bool,
    what: &str,
) -> anyhow::Result<(Session, tokio::task::JoinHandle<()>)> {
    config.dht = if private {
        if !dht.no_dht {
            eprintln!("private torrent: not using the DHT");
        }
        None
    } else {
        dht.settings()
    };
    let session = Session::start_with(config, Arc::new(ResumeFiles::new()))
        .await
        .with_context(|| what.to_owned())?;
    eprintln!("listening on {}", session.local_addr());
    let s = session.clone();
    let report = tokio::spawn(async move { report_bootstrap(&s).await });
    Ok((session, report))
}

/// The error of a refused add: invalid input (exit 2) or a failure.
pub(crate) fn add_error(what: &str, e: AddTorrentError) -> anyhow::Error {
    match e {
        AddTorrentError::NoSuchFile { .. }
        | AddTorrentError::EmptySelection
        | AddTorrentError::NoInfoHash
        | AddTorrentError::V2Only => anyhow::Error::new(InvalidInput(format!("{what}: {e}"))),
        e => anyhow::Error::new(e).context(what.to_owned()),
    }
}

async fn download(args: DownloadArgs, source: TorrentSource) -> anyhow::Result<()> {
    let private = matches!(&source, TorrentSource::Torrent(t) if t.is_private());
    let magnet = matches!(source, TorrentSource::Magnet(_));
    let config = SessionConfig {
        listen: args.listen,
        max_upload_rate: args.max_upload_rate,
        max_download_rate: args.max_download_rate,
        direct_io: !args.buffered_writes,
        preallocate: !args.sparse,
        encryption: args.encryption.into(),
        enable_utp: !args.no_utp,
        enable_tcp: !args.no_tcp,
        enable_lsd: !args.no_lsd,
        ..SessionConfig::default()
    };
    let (session, report) = start_session(config, &args.dht, private, "download").await?;
    let outcome = async {
        std::fs::create_dir_all(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;
        let mut params = AddTorrentParams::new(source, &args.output);
        if let Some(s) = &args.only {
            params.selection = FileSelection::parse(s);
        }
        params.peers = args.peers.clone();
        params.extra_trackers = args.trackers.clone();
        if magnet {
            params.metadata_timeout = Some(Duration::from_secs(args.magnet.metadata_timeout));
            eprintln!(
                "fetching metadata from {} peers, the trackers and the DHT…",
                args.peers.len()
            );
        }
        let handle = session
            .add(params)
            .await
            .map_err(|e| add_error("download", e))?;
        let mut signals = Signals::new()?;
        follow(&args, &handle, &mut signals).await
    }
    .await;
    report.abort();
    session.shutdown().await;
    outcome
}

/// Shows progress until the download completes (or, with `--seed`, until a
/// signal); says what happened on the way (metadata, resume, completion).
pub(crate) async fn follow(
    args: &DownloadArgs,
    handle: &TorrentHandle,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let mut progress: Option<Progress> = None;
    let mut rx = handle.subscribe();
    let mut meta = handle.subscribe_meta();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut announced_complete = false;
    let mut saw_metadata = handle.torrent().is_some();
    let mut checked = false;
    let outcome: anyhow::Result<()> = loop {
        let s = rx.borrow_and_update().clone();
        let torrent = meta.borrow_and_update().torrent.clone();
        if !saw_metadata {
            if let Some(t) = torrent {
                saw_metadata = true;
                eprintln!(
                    "metadata: {} ({} bytes of info)",
                    t.name(),
                    t.info_bytes().len()
                );
                if t.is_private() {
                    eprintln!("private torrent: not using the DHT");
                }
                let missing = (0..t.files().len())
                    .filter(|&i| t.needs_piece_layer(i))
                    .count();
                if missing > 0 {
                    eprintln!("fetching the piece layers of {missing} files…");
                }
            }
        }
        if progress.is_none() {
            if let Some(t) = handle.torrent() {
                progress = Some(Progress::new(t.name()));
            }
        }
        let settled = !matches!(
            s.state,
            TorrentState::Checking | TorrentState::FetchingMetadata
        );
        if settled && !checked && s.pieces > 0 {
            checked = true;
            if s.pieces_have > 0 && !s.is_complete() {
                eprintln!(
                    "resuming: {} of {} pieces already verified",
                    s.pieces_have, s.pieces
                );
            }
        }
        if s.state == TorrentState::Error {
            let why = s
                .error
                .map(|e| e.to_string())
                .unwrap_or_else(|| "stopped".into());
            break Err(anyhow::anyhow!("download: {why}"));
        }
        if settled && s.is_complete() && !announced_complete {
            announced_complete = true;
            if let Some(p) = progress.as_mut() {
                p.update(&s, true);
            }
            if args.seed {
                message(&progress, "download complete; seeding (Ctrl-C to stop)");
            } else {
                message(&progress, "download complete");
                break Ok(());
            }
        }
        tokio::select! {
            sig = signals.recv() => {
                let s = handle.status();
                break if s.is_complete() {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("download interrupted by {sig} at {:.1}%", s.progress() * 100.0))
                };
            }
            r = rx.changed() => {
                if r.is_err() {
                    break Err(anyhow::anyhow!("download: the torrent stopped unexpectedly"));
                }
            }
            Ok(()) = meta.changed() => {}
            _ = tick.tick() => {
                if let Some(p) = progress.as_mut() {
                    p.update(&handle.status(), false);
                }
            }
        }
    };
    let last = handle.status();
    if let Some(mut p) = progress {
        p.finish(&last);
    }
    outcome?;
    if !last.is_complete() {
        bail!("download: incomplete ({:.1}%)", last.progress() * 100.0);
    }
    Ok(())
}

fn message(p: &Option<Progress>, m: &str) {
    match p {
        Some(p) => p.message(m),
        None => eprintln!("{m}"),
    }
}

/// SIGINT / SIGTERM as one stream.
pub(crate) struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub(crate) fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .context("installing the SIGTERM handler")?,
        })
    }

    /// Waits for a signal; returns its name.
    pub(crate) async fn recv(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => "SIGINT",
                _ = self.term.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }
}

/// Progress display: an indicatif bar on a terminal, plain lines otherwise.
pub(crate) struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Progress {
    /// A display for the torrent `name`.
    pub(crate) fn new(name: &str) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(1000);
            let style =
                indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> ");
            b.set_style(style);
            b.set_prefix(name.to_owned());
            b
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn line(s: &TorrentStatus) -> String {
        let left = s.wanted_bytes.saturating_sub(s.verified_wanted_bytes);
        let eta = if s.is_complete() {
            "done".to_owned()
        } else if let Some(secs) = left.checked_div(s.download_rate) {
            format!("{secs}s")
        } else {
            "-".to_owned()
        };
        format!(
            "{}/{} down {}/s up {}/s peers {} eta {}",
            human(s.verified_wanted_bytes),
            human(s.wanted_bytes),
            human(s.download_rate),
            human(s.upload_rate),
            s.peers,
            eta
        )
    }

    /// Shows the status (plain mode prints a line; `force` even if not due).
    pub(crate) fn update(&mut self, s: &TorrentStatus, force: bool) {
        match &self.bar {
            Some(b) => {
                b.set_position((s.progress() * 1000.0) as u64);
                b.set_message(Self::line(s));
            }
            None => {
                let _ = force;
                eprintln!("progress {:.1}% {}", s.progress() * 100.0, Self::line(s));
            }
        }
    }

    /// Shows a message.
    pub(crate) fn message(&self, m: &str) {
        match &self.bar {
            Some(b) => b.println(m),
            None => eprintln!("{m}"),
        }
    }

    /// Ends the display with a summary line.
    pub(crate) fn finish(&mut self, s: &TorrentStatus) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
        let secs = self.started.elapsed().as_secs_f64();
        eprintln!(
            "{:.1}% verified; downloaded {} uploaded {} in {:.1}s",
            s.progress() * 100.0,
            human(s.downloaded),
            human(s.uploaded),
            secs
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        assert_eq!(human(5), "5 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 30), "3.0 GiB");
    }
}
