//! The session's mainline DHT node and the one scheduler that finds peers
//! for (and announces) every public torrent of the session.
//!
//! [`SessionDht::start`] runs on the session's UDP socket, shared with uTP
//! (or, with uTP off, binds one on the listener's IP, on the listen port
//! number when free), loads the routing table from the state
//! file (one process per file: an advisory lock; a second process runs with
//! a fresh id and saves nothing) and bootstraps in the background from the
//! given addresses and the saved nodes, the public routers only when asked,
//! again after a growing pause while the table stays empty.
//!
//! The scheduler keeps one entry per torrent and runs at most
//! [`MAX_LOOKUPS`] lookups at once, so 10,000 seeding torrents announce at a
//! steady trickle rather than all at once: a magnet link without metadata is
//! looked up every [`METADATA_INTERVAL`] (no announce: there is nothing to
//! serve yet), a download every [`crate::dht_peers::DOWNLOAD_INTERVAL`], a
//! seed every [`crate::dht_peers::SEED_INTERVAL`], each announcing our listen
//! port. Private torrents (BEP 27) are never registered.
use crate::dht_peers::{DOWNLOAD_INTERVAL, RETRY_INTERVAL, SEED_INTERVAL};
use crate::torrent::TorrentCmd;
use crate::TorrentId;
use shoal_dht::{Config as NodeConfig, Dht, DhtConfig, Id20, DEFAULT_BOOTSTRAP};
use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How the session's DHT node starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhtSettings {
    /// Nodes to bootstrap from (besides the saved ones).
    pub bootstrap: Vec<SocketAddr>,
    /// Use the public routers (`router.bittorrent.com` ...) when `bootstrap`
    /// is empty. Tests and benchmarks turn this off.
    pub public_routers: bool,
    /// Routing table file, loaded at start, saved every 5 minutes and at exit.
    pub state_file: Option<PathBuf>,
}

/// Lookups running at once, across all torrents.
pub const MAX_LOOKUPS: usize = 4;
/// Time between two lookups for a magnet link still missing its metadata.
pub const METADATA_INTERVAL: Duration = Duration::from_secs(5);
/// How often the routing table is saved while the node runs.
const SAVE_INTERVAL: Duration = Duration::from_secs(300);
/// Bound on resolving the routers and the bootstrap lookup.
const BOOTSTRAP_TIMEOUT: Duration = Duration::from_secs(60);
/// First wait before bootstrapping again when the table stayed empty (doubles).
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(30);
/// Longest wait between two bootstrap attempts.
const BOOTSTRAP_RETRY_MAX: Duration = Duration::from_secs(600);
/// Bound on saving the table and stopping the node at exit.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// Most peers handed to a torrent per lookup.
const MAX_PEERS_PER_LOOKUP: usize = 200;

/// What a torrent wants from the DHT now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FeedMode {
    /// Metadata missing: frequent lookups, no announce.
    Metadata,
    /// Downloading: lookups and announces every 30 s.
    Downloading,
    /// Seeding: announces every 15 min.
    Seeding,
    /// Paused: nothing.
    Off,
}

enum FeedCmd {
    Set {
        id: TorrentId,
        info_hash: shoal_base::InfoHash,
        mode: FeedMode,
        sink: crate::torrent::CmdSender<TorrentCmd>,
    },
    Remove(TorrentId),
}

/// The session's DHT node. See the module docs.
pub(crate) struct SessionDht {
    dht: Dht,
    ready: watch::Receiver<bool>,
    bootstrap: JoinHandle<()>,
    feeds: mpsc::UnboundedSender<FeedCmd>,
    feed_task: JoinHandle<()>,
    _state_lock: Option<std::fs::File>,
}

impl std::fmt::Debug for SessionDht {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionDht")
            .field("addr", &self.dht.local_addr())
            .finish_non_exhaustive()
    }
}

