//! [`Run`]: the thin tokio side of a [`TorrentCore`] while the torrent
//! transfers — its peer tasks and the channels they report on, the disk
//! actor, and the execution of the core's actions. The torrent's task
//! ([`super::task`]) owns a `Run` from the end of a check until a pause for
//! a recheck, a move or the end, and feeds it commands, peers and time.
use super::core::{Action, DiskVerdict, TorrentCore};
use crate::peer::{PeerCmd, PeerMsg, PeerShared, PeerTask};
use crate::picker::PeerKey;
use crate::session::SessionCtx;
use crate::smartban::BlockDigest;
use shoal_storage::{DiskEvent, EventSink};
use shoal_wire::{ConnectionConfig, HandshakePrefix, PeerConnection, Reserved};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A byte stream a peer connection can run over (TCP, uTP, MSE over
/// either, or in-memory in tests).
pub trait PeerStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {
    /// The TCP socket under the stream when bytes written to the stream
    /// reach that socket unchanged (plain TCP, or MSE with a plaintext
    /// payload): uploads may then go from files to the socket with
    /// `sendfile(2)`. `None` (the default) for anything else.
    fn plain_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
}

impl PeerStream for tokio::net::TcpStream {
    fn plain_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        Some(self.as_fd())
    }
}

impl PeerStream for shoal_utp::UtpStream {}

impl PeerStream for tokio::io::DuplexStream {}

impl<S: PeerStream> PeerStream for shoal_wire::mse::MseStream<S> {
    fn plain_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        // RC4 output is not the bytes written; a plaintext payload is.
        if self.encryption() == shoal_wire::mse::Encryption::Rc4 {
            return None;
        }
        self.get_ref().plain_socket()
    }
}

impl PeerStream for Box<dyn PeerStream> {
    fn plain_socket(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        (**self).plain_socket()
    }
}

/// What a peer task or the disk tells its torrent.
#[derive(Debug)]
pub(crate) enum ToTorrent {
    /// An event of peer `key`'s connection.
    Peer(PeerKey, PeerMsg),
    /// A disk verdict.
    Disk(DiskVerdict),
    /// The block digests of a verified piece, read back for smart ban.
    Digests(u32, Vec<BlockDigest>),
}

/// What [`Run::next_event`] yields.
pub(crate) enum RunEvent {
    /// A peer task's report.
    Peer(ToTorrent),
    /// The disk pool's event.
    Disk(DiskEvent),
}

/// Most commands queued to one peer task before it is closed as stuck.
const PEER_CMD_QUEUE: usize = 4096;
/// Bound on closing the peer tasks at the end of a run.
const PEERS_GRACE: Duration = Duration::from_secs(5);

/// Actions of the core that need the torrent's task (trackers, persistence).
#[derive(Debug)]
pub(crate) enum TaskAction {
    /// Store this verified-piece set.
    SaveResume(Vec<bool>),
    /// Tell the trackers the download completed.
    AnnounceCompleted,
    /// A magnet link's info dictionary arrived.
    Metadata(bytes::Bytes),
    /// The missing piece layers arrived.
    Layers(Vec<(usize, Vec<[u8; 32]>)>),
}

/// A live peer task as the driver reaches it.
struct PeerLink {
    tx: mpsc::Sender<PeerCmd>,
    cancel: CancellationToken,
}

/// The running side of a torrent. See the module docs.
pub(crate) struct Run {
    pub core: TorrentCore,
    pub shared: Arc<PeerShared>,
    ctx: Arc<SessionCtx>,
    info_hash: shoal_base::InfoHash,
    /// A v2-only torrent (hash requests allowed without the v2 bit).
    pub v2_only: bool,
    /// Verdicts and errors of the disk pool (made with the torrent's disk).
    disk_rx: Option<mpsc::UnboundedReceiver<DiskEvent>>,
    /// What peer tasks and the disk report; made with the first peer, so an
    /// idle torrent holds no channel buffer.
    rx: Option<mpsc::Receiver<ToTorrent>>,
    tx: Option<mpsc::Sender<ToTorrent>>,
    links: HashMap<PeerKey, PeerLink>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    /// A peer task ran in this run (connected, connecting or accepted).
    pub had_peers: bool,
}

