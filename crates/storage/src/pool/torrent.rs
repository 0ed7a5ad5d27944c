//! [`TorrentDisk`]: one torrent's async-facing handle on the disk pool, and
//! the state it shares with the workers (piece states, storage, event sink).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::budget::budgeted;
use super::worker::{Barrier, BarrierKind, InBlock, Job, READ_CHUNK};
use super::{relocate, BlockOutcome, Core, DiskEvent, EventSink, PoolInner};
use crate::disk::reply::{BatchReply, BatchRx, Reply};
use crate::disk::DiskError;
use crate::store::Storage;

/// Where a piece is in its life on the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PieceState {
    /// Blocks are accepted.
    Open,
    /// Complete, its verdict waits for its writes to land: blocks ignored.
    Busy,
    /// On disk and verified: blocks ignored.
    Verified,
}

/// Two bits per piece, updated without locks: a piece's state changes only
/// on its worker or in its writer callback, which never run at once.
pub(crate) struct PieceStates {
    verified: Vec<AtomicU64>,
    busy: Vec<AtomicU64>,
}

impl PieceStates {
    fn new(count: u32, verified: &[bool]) -> Self {
        let words = (count as usize).div_ceil(64);
        let s = Self {
            verified: (0..words).map(|_| AtomicU64::new(0)).collect(),
            busy: (0..words).map(|_| AtomicU64::new(0)).collect(),
        };
        for (p, _) in verified.iter().enumerate().filter(|(_, v)| **v) {
            if let Ok(p) = u32::try_from(p) {
                if p < count {
                    s.set(p, PieceState::Verified);
                }
            }
        }
        s
    }

    fn bit(p: u32) -> (usize, u64) {
        ((p / 64) as usize, 1u64 << (p % 64))
    }

    /// The state of `p` (`Open` past the end: callers check the range).
    pub(crate) fn get(&self, p: u32) -> PieceState {
        let (w, b) = Self::bit(p);
        let is = |v: &Vec<AtomicU64>| v.get(w).is_some_and(|a| a.load(Ordering::Acquire) & b != 0);
        if is(&self.verified) {
            PieceState::Verified
        } else if is(&self.busy) {
            PieceState::Busy
        } else {
            PieceState::Open
        }
    }

    /// Sets the state of `p`.
    pub(crate) fn set(&self, p: u32, s: PieceState) {
        let (w, b) = Self::bit(p);
        let (Some(v), Some(busy)) = (self.verified.get(w), self.busy.get(w)) else {
            return;
        };
        match s {
            PieceState::Open => {
                busy.fetch_and(!b, Ordering::AcqRel);
                v.fetch_and(!b, Ordering::AcqRel);
            }
            PieceState::Busy => {
                busy.fetch_or(b, Ordering::AcqRel);
                v.fetch_and(!b, Ordering::AcqRel);
            }
            PieceState::Verified => {
                v.fetch_or(b, Ordering::AcqRel);
                busy.fetch_and(!b, Ordering::AcqRel);
            }
        }
    }
}

/// What the workers, the writer's callbacks and the handles of one torrent
/// share.
pub(crate) struct TorrentShared {
    pub(crate) id: u64,
    storage: RwLock<Arc<Storage>>,
    sink: EventSink,
    pub(crate) pieces: PieceStates,
    /// A move is under way: workers hold this torrent's jobs back.
    pub(crate) moving: AtomicBool,
    /// Set when close or delete starts; no job is sent after it.
    closed: RwLock<bool>,
    /// One move (or delete) at a time.
    relocating: tokio::sync::Mutex<()>,
}

impl TorrentShared {
    pub(crate) fn new(id: u64, storage: Arc<Storage>, verified: &[bool], sink: EventSink) -> Self {
        let count = storage.map().piece_count();
        Self {
            id,
            storage: RwLock::new(storage),
            sink,
            pieces: PieceStates::new(count, verified),
            moving: AtomicBool::new(false),
            closed: RwLock::new(false),
            relocating: tokio::sync::Mutex::new(()),
        }
    }

