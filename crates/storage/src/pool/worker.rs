//! A pool worker: one OS thread that takes jobs of any torrent, in order.
//!
//! It keeps the partial pieces routed to it (see `disk/partial.rs`: v1
//! pieces hashed as their blocks arrive and written through in runs, v2
//! pieces kept until complete), finishes complete pieces (their verdict is
//! sent from the writer's callback once their writes landed), serves reads
//! and re-hashes, and flushes its oldest partial pieces when the shared
//! budget runs low. A torrent's state here exists only while it has partial
//! pieces on this worker. While a torrent moves, its jobs wait here in
//! arrival order until the move ends.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};

use bytes::Bytes;
use sha1::{Digest, Sha1};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

use super::budget::budgeted;
use super::torrent::{PieceState, TorrentShared};
use super::{BlockOutcome, Core, Counters, DiskEvent};
use crate::disk::partial::{Block, Fit, Partial};
use crate::disk::reply::Reply;
use crate::disk::DiskError;
use crate::error::{LayoutError, StorageError};
use crate::store::Storage;

/// Bytes read at once when a piece is read back whole (re-hash, digests).
pub(crate) const READ_CHUNK: usize = 1 << 20;

/// What a [`Barrier`] does on each worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarrierKind {
    /// Write the torrent's buffered partial pieces; then wait for the writer.
    Flush,
    /// Nothing: once every worker passed it, none touches the torrent's
    /// files until its `Release` (a move is under way).
    Hold,
    /// Write (or, with `discard`, drop) the partial pieces and forget the
    /// torrent; then wait for the writer and close its files.
    Close {
        /// Drop buffered data instead of writing it (the files go away).
        discard: bool,
    },
}

type Finish = Box<dyn FnOnce(Result<(), DiskError>) + Send>;

/// A job every worker passes; the last one to pass it runs `finish`.
pub(crate) struct Barrier {
    kind: BarrierKind,
    state: Mutex<(usize, Option<DiskError>, Option<Finish>)>,
}

impl Barrier {
    pub(crate) fn new(kind: BarrierKind, workers: usize, finish: Finish) -> Self {
        Self {
            kind,
            state: Mutex::new((workers, None, Some(finish))),
        }
    }

    /// One worker passed, with its first error.
    pub(crate) fn arrive(&self, err: Option<DiskError>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.0 = st.0.saturating_sub(1);
        if st.1.is_none() {
            st.1 = err;
        }
        if st.0 > 0 {
            return;
        }
        let err = st.1.take();
        let finish = st.2.take();
        drop(st);
        if let Some(f) = finish {
            f(err.map_or(Ok(()), Err));
        }
    }
}

/// One received block on its way to its worker.
pub(crate) struct InBlock {
    pub(crate) piece: u32,
    pub(crate) offset: u32,
    pub(crate) data: Bytes,
    pub(crate) permit: OwnedSemaphorePermit,
    pub(crate) reply: Reply<BlockOutcome>,
}

/// Whole-torrent work run on a worker, with the torrent's current storage.
pub(crate) type TorrentWork = Box<dyn FnOnce(&TorrentShared, &Storage) + Send>;

/// Work for a worker.
pub(crate) enum Job {
    /// Blocks of pieces routed to this worker.
    Write {
        t: Arc<TorrentShared>,
        blocks: Vec<InBlock>,
    },
    /// An upload read (through the read cache).
    Read {
        t: Arc<TorrentShared>,
        piece: u32,
        offset: u32,
        len: usize,
        permit: OwnedSemaphorePermit,
        reply: oneshot::Sender<Result<Bytes, DiskError>>,
    },
    /// SHA-1 of each 16 KiB block of a piece on disk.
    Digests {
        t: Arc<TorrentShared>,
        piece: u32,
        permit: OwnedSemaphorePermit,
        reply: oneshot::Sender<Result<Vec<[u8; 20]>, DiskError>>,
    },
    /// Re-verify a piece on disk.
    HashPiece {
        t: Arc<TorrentShared>,
        piece: u32,
        permit: OwnedSemaphorePermit,
        reply: oneshot::Sender<Result<bool, DiskError>>,
    },
    /// Whole-torrent work (file selection, resume, empty files).
    Run {
        t: Arc<TorrentShared>,
        f: TorrentWork,
    },
    /// Flush, close or hold the torrent (sent to every worker).
    Barrier {
        t: Arc<TorrentShared>,
        barrier: Arc<Barrier>,
    },
    /// A move ended: run the torrent's held-back jobs.
    Release { t: Arc<TorrentShared> },
}

