//! [`Run`]: the thin tokio side of a [`TorrentCore`] while the torrent
//! transfers — its peer tasks and the channels they report on, the disk
//! actor, and the execution of the core's actions. The torrent's task
//! ([`super::task`]) owns a `Run` from the end of a check until a pause for
//! a recheck, a move or the end, and feeds it commands, peers and time.
use super::core::{Action, DiskVerdict, TorrentCore};
use crate::peer::{PeerCmd, PeerMsg, PeerShared, PeerTask};
use crate::picker::{PeerKey, BLOCK_SIZE};
use crate::session::SessionCtx;
use crate::smartban::BlockDigest;
use shoal_storage::{Disk, DiskConfig};
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

/// A byte stream a peer connection can run over (TCP, or in-memory in tests).
pub trait PeerStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> PeerStream for T {}

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
    info_hash: [u8; 20],
    write_budget: usize,
    /// What peer tasks and the disk report; made with the first peer, so an
    /// idle torrent holds no channel buffer.
    rx: Option<mpsc::Receiver<ToTorrent>>,
    tx: Option<mpsc::Sender<ToTorrent>>,
    links: HashMap<PeerKey, PeerLink>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
}

impl Run {
    pub(crate) fn new(
        core: TorrentCore,
        shared: Arc<PeerShared>,
        ctx: Arc<SessionCtx>,
        info_hash: [u8; 20],
    ) -> Self {
        Run {
            core,
            shared,
            write_budget: ctx.config.write_budget,
            ctx,
            info_hash,
            rx: None,
            tx: None,
            links: HashMap::new(),
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
        }
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

    /// The next report of a peer task or the disk (never, while no peer
    /// ever connected).
    pub(crate) async fn next(&mut self) -> Option<ToTorrent> {
        recv(&mut self.rx).await
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
            Some(self.core.have().clone()),
            Instant::now(),
        );
        let task = self.peer_task(key, addr, conn);
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
            Some(self.core.have().clone()),
            Instant::now(),
        );
        let task = self.peer_task(key, addr, conn);
        self.tasks.spawn(task.run(stream));
    }

    /// Starts the disk actor when a downloading torrent has its first peer
    /// (a seeding or lonely torrent needs none: blocks arrive only after a
    /// handshake and our requests).
    pub(crate) fn ensure_disk(&mut self) -> Result<(), shoal_storage::DiskError> {
        if self.shared.disk.get().is_some()
            || self.core.status().state != crate::TorrentState::Downloading
            || self.core.status().peers == 0
        {
            return Ok(());
        }
        let disk = Disk::spawn(
            self.shared.storage.clone(),
            self.core.verified(),
            DiskConfig {
                write_budget: self.write_budget,
                ..DiskConfig::default()
            },
        )?;
        let _ = self.shared.disk.set(disk);
        Ok(())
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
            }
        }
        while self.tasks.try_join_next().is_some() {}
        out
    }

    fn connect(&mut self, key: PeerKey, addr: SocketAddr) {
        let Ok(permit) = self.ctx.conns.total.clone().try_acquire_owned() else {
            // The session is full: the core backs off this address.
            let tx = self.sender();
            let reason = "session connection limit".to_string();
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
            Some(self.core.have().clone()),
            Instant::now(),
        );
        let task = self.peer_task(key, addr, conn);
        let timeout = self.ctx.config.connect_timeout;
        let half_open = self.ctx.conns.half_open.clone();
        self.tasks.spawn(async move {
            task.connect_and_run(timeout, half_open).await;
            drop(permit);
        });
    }

    fn conn_config(&self) -> ConnectionConfig {
        let mut c = ConnectionConfig {
            reserved: Reserved::shoal(false),
            max_outstanding_requests: 1000,
            ..ConnectionConfig::default()
        };
        // BEP 9: advertise the info dictionary so magnet leechers can fetch it.
        c.extension_handshake.metadata_size = Some(self.shared.info.len() as u64);
        // BEP 10 `p`, so peers can pass our listen address on (BEP 11);
        // BEP 27: no `ut_pex` at all for private torrents.
        c.extension_handshake.port = self.core.listen_port();
        if !self.core.pex_enabled() {
            c.extension_handshake
                .m
                .remove(shoal_wire::extension::UT_PEX);
        }
        c
    }

    fn peer_task(&mut self, key: PeerKey, addr: SocketAddr, conn: PeerConnection) -> PeerTask {
        let (ptx, prx) = mpsc::channel(PEER_CMD_QUEUE);
        let cancel = self.cancel.child_token();
        self.links.insert(
            key,
            PeerLink {
                tx: ptx,
                cancel: cancel.clone(),
            },
        );
        PeerTask {
            key,
            addr,
            conn,
            ours: self.core.have().clone(),
            cmds: prx,
            to_torrent: self.sender(),
            shared: self.shared.clone(),
            cancel,
            reported_uploaded: 0,
            written: Default::default(),
        }
    }

    fn read_digests(&mut self, piece: u32) {
        let storage = self.shared.storage.clone();
        let tx = self.sender();
        let Some(len) = storage.map().piece_len(piece) else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len as usize];
            if let Ok(true) = storage.read_into(piece, 0, &mut buf) {
                let good: Vec<BlockDigest> = buf
                    .chunks(BLOCK_SIZE as usize)
                    .map(|c| {
                        use sha1::Digest;
                        sha1::Sha1::digest(c).into()
                    })
                    .collect();
                let _ = tx.blocking_send(ToTorrent::Digests(piece, good));
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
        while self.core.poll_action().is_some() {}
        if let Some(disk) = self.shared.disk.get() {
            if let Err(e) = disk.shutdown().await {
                tracing::warn!(error = %e, "disk shutdown");
            }
        }
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
