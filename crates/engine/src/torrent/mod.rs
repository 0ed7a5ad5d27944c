//! The torrent actor: owns the piece picker, the choker, smart ban, the peer
//! set and the announcer of one torrent, and steers its peer tasks by
//! messages. Nothing here blocks: disk work happens in the disk actor and on
//! blocking threads, network I/O in the peer tasks.
mod peers;
mod pieces;

use crate::choker::Choker;
use crate::error::TorrentError;
use crate::peer::{FromPeer, PeerCmd, PeerMsg, PeerShared, PeerTask};
use crate::pex::PeerExchange;
use crate::picker::{PeerKey, PiecePicker, BLOCK_SIZE};
use crate::smartban::{BlockDigest, SmartBan};
use crate::status::{TorrentState, TorrentStatus};
use rand::rngs::StdRng;
use shoal_storage::DiskHandle;
use shoal_tracker::{AnnounceOutcome, AnnouncerHandle};
use shoal_wire::{Bitfield, ConnectionConfig, HandshakePrefix, PeerConnection, Reserved};
use std::collections::{HashMap, HashSet};
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

/// Commands to the torrent actor.
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

/// Tunables of a torrent.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub max_peers: usize,
    pub max_connecting: usize,
    pub upload_slots: usize,
    pub connect_timeout: Duration,
}

const PEER_CMD_QUEUE: usize = 4096;
const MAX_PIPELINE: usize = 128;
const MIN_PIPELINE: usize = 16;
const TICK: Duration = Duration::from_millis(250);
const RECHOKE_INTERVAL: Duration = Duration::from_secs(10);
const RESUME_INTERVAL: Duration = Duration::from_secs(20);
const MAX_KNOWN_ADDRS: usize = 2000;

/// Who sent one block of a piece in progress, and its digest if kept.
type Sender = (SocketAddr, Option<BlockDigest>);

struct Peer {
    addr: SocketAddr,
    tx: mpsc::Sender<PeerCmd>,
    has: Bitfield,
    seed: bool,
    peer_id: Option<[u8; 20]>,
    choking_us: bool,
    interested_in_us: bool,
    am_interested: bool,
    am_choking: bool,
    in_flight: HashSet<(u32, u32)>,
    pipeline_cap: u32,
    down_rate: u64,
    up_rate: u64,
    snubbed: bool,
    interesting: u32,
    closing: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AddrState {
    Idle,
    Connected,
    /// Never again (ourselves).
    Never,
}

struct AddrInfo {
    state: AddrState,
    source: peers::PeerSource,
    failures: u32,
    retry_at: Instant,
}

/// Everything the actor needs, built by [`crate::Session::add_torrent`].
pub(crate) struct TorrentInit {
    pub info_hash: [u8; 20],
    pub peer_id: [u8; 20],
    pub picker: PiecePicker,
    pub disk: DiskHandle,
    pub shared: Arc<PeerShared>,
    pub limits: Limits,
    pub rng: StdRng,
    pub status: watch::Sender<TorrentStatus>,
    pub cmds: mpsc::Receiver<TorrentCmd>,
    pub announcer: Option<(AnnouncerHandle, mpsc::Receiver<AnnounceOutcome>)>,
    pub counters: Arc<Counters>,
    pub initial_status: TorrentStatus,
    /// Peer exchange (disabled for private torrents).
    pub pex: PeerExchange,
}

/// Byte counters the announcer closure reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub left: AtomicU64,
}

pub(crate) struct TorrentActor {
    info_hash: [u8; 20],
    peer_id: [u8; 20],
    picker: PiecePicker,
    choker: Choker,
    ban: SmartBan<SocketAddr>,
    disk: DiskHandle,
    shared: Arc<PeerShared>,
    limits: Limits,
    rng: StdRng,
    status_tx: watch::Sender<TorrentStatus>,
    status: TorrentStatus,
    cmds: mpsc::Receiver<TorrentCmd>,
    rx: mpsc::Receiver<FromPeer>,
    tx: mpsc::Sender<FromPeer>,
    announcer: Option<AnnouncerHandle>,
    ann_rx: Option<mpsc::Receiver<AnnounceOutcome>>,
    counters: Arc<Counters>,
    have: Bitfield,
    peers: HashMap<PeerKey, Peer>,
    addrs: HashMap<SocketAddr, AddrInfo>,
    key_addr: HashMap<PeerKey, SocketAddr>,
    banned: HashSet<SocketAddr>,
    senders: HashMap<u32, Vec<Option<Sender>>>,
    next_key: PeerKey,
    tasks: JoinSet<()>,
    cancel: CancellationToken,
    digests_tx: mpsc::Sender<(u32, Vec<BlockDigest>)>,
    digests_rx: mpsc::Receiver<(u32, Vec<BlockDigest>)>,
    was_complete_at_start: bool,
    completed: bool,
    resume_dirty: bool,
    last_rechoke: Instant,
    last_resume: Instant,
    last_rate: (Instant, u64, u64),
    wanted_bytes: u64,
    pex: PeerExchange,
}