impl Job {
    fn torrent(&self) -> &Arc<TorrentShared> {
        match self {
            Job::Write { t, .. }
            | Job::Read { t, .. }
            | Job::Digests { t, .. }
            | Job::HashPiece { t, .. }
            | Job::Run { t, .. }
            | Job::Barrier { t, .. }
            | Job::Release { t } => t,
        }
    }

    /// Jobs that wait while their torrent moves (all but the move's own).
    fn waits_for_move(&self) -> bool {
        match self {
            Job::Release { .. } => false,
            Job::Barrier { barrier, .. } => barrier.kind != BarrierKind::Hold,
            _ => true,
        }
    }
}

/// A torrent's partial pieces on this worker.
struct WorkerTorrent {
    t: Arc<TorrentShared>,
    partial: HashMap<u32, Partial>,
}

/// The state of one worker thread.
pub(crate) struct Worker {
    index: usize,
    core: Arc<Core>,
    torrents: HashMap<u64, WorkerTorrent>,
    /// Jobs of moving torrents, in arrival order.
    held: HashMap<u64, VecDeque<Job>>,
}

impl Worker {
    pub(crate) fn new(index: usize, core: Arc<Core>) -> Self {
        Self {
            index,
            core,
            torrents: HashMap::new(),
            held: HashMap::new(),
        }
    }

    /// Runs jobs until every sender is gone.
    pub(crate) fn run(mut self, rx: mpsc::Receiver<Job>) {
        crate::writer::set_thread_slot(self.index);
        while let Ok(job) = rx.recv() {
            self.handle(job);
            self.maybe_flush();
        }
    }

    fn handle(&mut self, job: Job) {
        let t = job.torrent();
        if job.waits_for_move()
            && (t.moving.load(Ordering::SeqCst) || self.held.contains_key(&t.id))
        {
            let id = t.id;
            self.held.entry(id).or_default().push_back(job);
            return;
        }
        match job {
            Job::Write { t, blocks } => {
                let storage = t.storage();
                for b in blocks {
                    self.on_block(&t, &storage, b);
                }
                self.tidy(t.id);
            }
            Job::Read {
                t,
                piece,
                offset,
                len,
                permit,
                reply,
            } => {
                let r = self.read(&t, piece, offset, len);
                let _ = reply.send(r.map(|b| budgeted(b, permit)));
            }
            Job::Digests {
                t,
                piece,
                permit,
                reply,
            } => {
                let r = block_digests(&t.storage(), piece);
                drop(permit);
                let _ = reply.send(r);
            }
            Job::HashPiece {
                t,
                piece,
                permit,
                reply,
            } => {
                let r = self.hash_piece(&t, piece);
                drop(permit);
                let _ = reply.send(r);
            }
            Job::Run { t, f } => f(&t, &t.storage()),
            Job::Barrier { t, barrier } => {
                let err = self.barrier(&t, barrier.kind);
                barrier.arrive(err);
            }
            Job::Release { t } => {
                for job in self.held.remove(&t.id).unwrap_or_default() {
                    self.handle(job);
                }
            }
        }
    }

    fn counters(&self) -> &Counters {
        &self.core.counters
    }

