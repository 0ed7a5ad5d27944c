//! One peer connection as a task: drives a sans-IO [`PeerConnection`] over a
//! byte stream, writes received blocks to the disk actor, serves requested
//! blocks from storage, and talks to its torrent only by messages.
//!
//! Backpressure: the task stops reading from the socket while too many block
//! writes are pending (each waits for write budget in the disk actor), while
//! the download rate limit says so, or while too much output is queued.
//! A protocol error closes this connection only.
use crate::bandwidth::{Direction, TorrentRates};
use crate::error::TorrentError;
use crate::peer_close::PeerClose;
use crate::picker::{Block, PeerKey};
use crate::session::utp::{Dial, Dialed, Transport};
use crate::torrent::PeerStream;
use crate::torrent::{DiskVerdict, ToTorrent};
use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::rngs::StdRng;
use sha1::{Digest, Sha1};
use shoal_storage::hash_proof::FileTree;
use shoal_storage::{BlockOutcome, DiskError, Storage, TorrentDisk};
use shoal_wire::mse::{Encryption, MseConfig, MseHandshake};
use shoal_wire::{BlockRequest, Event, PeerConnection};
use std::collections::VecDeque;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Most batches of received blocks (one per socket read, at most about
/// [`READ_CHUNK`] bytes each) one peer may have waiting for the disk actor's
/// budget before it stops reading.
const MAX_PENDING_WRITES: usize = 8;
/// Most upload reads in flight per peer.
const MAX_PENDING_READS: usize = 16;
/// Stop reading while this many output bytes wait for the socket.
const MAX_QUEUED_OUTPUT: usize = 4 << 20;
/// How often a peer reports its rates.
const STATS_INTERVAL: Duration = Duration::from_millis(500);
/// Bytes read from the socket at most per read call.
const READ_CHUNK: usize = 128 * 1024;

/// Commands from the torrent to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    /// Request these blocks.
    Request(Vec<Block>),
    /// Withdraw a request (endgame loser).
    Cancel(Block),
    /// We verified a piece.
    Have(u32),
    /// Choke the peer.
    Choke,
    /// Unchoke the peer.
    Unchoke,
    /// Tell the peer whether we are interested.
    Interested(bool),
    /// Send this `ut_pex` message (BEP 11).
    Pex(shoal_wire::PexMessage),
    /// Ask for a piece of the info dictionary (BEP 9).
    RequestMetadata(u32),
    /// Ask for piece-layer hashes (BEP 52).
    RequestHashes(shoal_wire::HashRequest),
    /// The metadata arrived: the torrent has these pieces (the piece count
    /// is now known; we announce what we have).
    SetPieces(shoal_wire::Bitfield),
}

/// What a peer task tells its torrent.
#[derive(Debug)]
pub(crate) enum PeerMsg {
    /// The TCP connection is up (outgoing connects only).
    TcpConnected,
    /// The peer's handshake arrived.
    Handshake {
        peer_id: shoal_base::PeerId,
        /// The connection is RC4-encrypted (MSE/PE).
        encrypted: bool,
        /// The connection is uTP (else TCP).
        utp: bool,
    },
    /// The request pipeline cap (the peer's `reqq`).
    PipelineLimit(u32),
    /// Facts from the peer's extension handshake that peer exchange needs.
    Extensions {
        /// Its listen port (`p`).
        port: Option<u16>,
        /// It speaks `ut_pex`.
        pex: bool,
        /// Our address as it sees us (`yourip`).
        your_ip: Option<std::net::IpAddr>,
        /// The size of the info dictionary it offers (BEP 9), if any.
        metadata_size: Option<u64>,
    },
    /// A `ut_metadata` answer (a piece, or a reject) from the peer.
    Metadata(shoal_wire::MetadataMessage),
    /// Hashes answering our BEP 52 request.
    Hashes {
        /// What was asked.
        request: Box<shoal_wire::HashRequest>,
        /// The hashes (32 bytes each), proof layers included.
        hashes: Bytes,
    },
    /// The peer declined a BEP 52 request.
    HashReject(Box<shoal_wire::HashRequest>),
    /// A decoded `ut_pex` message (BEP 11).
    Pex(shoal_wire::PexMessage),
    /// The peer's piece set was replaced.
    Bitfield(shoal_wire::Bitfield),
    /// The peer has a new piece.
    Have(u32),
    /// The peer choked us.
    Choked,
    /// The peer unchoked us.
    Unchoked,
    /// The peer's interest in us changed.
    Interest(bool),
    /// Requested blocks arrived (their data went to the disk actor), with
    /// their SHA-1 when smart-ban digests are on. One message per socket
    /// read rather than per block.
    Blocks(Vec<(Block, Option<[u8; 20]>)>),
    /// These requests will not be answered.
    RequestsFailed(Vec<Block>),
    /// Periodic rates (payload bytes/s) and snub state.
    Stats {
        down_rate: u64,
        /// The download rate over the last second or two (sizes the
        /// request pipeline; `down_rate` lags a rise by seconds).
        recent_down_rate: u64,
        up_rate: u64,
        uploaded: u64,
        snubbed: bool,
    },
    /// The connection ended.
    Closed { reason: PeerClose },
}

