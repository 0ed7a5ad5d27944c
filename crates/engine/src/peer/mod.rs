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

mod dial;
mod io;
mod msg;
mod shared;

use io::{read_some, upload_socket, write_loop, Out};
pub(crate) use msg::{PeerCmd, PeerMsg};
pub(crate) use shared::{hash_trees, PeerShared};

/// Most batches of received blocks (one per socket read, at most about
/// [`READ_CHUNK`] bytes each) one peer may have waiting for the disk pool
/// (its budget, then its hashing) before it stops reading: 4 MiB. The pool
/// hashes consecutive pieces on different workers, so this must span more
/// than a piece: at 8 batches (1 MiB, one piece of the usual sizes) the
/// workers took turns instead of hashing at once, and a 1 GiB transfer over
/// loopback took about 15% longer.
const MAX_PENDING_WRITES: usize = 32;
/// Most upload reads in flight per peer.
const MAX_PENDING_READS: usize = 16;
/// Stop reading while this many output bytes wait for the socket.
const MAX_QUEUED_OUTPUT: usize = 4 << 20;
/// How often a peer reports its rates.
const STATS_INTERVAL: Duration = Duration::from_millis(500);
/// Bytes read from the socket at most per read call.
const READ_CHUNK: usize = 128 * 1024;

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
/// A finished upload read: the block's bytes (`Out::Bytes`) or, on a plain
/// TCP connection when its pages are cached, its place in its files
/// (`Out::File`, sent with `sendfile`).
type ReadFut = Pin<Box<dyn Future<Output = (BlockRequest, Result<Out, DiskError>)> + Send>>;

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

    async fn close(self, reason: PeerClose) {
        let _ = self
            .to_torrent
            .send(ToTorrent::Peer(self.key, PeerMsg::Closed { reason }))
            .await;
    }

    /// Runs the connection over `stream` until it closes; always ends by
    /// sending [`PeerMsg::Closed`].
    pub async fn run<S: PeerStream>(mut self, stream: S) {
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

    async fn drive<S: PeerStream>(&mut self, stream: S) -> PeerClose {
        let sock = upload_socket(&stream);
        let from_files = sock.is_some();
        let (mut rd, wr) = tokio::io::split(stream);
        let (wtx, wrx) = mpsc::channel::<Out>(512);
        let writer = tokio::spawn(write_loop(wr, wrx, self.written.clone(), sock));
        let mut writes: FuturesUnordered<WriteFut> = FuturesUnordered::new();
        let r = self.main_loop(&mut rd, &wtx, &mut writes, from_files).await;
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
        // Let the writer flush what is queued (a close reason, a reject)
        // briefly; a peer that stops reading does not keep it (and the
        // socket) alive after that.
        let mut writer = writer;
        if tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
        {
            writer.abort();
        }
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

    /// The connection's loop. `from_files`: uploads whose pages are cached
    /// go out with `sendfile` (the writer has the socket).
    async fn main_loop<R: AsyncRead + Unpin>(
        &mut self,
        rd: &mut R,
        wtx: &mpsc::Sender<Out>,
        writes: &mut FuturesUnordered<WriteFut>,
        from_files: bool,
    ) -> Result<(), PeerClose> {
        let mut reads: FuturesUnordered<ReadFut> = FuturesUnordered::new();
        let mut to_serve: VecDeque<BlockRequest> = VecDeque::new();
        let mut out: VecDeque<Out> = VecDeque::new();
        // File blocks handed to the connection, in the order their
        // `OutChunk::Extern` places come out of it.
        let mut file_blocks: VecDeque<shoal_storage::FileBlock> = VecDeque::new();
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
                    let (piece, offset, len) = (r.piece.0, r.offset, r.length as usize);
                    if from_files {
                        match disk.resident_block(piece, offset, len) {
                            Ok(Some(f)) => return (r, Ok(Out::File(f))),
                            Ok(None) => {}
                            Err(e) => return (r, Err(e)),
                        }
                    }
                    let res = disk.read(piece, offset, len).await;
                    (r, res.map(|b| Out::Bytes(b, true)))
                }));
            }
            while let Some(c) = self.conn.poll_transmit_chunk() {
                let item = match c {
                    shoal_wire::OutChunk::Bytes { data, payload } => Out::Bytes(data, payload),
                    shoal_wire::OutChunk::Extern { len } => match file_blocks.pop_front() {
                        Some(f) if f.len() == u64::from(len) => Out::File(f),
                        // Each extern place has its block, queued just
                        // before; anything else is a bug: close rather
                        // than send the peer wrong bytes.
                        _ => {
                            tracing::error!(peer = %self.addr, "upload queue out of step");
                            return Err(PeerClose::WriteClosed);
                        }
                    },
                };
                out_len += item.len();
                out.push_back(item);
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
                    // Not requested any more (cancelled, choked): dropped.
                    Ok(Out::Bytes(data, _)) => {
                        let _ = self.conn.send_piece(Instant::now(), r.piece.0, r.offset, data);
                    }
                    Ok(Out::File(f)) => {
                        if self
                            .conn
                            .send_piece_extern(Instant::now(), r.piece.0, r.offset, r.length)
                            .is_ok()
                        {
                            file_blocks.push_back(f);
                        }
                    }
                    Err(e) => self.read_failed(e, &[r]).await?,
                },
                permit = wtx.reserve(), if !out.is_empty() => {
                    let permit = permit.map_err(|_| PeerClose::WriteClosed)?;
                    if let Some(b) = out.pop_front() {
                        out_len -= b.len();
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
