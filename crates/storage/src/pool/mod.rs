//! The session's disk I/O pool: one set of threads, one memory budget, one
//! cache of open files and one direct writer for every torrent.
//!
//! # Shape
//! [`DiskPool::new`] starts a fixed number of worker threads
//! ([`DiskPoolConfig::workers`]); the direct-I/O writer thread and its
//! aligned buffers come on the first direct write. Nothing else is ever
//! spawned, whatever the number of torrents: [`DiskPool::add_torrent`] only
//! allocates a few words per piece (two bitsets) and returns a cheap
//! [`TorrentDisk`] handle. A torrent's state on a worker (its partial
//! pieces) exists while it has partial pieces there; idle torrents hold no
//! thread, buffer, open file or timer.
//!
//! # Routing and hashing on all cores
//! Every job about a piece goes to worker `(torrent + piece) % workers`: all
//! blocks of one piece meet on one worker, so its running SHA-1 needs no
//! lock, while consecutive pieces of one torrent hash on different workers.
//! Whole-torrent jobs (file selection, resume) go to worker
//! `torrent % workers`; barriers (flush, close, move) visit every worker.
//!
//! # Memory
//! One budget of bytes bounds block data queued, buffered or being
//! hashed and upload read data in flight, across all torrents:
//! [`TorrentDisk::queue_blocks`] and [`TorrentDisk::read`] wait for it
//! (backpressure on the peers' sockets). When less than a quarter is free
//! each worker writes its oldest partial pieces to disk unhashed and reads
//! them back when their hashed prefix reaches them (as the single-torrent
//! [`crate::Disk`] actor does; see `disk/mod.rs` for the per-piece rules,
//! which are the same here). The read cache of whole pieces and the
//! writer's aligned buffers have their own fixed bounds.
//!
//! # Verdicts
//! A completed piece is reported to its torrent's [`EventSink`] as
//! [`DiskEvent::PieceVerified`] only once its writes (direct ones included)
//! have landed: the report is sent from the writer's callback, so no worker
//! waits for the device. Storage errors reach the sink with their kind
//! ([`DiskEvent::Error`], [`StorageError::is_disk_full`] …), never a peer.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::backend::Backend;
use crate::disk::DiskError;
use crate::error::StorageError;
use crate::store::{AttachError, Storage};

mod budget;
mod piece_bufs;
mod read_cache;
mod relocate;
mod torrent;
mod worker;

pub use torrent::{QueuedBlocks, TorrentDisk};

use budget::Budget;
use piece_bufs::PieceBufs;
use read_cache::ReadCache;
use torrent::TorrentShared;
use worker::{Job, Worker};

/// Configuration of a [`DiskPool`].
#[derive(Debug, Clone, Copy)]
pub struct DiskPoolConfig {
    /// Worker threads (hashing and I/O). Default 2; at least 1.
    pub workers: usize,
    /// Bytes of block data (queued, buffered, being hashed) and upload read
    /// data in flight, all torrents together. A block or read larger than a
    /// quarter of it is rejected. Default 64 MiB.
    pub budget: usize,
    /// Open file handles, all torrents together (least recently used closed
    /// first). Default 512.
    pub max_open_files: usize,
    /// Aligned 1 MiB buffers of the direct writer, allocated on first use
    /// (raised to `workers + 1`). Default 4.
    pub direct_buffers: usize,
    /// Bytes of the read cache of whole pieces. Default 16 MiB; 0 disables it.
    pub read_cache: usize,
    /// Largest piece the read cache holds. Default 4 MiB.
    pub max_cached_piece: usize,
}

impl Default for DiskPoolConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            budget: 64 << 20,
            max_open_files: 512,
            direct_buffers: 4,
            read_cache: 16 << 20,
            max_cached_piece: 4 << 20,
        }
    }
}

/// What the pool tells a torrent, through the [`EventSink`] given to
/// [`DiskPool::add_torrent`].
#[derive(Debug)]
#[non_exhaustive]
pub enum DiskEvent {
    /// The piece matched its hash and all of it is on disk.
    PieceVerified(u32),
    /// The piece did not match its hash; it is open again (fetch it again).
    PieceFailed(u32),
    /// A storage operation failed. With `piece`, that piece's buffered data
    /// was dropped and the piece is open again. The engine should pause the
    /// torrent when [`StorageError::should_pause`] says so, with the reason
    /// [`StorageError::is_disk_full`] / [`StorageError::is_permission_denied`]
    /// give.
    Error {
        /// The piece whose data was lost, if the error concerned one.
        piece: Option<u32>,
        /// What failed, with its kind.
        error: StorageError,
    },
}

