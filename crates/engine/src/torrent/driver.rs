//! The thin tokio driver of a [`TorrentCore`]: one task per torrent that
//! feeds the core its inputs (commands, peer events, disk verdicts, tracker
//! answers, timer expiries) with the current time and carries out its
//! actions (commands to peer tasks, dials, resume saves, digest reads).
//!
//! The task sleeps until the core's next deadline; an idle torrent's task
//! waits on its inbox alone.
use super::core::{Action, DiskVerdict, PeerSource, TorrentCore};
use crate::peer::{PeerCmd, PeerMsg, PeerShared, PeerTask};
use crate::picker::{PeerKey, BLOCK_SIZE};
use crate::smartban::BlockDigest;
use crate::status::{TorrentState, TorrentStatus};
use shoal_storage::DiskHandle;
use shoal_tracker::{AnnounceOutcome, AnnouncerHandle};
use shoal_wire::{ConnectionConfig, HandshakePrefix, PeerConnection, Reserved};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// A byte stream a peer connection can run over (TCP, or in-memory in tests).
pub trait PeerStream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> PeerStream for T {}

/// Commands to a torrent's task.
pub(crate) enum TorrentCmd {
    /// A connection whose handshake prefix names this torrent.
    Incoming {
        stream: Box<dyn PeerStream>,
        prefix: HandshakePrefix,
        addr: SocketAddr,
    },
    /// An outgoing connection over an established stream (tests).
    Outgoing {
        stream: Box<dyn PeerStream>,
        addr: SocketAddr,
    },
    /// Addresses to connect to.
    AddPeers(Vec<SocketAddr>),
    /// Stop: close peers, announce `stopped`, save resume data.
    Shutdown(oneshot::Sender<()>),
}

/// What a peer task or the disk tells its torrent.
#[derive(Debug)]
pub(crate) enum ToTorrent {
    /// An event of peer `key`'s connection.
    Peer(PeerKey, PeerMsg),
    /// A disk verdict.
    Disk(DiskVerdict),
}

/// Most commands queued to one peer task before it is closed as stuck.
const PEER_CMD_QUEUE: usize = 4096;

/// Byte counters the announcer closure reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub left: AtomicU64,
}

/// A live peer task as the driver reaches it.
struct PeerLink {
    tx: mpsc::Sender<PeerCmd>,
    cancel: CancellationToken,
}

/// Everything a driver needs, built by the session.
pub(crate) struct DriverInit {
    pub core: TorrentCore,
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub disk: DiskHandle,
    pub shared: Arc<PeerShared>,
    pub connect_timeout: Duration,
    pub status: watch::Sender<TorrentStatus>,
    pub cmds: mpsc::Receiver<TorrentCmd>,
    pub announcer: Option<(AnnouncerHandle, mpsc::Receiver<AnnounceOutcome>)>,
    pub counters: Arc<Counters>,
}

/// The task around one torrent core. See the module docs.
pub(crate) struct TorrentDriver {
    core: TorrentCore,
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    disk: DiskHandle,
    shared: Arc<PeerShared>,
    connect_timeout: Duration,
    status_tx: watch::Sender<TorrentStatus>,
    cmds: mpsc::Receiver<TorrentCmd>,
    rx: mpsc::Receiver<ToTorrent>,
    tx: mpsc::Sender<ToTorrent>,
    announcer: Option<AnnouncerHandle>,
    ann_rx: Option<mpsc::Receiver<AnnounceOutcome>>,
    counters: Arc<Counters>,
    links: HashMap<PeerKey, PeerLink>,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    digests_tx: mpsc::Sender<(u32, Vec<BlockDigest>)>,
    digests_rx: mpsc::Receiver<(u32, Vec<BlockDigest>)>,
}

impl TorrentDriver {
    pub(crate) fn new(init: DriverInit) -> Self {
        let (tx, rx) = mpsc::channel(1024);
        let (digests_tx, digests_rx) = mpsc::channel(16);
        let (announcer, ann_rx) = match init.announcer {
            Some((h, r)) => (Some(h), Some(r)),
            None => (None, None),
        };
        TorrentDriver {
            core: init.core,
            info_hash: init.info_hash,
            peer_id: init.peer_id,
            disk: init.disk,
            shared: init.shared,
            connect_timeout: init.connect_timeout,
            status_tx: init.status,
            cmds: init.cmds,
            rx,
            tx,
            announcer,
            ann_rx,
            counters: init.counters,
            links: HashMap::new(),
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
            digests_tx,
            digests_rx,
        }
    }

