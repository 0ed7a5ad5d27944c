//! The DHT node of `shoal download` and `shoal seed`: one long-lived mainline DHT
//! node per process that answers queries, keeps its routing table across runs and
//! finds peers for (and announces) the torrents of the process.
//!
//! Flow: [`DhtNode::start`] binds the UDP socket on the IP of the peer listener
//! (port: the listen port when free, else any), loads the routing table from the
//! state file (`--dht-state`, default [`default_state_file`], the same file as
//! `shoal dht`; `--no-dht-state` for none) and bootstraps in the background from
//! `--dht-bootstrap` plus the saved nodes (the public routers only when no
//! `--dht-bootstrap` is given and `--no-default-bootstrap` is not set), again
//! after a growing pause while the table stays empty. The table is saved after
//! the bootstrap, every [`SAVE_INTERVAL`] and at exit (never while empty).
//! [`DhtNode::feed`] runs a [`DhtPeerFinder`] for one torrent once the first
//! bootstrap attempt is done and hands its peers to the torrent. `--no-dht`
//! turns all of it off (private torrents, BEP 27, never use it: the callers
//! check).
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use shoal_dht::{Config as NodeConfig, Dht, DhtConfig, DEFAULT_BOOTSTRAP};
use shoal_engine::dht_peers::{DhtPeerFinder, DhtPeersConfig};
use shoal_engine::TorrentHandle;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use super::dht::default_state_file;

/// DHT options shared by `shoal download` (torrent files and magnets) and `shoal seed`.
#[derive(Debug, Clone, Default, Args)]
pub struct DhtNodeArgs {
    /// A DHT node to bootstrap from (repeatable); replaces the public routers.
    #[arg(long = "dht-bootstrap", value_name = "ADDR:PORT")]
    pub dht_bootstrap: Vec<SocketAddr>,
    /// Do not contact the public DHT bootstrap routers (also set by the environment
    /// variable, e.g. `SHOAL_NO_DEFAULT_BOOTSTRAP=1` for test runs).
    #[arg(long, env = "SHOAL_NO_DEFAULT_BOOTSTRAP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_default_bootstrap: bool,
    /// DHT routing table file, loaded at start and saved periodically and at exit
    /// (default: $XDG_DATA_HOME/shoal/dht.json, as `shoal dht`).
    #[arg(long, value_name = "FILE", conflicts_with = "no_dht_state")]
    pub dht_state: Option<PathBuf>,
    /// Neither load nor save a DHT routing table file.
    #[arg(long)]
    pub no_dht_state: bool,
    /// Do not run a DHT node (peers only from trackers, magnet `x.pe` and --peer).
    #[arg(long)]
    pub no_dht: bool,
}

impl DhtNodeArgs {
    /// The routing table file to use, if any.
    pub fn state_file(&self) -> Option<PathBuf> {
        if self.no_dht_state {
            None
        } else {
            self.dht_state.clone().or_else(default_state_file)
        }
    }

    /// The addresses to bootstrap from (besides the saved nodes): the given ones of
    /// the socket's family, else the public routers (resolved now) unless disabled.
    pub async fn bootstrap_addrs(&self, v6: bool) -> Vec<SocketAddr> {
        if !self.dht_bootstrap.is_empty() || self.no_default_bootstrap {
            return self
                .dht_bootstrap
                .iter()
                .copied()
                .filter(|a| a.is_ipv6() == v6)
                .collect();
        }
        let mut out = Vec::new();
        for host in DEFAULT_BOOTSTRAP {
            match tokio::net::lookup_host(host).await {
                Ok(addrs) => out.extend(addrs.filter(|a| a.is_ipv6() == v6)),
                Err(e) => tracing::warn!(%host, error = %e, "dht: cannot resolve bootstrap router"),
            }
        }
        out
    }
}

/// How often the routing table is saved while the node runs.
pub const SAVE_INTERVAL: Duration = Duration::from_secs(300);
/// Bound on resolving the routers and the bootstrap lookup.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(60);
/// First wait before bootstrapping again when the table stayed empty (doubles).
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(30);
/// Longest wait between two bootstrap attempts.
const BOOTSTRAP_RETRY_MAX: Duration = Duration::from_secs(600);
/// Bound on saving the table and stopping the node at exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Capacity of the channel between a peer finder and its torrent.
const FEED_QUEUE: usize = 16;

/// A running DHT node of a download or seed process.
#[derive(Debug)]
pub struct DhtNode {
    dht: Dht,
    ready: watch::Receiver<bool>,
    bootstrap: JoinHandle<()>,
    /// Exclusive lock on the state file while this process uses it.
    _state_lock: Option<std::fs::File>,
}

