//! `shoal daemon`: many torrents as a service (Transmission RPC at
//! `/transmission/rpc`, REST under `/api/v1`, a status page at `/`), state
//! in a database, until SIGINT or SIGTERM.
//!
//! Settings: built-in defaults, then the TOML file (`--config`, else
//! `$XDG_CONFIG_HOME/shoal/daemon.toml` when it exists), then `SHOAL_…`
//! environment variables, then flags. `--print-config` prints the result.
//! Prints `shoal daemon: http://ADDR/` on stderr once it serves (and
//! `shoal daemon: tracker listening on URL` for a built-in tracker), so
//! scripts and tests can read the ports when they asked for port 0.
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::builder::BoolishValueParser;
use clap::Args;
use shoal_daemon::{ConfigLayer, Daemon, DaemonConfig};

use super::download::{runtime, Signals};
use super::InvalidInput;

/// Arguments of `shoal daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Settings file (TOML, kebab-case keys as printed by --print-config).
    /// Default: $XDG_CONFIG_HOME/shoal/daemon.toml when it exists.
    #[arg(long, value_name = "FILE", env = "SHOAL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the effective settings (TOML) and exit.
    #[arg(long)]
    pub print_config: bool,
    /// Serve the RPC, the API and the status page here (default 127.0.0.1:9091).
    #[arg(long, value_name = "ADDR:PORT", env = "SHOAL_HTTP")]
    pub http: Option<SocketAddr>,
    /// Accept peers here (default 0.0.0.0:51413).
    #[arg(long, value_name = "ADDR:PORT", env = "SHOAL_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The state database's directory (default $XDG_DATA_HOME/shoal).
    #[arg(long, value_name = "DIR", env = "SHOAL_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Where new torrents are saved (default the XDG download directory).
    #[arg(long, value_name = "DIR", env = "SHOAL_DOWNLOAD_DIR")]
    pub download_dir: Option<PathBuf>,
    /// Torrents may only be saved under these directories (repeatable; default: anywhere).
    #[arg(
        long,
        value_name = "DIR",
        env = "SHOAL_DOWNLOAD_ROOTS",
        value_delimiter = ','
    )]
    pub download_root: Vec<PathBuf>,
    /// Add the .torrent files that appear in this directory.
    #[arg(long, value_name = "DIR", env = "SHOAL_WATCH_DIR")]
    pub watch_dir: Option<PathBuf>,
    /// HTTP Basic auth (required when --http is not a loopback address).
    #[arg(
        long,
        value_name = "USER:PASS",
        env = "SHOAL_AUTH",
        hide_env_values = true
    )]
    pub auth: Option<String>,
    /// Serve a non-loopback --http address without auth.
    #[arg(long, env = "SHOAL_NO_AUTH", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_auth: Option<bool>,
    /// Host names accepted in the Host header besides localhost and IP addresses (repeatable).
    #[arg(
        long,
        value_name = "NAME",
        env = "SHOAL_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_host: Vec<String>,
    /// Run no DHT node.
    #[arg(long, env = "SHOAL_NO_DHT", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_dht: Option<bool>,
    /// DHT bootstrap node (repeatable).
    #[arg(
        long,
        value_name = "ADDR:PORT",
        env = "SHOAL_DHT_BOOTSTRAP",
        value_delimiter = ','
    )]
    pub dht_bootstrap: Vec<SocketAddr>,
    /// Do not use the public DHT routers.
    #[arg(long, env = "SHOAL_NO_DEFAULT_BOOTSTRAP", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_default_bootstrap: Option<bool>,
    /// Session download limit, bytes per second.
    #[arg(long, value_name = "BYTES", env = "SHOAL_MAX_DOWNLOAD_RATE")]
    pub max_download_rate: Option<u64>,
    /// Session upload limit, bytes per second.
    #[arg(long, value_name = "BYTES", env = "SHOAL_MAX_UPLOAD_RATE")]
    pub max_upload_rate: Option<u64>,
    /// Downloads transferring at once (the rest wait, queued).
    #[arg(long, value_name = "N", env = "SHOAL_DOWNLOAD_QUEUE_SIZE")]
    pub download_queue_size: Option<usize>,
    /// Stop seeding at this upload/download ratio.
    #[arg(long, value_name = "RATIO", env = "SHOAL_SEED_RATIO")]
    pub seed_ratio: Option<f64>,
    /// Stop seeding after this many idle minutes.
    #[arg(long, value_name = "MIN", env = "SHOAL_SEED_IDLE_MINUTES")]
    pub seed_idle_minutes: Option<u64>,
    /// Most connections per torrent.
    #[arg(long, value_name = "N", env = "SHOAL_PEER_LIMIT_PER_TORRENT")]
    pub peer_limit_per_torrent: Option<usize>,
    /// Most connections in all.
    #[arg(long, value_name = "N", env = "SHOAL_PEER_LIMIT_GLOBAL")]
    pub peer_limit_global: Option<usize>,
    /// Add new torrents paused.
    #[arg(long, env = "SHOAL_ADD_PAUSED", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub add_paused: Option<bool>,
    /// Largest HTTP request body, bytes.
    #[arg(long, value_name = "BYTES", env = "SHOAL_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Per-torrent series in /metrics.
    #[arg(long, env = "SHOAL_METRICS_PER_TORRENT", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub metrics_per_torrent: Option<bool>,
    /// No peer connections over uTP.
    #[arg(long, env = "SHOAL_NO_UTP", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_utp: Option<bool>,
    /// No peer connections over TCP.
    #[arg(long, env = "SHOAL_NO_TCP", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_tcp: Option<bool>,
    /// No local peer discovery (BEP 14 multicast on the LAN).
    #[arg(long, env = "SHOAL_NO_LSD", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_lsd: Option<bool>,
    /// Sparse files: do not reserve each file's space at its first write
    /// (config file: `preallocate = false`).
    #[arg(long, env = "SHOAL_SPARSE", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub sparse: Option<bool>,
    /// No flooding search: do not answer or forward the search queries of
    /// connected shoal peers (`/api/v1/search` then asks the other sources).
    #[arg(long, env = "SHOAL_NO_FLOOD", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub no_flood: Option<bool>,
    /// Publish the public torrents in the DHT keyword index (`shoal search`
    /// finds them by the words of their names) and republish them while
    /// the daemon runs.
    #[arg(long, env = "SHOAL_DHT_PUBLISH", value_parser = BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub dht_publish: Option<bool>,
    /// MSE/PE encryption of peer connections [default: prefer].
    #[arg(long, value_enum, env = "SHOAL_ENCRYPTION")]
    pub encryption: Option<super::Encryption>,
    /// Run a tracker in the daemon: HTTP announces, scrapes, its statistics
    /// page, /metrics and search here (what `shoal tracker --http` serves).
    #[arg(long, value_name = "ADDR:PORT", env = "SHOAL_TRACKER_HTTP")]
    pub tracker_http: Option<SocketAddr>,
    /// Run a tracker in the daemon: UDP announces and scrapes (BEP 15) here.
    #[arg(long, value_name = "ADDR:PORT", env = "SHOAL_TRACKER_UDP")]
    pub tracker_udp: Option<SocketAddr>,
    /// The built-in tracker tracks only the info-hashes in this file (40 hex digits a line).
    #[arg(long, value_name = "FILE", env = "SHOAL_TRACKER_ALLOW")]
    pub tracker_allow: Option<PathBuf>,
}