/// What every peer task of one torrent shares.
pub(crate) struct PeerShared {
    /// The torrent's data (uploads read it); set once the metadata is known.
    pub storage: OnceLock<Arc<Storage>>,
    /// The torrent in the session's disk pool, registered before the first
    /// connection (blocks or requests without it are dropped or rejected).
    pub disk: OnceLock<TorrentDisk>,
    /// The rate limits its bytes are charged to.
    pub rates: Arc<TorrentRates>,
    /// Compute block digests for smart ban (on after the first hash failure).
    pub digests: AtomicBool,
    /// The bencoded info dictionary, served over `ut_metadata` (BEP 9) to
    /// peers that came from a magnet link (once we have it ourselves).
    pub info: OnceLock<Bytes>,
    /// The merkle trees above the piece layers of a v2 torrent's files, by
    /// pieces root, for answering BEP 52 hash requests (empty for v1).
    pub hash_trees: OnceLock<Vec<([u8; 32], FileTree)>>,
}

/// The trees [`PeerShared::hash_trees`] holds for `t` (files with a piece layer).
pub(crate) fn hash_trees(t: &shoal_metainfo::Torrent) -> Vec<([u8; 32], FileTree)> {
    let level = (t.piece_length() / 16384).max(1).trailing_zeros();
    let mut out: Vec<([u8; 32], FileTree)> = Vec::new();
    for (i, f) in t.files().iter().enumerate() {
        if let (Some(root), Some(layer)) = (f.pieces_root, t.piece_layer(i)) {
            if !out.iter().any(|(r, _)| *r == root) {
                out.push((root, FileTree::from_piece_layer(layer, level)));
            }
        }
    }
    out
}

/// Bytes queued to a peer beyond which its hash requests are rejected.
const MAX_HASH_BACKLOG: usize = 256 * 1024;

/// Pieces in the BEP 6 allowed-fast set we offer each peer (BEP 6's example
/// and libtorrent's default).
const ALLOWED_FAST_K: u32 = 10;

/// Everything a peer task needs to run.
pub(crate) struct PeerTask {
    pub key: PeerKey,
    pub addr: SocketAddr,
    pub conn: PeerConnection,
    /// Our pieces when the task started; updated by `Have` commands.
    pub ours: shoal_wire::Bitfield,
    /// Offer BEP 6 allowed-fast pieces (not to a super-seeded peer: it
    /// fetches only the pieces it was shown).
    pub allow_fast: bool,
    pub cmds: mpsc::Receiver<PeerCmd>,
    pub to_torrent: mpsc::Sender<ToTorrent>,
    pub shared: Arc<PeerShared>,
    pub cancel: CancellationToken,
    /// Upload bytes already reported to the torrent.
    pub reported_uploaded: u64,
    /// Payload bytes written to the socket so far (by the writer task).
    pub written: Arc<AtomicU64>,
    /// The stream is RC4-encrypted (MSE/PE).
    pub encrypted: bool,
    /// The stream is uTP (else TCP).
    pub utp: bool,
    /// Extra BEP 10 extensions (`None`: the session has none).
    pub ext: Option<crate::extension::ExtLink>,
}

/// Blocks received but not yet handed to the disk actor, and the outcomes of
/// those handed over (one future per socket read's worth of blocks).
pub(crate) type WriteFut =
    Pin<Box<dyn Future<Output = Result<Vec<Result<BlockOutcome, DiskError>>, DiskError>> + Send>>;