impl TorrentActor {
    pub(crate) fn new(init: TorrentInit) -> Self {
        let n = init.picker.num_pieces();
        let mut have = Bitfield::new(n);
        for p in 0..n {
            if init.picker.has(p) {
                let _ = have.set(p);
            }
        }
        let (tx, rx) = mpsc::channel(1024);
        let (digests_tx, digests_rx) = mpsc::channel(16);
        let complete = init.picker.is_complete();
        let (announcer, ann_rx) = match init.announcer {
            Some((h, r)) => (Some(h), Some(r)),
            None => (None, None),
        };
        let now = Instant::now();
        let wanted_bytes = init.initial_status.wanted_bytes;
        TorrentActor {
            info_hash: init.info_hash,
            peer_id: init.peer_id,
            choker: Choker::new(init.limits.upload_slots),
            ban: SmartBan::new(),
            picker: init.picker,
            disk: init.disk,
            shared: init.shared,
            limits: init.limits,
            rng: init.rng,
            status_tx: init.status,
            status: init.initial_status,
            cmds: init.cmds,
            rx,
            tx,
            announcer,
            ann_rx,
            counters: init.counters,
            have,
            peers: HashMap::new(),
            addrs: HashMap::new(),
            key_addr: HashMap::new(),
            banned: HashSet::new(),
            senders: HashMap::new(),
            next_key: 1,
            tasks: JoinSet::new(),
            cancel: CancellationToken::new(),
            digests_tx,
            digests_rx,
            was_complete_at_start: complete,
            completed: complete,
            resume_dirty: false,
            last_rechoke: now,
            last_resume: now,
            last_rate: (now, 0, 0),
            wanted_bytes,
            pex: init.pex,
        }
    }