/// Where a torrent's [`DiskEvent`]s go. Called on the pool's worker and
/// writer threads: it must return quickly and never block on the pool
/// (typically it sends into the torrent's channel).
pub type EventSink = Arc<dyn Fn(DiskEvent) + Send + Sync>;

/// What became of one block handed to [`TorrentDisk::queue_blocks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockOutcome {
    /// Stored; its piece is not complete yet.
    Accepted,
    /// It completed its piece; the verdict goes to the event sink.
    Completed,
    /// Exactly this block was already received for this piece.
    Duplicate,
    /// The piece is verified or being hashed: the block was dropped.
    Ignored,
    /// A storage error (sent to the event sink) dropped the piece's data.
    Dropped,
}

/// Counters of a [`DiskPool`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Worker threads.
    pub workers: usize,
    /// Whether the direct writer thread runs.
    pub writer_running: bool,
    /// Aligned buffers the writer has allocated (1 MiB each).
    pub direct_buffers: usize,
    /// The configured budget.
    pub budget: usize,
    /// Bytes of the budget held now.
    pub budget_used: usize,
    /// The most bytes of the budget ever held at once.
    pub peak_budget_used: usize,
    /// Registered torrents (not closed).
    pub torrents: usize,
    /// Per-torrent states on the workers (torrents with partial pieces,
    /// counted once per worker).
    pub worker_states: usize,
    /// Pieces with some but not all blocks received.
    pub partial_pieces: usize,
    /// Pieces verified since start.
    pub pieces_verified: u64,
    /// Pieces that failed their hash since start.
    pub pieces_failed: u64,
    /// Blocks written to disk before their piece was complete.
    pub blocks_flushed: u64,
    /// Pieces completed (hashed) by each worker since start.
    pub pieces_hashed_by_worker: Vec<u64>,
    /// Open file handles, all torrents.
    pub open_files: usize,
    /// Bytes in the read cache.
    pub read_cache_bytes: usize,
    /// Reads served from the read cache.
    pub read_cache_hits: u64,
    /// Reads that went to disk.
    pub read_cache_misses: u64,
    /// Upload blocks handed out as [`crate::FileBlock`]s (cached pages, sent
    /// with `sendfile`) instead of being read.
    pub file_blocks: u64,
}

/// Counters updated by workers and writer callbacks.
pub(crate) struct Counters {
    pub(crate) verified: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) flushed: AtomicU64,
    pub(crate) partial: AtomicUsize,
    pub(crate) worker_states: AtomicUsize,
    pub(crate) torrents: AtomicUsize,
    pub(crate) hashed_by_worker: Vec<AtomicU64>,
    pub(crate) file_blocks: AtomicU64,
}

/// What workers share (never the job senders, so the workers end once the
/// last [`DiskPool`] and [`TorrentDisk`] are gone).
pub(crate) struct Core {
    pub(crate) budget: Budget,
    pub(crate) backend: Arc<Backend>,
    pub(crate) cache: ReadCache,
    /// Buffers for the read cache's pieces, recycled (at most half the
    /// cache's size of free ones).
    pub(crate) piece_bufs: Arc<PieceBufs>,
    pub(crate) counters: Arc<Counters>,
    /// Arrival order of partial pieces, for flushing the oldest first.
    pub(crate) born: AtomicU64,
}

/// Owns the workers: dropping the last reference stops and joins them.
pub(crate) struct PoolInner {
    pub(crate) core: Arc<Core>,
    senders: Vec<mpsc::Sender<Job>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    next_torrent: AtomicU64,
}

impl PoolInner {
    pub(crate) fn workers(&self) -> usize {
        self.senders.len()
    }

    /// The worker of `piece` of torrent `id`.
    pub(crate) fn worker_of(&self, id: u64, piece: u32) -> usize {
        (id.wrapping_add(u64::from(piece)) % self.workers().max(1) as u64) as usize
    }

    /// The worker of whole-torrent jobs of torrent `id`.
    pub(crate) fn home_of(&self, id: u64) -> usize {
        (id % self.workers().max(1) as u64) as usize
    }

    /// Hands `job` to worker `w`.
    pub(crate) fn send(&self, w: usize, job: Job) -> Result<(), DiskError> {
        self.senders
            .get(w)
            .ok_or(DiskError::Closed)?
            .send(job)
            .map_err(|_| DiskError::Closed)
    }
}

impl Drop for PoolInner {
    fn drop(&mut self) {
        self.senders.clear(); // each worker ends once its queue is drained
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|e| e.into_inner()));
        let me = std::thread::current().id();
        for t in threads {
            if t.thread().id() != me {
                let _ = t.join();
            }
        }
    }
}