/// Blocks parsed from the socket, waiting to go to the torrent and the disk.
type Received = Vec<(Block, Option<[u8; 20]>, Bytes)>;
/// A finished upload read.
type ReadFut = Pin<Box<dyn Future<Output = (BlockRequest, Result<Bytes, DiskError>)> + Send>>;

fn block_of(r: &BlockRequest) -> Block {
    Block {
        piece: r.piece.0,
        offset: r.offset,
        len: r.length,
    }
}

fn request_of(b: &Block) -> BlockRequest {
    BlockRequest {
        piece: shoal_wire::PieceIndex(b.piece),
        offset: b.offset,
        length: b.len,
    }
}

/// The uTP connect timeout after the peer's host refused our TCP dial.
const REFUSED_UTP_TIMEOUT: Duration = Duration::from_millis(1500);

impl PeerTask {
    /// BEP 6: lets a peer with the fast extension fetch the pieces of its
    /// canonical allowed-fast set (from its IPv4 address) that we have, even
    /// while we choke it, so a newcomer gets its first pieces to trade before
    /// an upload slot frees up. Sent right after our bitfield.
    fn grant_allowed_fast(&mut self, now: Instant) {
        let ip = match self.addr.ip().to_canonical() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => return, // BEP 6 defines the set for IPv4 only
        };
        let Some(n) = self.conn.num_pieces() else {
            return;
        };
        if !self.conn.supports_fast() || !self.allow_fast {
            return;
        }
        let info_hash = *self.conn.info_hash();
        for p in shoal_wire::fast::allowed_fast_set(ALLOWED_FAST_K, n, &info_hash, ip) {
            if self.ours.get(p) {
                let _ = self.conn.allow_fast(now, p);
            }
        }
    }

    /// Connects to `addr` by the transports of `dial`, in order (each
    /// connect bounded in time, holding one of the session's half-open
    /// permits meanwhile), then runs: over MSE when `mse` is given — our
    /// BitTorrent handshake travels as its initial payload — and, when that
    /// fails and `fallback` allows, over a new plain connection. When a
    /// transport fails before the peer's handshake arrived, the next one is
    /// tried. Says which transport carried the connection.
    pub async fn connect_and_run(
        mut self,
        dial: &Dial,
        half_open: Arc<tokio::sync::Semaphore>,
        mse: Option<MseConfig>,
        fallback: bool,
        mut rng: StdRng,
    ) -> Dialed {
        // A fresh outgoing connection's first transmit is its handshake.
        let ia = self.conn.poll_transmit().unwrap_or_default();
        let mut dialed = Dialed::default();
        let mut reason = PeerClose::ConnectTimeout;
        let mut dial = dial.clone();
        for t in dial.order.clone() {
            let r = self
                .attempt(t, &dial, &half_open, mse.clone(), fallback, &ia, &mut rng)
                .await;
            match r {
                Ok(r) => {
                    dialed.worked = Some(t);
                    reason = r;
                    break;
                }
                Err(PeerClose::Cancelled) => {
                    reason = PeerClose::Cancelled;
                    break;
                }
                Err(r) => {
                    tracing::debug!(peer = %self.addr, transport = ?t, reason = %r, "connecting failed");
                    dialed.utp_failed |= t == Transport::Utp;
                    if t == Transport::Tcp && r.is_refused() {
                        // The host answered (a reset): a uTP peer there
                        // answers our SYN within a round trip, so a lost
                        // SYN gets one resend, not three (a client that is
                        // still starting is dialled again after the backoff).
                        dial.utp_timeout = dial.utp_timeout.min(REFUSED_UTP_TIMEOUT);
                    }
                    reason = r;
                }
            }
        }
        self.close(reason).await;
        dialed
    }

    /// One connection over `t`: `Ok` with the reason it closed once the
    /// peer's handshake arrived, else `Err` (the next transport may be
    /// tried).
    #[allow(clippy::too_many_arguments)]
    async fn attempt(
        &mut self,
        t: Transport,
        dial: &Dial,
        half_open: &Arc<tokio::sync::Semaphore>,
        mse: Option<MseConfig>,
        fallback: bool,
        ia: &[u8],
        rng: &mut StdRng,
    ) -> Result<PeerClose, PeerClose> {
        let stream = self.connect(t, dial, half_open).await?;
        self.utp = t == Transport::Utp;
        let _ = self
            .to_torrent
            .send(ToTorrent::Peer(self.key, PeerMsg::TcpConnected))
            .await;
        let reason = match mse {
            None => self.drive_plain(stream, ia).await?,
            Some(cfg) => {
                let hs =
                    MseHandshake::initiator(cfg, self.conn.info_hash().0, ia, rng, Instant::now());
                let cancel = self.cancel.clone();
                let r = tokio::select! {
                    _ = cancel.cancelled() => return Err(PeerClose::Cancelled),
                    r = shoal_wire::mse::io::run(stream, hs, &[]) => r,
                };
                match r {
                    Ok(s) => {
                        self.encrypted = s.encryption() == Encryption::Rc4;
                        tracing::debug!(peer = %self.addr, encryption = ?s.encryption(), transport = ?t, "outgoing MSE connection");
                        self.drive(s).await
                    }
                    Err(e) if fallback => {
                        tracing::debug!(peer = %self.addr, error = %e, "MSE failed; reconnecting in plaintext");
                        let stream = self.connect(t, dial, half_open).await?;
                        self.drive_plain(stream, ia).await?
                    }
                    Err(e) => return Err(PeerClose::Mse(Box::new(e))),
                }
            }
        };
        if self.conn.peer_id().is_some() || matches!(reason, PeerClose::Cancelled) {
            Ok(reason)
        } else {
            Err(reason)
        }
    }

    /// Runs a plain connection whose handshake `ia` is still to be sent.
    async fn drive_plain(
        &mut self,
        mut stream: Box<dyn PeerStream>,
        ia: &[u8],
    ) -> Result<PeerClose, PeerClose> {
        if stream.write_all(ia).await.is_err() {
            return Err(PeerClose::WriteClosed);
        }
        Ok(self.drive(stream).await)
    }

    /// One connection to the peer over `t`, bounded in time and by a
    /// half-open permit, or cancelled.
    async fn connect(
        &self,
        t: Transport,
        dial: &Dial,
        half_open: &Arc<tokio::sync::Semaphore>,
    ) -> Result<Box<dyn PeerStream>, PeerClose> {
        let addr = self.addr;
        let connect = async {
            let _permit = half_open.clone().acquire_owned().await;
            match (t, &dial.utp) {
                (Transport::Utp, Some(u)) => {
                    tokio::time::timeout(dial.utp_timeout, u.connect(addr))
                        .await
                        .map(|r| r.map(|s| Box::new(s) as Box<dyn PeerStream>))
                }
                _ => tokio::time::timeout(dial.tcp_timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .map(|r| {
                        r.map(|s| {
                            let _ = s.set_nodelay(true);
                            Box::new(s) as Box<dyn PeerStream>
                        })
                    }),
            }
        };
        let r = tokio::select! {
            _ = self.cancel.cancelled() => return Err(PeerClose::Cancelled),
            r = connect => r,
        };
        match r {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(e)) => Err(PeerClose::Connect(e)),
            Err(_) => Err(PeerClose::ConnectTimeout),
        }
    }

    async fn close(self, reason: PeerClose) {
        let _ = self
            .to_torrent
            .send(ToTorrent::Peer(self.key, PeerMsg::Closed { reason }))
            .await;
    }

    /// Runs the connection over `stream` until it closes; always ends by
    /// sending [`PeerMsg::Closed`].
    pub async fn run<S>(mut self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let reason = self.drive(stream).await;
        let _ = self
            .to_torrent
            .send(ToTorrent::Peer(self.key, PeerMsg::Closed { reason }))
            .await;
    }

    async fn send(&self, msg: PeerMsg) -> Result<(), PeerClose> {
        self.to_torrent
            .send(ToTorrent::Peer(self.key, msg))
            .await
            .map_err(|_| PeerClose::TorrentStopped)
    }

    async fn send_verdict(&self, v: DiskVerdict) -> Result<(), PeerClose> {
        self.to_torrent
            .send(ToTorrent::Disk(v))
            .await
            .map_err(|_| PeerClose::TorrentStopped)
    }

    async fn drive<S>(&mut self, stream: S) -> PeerClose
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (mut rd, wr) = tokio::io::split(stream);
        let (wtx, wrx) = mpsc::channel::<(Bytes, bool)>(512);
        let writer = tokio::spawn(write_loop(wr, wrx, self.written.clone()));
        let mut writes: FuturesUnordered<WriteFut> = FuturesUnordered::new();
        let r = self.main_loop(&mut rd, &wtx, &mut writes).await;
        drop(wtx);
        // Blocks the torrent already counts as received must reach the disk
        // (and their piece's verdict the torrent), or the piece would stall.
        let drain = async {
            while let Some(res) = writes.next().await {
                if self.on_batch_written(res).await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
        // Let the writer flush what is queued (a close reason, a reject) briefly.
        let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
        // Uploaded payload is what reached the socket, not what was queued.
        let uploaded = self.written.load(Ordering::Relaxed);
        let _ = self
            .send(PeerMsg::Stats {
                down_rate: 0,
                recent_down_rate: 0,
                up_rate: 0,
                uploaded: uploaded.saturating_sub(self.reported_uploaded),
                snubbed: false,
            })
            .await;
        match r {
            Ok(()) => PeerClose::Closed,
            Err(e) => e,
        }
    }

    async fn main_loop<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        wtx: &mpsc::Sender<(Bytes, bool)>,
        writes: &mut FuturesUnordered<WriteFut>,
    ) -> Result<(), PeerClose> {
        let mut reads: FuturesUnordered<ReadFut> = FuturesUnordered::new();
        let mut to_serve: VecDeque<BlockRequest> = VecDeque::new();
        let mut out: VecDeque<(Bytes, bool)> = VecDeque::new();
        let mut out_len = 0usize;
        let mut read_resume_at: Option<Instant> = None;
        let mut stats_at = Instant::now() + STATS_INTERVAL;
        let mut eof = false;
        let mut received: Received = Vec::new();
        loop {
            let now = Instant::now();
            // Events from the state machine.
            while let Some(ev) = self.conn.poll_event() {
                self.on_event(now, ev, &mut received, &mut to_serve).await?;
            }
            if !received.is_empty() {
                self.hand_over(std::mem::take(&mut received), writes)
                    .await?;
            }
            // Serve requests through the session's disk pool (its read
            // cache turns a peer's run of 16 KiB requests into one read).
            while reads.len() < MAX_PENDING_READS && out_len < MAX_QUEUED_OUTPUT {
                let Some(&r) = to_serve.front() else { break };
                to_serve.pop_front();
                let end = u64::from(r.offset) + u64::from(r.length);
                let plen = self
                    .shared
                    .storage
                    .get()
                    .and_then(|s| s.map().piece_len(r.piece.0))
                    .unwrap_or(0);
                let disk = self.shared.disk.get().cloned();
                // Pieces we lack, and requests past a piece's end (never
                // servable), are rejected.
                let Some(disk) = disk.filter(|_| self.ours.get(r.piece.0) && end <= plen) else {
                    let _ = self.conn.reject_request(now, r);
                    continue;
                };
                let wait = self.shared.rates.take(Direction::Up, u64::from(r.length));
                reads.push(Box::pin(async move {
                    if !wait.is_zero() {
                        tokio::time::sleep(wait).await;
                    }
                    let res = disk.read(r.piece.0, r.offset, r.length as usize).await;
                    (r, res)
                }));
            }
            while let Some(b) = self.conn.poll_transmit_payload() {
                out_len += b.0.len();
                out.push_back(b);
            }
            if eof && out.is_empty() {
                return Err(PeerClose::PeerClosed);
            }
            let deadline = self
                .conn
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(60));
            let can_read = !eof
                && writes.len() < MAX_PENDING_WRITES
                && out_len < MAX_QUEUED_OUTPUT
                && read_resume_at.is_none_or(|t| t <= now);
            let resume = read_resume_at.filter(|&t| t > now);
            tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                cmd = self.cmds.recv() => match cmd {
                    Some(cmd) => self.on_cmd(cmd).await?,
                    None => return Ok(()),
                },
                r = read_some(rd, self.conn.recv_buffer()), if can_read => {
                    let n = r.map_err(PeerClose::Read)?;
                    if n == 0 {
                        eof = true;
                        continue;
                    }
                    let wait = self.shared.rates.take(Direction::Down, n as u64);
                    read_resume_at = (!wait.is_zero()).then(|| Instant::now() + wait);
                    self.conn
                        .process_received(Instant::now())
                        ?;
                }
                Some(res) = writes.next(), if !writes.is_empty() => self.on_batch_written(res).await?,
                (name, payload) = crate::extension::ExtLink::next_send(&mut self.ext),
                    if out_len < crate::extension::MAX_SEND_BACKLOG => {
                    // The peer enabled `name` (it was registered so); a
                    // closed connection drops it. While much output waits,
                    // the queue fills and senders see `Full`.
                    let _ = self.conn.send_extended(Instant::now(), name, payload);
                }
                Some((r, done)) = reads.next(), if !reads.is_empty() => match done {
                    Ok(data) => {
                        // Not requested any more (cancelled, choked): dropped.
                        let _ = self.conn.send_piece(Instant::now(), r.piece.0, r.offset, data);
                    }
                    Err(e) => self.read_failed(e, &[r]).await?,
                },
                permit = wtx.reserve(), if !out.is_empty() => {
                    let permit = permit.map_err(|_| PeerClose::WriteClosed)?;
                    if let Some(b) = out.pop_front() {
                        out_len -= b.0.len();
                        permit.send(b);
                    }
                }
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.conn
                        .handle_timeout(Instant::now())
                        ?;
                }
                _ = tokio::time::sleep_until(resume.unwrap_or(now).into()), if resume.is_some() => {
                    read_resume_at = None;
                }
                _ = tokio::time::sleep_until(stats_at.into()) => {
                    let now = Instant::now();
                    stats_at = now + STATS_INTERVAL;
                    let uploaded = self.written.load(Ordering::Relaxed);
                    let msg = PeerMsg::Stats {
                        down_rate: self.conn.download_rate(now),
                        recent_down_rate: self.conn.recent_download_rate(now),
                        up_rate: self.conn.upload_rate(now),
                        uploaded: uploaded - self.reported_uploaded,
                        snubbed: self.conn.is_snubbed(),
                    };
                    self.reported_uploaded = uploaded;
                    self.send(msg).await?;
                }
            }
        }
    }

    async fn on_event(
        &mut self,
        now: Instant,
        ev: Event,
        received: &mut Received,
        to_serve: &mut VecDeque<BlockRequest>,
    ) -> Result<(), PeerClose> {
        match ev {
            Event::HandshakeComplete { peer_id, .. } => {
                let (encrypted, utp) = (self.encrypted, self.utp);
                tracing::debug!(
                    peer = %self.addr,
                    transport = if utp { "utp" } else { "tcp" },
                    encrypted,
                    "peer handshake"
                );
                self.send(PeerMsg::Handshake {
                    peer_id,
                    encrypted,
                    utp,
                })
                .await?;
                self.send(PeerMsg::PipelineLimit(self.conn.pipeline_limit()))
                    .await?;
                self.grant_allowed_fast(now);
            }
            Event::ExtensionHandshake(h) => {
                if let Some(l) = &mut self.ext {
                    l.on_handshake(&h);
                }
                self.send(PeerMsg::PipelineLimit(self.conn.pipeline_limit()))
                    .await?;
                let metadata_size = h
                    .id_of(shoal_wire::extension::UT_METADATA)
                    .and(h.metadata_size);
                self.send(PeerMsg::Extensions {
                    port: h.port,
                    pex: h.id_of(shoal_wire::extension::UT_PEX).is_some(),
                    your_ip: h.your_ip,
                    metadata_size,
                })
                .await?;
            }
            Event::Pex(m) => self.send(PeerMsg::Pex(m)).await?,
            Event::Bitfield => {
                if let Some(b) = self.conn.peer_pieces() {
                    let b = b.clone();
                    self.send(PeerMsg::Bitfield(b)).await?;
                }
            }
            Event::Have(i) => self.send(PeerMsg::Have(i.0)).await?,
            Event::Choked => self.send(PeerMsg::Choked).await?,
            Event::Unchoked => self.send(PeerMsg::Unchoked).await?,
            Event::Interested => self.send(PeerMsg::Interest(true)).await?,
            Event::NotInterested => self.send(PeerMsg::Interest(false)).await?,
            Event::Block {
                piece,
                offset,
                data,
            } => {
                let block = Block {
                    piece: piece.0,
                    offset,
                    len: data.len() as u32,
                };
                let digest = self
                    .shared
                    .digests
                    .load(Ordering::Relaxed)
                    .then(|| Sha1::digest(&data).into());
                received.push((block, digest, data));
            }
            Event::Request(r) => to_serve.push_back(r),
            Event::RequestCancelled(r) => to_serve.retain(|x| *x != r),
            Event::RequestFailed { request, .. } => {
                self.send(PeerMsg::RequestsFailed(vec![block_of(&request)]))
                    .await?
            }
            Event::Snubbed | Event::Unsnubbed => {}
            Event::Metadata(shoal_wire::MetadataMessage::Request { piece }) => {
                // BEP 9: serve the info dictionary once we have it.
                let m = self
                    .shared
                    .info
                    .get()
                    .and_then(|info| shoal_wire::MetadataMessage::data_for(info, piece))
                    .unwrap_or(shoal_wire::MetadataMessage::Reject { piece });
                let _ = self.conn.send_metadata(now, &m);
            }
            Event::Metadata(m) => self.send(PeerMsg::Metadata(m)).await?,
            Event::Hashes { request, hashes } => {
                self.send(PeerMsg::Hashes {
                    request: Box::new(request),
                    hashes,
                })
                .await?
            }
            Event::HashReject(r) => self.send(PeerMsg::HashReject(Box::new(r))).await?,
            Event::Extended { id, payload } => {
                if let Some(l) = &self.ext {
                    l.on_message(id, payload, self.conn.peer_extensions());
                }
            }
            Event::HashRequest(r) => {
                // BEP 52: answer from the piece layers, or reject (unknown
                // file, bad range, or too much already queued to this peer).
                let hashes = self
                    .shared
                    .hash_trees
                    .get()
                    .into_iter()
                    .flatten()
                    .find(|(root, _)| *root == r.pieces_root)
                    .filter(|_| self.conn.send_queue_len() < MAX_HASH_BACKLOG)
                    .and_then(|(_, t)| {
                        t.hashes(r.base_layer, r.index, r.length, r.proof_layers)
                            .ok()
                    });
                let served = hashes.is_some();
                tracing::debug!(peer = %self.addr, index = r.index, length = r.length,
                    proof_layers = r.proof_layers, served, "hash request");
                let _ = match hashes {
                    Some(h) => self.conn.send_hashes(now, r, Bytes::from(h.concat())),
                    None => self.conn.send_hash_reject(now, r),
                };
            }
            _ => {}
        }
        let _ = now;
        Ok(())
    }

    async fn on_cmd(&mut self, cmd: PeerCmd) -> Result<(), PeerClose> {
        let now = Instant::now();
        match cmd {
            PeerCmd::Request(blocks) => {
                let mut failed = Vec::new();
                for b in blocks {
                    if self.conn.send_request(now, request_of(&b)).is_err() {
                        failed.push(b);
                    }
                }
                if !failed.is_empty() {
                    // The torrent never waits on a peer, so this cannot deadlock.
                    self.send(PeerMsg::RequestsFailed(failed)).await?;
                }
            }
            PeerCmd::Cancel(b) => {
                self.conn.cancel(now, request_of(&b));
            }
            PeerCmd::Have(p) => {
                let _ = self.ours.set(p);
                let _ = self.conn.have(now, p);
            }
            PeerCmd::Choke => {
                let _ = self.conn.choke(now);
            }
            PeerCmd::Unchoke => {
                let _ = self.conn.unchoke(now);
            }
            PeerCmd::Interested(i) => {
                let _ = self.conn.set_interested(now, i);
            }
            PeerCmd::Pex(m) => {
                let _ = self.conn.send_pex(now, &m);
            }
            PeerCmd::RequestHashes(r) => {
                if self.conn.send_hash_request(now, r).is_err() {
                    // It cannot take hash requests: as if it rejected.
                    self.send(PeerMsg::HashReject(Box::new(r))).await?;
                }
            }
            PeerCmd::RequestMetadata(piece) => {
                let _ = self
                    .conn
                    .send_metadata(now, &shoal_wire::MetadataMessage::Request { piece });
            }
            PeerCmd::SetPieces(ours) => {
                self.conn.set_num_pieces(ours.len())?;
                for p in ours.iter_ones() {
                    let _ = self.conn.have(now, p);
                }
                self.ours = ours;
            }
        }
        Ok(())
    }

    async fn read_failed(&mut self, e: DiskError, reqs: &[BlockRequest]) -> Result<(), PeerClose> {
        let now = Instant::now();
        for r in reqs {
            let _ = self.conn.reject_request(now, *r);
        }
        match e {
            DiskError::Storage(e) => {
                tracing::warn!(peer = %self.addr, error = %e, "reading data to upload failed");
                if e.should_pause() {
                    self.send_verdict(DiskVerdict::Error(TorrentError::from_storage(&e)))
                        .await?;
                }
                Ok(())
            }
            e => Err(e.into()),
        }
    }

    /// Tells the torrent about `received` blocks (one message), then hands
    /// their data to the disk actor as one batch.
    async fn hand_over(
        &mut self,
        received: Received,
        writes: &mut FuturesUnordered<WriteFut>,
    ) -> Result<(), PeerClose> {
        let mut blocks = Vec::with_capacity(received.len());
        let mut data = Vec::with_capacity(received.len());
        for (b, digest, bytes) in received {
            blocks.push((b, digest));
            data.push((b.piece, b.offset, bytes));
        }
        self.send(PeerMsg::Blocks(blocks)).await?;
        let Some(disk) = self.shared.disk.get().cloned() else {
            // Nothing was requested (the torrent is not downloading): the
            // torrent counted the blocks and drops them.
            return Ok(());
        };
        writes.push(Box::pin(async move {
            disk.queue_blocks(data).await?.outcomes().await
        }));
        Ok(())
    }

    async fn on_batch_written(
        &mut self,
        res: Result<Vec<Result<BlockOutcome, DiskError>>, DiskError>,
    ) -> Result<(), PeerClose> {
        match res {
            Ok(outcomes) => {
                for o in outcomes {
                    self.on_written(o).await?;
                }
                Ok(())
            }
            Err(e) => self.on_written(Err(e)).await,
        }
    }

    /// What became of a block: verdicts and storage errors go from the disk
    /// pool to the torrent directly; only what concerns this peer is here.
    async fn on_written(&mut self, res: Result<BlockOutcome, DiskError>) -> Result<(), PeerClose> {
        match res {
            Ok(_) => Ok(()),
            Err(DiskError::Storage(e)) => {
                tracing::debug!(peer = %self.addr, error = %e, "block not stored");
                Ok(())
            }
            Err(DiskError::BadBlock { reason, .. }) => {
                tracing::debug!(peer = %self.addr, reason, "block refused by the disk");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// Reads once into `buf` (growing it by at most [`READ_CHUNK`]).
async fn read_some<R: AsyncRead + Unpin>(
    rd: &mut R,
    buf: &mut bytes::BytesMut,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < 16 * 1024 {
        buf.reserve(READ_CHUNK);
    }
    rd.read_buf(buf).await
}

/// Writes queued chunks, gathering several per system call; adds the
/// payload chunks to `written` once they are on the socket.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut wr: W,
    mut rx: mpsc::Receiver<(Bytes, bool)>,
    written: Arc<AtomicU64>,
) {
    let mut batch: Vec<Bytes> = Vec::with_capacity(64);
    while let Some((first, p)) = rx.recv().await {
        let mut payload = if p { first.len() as u64 } else { 0 };
        batch.push(first);
        while batch.len() < 64 {
            match rx.try_recv() {
                Ok((b, p)) => {
                    if p {
                        payload += b.len() as u64;
                    }
                    batch.push(b);
                }
                Err(_) => break,
            }
        }
        if write_all_vectored(&mut wr, &mut batch).await.is_err() {
            return;
        }
        written.fetch_add(payload, Ordering::Relaxed);
        batch.clear();
    }
    let _ = wr.shutdown().await;
}

async fn write_all_vectored<W: AsyncWrite + Unpin>(
    wr: &mut W,
    batch: &mut [Bytes],
) -> std::io::Result<()> {
    let mut first = 0usize;
    while first < batch.len() {
        let slices: Vec<std::io::IoSlice<'_>> = batch[first..]
            .iter()
            .map(|b| std::io::IoSlice::new(b))
            .collect();
        let mut n = wr.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        drop(slices);
        while n > 0 && first < batch.len() {
            let len = batch[first].len();
            if n >= len {
                n -= len;
                first += 1;
            } else {
                let rest = batch[first].slice(n..);
                batch[first] = rest;
                n = 0;
            }
        }
    }
    wr.flush().await
}