impl SessionDht {
    /// Starts the node next to a peer listener bound to `listen` and
    /// bootstraps it in the background; `port` is announced for torrents.
    /// With `shared`, the node runs on the session's UDP socket (shared
    /// with uTP) instead of binding its own.
    pub(crate) async fn start(
        settings: &DhtSettings,
        listen: SocketAddr,
        shared: Option<super::udp::DhtPort>,
    ) -> Result<SessionDht, shoal_dht::DhtError> {
        let mut state = settings.state_file.clone();
        let state_lock = match state.as_deref().map(lock_state) {
            Some(StateLock::Held(f)) => Some(f),
            Some(StateLock::Busy) => {
                tracing::warn!(
                    "the DHT state file is in use by another shoal process; \
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
                Err(e) => tracing::warn!(error = %e, "ignoring the DHT state file"),
            }
        }
        let dht = bind(listen, state.clone(), shared).await?;
        let (tx, ready) = watch::channel(false);
        let boot_dht = dht.clone();
        let settings2 = settings.clone();
        let hopeless = settings.bootstrap.is_empty() && !settings.public_routers && saved == 0;
        let bootstrap = tokio::spawn(async move {
            let mut backoff = BOOTSTRAP_RETRY;
            loop {
                let nodes = join(&boot_dht, &settings2, saved, state.as_deref()).await;
                let _ = tx.send(true);
                if nodes > 0 || hopeless {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BOOTSTRAP_RETRY_MAX);
            }
        });
        let (ftx, frx) = mpsc::unbounded_channel();
        let feed_task = tokio::spawn(schedule(dht.clone(), ready.clone(), listen.port(), frx));
        Ok(SessionDht {
            dht,
            ready,
            bootstrap,
            feeds: ftx,
            feed_task,
            _state_lock: state_lock,
        })
    }

    /// The node (for statistics and the `shoal dht` style queries).
    pub(crate) fn dht(&self) -> &Dht {
        &self.dht
    }

    /// Waits until the first bootstrap attempt finished.
    pub(crate) async fn bootstrapped(&self) {
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|done| *done).await;
    }

    /// Registers or updates a torrent: peers found go to `sink` (the
    /// torrent's command channel) as `AddPeers`.
    pub(crate) fn set(
        &self,
        id: TorrentId,
        info_hash: shoal_base::InfoHash,
        mode: FeedMode,
        sink: crate::torrent::CmdSender<TorrentCmd>,
    ) {
        let _ = self.feeds.send(FeedCmd::Set {
            id,
            info_hash,
            mode,
            sink,
        });
    }

    /// Forgets a torrent.
    pub(crate) fn remove(&self, id: TorrentId) {
        let _ = self.feeds.send(FeedCmd::Remove(id));
    }

    /// Saves the routing table (when it holds nodes) and stops the node,
    /// within a short grace period.
    pub(crate) async fn shutdown(&self) {
        self.bootstrap.abort();
        self.feed_task.abort();
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, self.dht.shutdown()).await;
    }
}

struct Feed {
    info_hash: shoal_base::InfoHash,
    mode: FeedMode,
    sink: crate::torrent::CmdSender<TorrentCmd>,
    next: Instant,
    running: bool,
}

fn interval(mode: FeedMode) -> Duration {
    match mode {
        FeedMode::Metadata => METADATA_INTERVAL,
        FeedMode::Downloading => DOWNLOAD_INTERVAL,
        FeedMode::Seeding | FeedMode::Off => SEED_INTERVAL,
    }
}

type LookupDone = (TorrentId, bool, Vec<SocketAddr>);

/// The scheduler loop. See the module docs.
async fn schedule(
    dht: Dht,
    mut ready: watch::Receiver<bool>,
    port: u16,
    mut cmds: mpsc::UnboundedReceiver<FeedCmd>,
) {
    let _ = ready.wait_for(|r| *r).await;
    let mut feeds: HashMap<TorrentId, Feed> = HashMap::new();
    let mut queue: BTreeSet<(Instant, TorrentId)> = BTreeSet::new();
    let mut running: JoinSet<LookupDone> = JoinSet::new();
    loop {
        let now = Instant::now();
        while running.len() < MAX_LOOKUPS {
            let Some(&(at, id)) = queue.first() else {
                break;
            };
            if at > now {
                break;
            }
            queue.pop_first();
            let Some(f) = feeds.get_mut(&id) else {
                continue;
            };
            if f.mode == FeedMode::Off || f.running || f.next != at {
                continue;
            }
            f.running = true;
            let dht = dht.clone();
            let hash = Id20(f.info_hash.0);
            let announce = (f.mode != FeedMode::Metadata).then_some(port);
            running.spawn(async move {
                let r = match announce {
                    Some(p) => dht.announce(shoal_base::InfoHash(hash.0), Some(p)).await,
                    None => dht.get_peers(shoal_base::InfoHash(hash.0)).await,
                };
                match r {
                    Ok(r) => {
                        let ok = !r.closest.is_empty() && (announce.is_none() || r.stored > 0);
                        let mut peers = r.peers;
                        peers.truncate(MAX_PEERS_PER_LOOKUP);
                        (id, ok, peers)
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "dht: lookup failed");
                        (id, false, Vec::new())
                    }
                }
            });
        }
        let wake = queue.first().map(|(t, _)| *t);
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(FeedCmd::Set { id, info_hash, mode, sink }) => {
                    let f = feeds.entry(id).or_insert(Feed {
                        info_hash,
                        mode,
                        sink: sink.clone(),
                        next: now,
                        running: false,
                    });
                    let changed = f.mode != mode;
                    f.mode = mode;
                    f.sink = sink;
                    f.info_hash = info_hash;
                    if changed || !queue.contains(&(f.next, id)) {
                        queue.remove(&(f.next, id));
                        // A change of mode (download complete: announce as a
                        // seed; metadata arrived: announce) runs at once.
                        f.next = now;
                        if mode != FeedMode::Off && !f.running {
                            queue.insert((now, id));
                        }
                    }
                }
                Some(FeedCmd::Remove(id)) => {
                    if let Some(f) = feeds.remove(&id) {
                        queue.remove(&(f.next, id));
                    }
                }
            },
            Some(done) = running.join_next(), if !running.is_empty() => {
                let Ok((id, ok, peers)) = done else { continue };
                let Some(f) = feeds.get_mut(&id) else { continue };
                f.running = false;
                if !peers.is_empty() {
                    tracing::debug!(n = peers.len(), "dht: peers found");
                    let _ = f.sink.try_send(TorrentCmd::AddPeers(peers));
                }
                if f.mode == FeedMode::Off {
                    continue;
                }
                let mut wait = interval(f.mode);
                if !ok {
                    wait = wait.min(RETRY_INTERVAL);
                }
                f.next = Instant::now() + wait;
                queue.insert((f.next, id));
            }
            _ = sleep_until(wake) => {}
        }
    }
}