impl Run {
    pub(crate) fn new(
        core: TorrentCore,
        shared: Arc<PeerShared>,
        ctx: Arc<SessionCtx>,
        info_hash: shoal_base::InfoHash,
    ) -> Self {
        Run {
            core,
            shared,
            disk_rx: None,
            v2_only: false,
            ctx,
            info_hash,
            rx: None,
            tx: None,
            links: HashMap::new(),
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
            had_peers: false,
        }
    }

    /// What we announce to new connection `key`: our pieces (none while it
    /// is super-seeded), or nothing while a magnet link's piece count is
    /// unknown.
    fn our_pieces(&self, key: PeerKey) -> Option<shoal_wire::Bitfield> {
        (!self.core.fetching_metadata()).then(|| self.core.announce_to(key))
    }

    /// The sending side of the report channel (made on first use).
    fn sender(&mut self) -> mpsc::Sender<ToTorrent> {
        if let Some(tx) = &self.tx {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(1024);
        self.tx = Some(tx.clone());
        self.rx = Some(rx);
        tx
    }

    /// Whether no peer task is linked (none connected nor connecting).
    pub(crate) fn has_no_peers(&self) -> bool {
        self.links.is_empty()
    }

    /// A report already waiting, if any.
    pub(crate) fn try_next(&mut self) -> Option<ToTorrent> {
        self.rx.as_mut().and_then(|r| r.try_recv().ok())
    }

    /// Feeds one message from a peer task or the disk.
    pub(crate) fn on_msg(&mut self, now: Instant, m: ToTorrent) {
        match m {
            ToTorrent::Peer(key, msg) => {
                if matches!(msg, PeerMsg::Closed { .. }) {
                    self.links.remove(&key);
                }
                if let (PeerMsg::Pex(m), Some(u)) = (&msg, &self.ctx.utp) {
                    u.learn_pex(m);
                }
                self.core.on_peer(now, key, msg);
            }
            ToTorrent::Disk(v) => self.core.on_disk(now, v),
            ToTorrent::Digests(piece, good) => self.core.on_digests(piece, &good),
        }
    }

    /// A connection from the listener whose handshake names this torrent.
    pub(crate) fn incoming(
        &mut self,
        stream: Box<dyn super::PeerStream>,
        prefix: HandshakePrefix,
        addr: SocketAddr,
        encrypted: bool,
        utp: bool,
    ) {
        let Ok(permit) = self.ctx.conns.total.clone().try_acquire_owned() else {
            return;
        };
        let Some(key) = self.core.accept_incoming(addr) else {
            return;
        };
        let conn = PeerConnection::incoming(
            self.conn_config(),
            prefix,
            self.ctx.peer_id,
            self.our_pieces(key),
            Instant::now(),
        );
        let mut task = self.peer_task(key, addr, conn);
        task.encrypted = encrypted;
        task.utp = utp;
        self.tasks.spawn(async move {
            task.run(stream).await;
            drop(permit);
        });
    }

    /// An outgoing connection over an established stream (tests).
    pub(crate) fn outgoing(&mut self, stream: Box<dyn super::PeerStream>, addr: SocketAddr) {
        let key = self.core.attach_outgoing(addr);
        let conn = PeerConnection::outgoing(
            self.conn_config(),
            self.info_hash,
            self.ctx.peer_id,
            self.our_pieces(key),
            Instant::now(),
        );
        let task = self.peer_task(key, addr, conn);
        self.tasks.spawn(task.run(stream));
    }

    /// Registers the torrent with the session's disk pool before its first
    /// connection (a torrent nobody talks to costs the pool nothing).
    /// Verdicts come back on their own unbounded channel: the pool's
    /// threads must never wait on a torrent.
    pub(crate) fn ensure_disk(&mut self) -> Result<(), shoal_storage::DiskError> {
        if self.shared.disk.get().is_some() {
            return Ok(());
        }
        // A magnet link without metadata has no storage yet.
        let Some(storage) = self.shared.storage.get().cloned() else {
            return Ok(());
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let sink: EventSink = Arc::new(move |e| {
            let _ = tx.send(e);
        });
        let disk = self
            .ctx
            .disk
            .add_torrent(storage, &self.core.verified(), sink)?;
        let _ = self.shared.disk.set(disk);
        self.disk_rx = Some(rx);
        Ok(())
    }

    /// The next report of a peer task or of the disk pool (never, before
    /// the first connection).
    pub(crate) async fn next_event(&mut self) -> RunEvent {
        loop {
            tokio::select! {
                Some(e) = recv_unbounded(&mut self.disk_rx) => return RunEvent::Disk(e),
                Some(m) = recv(&mut self.rx) => return RunEvent::Peer(m),
                else => std::future::pending::<()>().await,
            }
        }
    }

    /// Feeds one event of the disk pool.
    pub(crate) fn on_disk(&mut self, now: Instant, e: DiskEvent) {
        let v = match e {
            DiskEvent::PieceVerified(p) => DiskVerdict::Verified(p),
            DiskEvent::PieceFailed(p) => DiskVerdict::Failed(p),
            DiskEvent::Error { piece, error } => {
                tracing::warn!(?piece, error = %error, "disk error");
                if let Some(p) = piece {
                    self.core.on_disk(now, DiskVerdict::Lost(p));
                }
                if !error.should_pause() {
                    return;
                }
                DiskVerdict::Error(crate::TorrentError::from_storage(&error))
            }
            _ => return,
        };
        self.core.on_disk(now, v);
    }

    /// Carries out what the core asked for; returns what only the task can do.
    pub(crate) fn act(&mut self) -> Vec<TaskAction> {
        self.shared
            .digests
            .store(self.core.wants_block_digests(), Ordering::Relaxed);
        let mut out = Vec::new();
        while let Some(a) = self.core.poll_action() {
            match a {
                Action::Peer(key, cmd) => {
                    if let Some(l) = self.links.get(&key) {
                        if l.tx.try_send(cmd).is_err() {
                            tracing::debug!(key, "peer task not keeping up; closing it");
                            l.cancel.cancel();
                        }
                    }
                }
                Action::Close(key) => {
                    if let Some(l) = self.links.get(&key) {
                        l.cancel.cancel();
                    }
                }
                Action::Connect { key, addr } => self.connect(key, addr),
                Action::SaveResume(v) => out.push(TaskAction::SaveResume(v)),
                Action::ReadDigests(piece) => self.read_digests(piece),
                Action::AnnounceCompleted => out.push(TaskAction::AnnounceCompleted),
                Action::MetadataReady(info) => out.push(TaskAction::Metadata(info)),
                Action::LayersReady(l) => out.push(TaskAction::Layers(l)),
            }
        }
        while self.tasks.try_join_next().is_some() {}
        out
    }

    fn connect(&mut self, key: PeerKey, addr: SocketAddr) {
        let Ok(permit) = self.ctx.conns.total.clone().try_acquire_owned() else {
            // The session is full: the core backs off this address.
            let tx = self.sender();
            let reason = crate::peer_close::PeerClose::ConnectionLimit;
            self.tasks.spawn(async move {
                let _ = tx
                    .send(ToTorrent::Peer(key, PeerMsg::Closed { reason }))
                    .await;
            });
            return;
        };
        let conn = PeerConnection::outgoing(
            self.conn_config(),
            self.info_hash,
            self.ctx.peer_id,
            self.our_pieces(key),
            Instant::now(),
        );
        let task = self.peer_task(key, addr, conn);
        let dial = crate::session::utp::Dial::plan(
            self.ctx.config.enable_tcp,
            self.ctx.utp.as_ref(),
            addr,
            self.ctx.config.connect_timeout,
        );
        let utp = self.ctx.clone();
        let half_open = self.ctx.conns.half_open.clone();
        let mse = self.ctx.config.encryption.outgoing();
        let fallback = self.ctx.config.encryption == crate::EncryptionPolicy::Prefer;
        let rng = self.ctx.torrent_rng();
        self.tasks.spawn(async move {
            let dialed = task
                .connect_and_run(&dial, half_open, mse, fallback, rng)
                .await;
            if let Some(u) = &utp.utp {
                u.note(addr, dialed);
            }
            drop(permit);
        });
    }

    fn conn_config(&self) -> ConnectionConfig {
        let mut c = ConnectionConfig {
            reserved: Reserved::shoal(false),
            max_outstanding_requests: 1000,
            // A v2-only torrent may ask its peers for piece layers (BEP 52);
            // libtorrent leaves the v2 bit clear for such torrents.
            v2_messages: self.v2_only,
            ..ConnectionConfig::default()
        };
        // BEP 9: advertise the info dictionary so magnet leechers can fetch it.
        c.extension_handshake.metadata_size = self.shared.info.get().map(|i| i.len() as u64);
        // BEP 10 `p`, so peers can pass our listen address on (BEP 11);
        // BEP 27: no `ut_pex` at all for private torrents.
        c.extension_handshake.port = self.core.listen_port();
        if !self.core.pex_enabled() {
            c.extension_handshake
                .m
                .remove(shoal_wire::extension::UT_PEX);
        }
        if let Some(hub) = &self.ctx.ext {
            hub.advertise(&mut c.extension_handshake);
        }
        c
    }

    fn peer_task(&mut self, key: PeerKey, addr: SocketAddr, conn: PeerConnection) -> PeerTask {
        self.had_peers = true;
        if let Err(e) = self.ensure_disk() {
            tracing::warn!(error = %e, "registering with the disk pool");
        }
        let (ptx, prx) = mpsc::channel(PEER_CMD_QUEUE);
        let cancel = self.cancel.child_token();
        self.links.insert(
            key,
            PeerLink {
                tx: ptx,
                cancel: cancel.clone(),
            },
        );
        let ext = self
            .ctx
            .ext
            .as_ref()
            .map(|hub| hub.link(addr, *conn.info_hash()));
        PeerTask {
            key,
            addr,
            ext,
            conn,
            ours: self.core.have().clone(),
            allow_fast: !self.core.is_super_seeded(key),
            cmds: prx,
            to_torrent: self.sender(),
            shared: self.shared.clone(),
            cancel,
            reported_uploaded: 0,
            written: Default::default(),
            encrypted: false,
            utp: false,
        }
    }

    fn read_digests(&mut self, piece: u32) {
        let tx = self.sender();
        let Some(disk) = self.shared.disk.get().cloned() else {
            return;
        };
        self.tasks.spawn(async move {
            match disk.block_digests(piece).await {
                Ok(good) => {
                    let _ = tx.send(ToTorrent::Digests(piece, good)).await;
                }
                Err(e) => tracing::debug!(piece, error = %e, "reading back block digests"),
            }
        });
    }

    /// Ends the run: closes every connection (bounded), keeps the traffic
    /// totals exact, flushes the disk. Returns the verified-piece set.
    pub(crate) async fn stop(&mut self) -> Vec<bool> {
        let verified = self.core.shutdown();
        let _ = self.act();
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + PEERS_GRACE;
        loop {
            tokio::select! {
                j = self.tasks.join_next() => if j.is_none() { break },
                Some(m) = recv(&mut self.rx) => {
                    // Keep the traffic totals and the verdicts of pieces
                    // that completed meanwhile; everything else is moot now.
                    match m {
                        ToTorrent::Peer(key, msg @ PeerMsg::Stats { .. }) => {
                            self.core.on_peer(Instant::now(), key, msg)
                        }
                        ToTorrent::Disk(v @ DiskVerdict::Verified(_)) => {
                            self.core.on_disk(Instant::now(), v)
                        }
                        _ => {}
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        while let Some(Ok(m)) = self.rx.as_mut().map(|r| r.try_recv()) {
            if let ToTorrent::Disk(v @ DiskVerdict::Verified(_)) = m {
                self.core.on_disk(Instant::now(), v);
            }
        }
        // Buffered partial pieces go to disk; the torrent leaves the pool.
        if let Some(disk) = self.shared.disk.get() {
            if let Err(e) = disk.close().await {
                tracing::warn!(error = %e, "closing the torrent's disk");
            }
        }
        while let Some(Ok(e)) = self.disk_rx.as_mut().map(|r| r.try_recv()) {
            if let DiskEvent::PieceVerified(p) = e {
                self.core.on_disk(Instant::now(), DiskVerdict::Verified(p));
            }
        }
        while self.core.poll_action().is_some() {}
        drop(verified);
        self.core.verified()
    }
}

async fn recv<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_unbounded<T>(rx: &mut Option<mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
