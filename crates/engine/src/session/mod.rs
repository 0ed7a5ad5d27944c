//! The session: one per process, many torrents. It owns everything the
//! torrents share — the listener and the connection limits, the global rate
//! limits, the tracker client, the DHT node and its announce scheduler, the
//! persistence — and the table of torrents.
//!
//! [`Session`] is a cheap `Clone` handle. Mutations (add, remove, shutdown)
//! go through the session's run loop ([`actor`]); reads (a torrent's handle,
//! the snapshot of every torrent) come from a table the run loop publishes
//! and never wait on a torrent. Each torrent is a task of its own
//! ([`crate::torrent`]) that the caller reaches through a [`TorrentHandle`].
mod actor;
mod check_turns;
mod config;
pub mod dht;
mod listener;
mod lsd;
mod registry;
mod udp;
pub(crate) mod utp;

pub use config::{AddTorrentParams, EncryptionPolicy, SessionConfig, TorrentSource};
pub use dht::DhtSettings;

use crate::bandwidth::{BandwidthGroup, GroupError, Groups, SharedBucket};
use crate::error::{AddTorrentError, SessionError, TorrentOpError};
use crate::events::{SessionEvent, EVENT_QUEUE};
use crate::persist::{NoPersist, Persist};
use crate::rate::TokenBucket;
use crate::status::TorrentStatus;
use crate::torrent::TorrentHandle;
use actor::SessionCmd;
use dht::SessionDht;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use registry::Registry;
use shoal_metainfo::InfoHashes;
use shoal_tracker::{ClientConfig, TrackerClient};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

/// Saved torrents read ahead of the session while it restores them.
const RESTORE_BATCH: usize = 32;

/// The BEP 20 client prefix of our peer ids.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-SH0100-";

/// A torrent's id in its session: small, never reused within a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TorrentId(pub u64);

impl std::fmt::Display for TorrentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where [`Session::queue_move`] puts a torrent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMove {
    /// First.
    Top,
    /// One place earlier.
    Up,
    /// One place later.
    Down,
    /// Last.
    Bottom,
}

/// One line of [`Session::snapshot`].
#[derive(Debug, Clone)]
pub struct TorrentSummary {
    /// The torrent's id.
    pub id: TorrentId,
    /// Its info-hashes.
    pub info_hashes: InfoHashes,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: TorrentStatus,
}

/// Session-wide totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Torrents in the session.
    pub torrents: usize,
    /// Connected peers, all torrents.
    pub peers: usize,
    /// Download rate, all torrents, bytes/s.
    pub download_rate: u64,
    /// Upload rate, all torrents, bytes/s.
    pub upload_rate: u64,
    /// Payload bytes received, all torrents.
    pub downloaded: u64,
    /// Payload bytes sent, all torrents.
    pub uploaded: u64,
    /// Torrents dormant now (no transfer state held; see
    /// [`SessionConfig::dormant_after`]).
    pub dormant: usize,
}

/// The global connection limits every torrent draws from.
#[derive(Debug)]
pub(crate) struct ConnLimits {
    /// One permit per connection (connecting or connected).
    pub total: Arc<Semaphore>,
    /// One permit per outgoing connection still being set up.
    pub half_open: Arc<Semaphore>,
}

/// Session settings that can change while it runs.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LiveSettings {
    /// Downloads transferring at once (`None`: all).
    pub max_active_downloads: Option<usize>,
    /// Seeding stops at this ratio (unless a torrent has its own goal).
    pub seed_ratio: Option<f64>,
    /// Seeding stops after this long without uploading.
    pub seed_idle: Option<std::time::Duration>,
}

/// What the torrents of a session share.
pub(crate) struct SessionCtx {
    pub config: SessionConfig,
    pub peer_id: shoal_base::PeerId,
    pub local_addr: SocketAddr,
    pub up: SharedBucket,
    pub down: SharedBucket,
    /// Bandwidth groups by name.
    pub groups: Groups,
    /// Announces for every torrent (one task for the session).
    pub announces: shoal_tracker::AnnounceService,
    /// The runtime the session runs on: a parked torrent is spawned on it
    /// when it wakes, whichever thread sent the command that woke it.
    pub rt: tokio::runtime::Handle,
    pub persist: Arc<dyn Persist>,
    pub events: broadcast::Sender<SessionEvent>,
    pub conns: ConnLimits,
    pub dht: Option<SessionDht>,
    /// uTP on the session's UDP port (`None`: off, or the socket failed).
    pub utp: Option<utp::SessionUtp>,
    /// Local Service Discovery (`None`: off, or not possible here).
    pub lsd: Option<lsd::SessionLsd>,
    /// The one disk pool of every torrent.
    pub disk: shoal_storage::DiskPool,
    /// Torrents hashing data at once (a check is disk- and CPU-bound).
    pub checks: Arc<Semaphore>,
    /// Seeds the per-torrent RNGs.
    pub rng: Mutex<StdRng>,
    /// Settings that change while the session runs.
    pub live: std::sync::RwLock<LiveSettings>,
    /// Extra BEP 10 extensions (`None`: none configured).
    pub ext: Option<Arc<crate::extension::ExtHub>>,
    /// Torrents dormant now.
    pub dormant: std::sync::atomic::AtomicUsize,
}

