//! [`Daemon`]: the running service. It opens the state database, starts
//! the engine's session on it (every stored torrent comes back), serves
//! HTTP, follows the torrents' activity and watches a folder; it stops on
//! [`Daemon::shutdown`] (trackers told `stopped`, state saved).
//!
//! [`Shared`] is what the HTTP handlers, the watch folder and the activity
//! tracker share: the session, the store, the settings that change at run
//! time, and the operations every front end uses ([`Shared::add`]).
use crate::activity::ActivityTracker;
use crate::add::{AddError, AddRequest, Added};
use crate::config::DaemonConfig;
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use shoal_engine::{DhtSettings, Session, SessionConfig, SessionError, TorrentHandle, TorrentId};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DaemonError {
    /// The state database.
    #[error("state database: {0}")]
    Store(#[from] StoreError),
    /// The session (peer listener, saved torrents).
    #[error("session: {0}")]
    Session(#[from] SessionError),
    /// The HTTP port.
    #[error("cannot listen on {addr} for HTTP: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The built-in tracker (see [`crate::tracker`]).
    #[error("tracker: {0}")]
    Tracker(#[from] crate::tracker::TrackerError),
    /// A directory could not be created.
    #[error("{path}: {source}")]
    Dir {
        /// The directory.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

/// How long a removed torrent is reported to `recently-active` requests.
pub const RECENT: Duration = Duration::from_secs(60);

/// Request counters for `/metrics`.
#[derive(Debug, Default)]
pub struct HttpCounters {
    /// Transmission RPC calls answered.
    pub rpc: AtomicU64,
    /// REST calls answered.
    pub rest: AtomicU64,
    /// Requests refused (auth, host, origin, size, bad input).
    pub refused: AtomicU64,
}

/// What the front ends share. See the module docs.
pub struct Shared {
    /// The engine's session.
    pub session: Session,
    /// The state database.
    pub store: Store,
    /// The settings the daemon started with.
    pub config: DaemonConfig,
    /// Settings that change at run time (`session-set`).
    pub settings: RwLock<Settings>,
    /// Bandwidth groups (`group-set`).
    pub groups: crate::groups::GroupBook,
    /// Seconds active, dates, session traffic.
    pub activity: ActivityTracker,
    /// The `X-Transmission-Session-Id` of this run.
    pub session_id: String,
    /// When the daemon started.
    pub started: Instant,
    /// Torrents removed lately (id, when).
    pub removed: Mutex<VecDeque<(TorrentId, Instant)>>,
    /// Request counters.
    pub http: HttpCounters,
    /// Wrong credentials per client address (see [`crate::throttle`]).
    pub logins: crate::throttle::LoginThrottle,
    /// Cancelled when the daemon stops.
    pub cancel: CancellationToken,
    /// The flood search service (`None`: it could not start).
    pub flood: Option<crate::flood::FloodHandle>,
    /// The DHT index publisher's counters (`None`: off, or no DHT).
    pub publish: Option<Arc<crate::publish::PublishCounters>>,
    /// The built-in tracker (`None`: not configured).
    pub tracker: Option<Arc<shoal_search::TrackerNode>>,
}

impl Shared {
    /// Adds a torrent (see [`crate::add`]).
    pub async fn add(&self, req: AddRequest) -> Result<Added, AddError> {
        crate::add::add(self, req).await
    }

    /// Removes a torrent, with its data when asked.
    pub async fn remove(
        &self,
        h: &TorrentHandle,
        delete_data: bool,
    ) -> Result<(), shoal_engine::TorrentOpError> {
        let r = self.session.remove(h.id(), delete_data).await;
        let mut q = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        q.push_back((h.id(), Instant::now()));
        while q.front().is_some_and(|(_, t)| t.elapsed() > RECENT) {
            q.pop_front();
        }
        r
    }

    /// Ids removed within [`RECENT`].
    pub fn recently_removed(&self) -> Vec<TorrentId> {
        let q = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        q.iter()
            .filter(|(_, t)| t.elapsed() <= RECENT)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A torrent by numeric id or hex info-hash (40 or 64 digits).
    pub fn lookup(&self, key: &str) -> Option<TorrentHandle> {
        if let Ok(n) = key.parse::<u64>() {
            return self.session.torrent(TorrentId(n));
        }
        let bytes = hex::decode(key).ok()?;
        self.session.find(&bytes)
    }

    /// The settings now.
    pub fn settings(&self) -> Settings {
        self.settings
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The running daemon.
pub struct Daemon {
    shared: Arc<Shared>,
    http_addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl std::fmt::Debug for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("http", &self.http_addr)
            .finish_non_exhaustive()
    }
}

fn session_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..48)
        .map(|_| {
            let c = rng.gen_range(0..62u8);
            (match c {
                0..=9 => b'0' + c,
                10..=35 => b'a' + c - 10,
                _ => b'A' + c - 36,
            }) as char
        })
        .collect()
}

impl Daemon {
    /// Starts everything; returns once the HTTP port accepts connections
    /// and every stored torrent is back in the session.
    pub async fn start(config: DaemonConfig) -> Result<Daemon, DaemonError> {
        let store = {
            let dir = config.state_dir.clone();
            tokio::task::spawn_blocking(move || Store::open(&dir))
                .await
                .map_err(|e| StoreError::Db {
                    path: config.state_dir.clone(),
                    why: e.to_string(),
                })??
        };
        let cancel = CancellationToken::new();
        let (tracker, tracker_task) = match crate::tracker::start(&config, cancel.clone()).await {
            Ok(Some((node, task))) => (Some(node), Some(task)),
            Ok(None) => (None, None),
            Err(e) => {
                let _ = store.close();
                return Err(e.into());
            }
        };
        let settings = Settings::load(&config, &store);
        let session_config = SessionConfig {
            listen: config.listen,
            max_upload_rate: settings.upload_rate(),
            max_download_rate: settings.download_rate(),
            max_peers_per_torrent: config.peer_limit_per_torrent,
            max_connections: config.peer_limit_global,
            dht: config.dht.then(|| DhtSettings {
                bootstrap: config.dht_bootstrap.clone(),
                public_routers: config.default_bootstrap && config.dht_bootstrap.is_empty(),
                state_file: Some(config.state_dir.join("dht.json")),
            }),
            max_active_downloads: settings.queue_size(),
            seed_ratio: settings.seed_ratio(),
            seed_idle: settings.seed_idle(),
            enable_utp: config.utp,
            enable_tcp: config.tcp,
            enable_lsd: config.lsd,
            preallocate: config.preallocate,
            encryption: config.encryption.into(),
            // Flooding search (Gnutella) rides on every peer connection.
            extensions: if config.flood {
                vec![shoal_search::flood::EXTENSION_NAME]
            } else {
                Vec::new()
            },
            ..SessionConfig::default()
        };
        let session = match Session::start_with(session_config, Arc::new(store.clone())).await {
            Ok(s) => s,
            Err(e) => {
                let _ = store.close();
                return Err(e.into());
            }
        };
        let listener = match tokio::net::TcpListener::bind(config.http).await {
            Ok(l) => l,
            Err(source) => {
                session.shutdown().await;
                let _ = store.close();
                return Err(DaemonError::Bind {
                    addr: config.http,
                    source,
                });
            }
        };
        let http_addr = listener.local_addr().map_err(|source| DaemonError::Bind {
            addr: config.http,
            source,
        })?;
        let activity = ActivityTracker::load(&store);
        let groups = crate::groups::GroupBook::load(&store);
        groups.apply_all(&session);
        let flood = crate::flood::start(
            session.clone(),
            shoal_search::flood::FloodConfig::default(),
            cancel.clone(),
        );
        let (flood, flood_task) = match flood {
            Some((h, t)) => (Some(h), Some(t)),
            None => (None, None),
        };
        let publisher = if config.dht_publish {
            crate::publish::start(session.clone(), config.dht_publish_interval, cancel.clone())
        } else {
            None
        };
        let (publish, publish_task) = match publisher {
            Some((c, t)) => (Some(c), Some(t)),
            None => (None, None),
        };
        let shared = Arc::new(Shared {
            session,
            store,
            settings: RwLock::new(settings),
            groups,
            activity,
            session_id: session_id(),
            started: Instant::now(),
            removed: Mutex::new(VecDeque::new()),
            http: HttpCounters::default(),
            logins: Default::default(),
            cancel,
            flood,
            publish,
            tracker,
            config,
        });
        let mut tasks = JoinSet::new();
        if let Some(t) = flood_task {
            tasks.spawn(t);
        }
        if let Some(t) = publish_task {
            tasks.spawn(t);
        }
        if let Some(t) = tracker_task {
            tasks.spawn(t);
        }
        let router = crate::http::router(shared.clone());
        let cancel = shared.cancel.clone();
        tasks.spawn(async move {
            let serve = axum::serve(
                listener,
                router.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async move { cancel.cancelled().await });
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the HTTP server stopped");
            }
        });
        tasks.spawn(crate::activity::run(shared.clone()));
        tasks.spawn(crate::memory::run(shared.clone()));
        if let Some(dir) = shared.config.watch_dir.clone() {
            tasks.spawn(crate::watch::run(shared.clone(), dir));
        }
        tracing::info!(http = %http_addr, peers = %shared.session.local_addr(), torrents = shared.session.torrents().len(), "daemon started");
        Ok(Daemon {
            shared,
            http_addr,
            tasks,
        })
    }

    /// The address the HTTP server listens on.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The engine's session.
    pub fn session(&self) -> &Session {
        &self.shared.session
    }

    /// What the front ends share.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops serving, stops every torrent (trackers told `stopped`,
    /// resume data saved), saves the built-in tracker's state and closes
    /// the database.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        let bounded = tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if bounded.is_err() {
            self.tasks.abort_all();
        }
        self.shared.activity.save(&self.shared, true);
        self.shared.session.shutdown().await;
        // After the torrents' `stopped` announces, which may go to it.
        if let Some(t) = &self.shared.tracker {
            crate::tracker::save(t).await;
        }
        let store = self.shared.store.clone();
        let closed = tokio::task::spawn_blocking(move || store.close()).await;
        if let Ok(Err(e)) = closed {
            tracing::warn!(error = %e, "closing the state database");
        }
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A counter bump.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}
