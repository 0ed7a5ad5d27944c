//! `shoal seed`: check a torrent's data (all cores), then serve it and
//! announce to its trackers until SIGINT or SIGTERM, which send `stopped`
//! and exit 0.
//!
//! `--data` is the directory that contains the torrent's content (as
//! libtorrent's save path), the content directory itself for a multi-file
//! torrent, or the file itself for a single-file torrent.
//!
//! A non-private torrent (BEP 27) is also announced on the DHT at once and
//! every 15 minutes ([`super::dht_node`]); the DHT node answers queries until
//! the process stops, and its routing table is saved at exit.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use shoal_engine::{AddTorrentParams, SessionConfig, TorrentState};
use shoal_metainfo::Torrent;

use super::dht_node::DhtNodeArgs;
use super::download::{add_error, load_torrent, runtime, start_session, Progress, Signals};
use super::save_path::save_path;

/// Arguments of `shoal seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// The .torrent file.
    pub torrent: PathBuf,
    /// Where the data is (see the command's description).
    #[arg(long, value_name = "PATH")]
    pub data: PathBuf,
    /// Address to accept peers on.
    #[arg(long, default_value = "0.0.0.0:6881")]
    pub listen: SocketAddr,
    /// An extra tracker URL (repeatable).
    #[arg(long = "tracker", value_name = "URL")]
    pub trackers: Vec<String>,
    /// A peer to connect to (repeatable; for peers that only accept incoming connections).
    #[arg(long = "peer", value_name = "ADDR:PORT")]
    pub peers: Vec<SocketAddr>,
    /// Session-wide upload limit in bytes per second.
    #[arg(long, value_name = "BYTES/S")]
    pub max_upload_rate: Option<u64>,
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
    /// DHT options (bootstrap, state file, off switch).
    #[command(flatten)]
    pub dht: DhtNodeArgs,
}

/// Runs `shoal seed`.
pub fn run(args: SeedArgs) -> anyhow::Result<()> {
    let torrent = load_torrent(&args.torrent)?;
    let save_path = save_path(&torrent, &args.data)?;
    runtime()?.block_on(seed(args, torrent, save_path))
}

async fn seed(args: SeedArgs, torrent: Arc<Torrent>, save_path: PathBuf) -> anyhow::Result<()> {
    let config = SessionConfig {
        listen: args.listen,
        max_upload_rate: args.max_upload_rate,
        encryption: args.encryption.into(),
        enable_utp: !args.no_utp,
        enable_tcp: !args.no_tcp,
        enable_lsd: !args.no_lsd,
        ..SessionConfig::default()
    };
    let (session, report) = start_session(config, &args.dht, torrent.is_private(), "seed").await?;
    let outcome = async {
        eprintln!("checking {}", save_path.join(torrent.name()).display());
        let mut params = AddTorrentParams::torrent(torrent.clone(), save_path);
        params.peers = args.peers.clone();
        params.extra_trackers = args.trackers.clone();
        let handle = session
            .add(params)
            .await
            .map_err(|e| add_error("seed", e))?;
        let mut signals = Signals::new()?;
        let s = tokio::select! {
            s = handle.wait_for(|s| s.state != TorrentState::Checking) => s,
            sig = signals.recv() => {
                eprintln!("{sig}: stopping");
                return Ok(());
            }
        };
        if s.state == TorrentState::Error {
            let why = s.error.map(|e| e.to_string()).unwrap_or_default();
            anyhow::bail!("seed: {why}");
        }
        if s.is_complete() {
            eprintln!("data verified: {} pieces; seeding", s.pieces);
        } else {
            eprintln!(
                "warning: only {} of {} pieces verified; serving those and fetching the rest",
                s.pieces_have, s.pieces
            );
        }
        let mut progress = Progress::new(torrent.name());
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        let mut rx = handle.subscribe();
        let result = loop {
            tokio::select! {
                sig = signals.recv() => {
                    progress.message(&format!("{sig}: stopping"));
                    break Ok(());
                }
                r = rx.changed() => {
                    if r.is_err() {
                        break Err(anyhow::anyhow!("seed: the torrent stopped unexpectedly"));
                    }
                    let s = rx.borrow_and_update().clone();
                    if s.state == TorrentState::Error {
                        let why = s.error.map(|e| e.to_string()).unwrap_or_default();
                        break Err(anyhow::anyhow!("seed: {why}"));
                    }
                }
                _ = tick.tick() => progress.update(&handle.status(), false),
            }
        };
        progress.finish(&handle.status());
        result
    }
    .await;
    report.abort();
    session.shutdown().await;
    outcome
}