async fn sleep_until(t: Option<Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

/// One bootstrap attempt; returns the number of nodes in the table.
async fn join(dht: &Dht, s: &DhtSettings, saved: usize, state: Option<&Path>) -> usize {
    let run = async {
        let boot = bootstrap_addrs(s, dht.local_addr().is_ipv6()).await;
        let nodes = dht.bootstrap(&boot).await.unwrap_or(0);
        (boot.len(), nodes)
    };
    match tokio::time::timeout(BOOTSTRAP_TIMEOUT, run).await {
        Ok((addrs, nodes)) => {
            tracing::info!(
                "dht on {}: {nodes} nodes from {addrs} bootstrap addresses and {saved} saved",
                dht.local_addr()
            );
            if let Some(p) = state.filter(|_| nodes > 0) {
                if let Err(e) = dht.save_table(p).await {
                    tracing::warn!(error = %e, "cannot save the DHT state");
                }
            }
            nodes
        }
        Err(_) => {
            tracing::warn!("the DHT bootstrap timed out");
            0
        }
    }
}

/// The addresses to bootstrap from: the given ones of the socket's family,
/// else the public routers (resolved now) when allowed.
pub(crate) async fn bootstrap_addrs(s: &DhtSettings, v6: bool) -> Vec<SocketAddr> {
    if !s.bootstrap.is_empty() || !s.public_routers {
        return s
            .bootstrap
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

#[derive(Debug)]
enum StateLock {
    Held(std::fs::File),
    Busy,
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
async fn bind(
    listen: SocketAddr,
    state_file: Option<PathBuf>,
    shared: Option<super::udp::DhtPort>,
) -> Result<Dht, shoal_dht::DhtError> {
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
    if let Some(p) = shared {
        return Dht::with_socket(cfg(listen.port()), p.socket, p.inbound);
    }
    if listen.port() != 0 {
        if let Ok(d) = Dht::bind(cfg(listen.port())).await {
            return Ok(d);
        }
    }
    Dht::bind(cfg(0)).await
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[tokio::test]
    async fn explicit_bootstrap_replaces_the_routers_and_keeps_the_family() {
        let v4: SocketAddr = "127.0.0.1:7000".parse().unwrap();
        let v6: SocketAddr = "[::1]:7001".parse().unwrap();
        let s = DhtSettings {
            bootstrap: vec![v4, v6],
            public_routers: true,
            state_file: None,
        };
        assert_eq!(bootstrap_addrs(&s, false).await, vec![v4]);
        assert_eq!(bootstrap_addrs(&s, true).await, vec![v6]);
        // Nothing is resolved when the routers are off.
        let off = DhtSettings::default();
        assert!(bootstrap_addrs(&off, false).await.is_empty());
    }

    #[tokio::test]
    async fn the_node_binds_next_to_the_listener() {
        let port = {
            let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            s.local_addr().unwrap().port()
        };
        let at = SocketAddr::from(([127, 0, 0, 1], port));
        let node = SessionDht::start(&DhtSettings::default(), at, None)
            .await
            .unwrap();
        assert_eq!(node.dht().local_addr(), at);
        tokio::time::timeout(Duration::from_secs(10), node.bootstrapped())
            .await
            .unwrap();
        // Taken: another node falls back to any port on the same IP.
        let other = SessionDht::start(&DhtSettings::default(), at, None)
            .await
            .unwrap();
        assert_ne!(other.dht().local_addr().port(), port);
        other.shutdown().await;
        node.shutdown().await;
    }
}