    /// Drops the torrent's state here when it has no partial piece left.
    fn tidy(&mut self, id: u64) {
        if self.torrents.get(&id).is_some_and(|w| w.partial.is_empty()) {
            self.torrents.remove(&id);
            self.counters()
                .worker_states
                .fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn on_block(&mut self, t: &Arc<TorrentShared>, storage: &Storage, b: InBlock) {
        let InBlock {
            piece,
            offset,
            data,
            permit,
            reply,
        } = b;
        let len = data.len() as u64;
        let off = u64::from(offset);
        let bad = |reason| {
            Err(DiskError::BadBlock {
                piece,
                offset,
                len: data.len(),
                reason,
            })
        };
        let Some(plen) = storage.map().piece_len(piece) else {
            let _ = reply.send(bad("no such piece"));
            return;
        };
        if off.checked_add(len).is_none_or(|e| e > plen) {
            let _ = reply.send(bad("block leaves its piece"));
            return;
        }
        if t.pieces.get(piece) != PieceState::Open {
            let _ = reply.send(Ok(BlockOutcome::Ignored));
            return;
        }
        let counters = self.core.counters.clone();
        let wt = self.torrents.entry(t.id).or_insert_with(|| {
            counters.worker_states.fetch_add(1, Ordering::Relaxed);
            WorkerTorrent {
                t: t.clone(),
                partial: HashMap::new(),
            }
        });
        let born = self.core.born.fetch_add(1, Ordering::Relaxed);
        let incremental = storage.map().piece_hash(piece).is_some();
        let p = wt.partial.entry(piece).or_insert_with(|| {
            counters.partial.fetch_add(1, Ordering::Relaxed);
            Partial {
                born,
                hasher: incremental.then(Sha1::new),
                ..Partial::default()
            }
        });
        match p.fit(off, len) {
            Fit::New => {}
            Fit::Duplicate => {
                let _ = reply.send(Ok(BlockOutcome::Duplicate));
                return;
            }
            Fit::Overlaps => {
                let _ = reply.send(bad("overlaps a received block"));
                return;
            }
        }
        p.blocks.insert(
            off,
            Block {
                len,
                data: Some((data, permit)),
            },
        );
        p.received += len;
        let advanced = p.advance(storage, piece);
        let complete = p.received >= plen;
        if let Err(error) = advanced {
            // The piece's buffered data is dropped; it will be fetched again.
            self.drop_partial(t.id, piece);
            let _ = reply.send(Ok(BlockOutcome::Dropped));
            t.emit(DiskEvent::Error {
                piece: Some(piece),
                error,
            });
            return;
        }
        if !complete {
            let _ = reply.send(Ok(BlockOutcome::Accepted));
            return;
        }
        let Some(done) = self.take_partial(t.id, piece) else {
            return;
        };
        let _ = reply.send(Ok(BlockOutcome::Completed));
        self.complete(t, storage, piece, plen, done);
    }

    /// Takes a partial piece out; the torrent's state here goes with its
    /// last one (before any verdict about it can be seen).
    fn take_partial(&mut self, id: u64, piece: u32) -> Option<Partial> {
        let p = self.torrents.get_mut(&id)?.partial.remove(&piece)?;
        self.counters().partial.fetch_sub(1, Ordering::Relaxed);
        self.tidy(id);
        Some(p)
    }

    fn drop_partial(&mut self, id: u64, piece: u32) {
        drop(self.take_partial(id, piece));
    }

    /// Finishes a complete piece: its verdict goes out once its writes
    /// landed (or at once for a v2 piece that failed in memory).
    fn complete(
        &mut self,
        t: &Arc<TorrentShared>,
        storage: &Storage,
        piece: u32,
        plen: u64,
        mut done: Partial,
    ) {
        t.pieces.set(piece, PieceState::Busy);
        if let Some(c) = self.counters().hashed_by_worker.get(self.index) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let fail = |error: StorageError| {
            t.pieces.set(piece, PieceState::Open);
            t.emit(DiskEvent::Error {
                piece: Some(piece),
                error,
            });
        };
        if done.hasher.is_some() {
            // v1: hashed as the blocks came; write the last run.
            if let Err(e) = done.write_run(storage, piece) {
                return fail(e);
            }
            let digest: Option<[u8; 20]> = done.hasher.take().map(|h| h.finalize().into());
            let good = done.hashed == plen
                && !done.unreadable
                && digest.is_some_and(|d| storage.map().piece_hash(piece) == Some(&d));
            drop(done);
            return self.verdict_after_writes(t, storage, piece, good);
        }
        // v2: hash the whole piece now.
        if !done.flushed {
            // Every block is in memory and, the piece being complete, they
            // are contiguous from offset 0.
            let bufs: Vec<&[u8]> = done
                .blocks
                .values()
                .filter_map(|b| b.data.as_ref().map(|(d, _)| &d[..]))
                .collect();
            if !storage.verify_data(piece, &bufs) {
                drop(bufs);
                drop(done);
                return verdict(t, self.counters(), piece, false);
            }
            let written = storage.write_vectored_behind(piece, 0, &bufs);
            drop(bufs);
            drop(done);
            if let Err(e) = written {
                return fail(e);
            }
            return self.verdict_after_writes(t, storage, piece, true);
        }
        // Some blocks are on disk already: write the rest, hash from disk.
        for (&off, b) in &done.blocks {
            if let Some((d, _)) = &b.data {
                if let Err(e) = storage.write(piece, off, d) {
                    return fail(e);
                }
            }
        }
        drop(done);
        match storage.verify_on_disk(piece) {
            Ok(good) => verdict(t, self.counters(), piece, good),
            Err(e) => fail(e),
        }
    }

    /// Sends the verdict of `piece` from the writer's callback, once every
    /// write queued so far landed.
    fn verdict_after_writes(
        &self,
        t: &Arc<TorrentShared>,
        storage: &Storage,
        piece: u32,
        good: bool,
    ) {
        let t = t.clone();
        let counters = self.core.counters.clone();
        storage.after_written(piece, move |written| match written {
            Ok(()) => verdict(&t, &counters, piece, good),
            Err(error) => {
                t.pieces.set(piece, PieceState::Open);
                t.emit(DiskEvent::Error {
                    piece: Some(piece),
                    error,
                });
            }
        });
    }

    /// Frees budget by writing the oldest partial pieces of this worker to
    /// disk, unverified, when less than a quarter of the budget is free.
    fn maybe_flush(&mut self) {
        let budget = &self.core.budget;
        if budget.available() >= budget.len() / 4 {
            return;
        }
        let mut order: Vec<(u64, u64, u32)> = self
            .torrents
            .iter()
            .flat_map(|(&id, w)| {
                w.partial
                    .iter()
                    .filter(|(_, p)| {
                        !p.run.is_empty() || p.blocks.values().any(|b| b.data.is_some())
                    })
                    .map(move |(&piece, p)| (p.born, id, piece))
            })
            .collect();
        order.sort_unstable();
        for (_, id, piece) in order {
            if self.core.budget.available() >= self.core.budget.len() / 2 {
                break;
            }
            if let Err(e) = self.flush_piece(id, piece) {
                // The blocks stay in memory; the error will surface again
                // when the piece completes and is written.
                tracing::warn!(piece, error = %e, "disk pool: flushing a partial piece failed");
                break;
            }
        }
    }

    fn flush_piece(&mut self, id: u64, piece: u32) -> Result<(), StorageError> {
        let Some(w) = self.torrents.get_mut(&id) else {
            return Ok(());
        };
        let storage = w.t.storage();
        let Some(p) = w.partial.get_mut(&piece) else {
            return Ok(());
        };
        let n = p.flush(&storage, piece)?;
        self.core.counters.flushed.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// This worker's part of a barrier; returns its first error.
    fn barrier(&mut self, t: &TorrentShared, kind: BarrierKind) -> Option<DiskError> {
        let mut err = None;
        let write = matches!(
            kind,
            BarrierKind::Flush | BarrierKind::Close { discard: false }
        );
        if write {
            let pieces: Vec<u32> = self
                .torrents
                .get(&t.id)
                .map(|w| w.partial.keys().copied().collect())
                .unwrap_or_default();
            for piece in pieces {
                if let Err(e) = self.flush_piece(t.id, piece) {
                    err.get_or_insert(DiskError::Storage(e));
                }
            }
        }
        if let BarrierKind::Close { .. } = kind {
            if let Some(w) = self.torrents.remove(&t.id) {
                let c = self.counters();
                c.partial.fetch_sub(w.partial.len(), Ordering::Relaxed);
                c.worker_states.fetch_sub(1, Ordering::Relaxed);
            }
            // Jobs held back by a move that cannot happen any more: their
            // replies see the pool closed.
            drop(self.held.remove(&t.id));
        }
        err
    }

    fn read(
        &self,
        t: &TorrentShared,
        piece: u32,
        offset: u32,
        len: usize,
    ) -> Result<Bytes, DiskError> {
        let storage = t.storage();
        let cache = &self.core.cache;
        let start = offset as usize;
        let end = start + len;
        let plen = storage.map().piece_len(piece).ok_or(DiskError::BadRead {
            piece,
            offset,
            len,
            reason: "no such piece",
        })? as usize;
        // A read of the same piece queued before this one may have filled it.
        if let Some(whole) = cache.get(t.id, piece) {
            if end <= whole.len() {
                return Ok(whole.slice(start..end));
            }
        }
        // Only verified data is served: anything else may be a sparse hole
        // (zeros) or bytes that failed their hash.
        if t.pieces.get(piece) != PieceState::Verified {
            return Err(DiskError::NotOnDisk { piece });
        }
        cache.miss();
        if cache.takes(plen) {
            let mut buf = self.core.piece_bufs.take(plen);
            if !storage.read_into(piece, 0, buf.as_mut())? {
                return Err(DiskError::NotOnDisk { piece });
            }
            let whole = buf.freeze();
            cache.insert(t.id, piece, whole.clone());
            if end <= whole.len() {
                return Ok(whole.slice(start..end));
            }
        }
        let mut buf = vec![0u8; len];
        if !storage.read_into(piece, u64::from(offset), &mut buf)? {
            return Err(DiskError::NotOnDisk { piece });
        }
        Ok(Bytes::from(buf))
    }

    fn hash_piece(&mut self, t: &TorrentShared, piece: u32) -> Result<bool, DiskError> {
        let storage = t.storage();
        // Its queued writes (and their verdict callbacks) land first.
        storage.wait_written(piece)?;
        let good = hash_on_disk(&storage, piece)?;
        if good {
            self.drop_partial(t.id, piece);
            t.pieces.set(piece, PieceState::Verified);
        } else {
            if t.pieces.get(piece) != PieceState::Open {
                t.pieces.set(piece, PieceState::Open);
            }
            self.core.cache.remove(t.id, piece);
        }
        Ok(good)
    }
}

/// Records a verdict and hands it to the torrent.
fn verdict(t: &TorrentShared, counters: &Counters, piece: u32, good: bool) {
    if good {
        t.pieces.set(piece, PieceState::Verified);
        counters.verified.fetch_add(1, Ordering::Relaxed);
        t.emit(DiskEvent::PieceVerified(piece));
    } else {
        t.pieces.set(piece, PieceState::Open);
        counters.failed.fetch_add(1, Ordering::Relaxed);
        t.emit(DiskEvent::PieceFailed(piece));
    }
}

/// Calls `f` with `piece` as it is on disk, in chunks of at most
/// [`READ_CHUNK`] bytes (multiples of 16 KiB but the last); `Ok(false)`
/// when some of it is not on disk.
fn read_piece_chunks(
    storage: &Storage,
    piece: u32,
    mut f: impl FnMut(&[u8]),
) -> Result<bool, StorageError> {
    let map = storage.map();
    let plen = map.piece_len(piece).ok_or(LayoutError::NoSuchPiece {
        piece,
        count: map.piece_count(),
    })?;
    let mut buf = vec![0u8; (plen as usize).min(READ_CHUNK)];
    let mut off = 0u64;
    while off < plen {
        let n = ((plen - off) as usize).min(READ_CHUNK);
        let Some(chunk) = buf.get_mut(..n) else {
            return Ok(false);
        };
        if !storage.read_into(piece, off, chunk)? {
            return Ok(false);
        }
        f(chunk);
        off += n as u64;
    }
    Ok(true)
}

/// SHA-1 of each 16 KiB block of `piece` on disk.
fn block_digests(storage: &Storage, piece: u32) -> Result<Vec<[u8; 20]>, DiskError> {
    let mut out = Vec::new();
    let present = read_piece_chunks(storage, piece, |chunk| {
        for b in chunk.chunks(shoal_metainfo::merkle::BLOCK_SIZE) {
            out.push(Sha1::digest(b).into());
        }
    })?;
    if present {
        Ok(out)
    } else {
        Err(DiskError::NotOnDisk { piece })
    }
}

/// Whether `piece` on disk matches its SHA-1 or v2 merkle root, reading it
/// in chunks (a piece is never held whole).
fn hash_on_disk(storage: &Storage, piece: u32) -> Result<bool, StorageError> {
    use shoal_metainfo::merkle::{block_hash, merkle_root, BLOCK_SIZE};
    let map = storage.map();
    if let Some(expected) = map.piece_hash(piece) {
        let mut h = Sha1::new();
        let present = read_piece_chunks(storage, piece, |c| h.update(c))?;
        let digest: [u8; 20] = h.finalize().into();
        return Ok(present && &digest == expected);
    }
    let Some(v2) = map.piece_hash_v2(piece) else {
        return Ok(false);
    };
    let mut leaves = Vec::new();
    let mut remaining = v2.data_len;
    let present = read_piece_chunks(storage, piece, |chunk| {
        for b in chunk.chunks(BLOCK_SIZE) {
            if remaining == 0 {
                break;
            }
            let take = (remaining as usize).min(b.len());
            leaves.push(block_hash(b.get(..take).unwrap_or_default()));
            remaining -= take as u64;
        }
    })?;
    Ok(present && remaining == 0 && merkle_root(&leaves, v2.leaves as usize) == v2.root)
}