/// The session's disk pool; cheap to clone. Stops (joining its threads) when
/// the last clone and the last [`TorrentDisk`] are dropped.
#[derive(Clone)]
pub struct DiskPool {
    inner: Arc<PoolInner>,
}

impl std::fmt::Debug for DiskPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskPool")
            .field("workers", &self.inner.workers())
            .field("budget", &self.inner.core.budget.len())
            .finish_non_exhaustive()
    }
}

impl DiskPool {
    /// Starts the worker threads (named `shoal-disk-N`). Fails only when the
    /// operating system refuses a thread.
    pub fn new(config: DiskPoolConfig) -> Result<Self, DiskError> {
        let workers = config.workers.max(1);
        let counters = Arc::new(Counters {
            verified: AtomicU64::new(0),
            file_blocks: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            flushed: AtomicU64::new(0),
            partial: AtomicUsize::new(0),
            worker_states: AtomicUsize::new(0),
            torrents: AtomicUsize::new(0),
            hashed_by_worker: (0..workers).map(|_| AtomicU64::new(0)).collect(),
        });
        let core = Arc::new(Core {
            budget: Budget::new(config.budget),
            backend: Arc::new(Backend::new(
                config.max_open_files,
                config.direct_buffers,
                workers,
            )),
            cache: ReadCache::new(config.read_cache, config.max_cached_piece),
            piece_bufs: PieceBufs::new(config.read_cache / 2),
            counters,
            born: AtomicU64::new(0),
        });
        let mut senders = Vec::with_capacity(workers);
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let (tx, rx) = mpsc::channel();
            let worker = Worker::new(index, core.clone());
            let t = std::thread::Builder::new()
                .name(format!("shoal-disk-{index}"))
                .spawn(move || worker.run(rx))
                .map_err(|e| {
                    DiskError::Storage(StorageError::io(crate::error::IoOp::Open, "", 0, e))
                })?;
            senders.push(tx);
            threads.push(t);
        }
        Ok(Self {
            inner: Arc::new(PoolInner {
                core,
                senders,
                threads: Mutex::new(threads),
                next_torrent: AtomicU64::new(0),
            }),
        })
    }

    /// Registers a torrent: attaches `storage` to the pool's file cache and
    /// writer, marks the pieces listed in `verified` (blocks for them are
    /// ignored), and sends the torrent's verdicts and errors to `events`.
    /// Spawns nothing and allocates no buffer; the wanted zero-length files
    /// are created on a worker. Fails when `storage` already belongs to a
    /// pool, or with the first failed write of its private writer.
    pub fn add_torrent(
        &self,
        storage: Arc<Storage>,
        verified: &[bool],
        events: EventSink,
    ) -> Result<TorrentDisk, DiskError> {
        storage
            .attach(self.inner.core.backend.clone())
            .map_err(|e| match e {
                AttachError::Attached => DiskError::AlreadyAttached,
                AttachError::Storage(e) => DiskError::Storage(e),
            })?;
        let id = self.inner.next_torrent.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(TorrentShared::new(id, storage, verified, events));
        self.inner
            .core
            .counters
            .torrents
            .fetch_add(1, Ordering::Relaxed);
        let disk = TorrentDisk::new(shared, self.inner.clone());
        disk.create_empty_files()?;
        Ok(disk)
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        stats(&self.inner.core)
    }
}

pub(crate) fn stats(core: &Core) -> PoolStats {
    let c = &core.counters;
    let (hits, misses) = core.cache.hits_misses();
    PoolStats {
        workers: c.hashed_by_worker.len(),
        writer_running: core.backend.writer_running(),
        direct_buffers: core.backend.buffers_allocated(),
        budget: core.budget.len(),
        budget_used: core.budget.used(),
        peak_budget_used: core.budget.peak(),
        torrents: c.torrents.load(Ordering::Relaxed),
        worker_states: c.worker_states.load(Ordering::Relaxed),
        partial_pieces: c.partial.load(Ordering::Relaxed),
        pieces_verified: c.verified.load(Ordering::Relaxed),
        pieces_failed: c.failed.load(Ordering::Relaxed),
        blocks_flushed: c.flushed.load(Ordering::Relaxed),
        pieces_hashed_by_worker: c
            .hashed_by_worker
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect(),
        open_files: core.backend.files.open_count(),
        read_cache_bytes: core.cache.bytes(),
        read_cache_hits: hits,
        read_cache_misses: misses,
        file_blocks: c.file_blocks.load(Ordering::Relaxed),
    }
}