impl SessionCtx {
    pub(crate) fn emit(&self, e: SessionEvent) {
        let _ = self.events.send(e);
    }

    pub(crate) fn live(&self) -> LiveSettings {
        *self.live.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn torrent_rng(&self) -> StdRng {
        let seed = self.rng.lock().unwrap_or_else(|e| e.into_inner()).gen();
        StdRng::seed_from_u64(seed)
    }
}

struct Inner {
    ctx: Arc<SessionCtx>,
    registry: Arc<Registry>,
    cmds: mpsc::Sender<SessionCmd>,
    cancel: CancellationToken,
    run: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// One process's BitTorrent node. See the module docs.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_addr", &self.inner.ctx.local_addr)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Starts a session that keeps nothing across restarts.
    pub async fn start(config: SessionConfig) -> Result<Session, SessionError> {
        Self::start_with(config, Arc::new(NoPersist)).await
    }

    /// Starts a session on `persist`: binds the listener, starts the DHT
    /// node (when configured) and adds every torrent `persist` holds.
    pub async fn start_with(
        config: SessionConfig,
        persist: Arc<dyn Persist>,
    ) -> Result<Session, SessionError> {
        let bind_err = |source| SessionError::Bind {
            addr: config.listen,
            source,
        };
        let listener = TcpListener::bind(config.listen).await.map_err(bind_err)?;
        let local_addr = listener.local_addr().map_err(bind_err)?;
        let mut rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let mut peer_id = [0u8; 20];
        peer_id[..8].copy_from_slice(PEER_ID_PREFIX);
        for b in peer_id.iter_mut().skip(8) {
            *b = rng.gen_range(b'0'..=b'z');
        }
        let (utp, dht_port, tracker_port) = if config.enable_utp {
            match udp::bind(local_addr, config.seed).await {
                Ok((socket, dht, tracker)) => {
                    (Some(utp::SessionUtp::new(socket)), Some(dht), Some(tracker))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "running without uTP");
                    (None, None, None)
                }
            }
        } else {
            (None, None, None)
        };
        // UDP trackers see the session's one port when there is one.
        let tracker = match tracker_port {
            Some(p) => TrackerClient::with_shared_udp(ClientConfig::default(), p)?,
            None => TrackerClient::new(ClientConfig::default())?,
        };
        let dht = match &config.dht {
            Some(s) => match SessionDht::start(s, local_addr, dht_port).await {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::warn!(error = %e, "running without the DHT");
                    None
                }
            },
            None => None,
        };
        let lsd = if config.enable_lsd {
            lsd::SessionLsd::start(local_addr, shoal_lsd::LsdConfig::default()).unwrap_or_else(
                |e| {
                    tracing::warn!(error = %e, "running without local peer discovery");
                    None
                },
            )
        } else {
            None
        };
        let (events, _) = broadcast::channel(EVENT_QUEUE);
        let disk = shoal_storage::DiskPool::new(shoal_storage::DiskPoolConfig {
            workers: config.disk_threads.max(1),
            budget: config.disk_budget,
            max_open_files: config.max_open_files,
            read_cache: config.read_cache,
            ..shoal_storage::DiskPoolConfig::default()
        })
        .map_err(SessionError::Disk)?;
        let ctx = Arc::new(SessionCtx {
            peer_id: shoal_base::PeerId(peer_id),
            local_addr,
            up: Arc::new(Mutex::new(TokenBucket::new(config.max_upload_rate))),
            down: Arc::new(Mutex::new(TokenBucket::new(config.max_download_rate))),
            groups: Groups::default(),
            rt: tokio::runtime::Handle::current(),
            announces: shoal_tracker::AnnounceService::spawn(
                tracker,
                crate::torrent::STOP_ANNOUNCE,
            ),
            persist: persist.clone(),
            events,
            conns: ConnLimits {
                total: Arc::new(Semaphore::new(config.max_connections.max(1))),
                half_open: Arc::new(Semaphore::new(config.max_half_open.max(1))),
            },
            dht,
            utp,
            lsd,
            disk,
            checks: Arc::new(Semaphore::new(1)),
            rng: Mutex::new(rng),
            live: std::sync::RwLock::new(LiveSettings {
                max_active_downloads: config.max_active_downloads,
                seed_ratio: config.seed_ratio,
                seed_idle: config.seed_idle,
            }),
            ext: crate::extension::ExtHub::new(&config.extensions),
            dormant: Default::default(),
            config,
        });
        let registry = Arc::new(Registry::default());
        let cancel = CancellationToken::new();
        let (tx, rx) = mpsc::channel(256);
        let run = tokio::spawn(actor::run(
            ctx.clone(),
            registry.clone(),
            rx,
            listener,
            cancel.clone(),
        ));
        let session = Session {
            inner: Arc::new(Inner {
                ctx,
                registry,
                cmds: tx,
                cancel,
                run: Mutex::new(Some(run)),
            }),
        };
        // Streamed, a few records at a time: loaded all at once, the
        // records of thousands of torrents were freed between the
        // torrents' own allocations, which kept the heap's pages.
        let (tx, mut saved) = mpsc::channel(RESTORE_BATCH);
        let loader = tokio::task::spawn_blocking(move || {
            persist.visit_torrents(&mut |rec| tx.blocking_send(rec).is_ok())
        });
        while let Some(rec) = saved.recv().await {
            if let Err(e) = session.add_record(rec).await {
                tracing::warn!(error = %e, "a saved torrent could not be added");
            }
        }
        loader.await.map_err(|_| {
            SessionError::Persist(crate::persist::PersistError::Corrupt(
                "loading the torrents panicked".into(),
            ))
        })??;
        Ok(session)
    }

    /// The address peers can connect to (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.ctx.local_addr
    }

    /// Our peer id (`-SH0100-` and 12 random characters).
    pub fn peer_id(&self) -> shoal_base::PeerId {
        self.inner.ctx.peer_id
    }

    /// The session's DHT node, when it runs one.
    pub fn dht(&self) -> Option<&shoal_dht::Dht> {
        self.inner.ctx.dht.as_ref().map(|d| d.dht())
    }

    /// The extra BEP 10 extensions of [`SessionConfig::extensions`]: their
    /// peers, inbound messages and sends (`None` when none is configured).
    pub fn extensions(&self) -> Option<crate::extension::Extensions> {
        self.inner
            .ctx
            .ext
            .clone()
            .map(crate::extension::Extensions::new)
    }

    /// Waits until the DHT node's first bootstrap attempt finished (at once
    /// without a DHT).
    pub async fn dht_bootstrapped(&self) {
        if let Some(d) = &self.inner.ctx.dht {
            d.bootstrapped().await;
        }
    }

    /// Adds a torrent, a magnet link or a bare info-hash. Returns at once:
    /// the data is checked (and a magnet's metadata fetched) in the
    /// background; watch the handle or the event stream.
    pub async fn add(&self, params: AddTorrentParams) -> Result<TorrentHandle, AddTorrentError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .cmds
            .send(SessionCmd::Add {
                params: Box::new(params),
                reply,
            })
            .await
            .map_err(|_| AddTorrentError::SessionClosed)?;
        rx.await.map_err(|_| AddTorrentError::SessionClosed)?
    }

    async fn add_record(
        &self,
        rec: crate::persist::TorrentRecord,
    ) -> Result<TorrentHandle, AddTorrentError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .cmds
            .send(SessionCmd::Restore {
                record: Box::new(rec),
                reply,
            })
            .await
            .map_err(|_| AddTorrentError::SessionClosed)?;
        rx.await.map_err(|_| AddTorrentError::SessionClosed)?
    }

    /// Removes a torrent: stops it (trackers are told) and, with
    /// `delete_data`, deletes its files.
    pub async fn remove(&self, id: TorrentId, delete_data: bool) -> Result<(), TorrentOpError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .cmds
            .send(SessionCmd::Remove {
                id,
                delete_data,
                reply,
            })
            .await
            .map_err(|_| TorrentOpError::Stopped)?;
        rx.await.map_err(|_| TorrentOpError::Stopped)?
    }

    /// The handle of torrent `id`.
    pub fn torrent(&self, id: TorrentId) -> Option<TorrentHandle> {
        self.inner.registry.get(id)
    }

    /// The torrent with this info-hash: 20 bytes (v1, or a v2 truncated) or
    /// 32 bytes (v2). A hybrid torrent is found by either.
    pub fn find(&self, hash: &[u8]) -> Option<TorrentHandle> {
        self.inner.registry.find(hash)
    }

    /// Handles of every torrent, by id.
    pub fn torrents(&self) -> Vec<TorrentHandle> {
        self.inner.registry.all()
    }

    /// How many torrents the session holds (no handle is copied).
    pub fn torrent_count(&self) -> usize {
        self.inner.registry.len()
    }

    /// How many torrents are dormant now (see [`SessionStats::dormant`]).
    pub fn dormant_count(&self) -> usize {
        self.inner
            .ctx
            .dormant
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The status of every torrent, without asking any of them.
    pub fn snapshot(&self) -> Vec<TorrentSummary> {
        self.inner
            .registry
            .all()
            .into_iter()
            .map(|h| TorrentSummary {
                id: h.id(),
                info_hashes: h.info_hashes(),
                name: h.meta.borrow().name.clone(),
                status: h.status(),
            })
            .collect()
    }

    /// Counters of the session's disk pool (budget, partial pieces, cache).
    pub fn disk_stats(&self) -> shoal_storage::PoolStats {
        self.inner.ctx.disk.stats()
    }

    /// Totals over every torrent.
    pub fn stats(&self) -> SessionStats {
        let mut s = SessionStats::default();
        for h in self.inner.registry.all() {
            let st = h.status.borrow();
            s.torrents += 1;
            s.peers += st.peers;
            s.download_rate += st.download_rate;
            s.upload_rate += st.upload_rate;
            s.downloaded += st.downloaded;
            s.uploaded += st.uploaded;
        }
        s.dormant = self
            .inner
            .ctx
            .dormant
            .load(std::sync::atomic::Ordering::Relaxed);
        s
    }

    /// The event stream of every torrent (see [`crate::events`]).
    pub fn subscribe(&self) -> broadcast::Receiver<SessionEvent> {
        self.inner.ctx.events.subscribe()
    }

    /// Changes the session-wide rate limits (bytes/s; `None`: unlimited).
    pub fn set_rate_limits(&self, upload: Option<u64>, download: Option<u64>) {
        if let Ok(mut b) = self.inner.ctx.up.lock() {
            b.set_rate(upload);
        }
        if let Ok(mut b) = self.inner.ctx.down.lock() {
            b.set_rate(download);
        }
    }

    /// Creates or changes the bandwidth group `name`; its torrents follow
    /// at once.
    pub fn set_bandwidth_group(&self, name: &str, group: BandwidthGroup) -> Result<(), GroupError> {
        self.inner.ctx.groups.set(name, group)
    }

    /// Every bandwidth group, by name (created by
    /// [`Session::set_bandwidth_group`] or by naming one for a torrent).
    pub fn bandwidth_groups(&self) -> Vec<(String, BandwidthGroup)> {
        self.inner.ctx.groups.list()
    }

    /// The settings that can change while the session runs.
    pub fn live_settings(&self) -> LiveSettings {
        self.inner.ctx.live()
    }

    /// Changes the download queue size and the seeding goals; torrents
    /// follow at once.
    pub async fn set_live_settings(&self, s: LiveSettings) {
        *self
            .inner
            .ctx
            .live
            .write()
            .unwrap_or_else(|e| e.into_inner()) = s;
        let _ = self.inner.cmds.send(SessionCmd::Reconcile).await;
        for h in self.inner.registry.all() {
            let _ = h.tx.try_send(crate::torrent::TorrentCmd::SettingsChanged);
        }
    }

    /// Moves a torrent in the download queue.
    pub async fn queue_move(&self, id: TorrentId, to: QueueMove) -> Result<(), TorrentOpError> {
        let (reply, rx) = oneshot::channel();
        self.inner
            .cmds
            .send(SessionCmd::QueueMove { id, to, reply })
            .await
            .map_err(|_| TorrentOpError::Stopped)?;
        rx.await.map_err(|_| TorrentOpError::Stopped)?
    }

    /// The session-wide rate limits (upload, download).
    pub fn rate_limits(&self) -> (Option<u64>, Option<u64>) {
        let up = self.inner.ctx.up.lock().ok().and_then(|b| b.rate());
        let down = self.inner.ctx.down.lock().ok().and_then(|b| b.rate());
        (up, down)
    }

    /// Stops every torrent (trackers told `stopped`, resume data saved; each
    /// bounded in time), the listener and the DHT node (table saved).
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self
            .inner
            .cmds
            .send(SessionCmd::Shutdown { reply })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        self.inner.cancel.cancel();
        let run = self.inner.run.lock().ok().and_then(|mut r| r.take());
        if let Some(r) = run {
            let _ = r.await;
        }
        if let Some(d) = &self.inner.ctx.dht {
            d.shutdown().await;
        }
        if let Some(l) = &self.inner.ctx.lsd {
            l.shutdown();
        }
    }
}
