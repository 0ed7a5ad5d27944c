//! `shoal tracker`: run a BitTorrent tracker (HTTP and UDP) until SIGINT or
//! SIGTERM, with an optional allow list (re-read on SIGHUP) and a state file
//! (loaded at start, saved periodically and at exit).
//!
//! Torrent names are indexed for `shoal search` (`shoal_search::central`):
//! `/search` and `/upload` on the HTTP port.
//!
//! Prints `tracker listening on URL` on stderr for each transport, so
//! scripts and tests can read the ports when they asked for port 0.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use shoal_search::{TrackerNode, TrackerNodeConfig};
use shoal_tracker_server::{AllowList, RateConfig, SwarmConfig};

use super::InvalidInput;

/// Arguments of `shoal tracker`.
#[derive(Debug, Args)]
pub struct TrackerArgs {
    /// Serve HTTP announces and scrapes here (and the statistics page at /, /metrics).
    /// Without --http and --udp, both are served on 0.0.0.0:6969.
    #[arg(long, value_name = "ADDR:PORT")]
    pub http: Option<SocketAddr>,
    /// Serve UDP announces and scrapes (BEP 15) here.
    #[arg(long, value_name = "ADDR:PORT")]
    pub udp: Option<SocketAddr>,
    /// Keep the swarms in this file: loaded at start, saved every --save-every and at exit.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Seconds between saves of --state.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub save_every: u64,
    /// Track only the info-hashes in this file (40 hex digits a line; re-read on SIGHUP).
    #[arg(long, value_name = "FILE")]
    pub allow: Option<PathBuf>,
    /// The announce interval sent to clients, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub interval: u32,
    /// The minimum announce interval sent to clients, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub min_interval: u32,
    /// Forget peers silent for this long (default: two intervals and 5 minutes).
    #[arg(long, value_name = "SECS")]
    pub peer_timeout: Option<u32>,
    /// Most torrents tracked; announces for new ones beyond are refused.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub max_torrents: usize,
    /// Most peers kept per torrent; new peers beyond are answered but not listed.
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    pub max_peers_per_torrent: usize,
    /// Most peers kept in all.
    #[arg(long, value_name = "N", default_value_t = 20_000_000)]
    pub max_peers: usize,
    /// Announces and scrapes per second allowed per client IP (per /64 for IPv6); 0 turns limits off.
    #[arg(long, value_name = "N", default_value_t = 200.0)]
    pub rate_limit: f64,
    /// Requests a client IP may burst above --rate-limit.
    #[arg(long, value_name = "N", default_value_t = 1000.0)]
    pub rate_burst: f64,
    /// UDP worker threads (0: one per CPU).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub udp_threads: usize,
    /// Keep the search index (names of announced and uploaded torrents, served at /search)
    /// in this directory (default: FILE.index beside --state; without either, in memory).
    #[arg(long, value_name = "DIR")]
    pub index: Option<PathBuf>,
    /// Most torrents kept in the search index.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub index_max: u64,
    /// Do not index torrent names (no /search, no /upload, no metadata fetches).
    #[arg(long)]
    pub no_index: bool,
}

fn read_allow(path: &Path) -> anyhow::Result<AllowList> {
    let text = std::fs::read(path).with_context(|| format!("--allow {}", path.display()))?;
    AllowList::parse(&text)
        .map_err(|e| InvalidInput(format!("--allow {}: {e}", path.display())).into())
}

/// Runs `shoal tracker`.
pub fn run(args: TrackerArgs) -> anyhow::Result<()> {
    let (http, udp) = match (args.http, args.udp) {
        (None, None) => {
            let any: SocketAddr = ([0, 0, 0, 0], 6969).into();
            (Some(any), Some(any))
        }
        x => x,
    };
    let allow = match &args.allow {
        Some(p) => {
            let l = read_allow(p)?;
            eprintln!("allow list {}: {} info-hashes", p.display(), l.len());
            Some(l)
        }
        None => None,
    };
    // The index lives beside the state file unless --index says where.
    let index_dir = args.index.clone().or_else(|| {
        args.state.as_ref().map(|s| {
            let mut d = s.clone().into_os_string();
            d.push(".index");
            PathBuf::from(d)
        })
    });
    let cfg = TrackerNodeConfig {
        http,
        udp,
        swarm: swarm_config(&args),
        rate: RateConfig {
            per_second: args.rate_limit,
            burst: args.rate_burst.max(1.0),
            ..RateConfig::default()
        },
        udp_threads: args.udp_threads,
        state: args.state.clone(),
        allow,
        index: (!args.no_index).then_some(shoal_search::IndexConfig {
            dir: index_dir,
            max_docs: args.index_max,
        }),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(serve(args, cfg))
}

/// The swarm table's settings from the flags.
fn swarm_config(args: &TrackerArgs) -> SwarmConfig {
    SwarmConfig {
        interval: args.interval,
        min_interval: args.min_interval.min(args.interval),
        peer_timeout: args
            .peer_timeout
            .unwrap_or(args.interval.saturating_mul(2).saturating_add(300)),
        max_torrents: args.max_torrents,
        max_peers_per_torrent: args.max_peers_per_torrent,
        max_peers: args.max_peers,
        ..SwarmConfig::default()
    }
}

async fn serve(args: TrackerArgs, cfg: TrackerNodeConfig) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let node = TrackerNode::start(cfg).await?;
    if let Some(p) = node.state_file() {
        match node.restored() {
            Some(r) => eprintln!(
                "state {}: restored {} torrents, {} peers ({} expired while down)",
                p.display(),
                r.torrents,
                r.peers,
                r.expired
            ),
            None => eprintln!("state {}: no file yet, starting empty", p.display()),
        }
    }
    if let Some(c) = node.central() {
        match c.index().dir() {
            Some(d) => eprintln!("search index {}: {} torrents", d.display(), c.index().len()),
            None => eprintln!("search index in memory (--state or --index keeps it)"),
        }
    }
    for url in node.urls() {
        eprintln!("tracker listening on {url}");
    }
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut hup = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    let mut save = tokio::time::interval(Duration::from_secs(args.save_every.max(1)));
    save.tick().await;
    let why = loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break "SIGINT",
            _ = term.recv() => break "SIGTERM",
            _ = hup.recv() => match &args.allow {
                Some(p) => match read_allow(p) {
                    Ok(l) => {
                        eprintln!("SIGHUP: allow list {}: {} info-hashes", p.display(), l.len());
                        node.server().swarms().set_allow_list(Some(l));
                    }
                    Err(e) => eprintln!("SIGHUP: keeping the old allow list: {}", super::one_line(&e)),
                },
                None => eprintln!("SIGHUP: no --allow file to re-read"),
            },
            _ = save.tick(), if args.state.is_some() => match node.save().await {
                Ok(n) => tracing::info!(bytes = n, "saved the tracker state"),
                Err(e) => eprintln!("warning: {e}"),
            }
        }
    };
    eprintln!("{why}: stopping");
    if let Some(n) = node.save().await.context("saving the state")? {
        let t = node.server().swarms().totals();
        eprintln!(
            "state saved to {}: {} torrents, {} peers, {} bytes",
            node.state_file()
                .map_or_else(String::new, |p| p.display().to_string()),
            t.torrents,
            t.peers,
            n
        );
    }
    Ok(())
}