    /// The storage in use now (it changes when the data moves).
    pub(crate) fn storage(&self) -> Arc<Storage> {
        self.storage
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn set_storage(&self, s: Arc<Storage>) {
        *self.storage.write().unwrap_or_else(|e| e.into_inner()) = s;
    }

    /// Hands `e` to the torrent's sink.
    pub(crate) fn emit(&self, e: DiskEvent) {
        (self.sink)(e);
    }

    fn is_closed(&self) -> bool {
        *self.closed.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the torrent closed; `false` when it already was.
    fn begin_close(&self) -> bool {
        let mut c = self.closed.write().unwrap_or_else(|e| e.into_inner());
        !std::mem::replace(&mut *c, true)
    }
}

/// Closes the torrent when its last handle is dropped without `close()`.
struct Handle {
    t: Arc<TorrentShared>,
    pool: Arc<PoolInner>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        if self.t.begin_close() {
            drop(send_barrier(
                &self.pool,
                &self.t,
                BarrierKind::Close { discard: false },
            ));
        }
    }
}

/// The outcomes of blocks handed to [`TorrentDisk::queue_blocks`].
#[derive(Debug)]
#[must_use = "the outcomes report bad and duplicate blocks"]
pub struct QueuedBlocks(BatchRx<BlockOutcome>);

impl QueuedBlocks {
    /// Waits until the pool has processed every block of the batch; one
    /// outcome per block, in batch order. Piece verdicts go to the event
    /// sink, not here.
    pub async fn outcomes(self) -> Result<Vec<Result<BlockOutcome, DiskError>>, DiskError> {
        self.0.await.map_err(|_| DiskError::Closed)
    }
}

/// One torrent on a [`super::DiskPool`]; cheap to clone. Every method is
/// async and waits only for the pool (budget, a worker's answer), never
/// blocks the caller's thread. Dropping the last clone closes the torrent
/// as [`TorrentDisk::close`] does, in the background.
#[derive(Clone)]
pub struct TorrentDisk {
    h: Arc<Handle>,
}

impl std::fmt::Debug for TorrentDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentDisk")
            .field("id", &self.h.t.id)
            .finish_non_exhaustive()
    }
}

/// Sends a barrier of `kind` for `t` to every worker; the returned receiver
/// gets the outcome once every worker passed it and the last one finished
/// it (waited for the writer, and for a close released the torrent's
/// handles and cache entries).
fn send_barrier(
    pool: &PoolInner,
    t: &Arc<TorrentShared>,
    kind: BarrierKind,
) -> oneshot::Receiver<Result<(), DiskError>> {
    let (tx, rx) = oneshot::channel();
    let core = pool.core.clone();
    let tt = t.clone();
    let finish = Box::new(move |r: Result<(), DiskError>| {
        let r = r.and_then(|()| finish_barrier(kind, &tt, &core));
        let _ = tx.send(r);
    });
    let barrier = Arc::new(Barrier::new(kind, pool.workers(), finish));
    for w in 0..pool.workers() {
        let job = Job::Barrier {
            t: t.clone(),
            barrier: barrier.clone(),
        };
        if let Err(e) = pool.send(w, job) {
            barrier.arrive(Some(e));
        }
    }
    rx
}

/// The last step of a barrier, on the worker that passed it last.
fn finish_barrier(kind: BarrierKind, t: &TorrentShared, core: &Core) -> Result<(), DiskError> {
    let storage = t.storage();
    match kind {
        BarrierKind::Hold => Ok(()),
        BarrierKind::Flush => Ok(storage.wait_all_written()?),
        BarrierKind::Close { .. } => {
            let written = storage.wait_all_written();
            storage.forget_files();
            core.cache.remove_torrent(t.id);
            core.counters.torrents.fetch_sub(1, Ordering::Relaxed);
            Ok(written?)
        }
    }
}

impl TorrentDisk {
    pub(crate) fn new(t: Arc<TorrentShared>, pool: Arc<PoolInner>) -> Self {
        Self {
            h: Arc::new(Handle { t, pool }),
        }
    }

