//! The session: one per process. Owns the listen socket (incoming
//! connections are routed by the info-hash in their handshake), the peer id,
//! the session-wide rate limits and the torrents.
//!
//! The listener is its own task that owns the routing table; torrents are
//! actors reached through [`TorrentHandle`]s.
use crate::error::{AddTorrentError, SessionError};
use crate::layout::{piece_priorities, storage_layout, FileSelection};
use crate::peer::{PeerShared, SharedBucket};
use crate::picker::PiecePicker;
use crate::rate::TokenBucket;
use crate::status::{TorrentState, TorrentStatus};
use crate::torrent::{
    CoreInit, CoreLimits, Counters, DriverInit, PeerStream, TorrentCmd, TorrentCore, TorrentDriver,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_metainfo::Torrent;
use shoal_storage::{CheckProgress, Disk, DiskConfig, Storage, StorageOptions};
use shoal_tracker::{
    spawn_announcer, AnnounceRequest, Announcer, AnnouncerConfig, ClientConfig, TrackerClient,
};
use shoal_wire::HandshakePrefix;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The BEP 20 client prefix of our peer ids.
pub const PEER_ID_PREFIX: &[u8; 8] = b"-SH0100-";

/// Settings of a [`Session`].
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// TCP address to accept peers on (port 0 picks one; see [`Session::local_addr`]).
    pub listen: SocketAddr,
    /// Session-wide upload limit in bytes/s (`None`: unlimited).
    pub max_upload_rate: Option<u64>,
    /// Session-wide download limit in bytes/s (`None`: unlimited).
    pub max_download_rate: Option<u64>,
    /// Most connections per torrent.
    pub max_peers_per_torrent: usize,
    /// Regular upload slots per torrent (plus one optimistic).
    pub upload_slots: usize,
    /// Bytes of received block data buffered in memory per torrent.
    pub write_budget: usize,
    /// Seed for the session's RNG (peer id, tie-breaking); random when `None`.
    pub seed: Option<u64>,
    /// Time between two BEP 11 `ut_pex` messages to one peer (60 s; BEP 11
    /// allows no less against real clients, tests shorten it). Incoming
    /// messages are honoured at most every 3/4 of it.
    pub pex_interval: Duration,
    /// Write downloaded data with `O_DIRECT` where the filesystem allows it,
    /// bypassing the page cache (see `shoal_storage::StorageOptions`).
    /// Default `true`; `false` writes everything through the page cache.
    pub direct_io: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 6881)),
            max_upload_rate: None,
            max_download_rate: None,
            max_peers_per_torrent: 50,
            upload_slots: 8,
            write_budget: 4 << 20,
            seed: None,
            pex_interval: Duration::from_secs(60),
            direct_io: true,
        }
    }
}

/// What to add to a session.
#[derive(Debug, Clone)]
pub struct AddTorrentParams {
    /// The parsed torrent.
    pub torrent: Arc<Torrent>,
    /// Directory the torrent's files live under (libtorrent's save path).
    pub save_path: PathBuf,
    /// Which files to fetch.
    pub selection: FileSelection,
    /// Peers to connect to at once.
    pub peers: Vec<SocketAddr>,
    /// Trackers to use besides the torrent's own (each its own tier).
    pub extra_trackers: Vec<String>,
}

/// A handle to a running torrent; cheap to clone.
#[derive(Clone)]
pub struct TorrentHandle {
    info_hash: [u8; 20],
    tx: mpsc::Sender<TorrentCmd>,
    status: watch::Receiver<TorrentStatus>,
}

impl std::fmt::Debug for TorrentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentHandle")
            .field("info_hash", &self.info_hash)
            .finish_non_exhaustive()
    }
}

impl TorrentHandle {
    /// The 20-byte info-hash used on the wire.
    pub fn info_hash(&self) -> [u8; 20] {
        self.info_hash
    }

    /// The latest status snapshot.
    pub fn status(&self) -> TorrentStatus {
        self.status.borrow().clone()
    }