fn nonempty<T>(v: &[T]) -> Option<Vec<T>>
where
    T: Clone,
{
    (!v.is_empty()).then(|| v.to_vec())
}

impl DaemonArgs {
    /// The flags and the environment as one settings layer.
    fn layer(&self) -> ConfigLayer {
        ConfigLayer {
            http: self.http,
            listen: self.listen,
            state_dir: self.state_dir.clone(),
            download_dir: self.download_dir.clone(),
            dht: self.no_dht.map(|n| !n),
            dht_bootstrap: nonempty(&self.dht_bootstrap),
            default_bootstrap: self.no_default_bootstrap.map(|n| !n),
            auth: self.auth.clone(),
            no_auth: self.no_auth,
            allowed_hosts: nonempty(&self.allowed_host),
            watch_dir: self.watch_dir.clone(),
            download_roots: nonempty(&self.download_root),
            max_body_bytes: self.max_body_bytes,
            max_download_rate: self.max_download_rate,
            max_upload_rate: self.max_upload_rate,
            download_queue_size: self.download_queue_size,
            seed_ratio: self.seed_ratio,
            seed_idle_minutes: self.seed_idle_minutes,
            peer_limit_per_torrent: self.peer_limit_per_torrent,
            peer_limit_global: self.peer_limit_global,
            start_added_torrents: self.add_paused.map(|p| !p),
            metrics_per_torrent: self.metrics_per_torrent,
            utp: self.no_utp.map(|n| !n),
            tcp: self.no_tcp.map(|n| !n),
            lsd: self.no_lsd.map(|n| !n),
            preallocate: self.sparse.map(|s| !s),
            flood: self.no_flood.map(|n| !n),
            dht_publish: self.dht_publish,
            dht_publish_interval_secs: None,
            encryption: self.encryption.map(Into::into),
            tracker_http: self.tracker_http,
            tracker_udp: self.tracker_udp,
            tracker_allow: self.tracker_allow.clone(),
            tracker_index: None,
        }
    }
}