    /// The run loop; returns after a shutdown command (or when every handle
    /// is gone).
    pub(crate) async fn run(mut self) {
        loop {
            let deadline = self.core.poll_timeout();
            tokio::select! {
                cmd = self.cmds.recv() => match cmd {
                    Some(TorrentCmd::Shutdown(reply)) => {
                        self.shutdown().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(cmd) => self.on_cmd(cmd),
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                Some(m) = self.rx.recv() => {
                    let now = Instant::now();
                    self.on_msg(now, m);
                    // Drain a burst before acting.
                    for _ in 0..256 {
                        match self.rx.try_recv() {
                            Ok(m) => self.on_msg(now, m),
                            Err(_) => break,
                        }
                    }
                }
                Some(o) = recv_opt(&mut self.ann_rx) => {
                    if let Ok(resp) = &o.result {
                        tracing::debug!(url = %o.url, peers = resp.peers.len(), "announce ok");
                    }
                    match o.result {
                        Ok(resp) => self.core.add_addrs(Instant::now(), resp.peers, PeerSource::Tracker),
                        Err(e) => tracing::info!(url = %o.url, error = %e, "announce failed"),
                    }
                }
                Some((piece, good)) = self.digests_rx.recv() => self.core.on_digests(piece, &good),
                _ = sleep_until(deadline) => self.core.handle_timeout(Instant::now()),
            }
            self.act();
            self.publish();
        }
    }

    fn on_msg(&mut self, now: Instant, m: ToTorrent) {
        match m {
            ToTorrent::Peer(key, msg) => {
                if matches!(msg, PeerMsg::Closed { .. }) {
                    self.links.remove(&key);
                }
                self.core.on_peer(now, key, msg);
            }
            ToTorrent::Disk(v) => self.core.on_disk(now, v),
        }
    }

    fn on_cmd(&mut self, cmd: TorrentCmd) {
        let now = Instant::now();
        match cmd {
            TorrentCmd::Incoming {
                stream,
                prefix,
                addr,
            } => {
                let Some(key) = self.core.accept_incoming(addr) else {
                    return;
                };
                let conn = PeerConnection::incoming(
                    self.conn_config(),
                    prefix,
                    self.peer_id,
                    Some(self.core.have().clone()),
                    now,
                );
                let task = self.peer_task(key, addr, conn);
                self.tasks.spawn(task.run(stream));
            }
            TorrentCmd::Outgoing { stream, addr } => {
                let key = self.core.attach_outgoing(addr);
                let conn = PeerConnection::outgoing(
                    self.conn_config(),
                    self.info_hash,
                    self.peer_id,
                    Some(self.core.have().clone()),
                    now,
                );
                let task = self.peer_task(key, addr, conn);
                self.tasks.spawn(task.run(stream));
            }
            TorrentCmd::AddPeers(addrs) => {
                self.core.add_addrs(now, addrs, PeerSource::Added);
                self.core.handle_timeout(now);
            }
            TorrentCmd::Shutdown(_) => {}
        }
    }

    /// Carries out what the core asked for.
    fn act(&mut self) {
        self.shared
            .digests
            .store(self.core.wants_block_digests(), Ordering::Relaxed);
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
                Action::Connect { key, addr } => {
                    let conn = PeerConnection::outgoing(
                        self.conn_config(),
                        self.info_hash,
                        self.peer_id,
                        Some(self.core.have().clone()),
                        Instant::now(),
                    );
                    let task = self.peer_task(key, addr, conn);
                    self.tasks.spawn(task.connect_and_run(self.connect_timeout));
                }
                Action::SaveResume(v) => {
                    let disk = self.disk.clone();
                    tokio::spawn(async move {
                        if let Err(e) = disk.save_resume(v).await {
                            tracing::warn!(error = %e, "saving resume data failed");
                        }
                    });
                }
                Action::ReadDigests(piece) => self.read_digests(piece),
                Action::AnnounceCompleted => {
                    if let Some(a) = &self.announcer {
                        // Bounded: the announcer's queue is small and drained promptly.
                        let _ = futures_util::FutureExt::now_or_never(a.completed());
                    }
                }
            }
        }
        while self.tasks.try_join_next().is_some() {}
    }

    fn publish(&mut self) {
        let s = self.core.status();
        self.counters
            .downloaded
            .store(s.downloaded, Ordering::Relaxed);
        self.counters.uploaded.store(s.uploaded, Ordering::Relaxed);
        self.counters.left.store(
            s.wanted_bytes.saturating_sub(s.verified_wanted_bytes),
            Ordering::Relaxed,
        );
        self.status_tx.send_if_modified(|old| {
            if old != s {
                old.clone_from(s);
                true
            } else {
                false
            }
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
            to_torrent: self.tx.clone(),
            shared: self.shared.clone(),
            cancel,
            reported_uploaded: 0,
        }
    }

    fn read_digests(&self, piece: u32) {
        let storage = self.disk.storage().clone();
        let tx = self.digests_tx.clone();
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
                let _ = tx.blocking_send((piece, good));
            }
        });
    }

    async fn shutdown(&mut self) {
        let verified = self.core.shutdown();
        self.act();
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            tokio::select! {
                j = self.tasks.join_next() => if j.is_none() { break },
                Some(m) = self.rx.recv() => {
                    // Keep the traffic totals exact; everything else is moot now.
                    if let ToTorrent::Peer(key, msg @ PeerMsg::Stats { .. }) = m {
                        self.core.on_peer(Instant::now(), key, msg);
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        // Counters for the `stopped` announce.
        self.publish();
        if let Some(a) = self.announcer.take() {
            a.stop().await;
        }
        if let Err(e) = self.disk.shutdown().await {
            tracing::warn!(error = %e, "disk shutdown");
        }
        let storage = self.disk.storage().clone();
        let saved = tokio::task::spawn_blocking(move || storage.save_resume(&verified)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "saving resume data failed");
        }
        debug_assert!(matches!(
            self.core.status().state,
            TorrentState::Paused | TorrentState::Stopped
        ));
        self.publish();
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