impl DhtNode {
    /// Starts the node next to a peer listener bound to `listen` (give the bound
    /// address, so port 0 is resolved) and bootstraps it in the background.
    /// `None` with `--no-dht`.
    pub async fn start(args: &DhtNodeArgs, listen: SocketAddr) -> anyhow::Result<Option<DhtNode>> {
        if args.no_dht {
            return Ok(None);
        }
        let mut state = args.state_file();
        // One process per state file: a second shoal (another download next
        // to a seed) would otherwise run the same node ID and overwrite the
        // table. It runs with a fresh ID and no state file instead.
        let state_lock = match state.as_deref().map(lock_state) {
            Some(StateLock::Held(f)) => Some(f),
            Some(StateLock::Busy) => {
                eprintln!(
                    "warning: the DHT state file is in use by another shoal process; \
                     this one starts with a fresh node ID and does not save it"
                );
                state = None;
                None
            }
            Some(StateLock::Unavailable) | None => None,
        };
        let mut saved = 0;
        if let Some(p) = state.as_deref().filter(|p| p.exists()) {
            match shoal_dht::persist::load(p) {
                Ok(t) => saved = t.nodes.len(),
                Err(e) => eprintln!("warning: ignoring the DHT state file: {e}"),
            }
        }
        let dht = bind(listen, state.clone()).await?;
        let (tx, ready) = watch::channel(false);
        let boot_dht = dht.clone();
        let args = args.clone();
        // Nothing to join through: no point in trying again.
        let hopeless = args.dht_bootstrap.is_empty() && args.no_default_bootstrap && saved == 0;
        let bootstrap = tokio::spawn(async move {
            let mut backoff = BOOTSTRAP_RETRY;
            loop {
                let nodes = join(&boot_dht, &args, saved, state.as_deref()).await;
                let _ = tx.send(true);
                if nodes > 0 || hopeless {
                    return;
                }
                // An empty table (no network yet, routers down): try again later.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BOOTSTRAP_RETRY_MAX);
            }
        });
        Ok(Some(DhtNode {
            dht,
            ready,
            bootstrap,
            _state_lock: state_lock,
        }))
    }

    /// The node.
    pub fn dht(&self) -> &Dht {
        &self.dht
    }

    /// Waits until the bootstrap finished (successfully or not).
    pub async fn bootstrapped(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|done| *done).await;
    }

    /// Once bootstrapped, looks up peers for `info_hash` and announces our listen
    /// `port`: every [`shoal_engine::dht_peers::DOWNLOAD_INTERVAL`] while `torrent`
    /// is incomplete, then (with one announce at once when it completes) every
    /// [`shoal_engine::dht_peers::SEED_INTERVAL`]. Peers found go to `torrent`.
    pub fn feed(&self, info_hash: [u8; 20], port: u16, torrent: TorrentHandle) -> PeerFeed {
        let dht = self.dht.clone();
        let mut ready = self.ready.clone();
        let task = tokio::spawn(async move {
            let _ = ready.wait_for(|done| *done).await;
            let mut status = torrent.subscribe();
            loop {
                let complete = status.borrow_and_update().is_complete();
                let config = if complete {
                    DhtPeersConfig::seeding(port)
                } else {
                    DhtPeersConfig::downloading(port)
                };
                let (tx, mut rx) = mpsc::channel(FEED_QUEUE);
                // Dropped (and so stopped) when the interval changes or the task ends.
                let _finder = DhtPeerFinder::spawn(dht.clone(), info_hash, config, tx);
                loop {
                    tokio::select! {
                        peers = rx.recv() => match peers {
                            Some(p) => {
                                tracing::debug!(n = p.len(), "dht: peers found");
                                torrent.add_peers(p).await;
                            }
                            None => return,
                        },
                        changed = status.changed(), if !complete => {
                            if changed.is_err() {
                                return;
                            }
                            if status.borrow().is_complete() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        PeerFeed { task }
    }

    /// Saves the routing table (when it holds nodes) and stops the node, within a
    /// short grace period.
    pub async fn shutdown(self) {
        self.bootstrap.abort();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.dht.shutdown()).await;
    }
}

/// One bootstrap attempt: resolves the routers, looks up our own ID through them
/// and the table, reports, and saves the table when it holds nodes. Returns the
/// number of nodes in the table.
async fn join(dht: &Dht, args: &DhtNodeArgs, saved: usize, state: Option<&Path>) -> usize {
    let run = async {
        let boot = args.bootstrap_addrs(dht.local_addr().is_ipv6()).await;
        let nodes = dht.bootstrap(&boot).await.unwrap_or(0);
        (boot.len(), nodes)
    };
    match tokio::time::timeout(BOOTSTRAP_TIMEOUT, run).await {
        Ok((addrs, nodes)) => {
            eprintln!(
                "dht on {}: {nodes} nodes from {addrs} bootstrap addresses and {saved} saved",
                dht.local_addr()
            );
            if let Some(p) = state.filter(|_| nodes > 0) {
                if let Err(e) = dht.save_table(p).await {
                    eprintln!("warning: cannot save the DHT state: {e}");
                }
            }
            nodes
        }
        Err(_) => {
            eprintln!("warning: the DHT bootstrap timed out");
            0
        }
    }
}

/// What [`lock_state`] found.
#[derive(Debug)]
enum StateLock {
    /// We hold the lock while the file handle lives.
    Held(std::fs::File),
    /// Another process holds it.
    Busy,
    /// No lock could be taken (read-only directory, no flock): go on without.
    Unavailable,
}

/// Takes an exclusive advisory lock on `<state file>.lock`.
fn lock_state(state: &Path) -> StateLock {
    let mut name = state.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path);
    let file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "dht: no state lock");
            return StateLock::Unavailable;
        }
    };
    match file.try_lock() {
        Ok(()) => StateLock::Held(file),
        Err(std::fs::TryLockError::WouldBlock) => StateLock::Busy,
        Err(std::fs::TryLockError::Error(e)) => {
            tracing::debug!(path = %path.display(), error = %e, "dht: cannot lock the state file");
            StateLock::Unavailable
        }
    }
}