    /// The actor's run loop; returns after a shutdown command (or when every
    /// handle is gone).
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
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
                    self.on_peer_msg(m).await;
                    // Drain a burst without re-polling everything.
                    for _ in 0..256 {
                        match self.rx.try_recv() {
                            Ok(m) => self.on_peer_msg(m).await,
                            Err(_) => break,
                        }
                    }
                }
                Some(o) = recv_opt(&mut self.ann_rx) => self.on_announce(o),
                Some((piece, good)) = self.digests_rx.recv() => {
                    let guilty = self.ban.on_piece_passed(piece, &good);
                    for ip in guilty {
                        self.ban_ip(ip);
                    }
                }
                _ = tick.tick() => self.on_tick().await,
            }
        }
    }

    fn on_cmd(&mut self, cmd: TorrentCmd) {
        match cmd {
            TorrentCmd::Incoming {
                stream,
                prefix,
                addr,
            } => {
                if self.banned.contains(&ban_key(addr))
                    || self.peers.len() >= self.limits.max_peers
                    || !matches!(
                        self.status.state,
                        TorrentState::Downloading | TorrentState::Seeding
                    )
                {
                    return;
                }
                let conn = PeerConnection::incoming(
                    self.conn_config(),
                    prefix,
                    self.peer_id,
                    Some(self.have.clone()),
                    Instant::now(),
                );
                let (key, task) = self.new_peer(addr, conn, false);
                self.tasks.spawn(task.run(stream));
                let _ = key;
            }
            TorrentCmd::Outgoing { stream, addr } => {
                let conn = PeerConnection::outgoing(
                    self.conn_config(),
                    self.info_hash,
                    self.peer_id,
                    Some(self.have.clone()),
                    Instant::now(),
                );
                let (_, task) = self.new_peer(addr, conn, true);
                self.tasks.spawn(task.run(stream));
            }
            TorrentCmd::AddPeers(addrs) => self.add_addrs(addrs, peers::PeerSource::Added),
            TorrentCmd::Shutdown(_) => {}
        }
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
        c.extension_handshake.port = Some(self.pex.own_addr().port()).filter(|&p| p != 0);
        if !self.pex.enabled() {
            c.extension_handshake
                .m
                .remove(shoal_wire::extension::UT_PEX);
        }
        c
    }

    fn new_peer(
        &mut self,
        addr: SocketAddr,
        conn: PeerConnection,
        outgoing: bool,
    ) -> (PeerKey, PeerTask) {
        let key = self.next_key;
        self.next_key += 1;
        self.pex.add_peer(key, addr, outgoing);
        let (ptx, prx) = mpsc::channel(PEER_CMD_QUEUE);
        self.peers.insert(
            key,
            Peer {
                addr,
                tx: ptx,
                has: Bitfield::new(self.picker.num_pieces()),
                seed: false,
                peer_id: None,
                choking_us: true,
                interested_in_us: false,
                am_interested: false,
                am_choking: true,
                in_flight: HashSet::new(),
                pipeline_cap: shoal_wire::connection::DEFAULT_REQQ,
                down_rate: 0,
                up_rate: 0,
                snubbed: false,
                interesting: 0,
                closing: false,
            },
        );
        let task = PeerTask {
            key,
            addr,
            conn,
            ours: self.have.clone(),
            cmds: prx,
            to_torrent: self.tx.clone(),
            shared: self.shared.clone(),
            cancel: self.cancel.child_token(),
            reported_uploaded: 0,
        };
        (key, task)
    }

    /// Sends a command to a peer; a peer whose queue is full is closed.
    fn send(&mut self, key: PeerKey, cmd: PeerCmd) {
        if let Some(p) = self.peers.get_mut(&key) {
            if p.tx.try_send(cmd).is_err() && !p.closing {
                p.closing = true;
                tracing::debug!(peer = %p.addr, "peer task not keeping up; closing it");
            }
        }
    }

    fn close_peer(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.closing = true;
            let _ = p.tx.try_send(PeerCmd::Close);
        }
    }

    fn wanted(&self, piece: u32) -> bool {
        !self.picker.has(piece) && self.picker.priority(piece) > 0
    }

    async fn on_peer_msg(&mut self, FromPeer { key, msg }: FromPeer) {
        // Verdicts concern pieces, whoever reports them.
        match msg {
            PeerMsg::PieceVerified(p) => return self.on_verified(p),
            PeerMsg::PieceFailed(p) => return self.on_failed(p),
            PeerMsg::DiskError(e) => return self.pause(TorrentError::Disk(e)),
            _ => {}
        }
        if !self.peers.contains_key(&key) {
            return;
        }
        match msg {
            PeerMsg::TcpConnected => {}
            PeerMsg::Handshake { peer_id } => {
                let dup = self
                    .peers
                    .iter()
                    .any(|(&k, p)| k != key && p.peer_id == Some(peer_id));
                if peer_id == self.peer_id {
                    if let Some(a) = self.key_addr.get(&key).and_then(|a| self.addrs.get_mut(a)) {
                        a.state = AddrState::Never;
                    }
                    self.close_peer(key);
                } else if dup {
                    self.close_peer(key);
                } else if let Some(p) = self.peers.get_mut(&key) {
                    p.peer_id = Some(peer_id);
                    self.status.peers += 1;
                    self.pex.on_handshake(key);
                }
            }
            PeerMsg::PipelineLimit(n) => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.pipeline_cap = n.max(1);
                }
            }
            PeerMsg::Extensions { port, pex, your_ip } => {
                self.pex
                    .on_extensions(key, Instant::now(), port, pex, your_ip);
            }
            PeerMsg::Pex(m) => self.on_pex(key, &m),
            PeerMsg::Bitfield(bf) => {
                self.drop_availability(key);
                if bf.len() != self.picker.num_pieces() {
                    self.close_peer(key);
                    return;
                }
                let full = bf.is_full();
                if full {
                    self.picker.add_seed();
                } else {
                    for i in bf.iter_ones() {
                        self.picker.add_availability(i);
                    }
                }
                self.pex.set_seed(key, full);
                let interesting = bf.iter_ones().filter(|&i| self.wanted(i)).count() as u32;
                if let Some(p) = self.peers.get_mut(&key) {
                    p.has = bf;
                    p.seed = full;
                    p.interesting = interesting;
                }
                self.update_interest(key);
                self.fill(key);
            }
            PeerMsg::Have(i) => {
                let wanted = self.wanted(i);
                let Some(p) = self.peers.get_mut(&key) else {
                    return;
                };
                if p.has.set(i).unwrap_or(false) {
                    if !p.seed {
                        self.picker.add_availability(i);
                    }
                    if p.has.is_full() {
                        // Announced with the seed flag from now on (BEP 11).
                        self.pex.set_seed(key, true);
                    }
                    if wanted {
                        p.interesting += 1;
                    }
                    if wanted {
                        self.update_interest(key);
                        self.fill(key);
                    }
                }
            }
            PeerMsg::Choked => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.choking_us = true;
                }
            }
            PeerMsg::Unchoked => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.choking_us = false;
                }
                self.fill(key);
            }
            PeerMsg::Interest(i) => {
                let changed = self
                    .peers
                    .get_mut(&key)
                    .map(|p| std::mem::replace(&mut p.interested_in_us, i) != i)
                    .unwrap_or(false);
                if changed {
                    self.rechoke();
                }
            }
            PeerMsg::Blocks(blocks) => {
                for (block, digest) in blocks {
                    self.on_block(key, block, digest);
                }
                self.fill(key);
            }
            PeerMsg::RequestsFailed(blocks) => {
                for b in blocks {
                    let removed = self
                        .peers
                        .get_mut(&key)
                        .is_some_and(|p| p.in_flight.remove(&(b.piece, b.offset)));
                    if removed {
                        self.picker.on_request_failed(key, &b);
                    }
                }
            }
            PeerMsg::PieceVerified(_) | PeerMsg::PieceFailed(_) | PeerMsg::DiskError(_) => {}
            PeerMsg::Stats {
                down_rate,
                up_rate,
                uploaded,
                snubbed,
            } => {
                if let Some(p) = self.peers.get_mut(&key) {
                    p.down_rate = down_rate;
                    p.up_rate = up_rate;
                    p.snubbed = snubbed;
                }
                self.status.uploaded += uploaded;
                self.counters
                    .uploaded
                    .fetch_add(uploaded, Ordering::Relaxed);
            }
            PeerMsg::Closed { reason } => self.on_closed(key, &reason),
        }
    }

    fn update_interest(&mut self, key: PeerKey) {
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let want = p.interesting > 0 && self.status.state == TorrentState::Downloading;
        if want != p.am_interested {
            p.am_interested = want;
            self.send(key, PeerCmd::Interested(want));
        }
    }

    /// Tops up `key`'s request pipeline from the picker.
    fn fill(&mut self, key: PeerKey) {
        if self.status.state != TorrentState::Downloading {
            return;
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.closing || p.choking_us || !p.am_interested || p.peer_id.is_none() {
            return;
        }
        let by_rate = (p.down_rate.saturating_mul(2) / u64::from(BLOCK_SIZE)) as usize;
        let target = by_rate
            .clamp(MIN_PIPELINE, MAX_PIPELINE)
            .min(p.pipeline_cap as usize);
        let deficit = target.saturating_sub(p.in_flight.len());
        if deficit == 0 || (deficit < target.min(4) && !p.in_flight.is_empty()) {
            return;
        }
        let has = &p.has;
        let blocks = self
            .picker
            .pick(key, |i| has.get(i), deficit, &mut self.rng);
        if blocks.is_empty() {
            return;
        }
        for b in &blocks {
            p.in_flight.insert((b.piece, b.offset));
        }
        self.send(key, PeerCmd::Request(blocks));
    }

    fn drop_availability(&mut self, key: PeerKey) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        if p.seed {
            self.picker.remove_seed();
        } else {
            for i in p.has.iter_ones() {
                self.picker.remove_availability(i);
            }
        }
    }

    fn on_closed(&mut self, key: PeerKey, reason: &str) {
        self.pex.remove_peer(key);
        self.drop_availability(key);
        self.picker.release_peer(key);
        let Some(p) = self.peers.remove(&key) else {
            return;
        };
        tracing::debug!(peer = %p.addr, reason, "peer closed");
        if p.peer_id.is_some() {
            self.status.peers = self.status.peers.saturating_sub(1);
        }
        if let Some(addr) = self.key_addr.remove(&key) {
            if let Some(a) = self.addrs.get_mut(&addr) {
                if a.state != AddrState::Never {
                    a.state = AddrState::Idle;
                    if p.peer_id.is_some() {
                        a.failures = 0;
                    }
                    a.failures += 1;
                    let backoff = Duration::from_secs(2u64 << a.failures.min(7));
                    a.retry_at = Instant::now() + backoff;
                }
            }
        }
        if !p.am_choking {
            self.rechoke();
        }
        // Its blocks are free again: hand them to the others.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill(k);
        }
    }

    fn pause(&mut self, e: TorrentError) {
        if self.status.state == TorrentState::Paused {
            return;
        }
        tracing::error!(error = %e, "pausing torrent");
        self.status.state = TorrentState::Paused;
        self.status.error = Some(e);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.close_peer(k);
        }
        self.publish();
    }

    async fn on_tick(&mut self) {
        while self.tasks.try_join_next().is_some() {}
        let now = Instant::now();
        // Peers whose command queue overflowed.
        let stuck: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.closing)
            .map(|(&k, _)| k)
            .collect();
        for k in stuck {
            if let Some(p) = self.peers.get(&k) {
                let _ = p.tx.try_send(PeerCmd::Close);
            }
        }
        self.send_pex(now);
        self.connect_more();
        if now.saturating_duration_since(self.last_rechoke) >= RECHOKE_INTERVAL {
            self.rechoke();
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill(k);
        }
        if self.resume_dirty && now.saturating_duration_since(self.last_resume) >= RESUME_INTERVAL {
            self.save_resume();
        }
        let (t0, d0, u0) = self.last_rate;
        let dt = now.saturating_duration_since(t0).as_secs_f64();
        if dt >= 1.0 {
            self.status.download_rate =
                ((self.status.downloaded.saturating_sub(d0)) as f64 / dt) as u64;
            self.status.upload_rate =
                ((self.status.uploaded.saturating_sub(u0)) as f64 / dt) as u64;
            self.last_rate = (now, self.status.downloaded, self.status.uploaded);
        }
        self.publish();
    }

    fn publish(&mut self) {
        self.status.wanted_bytes = self.wanted_bytes;
        let s = self.status.clone();
        self.status_tx.send_replace(s);
    }

    fn verified_vec(&self) -> Vec<bool> {
        (0..self.picker.num_pieces())
            .map(|p| self.picker.has(p))
            .collect()
    }

    fn save_resume(&mut self) {
        self.resume_dirty = false;
        self.last_resume = Instant::now();
        let disk = self.disk.clone();
        let v = self.verified_vec();
        tokio::spawn(async move {
            if let Err(e) = disk.save_resume(v).await {
                tracing::warn!(error = %e, "saving resume data failed");
            }
        });
    }

    async fn shutdown(&mut self) {
        self.cancel.cancel();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            tokio::select! {
                j = self.tasks.join_next() => if j.is_none() { break },
                Some(m) = self.rx.recv() => {
                    // Keep the traffic totals exact; everything else is moot now.
                    if let PeerMsg::Stats { uploaded, .. } = m.msg {
                        self.status.uploaded += uploaded;
                    }
                }
                _ = tokio::time::sleep_until(deadline) => {
                    self.tasks.abort_all();
                    break;
                }
            }
        }
        if let Some(a) = self.announcer.take() {
            a.stop().await;
        }
        let verified = self.verified_vec();
        if let Err(e) = self.disk.shutdown().await {
            tracing::warn!(error = %e, "disk shutdown");
        }
        let storage = self.disk.storage().clone();
        let saved = tokio::task::spawn_blocking(move || storage.save_resume(&verified)).await;
        if let Ok(Err(e)) = saved {
            tracing::warn!(error = %e, "saving resume data failed");
        }
        if self.status.state != TorrentState::Paused {
            self.status.state = TorrentState::Stopped;
        }
        self.publish();
    }
}

/// The identity a ban applies to: the IP address, or the whole socket
/// address for loopback peers (they all share one IP).
fn ban_key(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_loopback() {
        addr
    } else {
        SocketAddr::new(addr.ip(), 0)
    }
}

async fn recv_opt<T>(rx: &mut Option<mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}