    /// A receiver that wakes on every status update.
    pub fn subscribe(&self) -> watch::Receiver<TorrentStatus> {
        self.status.clone()
    }

    /// Waits until `pred` holds for the status (or the torrent stops).
    pub async fn wait_for(&self, mut pred: impl FnMut(&TorrentStatus) -> bool) -> TorrentStatus {
        let mut rx = self.status.clone();
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) || s.state == TorrentState::Stopped {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    /// Adds peer addresses to connect to.
    pub async fn add_peers(&self, peers: Vec<SocketAddr>) {
        let _ = self.tx.send(TorrentCmd::AddPeers(peers)).await;
    }

    /// Runs an outgoing peer connection over an already connected stream
    /// (in-memory streams in tests; `addr` names the remote side).
    pub async fn connect_stream<S: PeerStream>(&self, stream: S, addr: SocketAddr) {
        let _ = self
            .tx
            .send(TorrentCmd::Outgoing {
                stream: Box::new(stream),
                addr,
            })
            .await;
    }

    /// Accepts an incoming peer connection over `stream` (its handshake is
    /// read here, bounded in time, and must name this torrent).
    pub async fn accept_stream<S: PeerStream>(&self, mut stream: S, addr: SocketAddr) {
        let prefix = tokio::time::timeout(
            Duration::from_secs(10),
            shoal_wire::tokio_io::read_handshake_prefix(&mut stream),
        )
        .await;
        if let Ok(Ok(prefix)) = prefix {
            if prefix.info_hash == self.info_hash {
                let _ = self
                    .tx
                    .send(TorrentCmd::Incoming {
                        stream: Box::new(stream),
                        prefix,
                        addr,
                    })
                    .await;
            }
        }
    }

    /// Stops the torrent: closes peers, sends `stopped` to trackers (bounded
    /// in time), flushes data and saves the resume file.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(TorrentCmd::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

enum ListenerCmd {
    Route([u8; 20], mpsc::Sender<TorrentCmd>),
}

/// One process's BitTorrent node. See the module docs.
pub struct Session {
    config: SessionConfig,
    local_addr: SocketAddr,
    peer_id: [u8; 20],
    up: SharedBucket,
    down: SharedBucket,
    routes: mpsc::Sender<ListenerCmd>,
    cancel: CancellationToken,
    listener: Option<JoinHandle<()>>,
    torrents: HashMap<[u8; 20], TorrentHandle>,
    rng: StdRng,
    tracker_client: Option<TrackerClient>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Binds the listen socket and starts accepting peers.
    pub async fn start(config: SessionConfig) -> Result<Session, SessionError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| SessionError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr().map_err(|source| SessionError::Bind {
            addr: config.listen,
            source,
        })?;
        let mut rng = match config.seed {
            Some(s) => StdRng::seed_from_u64(s),
            None => StdRng::from_entropy(),
        };
        let mut peer_id = [0u8; 20];
        peer_id[..8].copy_from_slice(PEER_ID_PREFIX);
        for b in peer_id.iter_mut().skip(8) {
            *b = rng.gen_range(b'0'..=b'z');
        }
        let cancel = CancellationToken::new();
        let (rtx, rrx) = mpsc::channel(64);
        let task = tokio::spawn(listen_loop(listener, rrx, cancel.clone()));
        Ok(Session {
            up: Arc::new(Mutex::new(TokenBucket::new(config.max_upload_rate))),
            down: Arc::new(Mutex::new(TokenBucket::new(config.max_download_rate))),
            config,
            local_addr,
            peer_id,
            routes: rtx,
            cancel,
            listener: Some(task),
            torrents: HashMap::new(),
            rng,
            tracker_client: None,
        })
    }

    /// The address peers can connect to (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Our peer id (`-SH0100-` and 12 random characters).
    pub fn peer_id(&self) -> [u8; 20] {
        self.peer_id
    }

    /// The torrents in the session.
    pub fn torrents(&self) -> impl Iterator<Item = &TorrentHandle> {
        self.torrents.values()
    }

    /// Opens the torrent's storage under `save_path`, checks what is already
    /// there (resume file, else hashing on all cores; `progress` is called
    /// from worker threads), and starts transferring.
    pub async fn add_torrent(
        &mut self,
        params: AddTorrentParams,
        progress: Arc<dyn Fn(CheckProgress) + Send + Sync>,
    ) -> Result<TorrentHandle, AddTorrentError> {
        let t = params.torrent.clone();
        let info_hash = t.info_hashes().primary().0;
        if self.torrents.contains_key(&info_hash) {
            return Err(AddTorrentError::Duplicate(
                t.info_hashes().primary().to_hex(),
            ));
        }
        let layout = storage_layout(&t)?;
        // The piece space (a v2-only layout ends with a pad to a piece boundary).
        let total_length = layout.total_length;
        let wanted = params.selection.wanted_files(&t)?;
        let prio = piece_priorities(&t, &wanted);
        let piece_length = u32::try_from(t.piece_length()).map_err(|_| AddTorrentError::V2Only)?;
        let opts = StorageOptions {
            name: t.info_hashes().primary().to_hex(),
            direct_io: self.config.direct_io,
            ..StorageOptions::default()
        };
        let storage = Arc::new(Storage::open(layout, params.save_path.clone(), opts)?);
        let st = storage.clone();
        let unwanted: Vec<usize> = t
            .files()
            .iter()
            .enumerate()
            .filter(|(i, f)| !f.pad && !wanted.get(*i).copied().unwrap_or(false))
            .map(|(i, _)| i)
            .collect();
        let checked = tokio::task::spawn_blocking(move || {
            for i in unwanted {
                st.set_file_wanted(i, false)?;
            }
            st.resume_or_check(&*progress)
        })
        .await
        .map_err(|_| AddTorrentError::SessionClosed)??;
        let disk = Disk::spawn(
            storage,
            checked.verified.clone(),
            DiskConfig {
                write_budget: self.config.write_budget,
                ..DiskConfig::default()
            },
        )?;
        let mut picker = PiecePicker::new(piece_length, total_length);
        for (i, &p) in prio.iter().enumerate() {
            picker.set_priority(i as u32, p);
        }
        let mut status = TorrentStatus {
            pieces: picker.num_pieces(),
            pieces_checked_at_start: checked.pieces_checked,
            ..TorrentStatus::default()
        };
        for (i, &v) in checked.verified.iter().enumerate() {
            if v {
                picker.set_have(i as u32);
                status.pieces_have += 1;
            }
        }
        for p in 0..picker.num_pieces() {
            if picker.priority(p) > 0 {
                let len = u64::from(picker.piece_len(p));
                status.wanted_bytes += len;
                if picker.has(p) {
                    status.verified_wanted_bytes += len;
                }
            }
        }
        if picker.is_complete() {
            status.state = TorrentState::Seeding;
        }
        let counters = Arc::new(Counters::default());
        counters.left.store(
            status.wanted_bytes - status.verified_wanted_bytes,
            Ordering::Relaxed,
        );
        // Trackers: the torrent's tiers, then each extra one as its own tier.
        let mut tiers: Vec<Vec<String>> = t.trackers().to_vec();
        for u in &params.extra_trackers {
            tiers.push(vec![u.clone()]);
        }
        let announcer = if tiers.iter().all(|t| t.is_empty()) {
            None
        } else {
            let client = match &self.tracker_client {
                Some(c) => c.clone(),
                None => {
                    let c = TrackerClient::new(ClientConfig::default())?;
                    self.tracker_client = Some(c.clone());
                    c
                }
            };
            let ann = Announcer::new(
                tiers,
                AnnouncerConfig::default(),
                &mut self.rng,
                std::time::Instant::now(),
            );
            let c = counters.clone();
            let peer_id = self.peer_id;
            let port = self.local_addr.port();
            let key: u32 = self.rng.gen();
            let (atx, arx) = mpsc::channel(16);
            let h = spawn_announcer(
                ann,
                client,
                move || {
                    let mut r = AnnounceRequest::new(
                        info_hash,
                        peer_id,
                        port,
                        c.left.load(Ordering::Relaxed),
                    );
                    r.uploaded = c.uploaded.load(Ordering::Relaxed);
                    r.downloaded = c.downloaded.load(Ordering::Relaxed);
                    r.key = key;
                    r.numwant = Some(50);
                    r
                },
                atx,
                Duration::from_secs(3),
            );
            Some((h, arx))
        };
        let (ctx, crx) = mpsc::channel(256);
        let shared = Arc::new(PeerShared {
            disk: disk.clone(),
            up_bucket: self.up.clone(),
            down_bucket: self.down.clone(),
            digests: Arc::new(AtomicBool::new(false)),
            info: bytes::Bytes::copy_from_slice(t.info_bytes()),
            hash_trees: crate::peer::hash_trees(&t),
        });
        let now = std::time::Instant::now();
        let core = TorrentCore::new(
            CoreInit {
                peer_id: self.peer_id,
                picker,
                limits: CoreLimits {
                    max_peers: self.config.max_peers_per_torrent,
                    max_connecting: 10,
                    upload_slots: self.config.upload_slots,
                },
                rng: StdRng::seed_from_u64(self.rng.gen()),
                status,
                pex: crate::pex::PeerExchange::new(
                    crate::pex::PexConfig::with_interval(self.config.pex_interval),
                    !t.is_private(),
                    self.local_addr,
                ),
            },
            now,
        );
        let (stx, srx) = watch::channel(core.status().clone());
        let actor = TorrentDriver::new(DriverInit {
            core,
            info_hash,
            peer_id: self.peer_id,
            disk,
            shared,
            connect_timeout: Duration::from_secs(10),
            status: stx,
            cmds: crx,
            announcer,
            counters,
        });
        tokio::spawn(actor.run());
        let handle = TorrentHandle {
            info_hash,
            tx: ctx.clone(),
            status: srx,
        };
        let _ = self.routes.send(ListenerCmd::Route(info_hash, ctx)).await;
        if !params.peers.is_empty() {
            handle.add_peers(params.peers).await;
        }
        self.torrents.insert(info_hash, handle.clone());
        Ok(handle)
    }

    /// Stops every torrent (bounded in time) and the listener.
    pub async fn shutdown(mut self) {
        let handles: Vec<TorrentHandle> = self.torrents.drain().map(|(_, h)| h).collect();
        for h in &handles {
            h.shutdown().await;
        }
        self.cancel.cancel();
        if let Some(l) = self.listener.take() {
            let _ = l.await;
        }
    }
}

type Accepted = (TcpStream, HandshakePrefix, SocketAddr);

async fn listen_loop(
    listener: TcpListener,
    mut cmds: mpsc::Receiver<ListenerCmd>,
    cancel: CancellationToken,
) {
    let mut routes: HashMap<[u8; 20], mpsc::Sender<TorrentCmd>> = HashMap::new();
    let (htx, mut hrx) = mpsc::channel::<Accepted>(64);
    let mut handshakes = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            Some(cmd) = cmds.recv() => match cmd {
                ListenerCmd::Route(h, tx) => { routes.insert(h, tx); }
            },
            Some((stream, prefix, addr)) = hrx.recv() => {
                if let Some(tx) = routes.get(&prefix.info_hash) {
                    let _ = tx.try_send(TorrentCmd::Incoming { stream: Box::new(stream), prefix, addr });
                }
            }
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            acc = listener.accept() => match acc {
                Ok((mut stream, addr)) => {
                    if handshakes.len() >= 64 {
                        continue;
                    }
                    let _ = stream.set_nodelay(true);
                    let htx = htx.clone();
                    handshakes.spawn(async move {
                        let r = tokio::time::timeout(
                            Duration::from_secs(10),
                            shoal_wire::tokio_io::read_handshake_prefix(&mut stream),
                        )
                        .await;
                        if let Ok(Ok(prefix)) = r {
                            let _ = htx.send((stream, prefix, addr)).await;
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    handshakes.abort_all();
}