/// Binds the DHT socket on the listen IP, on the listen port number when free.
async fn bind(listen: SocketAddr, state_file: Option<PathBuf>) -> anyhow::Result<Dht> {
    let node = NodeConfig {
        seed: rand::random(),
        ..NodeConfig::default()
    };
    let cfg = |port| DhtConfig {
        bind: SocketAddr::new(listen.ip(), port),
        node: node.clone(),
        state_file: state_file.clone(),
        save_interval: SAVE_INTERVAL,
    };
    if listen.port() != 0 {
        if let Ok(d) = Dht::bind(cfg(listen.port())).await {
            return Ok(d);
        }
    }
    Dht::bind(cfg(0)).await.context("starting the DHT")
}

/// Peers from the DHT flowing into one torrent; stop it before the torrent goes.
#[derive(Debug)]
pub struct PeerFeed {
    task: JoinHandle<()>,
}

impl PeerFeed {
    /// Stops the lookups (an announce in progress is abandoned).
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        dht: DhtNodeArgs,
    }

    fn parse(args: &[&str]) -> DhtNodeArgs {
        let mut v = vec!["x"];
        v.extend_from_slice(args);
        Cli::parse_from(v).dht
    }

    #[test]
    fn state_file_is_locked_by_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("sub").join("dht.json");
        let first = lock_state(&state);
        assert!(matches!(first, StateLock::Held(_)), "{first:?}");
        // flock locks belong to the open file: a second open conflicts, as
        // another process would.
        assert!(matches!(lock_state(&state), StateLock::Busy));
        drop(first);
        assert!(matches!(lock_state(&state), StateLock::Held(_)));
    }

    #[test]
    fn state_file_flags() {
        let a = parse(&["--dht-state", "/tmp/x.json"]);
        assert_eq!(a.state_file(), Some(PathBuf::from("/tmp/x.json")));
        assert_eq!(parse(&["--no-dht-state"]).state_file(), None);
        assert_eq!(parse(&[]).state_file(), default_state_file());
        assert!(Cli::try_parse_from(["x", "--dht-state", "a", "--no-dht-state"]).is_err());
        assert!(parse(&["--no-dht"]).no_dht);
    }

    #[test]
    fn the_environment_can_disable_the_routers() {
        let cli = <Cli as clap::CommandFactory>::command();
        let arg = cli
            .get_arguments()
            .find(|a| a.get_id() == "no_default_bootstrap")
            .unwrap();
        assert_eq!(
            arg.get_env().and_then(|e| e.to_str()),
            Some("SHOAL_NO_DEFAULT_BOOTSTRAP")
        );
    }

    #[tokio::test]
    async fn explicit_bootstrap_replaces_the_routers_and_keeps_the_family() {
        let a = parse(&[
            "--dht-bootstrap",
            "127.0.0.1:7000",
            "--dht-bootstrap",
            "[::1]:7001",
        ]);
        let v4: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let v6: SocketAddr = "[::1]:7001".parse().unwrap();
        assert_eq!(a.bootstrap_addrs(false).await, vec![v4]);
        assert_eq!(a.bootstrap_addrs(true).await, vec![v6]);
        // Nothing is resolved when the routers are disabled.
        assert!(parse(&["--no-default-bootstrap"])
            .bootstrap_addrs(false)
            .await
            .is_empty());
    }

    #[tokio::test]
    async fn no_dht_starts_nothing_and_the_node_binds_next_to_the_listener() {
        let off = parse(&["--no-dht"]);
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        assert!(DhtNode::start(&off, listen).await.unwrap().is_none());
        // A free listen port number is reused for UDP.
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let args = parse(&["--no-default-bootstrap", "--no-dht-state"]);
        let at = SocketAddr::from(([127, 0, 0, 1], port));
        let node = DhtNode::start(&args, at).await.unwrap().unwrap();
        assert_eq!(node.dht().local_addr(), at);
        tokio::time::timeout(Duration::from_secs(10), node.bootstrapped())
            .await
            .unwrap();
        // Taken: another node falls back to any port on the same IP.
        let other = DhtNode::start(&args, at).await.unwrap().unwrap();
        assert_ne!(other.dht().local_addr().port(), port);
        assert_eq!(other.dht().local_addr().ip(), at.ip());
        other.shutdown().await;
        node.shutdown().await;
    }
}