    fn t(&self) -> &Arc<TorrentShared> {
        &self.h.t
    }

    fn core(&self) -> &Core {
        &self.h.pool.core
    }

    /// The torrent's id in the pool (unique per pool).
    pub fn id(&self) -> u64 {
        self.t().id
    }

    /// The storage in use: after [`TorrentDisk::move_to`] a new one, under
    /// the new root.
    pub fn storage(&self) -> Arc<Storage> {
        self.t().storage()
    }

    /// Whether `piece` is verified as far as the pool knows.
    pub fn is_verified(&self, piece: u32) -> bool {
        self.t().pieces.get(piece) == super::torrent::PieceState::Verified
    }

    /// Sends `job` to worker `w` unless the torrent is closed.
    fn submit(&self, w: usize, job: Job) -> Result<(), DiskError> {
        let closed = self.t().closed.read().unwrap_or_else(|e| e.into_inner());
        if *closed {
            return Err(DiskError::Closed);
        }
        self.h.pool.send(w, job)
    }

    /// Runs `f` on the torrent's home worker and returns its result.
    async fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Storage) -> Result<R, DiskError> + Send + 'static,
    ) -> Result<R, DiskError> {
        let (tx, rx) = oneshot::channel();
        let job = Job::Run {
            t: self.t().clone(),
            f: Box::new(move |_, s| {
                let _ = tx.send(f(s));
            }),
        };
        self.submit(self.h.pool.home_of(self.id()), job)?;
        rx.await.map_err(|_| DiskError::Closed)?
    }

    /// Creates the wanted zero-length files on a worker; a failure goes to
    /// the event sink.
    pub(crate) fn create_empty_files(&self) -> Result<(), DiskError> {
        let storage = self.storage();
        let any = storage
            .map()
            .layout()
            .files
            .iter()
            .enumerate()
            .any(|(i, f)| f.length == 0 && !f.pad && storage.is_wanted(i));
        if !any {
            return Ok(());
        }
        let job = Job::Run {
            t: self.t().clone(),
            f: Box::new(|t, s| {
                if let Err(error) = s.create_empty_files() {
                    t.emit(DiskEvent::Error { piece: None, error });
                }
            }),
        };
        self.submit(self.h.pool.home_of(self.id()), job)
    }

    /// Hands received blocks `(piece, offset, data)` to the pool, waiting
    /// only for budget (backpressure). Blocks travel in groups of at most a
    /// quarter of the budget, one budget wait per group. A block that is
    /// empty, larger than a quarter of the budget or outside its piece gets
    /// [`DiskError::BadBlock`]. The returned [`QueuedBlocks`] resolves once
    /// every block was processed; verdicts of the pieces they complete go
    /// to the event sink.
    pub async fn queue_blocks(
        &self,
        blocks: Vec<(u32, u32, Bytes)>,
    ) -> Result<QueuedBlocks, DiskError> {
        if self.t().is_closed() {
            return Err(DiskError::Closed);
        }
        let (batch, rx) = BatchReply::<BlockOutcome>::new(blocks.len());
        let storage = self.storage();
        let max = self.core().budget.max_request();
        let mut group: Vec<InBlockReq> = Vec::new();
        let mut group_len = 0usize;
        for (i, (piece, offset, data)) in blocks.into_iter().enumerate() {
            let reply = Reply::Batch(batch.clone(), i);
            let len = data.len();
            let reason = if len == 0 {
                Some("empty block")
            } else if len > max {
                Some("block larger than a quarter of the budget")
            } else {
                match storage.map().piece_len(piece) {
                    None => Some("no such piece"),
                    Some(pl) if u64::from(offset) + len as u64 > pl => {
                        Some("block leaves its piece")
                    }
                    Some(_) => None,
                }
            };
            if let Some(reason) = reason {
                let _ = reply.send(Err(DiskError::BadBlock {
                    piece,
                    offset,
                    len,
                    reason,
                }));
                continue;
            }
            if group_len + len > max {
                self.send_group(std::mem::take(&mut group), group_len)
                    .await?;
                group_len = 0;
            }
            group_len += len;
            group.push((piece, offset, data, reply));
        }
        if !group.is_empty() {
            self.send_group(group, group_len).await?;
        }
        Ok(QueuedBlocks(rx))
    }

    async fn send_group(&self, group: Vec<InBlockReq>, total: usize) -> Result<(), DiskError> {
        let mut permit = self.core().budget.acquire(total).await?;
        let mut per_worker: Vec<Vec<InBlock>> =
            (0..self.h.pool.workers()).map(|_| Vec::new()).collect();
        for (piece, offset, data, reply) in group {
            // Cannot fail: the permits add up to `total`.
            let Some(permit) = permit.split(data.len()) else {
                return Err(DiskError::Closed);
            };
            let w = self.h.pool.worker_of(self.id(), piece);
            if let Some(v) = per_worker.get_mut(w) {
                v.push(InBlock {
                    piece,
                    offset,
                    data,
                    permit,
                    reply,
                });
            }
        }
        for (w, blocks) in per_worker.into_iter().enumerate() {
            if !blocks.is_empty() {
                let t = self.t().clone();
                self.submit(w, Job::Write { t, blocks })?;
            }
        }
        Ok(())
    }

    /// Reads `len` bytes at `offset` of `piece` for uploading, through the
    /// budget and the read cache (a miss on a verified piece of at most the
    /// cache's piece size reads the whole piece once for the next requests).
    /// The returned bytes hold their share of the budget until dropped:
    /// send them, do not keep them. Only verified pieces are served: a
    /// piece not verified, or whose data is missing on disk, is
    /// [`DiskError::NotOnDisk`], never zeros.
    pub async fn read(&self, piece: u32, offset: u32, len: usize) -> Result<Bytes, DiskError> {
        if len > self.core().budget.max_request() {
            return Err(DiskError::BadRead {
                piece,
                offset,
                len,
                reason: "read larger than a quarter of the budget",
            });
        }
        self.check_upload(piece, offset, len)?;
        let end = u64::from(offset) + len as u64;
        let permit = self.core().budget.acquire(len).await?;
        if let Some(whole) = self.core().cache.get(self.id(), piece) {
            if end as usize <= whole.len() {
                return Ok(budgeted(whole.slice(offset as usize..end as usize), permit));
            }
        }
        let (tx, rx) = oneshot::channel();
        let job = Job::Read {
            t: self.t().clone(),
            piece,
            offset,
            len,
            permit,
            reply: tx,
        };
        self.submit(self.h.pool.worker_of(self.id(), piece), job)?;
        rx.await.map_err(|_| DiskError::Closed)?
    }

    /// The block `[offset, offset + len)` of a verified `piece` as it lies
    /// in its files, to be sent with `sendfile(2)` (see
    /// [`crate::FileBlock`]), when its files are open and its pages cached;
    /// `Ok(None)` otherwise: then [`TorrentDisk::read`] it. Never blocks and
    /// takes no budget (it holds no data). Same errors as `read` for bad
    /// ranges, pieces not verified and closed torrents.
    pub fn resident_block(
        &self,
        piece: u32,
        offset: u32,
        len: usize,
    ) -> Result<Option<crate::FileBlock>, DiskError> {
        self.check_upload(piece, offset, len)?;
        let b = crate::FileBlock::resident(&self.storage(), piece, u64::from(offset), len as u64)
            .map_err(|_| DiskError::BadRead {
            piece,
            offset,
            len,
            reason: "read leaves its piece",
        })?;
        if b.is_some() {
            self.core()
                .counters
                .file_blocks
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(b)
    }

    /// Checks an upload of `[offset, offset + len)` of `piece`: not empty,
    /// inside the piece, the torrent open and the piece verified.
    fn check_upload(&self, piece: u32, offset: u32, len: usize) -> Result<(), DiskError> {
        let bad = |reason| DiskError::BadRead {
            piece,
            offset,
            len,
            reason,
        };
        if len == 0 {
            return Err(bad("empty read"));
        }
        let plen = self
            .storage()
            .map()
            .piece_len(piece)
            .ok_or_else(|| bad("no such piece"))?;
        if u64::from(offset) + len as u64 > plen {
            return Err(bad("read leaves its piece"));
        }
        if self.t().is_closed() {
            return Err(DiskError::Closed);
        }
        if !self.is_verified(piece) {
            return Err(DiskError::NotOnDisk { piece });
        }
        Ok(())
    }

    /// Runs a read-back job about `piece` on its worker, with the budget of
    /// one chunk of it; `job` builds the job from the permit and the reply.
    async fn piece_job<R>(
        &self,
        piece: u32,
        job: impl FnOnce(
            Arc<TorrentShared>,
            tokio::sync::OwnedSemaphorePermit,
            oneshot::Sender<Result<R, DiskError>>,
        ) -> Job,
    ) -> Result<R, DiskError> {
        let permit = self.chunk_permit(piece).await?;
        let (tx, rx) = oneshot::channel();
        let job = job(self.t().clone(), permit, tx);
        self.submit(self.h.pool.worker_of(self.id(), piece), job)?;
        rx.await.map_err(|_| DiskError::Closed)?
    }

    /// Budget for reading `piece` back in chunks: checks that it exists.
    async fn chunk_permit(
        &self,
        piece: u32,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, DiskError> {
        let plen = self
            .storage()
            .map()
            .piece_len(piece)
            .ok_or(DiskError::BadRead {
                piece,
                offset: 0,
                len: 0,
                reason: "no such piece",
            })?;
        let n = (plen as usize)
            .min(READ_CHUNK)
            .min(self.core().budget.max_request());
        self.core().budget.acquire(n).await
    }

    /// SHA-1 of each 16 KiB block of `piece` as it is on disk (the last one
    /// may be shorter), for smart ban. [`DiskError::NotOnDisk`] when some of
    /// it is missing.
    pub async fn block_digests(&self, piece: u32) -> Result<Vec<[u8; 20]>, DiskError> {
        self.piece_job(piece, |t, permit, reply| Job::Digests {
            t,
            piece,
            permit,
            reply,
        })
        .await
    }

    /// Hashes `piece` as it is on disk (after its queued writes) and records
    /// the result: a match makes it verified, a mismatch (or missing data)
    /// opens it again and drops it from the read cache.
    pub async fn hash_piece(&self, piece: u32) -> Result<bool, DiskError> {
        self.piece_job(piece, |t, permit, reply| Job::HashPiece {
            t,
            piece,
            permit,
            reply,
        })
        .await
    }

    /// Selects or deselects file `file`, moving its boundary-piece bytes
    /// between the file and the parts file (see [`Storage::set_file_wanted`]).
    pub async fn set_file_wanted(&self, file: usize, wanted: bool) -> Result<(), DiskError> {
        self.run(move |s| Ok(s.set_file_wanted(file, wanted)?))
            .await
    }

    /// Saves the resume file for `verified` (pieces reported verified are on
    /// disk already).
    pub async fn save_resume(&self, verified: Vec<bool>) -> Result<(), DiskError> {
        self.run(move |s| Ok(s.save_resume(&verified)?)).await
    }

    /// Writes the buffered partial pieces to disk (unhashed: they are read
    /// back when their blocks are hashed) and waits for every queued write
    /// of the torrent; fails with the first failed one.
    pub async fn flush(&self) -> Result<(), DiskError> {
        let rx = {
            let closed = self.t().closed.read().unwrap_or_else(|e| e.into_inner());
            if *closed {
                return Err(DiskError::Closed);
            }
            send_barrier(&self.h.pool, self.t(), BarrierKind::Flush)
        };
        rx.await.map_err(|_| DiskError::Closed)?
    }

    /// Processes the blocks already handed over, writes the buffered partial
    /// pieces, waits for the writes, then releases the torrent's state,
    /// file handles and cached pieces. Every later call (on any clone)
    /// returns [`DiskError::Closed`]; closing again does nothing.
    pub async fn close(&self) -> Result<(), DiskError> {
        if !self.t().begin_close() {
            return Ok(());
        }
        send_barrier(
            &self.h.pool,
            self.t(),
            BarrierKind::Close { discard: false },
        )
        .await
        .map_err(|_| DiskError::Closed)?
    }

    /// Closes the torrent (dropping its buffered data) and removes its
    /// files, the directories they leave empty, and its parts and resume
    /// files. Never removes anything outside the torrent's root (files
    /// reached through a symlinked directory are refused) nor files of
    /// other torrents sharing the root. Runs on the blocking thread pool.
    pub async fn delete_files(&self) -> Result<(), DiskError> {
        let _one = self.t().relocating.lock().await;
        if self.t().begin_close() {
            // Buffered data is about to be deleted: a failed write is moot.
            let _ =
                send_barrier(&self.h.pool, self.t(), BarrierKind::Close { discard: true }).await;
        }
        let storage = self.storage();
        tokio::task::spawn_blocking(move || relocate::delete_files(&storage))
            .await
            .map_err(|_| DiskError::Closed)?
    }

    /// Moves the torrent's files (and its parts and resume files when its
    /// state directory is the default one inside the root) to `new_root`,
    /// keeping their relative paths: a rename on the same filesystem, else
    /// a copy (synced) then removal of the originals. The torrent's jobs
    /// wait meanwhile (buffered partial pieces stay in memory and land in
    /// the new place); its queued writes land first. Refuses to overwrite
    /// existing files ([`DiskError::TargetExists`]); on any error whatever
    /// was moved goes back and the old data stays in use. Afterwards
    /// [`TorrentDisk::storage`] is a new [`Storage`] under `new_root`. The
    /// copy runs on the blocking thread pool; pause the torrent's peers
    /// during a long copy, as its blocks hold budget while they wait.
    pub async fn move_to(&self, new_root: impl Into<PathBuf>) -> Result<(), DiskError> {
        self.move_with(new_root.into(), false).await
    }

    pub(crate) async fn move_with(
        &self,
        new_root: PathBuf,
        force_copy: bool,
    ) -> Result<(), DiskError> {
        let t = self.t().clone();
        let _one = t.relocating.lock().await;
        if t.is_closed() {
            return Err(DiskError::Closed);
        }
        if self.storage().root() == new_root {
            return Ok(());
        }
        t.moving.store(true, Ordering::SeqCst);
        let held = send_barrier(&self.h.pool, &t, BarrierKind::Hold)
            .await
            .map_err(|_| DiskError::Closed)
            .and_then(|r| r);
        let result = match held {
            Err(e) => Err(e),
            Ok(()) => {
                let backend = self.core().backend.clone();
                let tt = t.clone();
                tokio::task::spawn_blocking(move || {
                    relocate::move_storage(&tt, backend, &new_root, force_copy)
                })
                .await
                .map_err(|_| DiskError::Closed)
                .and_then(|r| r)
            }
        };
        t.moving.store(false, Ordering::SeqCst);
        for w in 0..self.h.pool.workers() {
            let _ = self.h.pool.send(w, Job::Release { t: t.clone() });
        }
        result
    }
}

/// A block waiting for its group's budget.
type InBlockReq = (u32, u32, Bytes, Reply<BlockOutcome>);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piece_states_round_trip() {
        let s = PieceStates::new(130, &[true, false, true]);
        assert_eq!(s.get(0), PieceState::Verified);
        assert_eq!(s.get(1), PieceState::Open);
        s.set(129, PieceState::Busy);
        assert_eq!(s.get(129), PieceState::Busy);
        s.set(129, PieceState::Verified);
        assert_eq!(s.get(129), PieceState::Verified);
        s.set(129, PieceState::Open);
        assert_eq!(s.get(129), PieceState::Open);
        assert_eq!(s.get(128), PieceState::Open);
        s.set(500, PieceState::Verified); // out of range: ignored
        assert_eq!(s.get(500), PieceState::Open);
    }
}