/// Runs `shoal daemon`.
pub fn run(args: DaemonArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(f) => Some(f.clone()),
        None => Some(shoal_daemon::config::default_config_file()).filter(|f| f.is_file()),
    };
    let mut config = DaemonConfig::resolve(file.as_deref(), &args.layer())
        .map_err(|e| InvalidInput(format!("settings: {e}")))?;
    // Clients are told these paths and check theirs against them: absolute.
    for p in [&mut config.state_dir, &mut config.download_dir] {
        *p = std::path::absolute(&*p).with_context(|| format!("{}", p.display()))?;
    }
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    tune_malloc();
    runtime()?.block_on(async move {
        let mut signals = Signals::new()?;
        let state_dir = config.state_dir.clone();
        let daemon = Daemon::start(config)
            .await
            .with_context(|| format!("starting the daemon (state in {})", state_dir.display()))?;
        let addr = daemon.http_addr();
        eprintln!(
            "shoal daemon: http://{addr}/ (web UI; transmission-remote {addr}; API under /api/v1); peers on {}; {} torrents; state in {}",
            daemon.session().local_addr(),
            daemon.session().torrents().len(),
            state_dir.display()
        );
        if let Some(t) = &daemon.shared().tracker {
            for url in t.urls() {
                eprintln!("shoal daemon: tracker listening on {url}");
            }
        }
        let sig = signals.recv().await;
        eprintln!("shoal daemon: {sig}, stopping");
        daemon.shutdown().await;
        eprintln!("shoal daemon: stopped");
        Ok(())
    })
}

/// Tunes glibc's malloc for a long-running process holding thousands of
/// small long-lived allocations, before any thread starts:
/// - at most two arenas: by default every thread that allocates while
///   another holds an arena gets one of its own (up to 8 per core), and the
///   torrents' allocations fragment across them (with 10,000 seeding
///   torrents RSS fell from 183 to 161 MiB, bench/daemon.sh). The daemon's
///   threads (two runtime workers, the disk pool) allocate little on hot
///   paths, so two arenas cost no measurable contention;
/// - a fixed mmap threshold of 256 KiB and a trim threshold to match: by
///   default the threshold follows the largest block freed, so after a few
///   multi-megabyte API answers (a `torrent-get` of 10,000 torrents) such
///   blocks come from the heap and leave holes between the torrents' small
///   allocations that are never given back (77.5 → 68–70 MiB RSS with
///   10,000 seeding torrents, bench/daemon.sh). Blocks this large are rare
///   on the transfer path (the disk pool keeps its buffers).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets malloc parameters; called before the
    // runtime's threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 10);
    }
}
