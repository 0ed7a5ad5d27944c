//! `shoal download`: fetch a torrent's wanted files from the swarm into a
//! directory, with a progress bar on a terminal (plain lines every second
//! otherwise), then exit (default) or keep seeding (`--seed`).
//!
//! Exit code 0 only when every wanted byte is on disk and verified; a disk
//! error pauses the torrent and exits non-zero with its message; Ctrl-C and
//! SIGTERM send `stopped` to the trackers and exit (non-zero if incomplete).
//!
//! Non-private torrents (BEP 27) also use the DHT ([`super::dht_node`]): the
//! node finds peers, announces our listen port and answers queries while the
//! process runs (`--no-dht` turns it off).
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use shoal_engine::{
    AddTorrentParams, FileSelection, Session, SessionConfig, TorrentHandle, TorrentState,
    TorrentStatus,
};
use shoal_metainfo::Torrent;

use super::dht_node::{DhtNode, DhtNodeArgs, PeerFeed};
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
    /// Options for magnet links (metadata timeout).
    #[command(flatten)]
    pub magnet: super::magnet::MagnetArgs,
    /// DHT options (bootstrap, state file, off switch).
    #[command(flatten)]
    pub dht: super::dht_node::DhtNodeArgs,
}

/// Runs `shoal download`.
pub fn run(args: DownloadArgs) -> anyhow::Result<()> {
    if args.torrent.starts_with("magnet:") {
        return super::magnet::run(args);
    }
    let torrent = load_torrent(Path::new(&args.torrent))?;
    runtime()?.block_on(download(args, torrent))
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

async fn download(args: DownloadArgs, torrent: Arc<Torrent>) -> anyhow::Result<()> {
    let selection = match &args.only {
        Some(s) => FileSelection::parse(s),
        None => FileSelection::All,
    };
    let mut session = Session::start(SessionConfig {
        listen: args.listen,
        max_upload_rate: args.max_upload_rate,
        max_download_rate: args.max_download_rate,
        direct_io: !args.buffered_writes,
        ..SessionConfig::default()
    })
    .await
    .context("download")?;
    eprintln!("listening on {}", session.local_addr());
    let node = start_dht(&args.dht, &torrent, session.local_addr()).await;
    if let Err(e) = std::fs::create_dir_all(&args.output) {
        stop(node, None, session).await;
        return Err(e).with_context(|| format!("creating {}", args.output.display()));
    }
    let params = AddTorrentParams {
        torrent: torrent.clone(),
        save_path: args.output.clone(),
        selection,
        peers: args.peers.clone(),
        extra_trackers: args.trackers.clone(),
    };
    let handle = match session.add_torrent(params, Arc::new(|_| {})).await {
        Ok(h) => h,
        Err(e) => {
            stop(node, None, session).await;
            return Err(match e {
                shoal_engine::AddTorrentError::NoSuchFile { .. }
                | shoal_engine::AddTorrentError::EmptySelection
                | shoal_engine::AddTorrentError::V2Only => {
                    anyhow::Error::new(InvalidInput(format!("download: {e}")))
                }
                e => anyhow::Error::new(e).context("download"),
            });
        }
    };
    let s = handle.status();
    if s.pieces_have > 0 {
        eprintln!(
            "resuming: {} of {} pieces already verified",
            s.pieces_have, s.pieces
        );
    }
    let feed = node.as_ref().map(|n| {
        let port = session.local_addr().port();
        n.feed(handle.info_hash(), port, handle.clone())
    });
    let outcome = match Signals::new() {
        Ok(mut signals) => follow(&args, &torrent, &handle, &mut signals).await,
        Err(e) => Err(e),
    };
    stop(node, feed, session).await;
    outcome
}

/// The DHT node for a non-private torrent unless `--no-dht`; a node that cannot
/// start is reported and the download goes on without it.
pub(crate) async fn start_dht(
    args: &DhtNodeArgs,
    torrent: &Torrent,
    listen: SocketAddr,
) -> Option<DhtNode> {
    if torrent.is_private() {
        if !args.no_dht {
            eprintln!("private torrent: not using the DHT");
        }
        return None;
    }
    match DhtNode::start(args, listen).await {
        Ok(n) => n,
        Err(e) => {
            eprintln!("warning: running without the DHT: {}", super::one_line(&e));
            None
        }
    }
}

/// Stops the DHT feed, the DHT node (saving its table) and the session.
pub(crate) async fn stop(node: Option<DhtNode>, feed: Option<PeerFeed>, session: Session) {
    if let Some(f) = feed {
        f.stop().await;
    }
    if let Some(n) = node {
        n.shutdown().await;
    }
    session.shutdown().await;
}

/// Shows progress until the download completes (or, with `--seed`, until a signal).
pub(crate) async fn follow(
    args: &DownloadArgs,
    torrent: &Torrent,
    handle: &TorrentHandle,
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let mut progress = Progress::new(torrent.name());
    let mut rx = handle.subscribe();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut announced_complete = false;
    let outcome: anyhow::Result<()> = loop {
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
                let s = rx.borrow_and_update().clone();
                if s.state == TorrentState::Paused {
                    let why = s.error.map(|e| e.to_string()).unwrap_or_else(|| "paused".into());
                    break Err(anyhow::anyhow!("download: {why}"));
                }
                if s.is_complete() && !announced_complete {
                    announced_complete = true;
                    progress.update(&s, true);
                    if args.seed {
                        progress.message("download complete; seeding (Ctrl-C to stop)");
                    } else {
                        break Ok(());
                    }
                }
            }
            _ = tick.tick() => progress.update(&handle.status(), false),
        }
    };
    let last = handle.status();
    progress.finish(&last);
    outcome?;
    if !last.is_complete() {
        bail!("download: incomplete ({:.1}%)", last.progress() * 100.0);
    }
    Ok(())
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
