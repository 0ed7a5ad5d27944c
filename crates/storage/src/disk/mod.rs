//! The disk actor: buffers incoming blocks, hashes complete pieces off the
//! async threads, writes verified pieces, and gives the network backpressure.
//!
//! Shape (DESIGN.md principle 4): a `Clone` [`DiskHandle`] around a bounded
//! `mpsc::Sender`; messages carry `oneshot` replies; the run loop lives on its
//! own OS thread (it does blocking I/O), hashing runs on the rayon pool.
//!
//! # Memory budget
//! [`DiskHandle::write_block`] (or [`DiskHandle::queue_block`], which does not
//! wait for the outcome) first acquires as many permits as the block has
//! bytes from a semaphore holding `write_budget` permits; the permit travels
//! with the block and is released only when the bytes leave memory (written
//! or dropped). So queued + buffered bytes never exceed the budget, and a
//! slow disk makes `write_block` wait, which slows the peers' sockets
//! (backpressure).
//!
//! # Hashing as blocks arrive (v1 pieces)
//! Blocks of a piece mostly arrive in order. The actor keeps a running SHA-1
//! per partial piece: each block that extends the hashed prefix is hashed at
//! once and written to disk in runs of up to 256 KiB (`WRITE_RUN`), so a piece
//! never waits whole in memory, and completing it costs only the digest
//! comparison (no read-back, no second pass). Blocks that arrive ahead of the
//! prefix wait in memory; when less than a quarter of the budget is free the
//! actor writes the oldest such blocks to disk unhashed ("flush") and reads
//! them back when the prefix reaches them. Data of a piece that fails its
//! hash may be on disk, but the piece is never reported verified and its
//! blocks are fetched and written again. Pieces without a SHA-1 (v2) are
//! kept in memory (or flushed) until complete, then hashed on rayon.
//!
//! # Piece completion
//! When the last block of a piece arrives the completing `write_block` call
//! returns [`WriteOutcome::PieceVerified`] (the whole piece is on disk) or
//! [`WriteOutcome::PieceFailed`]. Blocks for pieces being hashed or already
//! verified are ignored ([`WriteOutcome::Ignored`]), so a late endgame
//! duplicate can never overwrite verified data.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use sha1::{Digest, Sha1};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::error::StorageError;
use crate::store::Storage;

pub(crate) mod partial;
pub(crate) mod reply;

use partial::{hash_and_write, Block, Fit, Partial};
pub use reply::PendingBatch;
use reply::{BatchReply, Reply};

/// Configuration of the disk actor.
#[derive(Debug, Clone, Copy)]
pub struct DiskConfig {
    /// Bytes of block data that may be queued, buffered or being hashed at
    /// once. Blocks larger than a quarter of this are rejected. Default 32 MiB.
    pub write_budget: usize,
    /// Capacity of the command queue. Default 256.
    pub queue_len: usize,
}

impl Default for DiskConfig {
    fn default() -> Self {
        Self {
            write_budget: 32 << 20,
            queue_len: 256,
        }
    }
}

/// Result of [`DiskHandle::write_block`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Stored in memory; the piece is not complete yet.
    Buffered,
    /// Exactly this block was already received for this piece.
    Duplicate,
    /// The piece is being hashed or already verified: the block was dropped.
    Ignored,
    /// This block completed the piece, which matched its hash and is on disk.
    PieceVerified(u32),
    /// This block completed the piece, which did not match its hash; its data
    /// was dropped and the piece must be fetched again.
    PieceFailed(u32),
}

/// Counters of the disk actor.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskStats {
    /// The configured budget.
    pub budget: usize,
    /// Bytes currently holding budget (queued, buffered or being hashed).
    pub buffered_bytes: usize,
    /// Highest `buffered_bytes` seen by the actor.
    pub peak_buffered_bytes: usize,
    /// Pieces with some but not all blocks received.
    pub partial_pieces: usize,
    /// Pieces verified since start.
    pub pieces_verified: u64,
    /// Pieces that failed their hash since start.
    pub pieces_failed: u64,
    /// Blocks written to disk before their piece was complete.
    pub blocks_flushed: u64,
}

/// Errors from the disk actor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// A storage operation failed; the engine should pause the torrent when
    /// [`StorageError::should_pause`] says so.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The block is empty, leaves its piece, overlaps another block
    /// partially, or exceeds a quarter of the budget.
    #[error("disk: bad block piece {piece} offset {offset} length {len}: {reason}")]
    BadBlock {
        /// Piece index.
        piece: u32,
        /// Offset in the piece.
        offset: u32,
        /// Block length.
        len: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// A read is empty, leaves its piece, or exceeds a quarter of the budget.
    #[error("disk: bad read piece {piece} offset {offset} length {len}: {reason}")]
    BadRead {
        /// Piece index.
        piece: u32,
        /// Offset in the piece.
        offset: u32,
        /// Requested length.
        len: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// The requested bytes of this piece are not (all) on disk.
    #[error("disk: piece {piece} is not on disk")]
    NotOnDisk {
        /// Piece index.
        piece: u32,
    },
    /// Moving the data would overwrite this existing file; nothing was moved.
    #[error("disk: move target {path:?} already exists")]
    TargetExists {
        /// The existing file.
        path: std::path::PathBuf,
    },
    /// The storage already belongs to a disk pool.
    #[error("disk: storage is already attached to a disk pool")]
    AlreadyAttached,
    /// The actor has stopped, or the torrent was closed.
    #[error("disk: actor stopped")]
    Closed,
}

/// The outcome of a block handed over by [`DiskHandle::queue_block`].
#[derive(Debug)]
#[must_use = "the outcome tells whether the block completed a piece"]
pub struct PendingWrite(oneshot::Receiver<Result<WriteOutcome, DiskError>>);

impl PendingWrite {
    /// Waits until the actor has processed the block (for the block that
    /// completes a piece: until the piece was hashed and written).
    pub async fn outcome(self) -> Result<WriteOutcome, DiskError> {
        self.0.await.map_err(|_| DiskError::Closed)?
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PieceState {
    Open,
    Hashing,
    Verified,
}

/// One block of a [`Msg::WriteMany`].
struct WriteReq {
    piece: u32,
    offset: u32,
    data: Bytes,
    reply: Reply,
}

enum Msg {
    /// Several blocks, each with its share of the budget.
    WriteMany(Vec<(WriteReq, OwnedSemaphorePermit)>),
    Write {
        piece: u32,
        offset: u32,
        data: Bytes,
        permit: OwnedSemaphorePermit,
        reply: Reply,
    },
    Done {
        piece: u32,
        verified: bool,
    },
    SaveResume {
        verified: Vec<bool>,
        reply: oneshot::Sender<Result<(), DiskError>>,
    },
    Stats {
        reply: oneshot::Sender<DiskStats>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), DiskError>>,
    },
}

/// Handle to the disk actor; cheap to clone. The actor stops after
/// [`DiskHandle::shutdown`] (or when every handle is dropped).
#[derive(Clone)]
pub struct DiskHandle {
    tx: mpsc::Sender<Msg>,
    budget: Arc<Semaphore>,
    budget_len: usize,
    storage: Arc<Storage>,
}

impl std::fmt::Debug for DiskHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiskHandle")
            .field("budget", &self.budget_len)
            .finish_non_exhaustive()
    }
}

/// Entry point to start the disk actor.
#[derive(Debug)]
pub struct Disk;

impl Disk {
    /// Starts the actor on its own thread. `verified` lists the pieces
    /// already verified (from [`Storage::resume_or_check`]); blocks for them
    /// are ignored. Creates the wanted zero-length files.
    pub fn spawn(
        storage: Arc<Storage>,
        verified: Vec<bool>,
        config: DiskConfig,
    ) -> Result<DiskHandle, DiskError> {
        storage.create_empty_files()?;
        let budget_len = config.write_budget.clamp(4, Semaphore::MAX_PERMITS);
        let budget = Arc::new(Semaphore::new(budget_len));
        let (tx, rx) = mpsc::channel(config.queue_len.max(1));
        let n = storage.map().piece_count() as usize;
        let mut state = vec![PieceState::Open; n];
        for (s, v) in state.iter_mut().zip(&verified) {
            if *v {
                *s = PieceState::Verified;
            }
        }
        let actor = Actor {
            storage: storage.clone(),
            rx,
            weak: tx.downgrade(),
            budget: budget.clone(),
            budget_len,
            state,
            partial: HashMap::new(),
            born: 0,
            in_flight: 0,
            stats: DiskStats {
                budget: budget_len,
                ..DiskStats::default()
            },
        };
        std::thread::Builder::new()
            .name("shoal-disk".into())
            .spawn(move || actor.run())
            .map_err(|e| StorageError::io(crate::error::IoOp::Open, storage.root(), 0, e))?;
        Ok(DiskHandle {
            tx,
            budget,
            budget_len,
            storage,
        })
    }
}

impl DiskHandle {
    /// The storage this actor writes to.
    pub fn storage(&self) -> &Arc<Storage> {
        &self.storage
    }

    /// Hands a received block to the actor and waits for its outcome. Waits
    /// while the write budget is exhausted (backpressure). The call that
    /// completes a piece resolves after the piece was hashed (and, if good,
    /// written). Equivalent to `queue_block(..).await?.outcome().await`.
    pub async fn write_block(
        &self,
        piece: u32,
        offset: u32,
        data: Bytes,
    ) -> Result<WriteOutcome, DiskError> {
        self.queue_block(piece, offset, data).await?.outcome().await
    }

    /// Hands a received block to the actor, waiting only for budget and
    /// queue space (backpressure), not for the actor to process it. The
    /// returned [`PendingWrite`] yields the outcome; a connection task can
    /// keep reading its socket while earlier blocks are processed.
    pub async fn queue_block(
        &self,
        piece: u32,
        offset: u32,
        data: Bytes,
    ) -> Result<PendingWrite, DiskError> {
        let len = data.len();
        let bad = |reason| DiskError::BadBlock {
            piece,
            offset,
            len,
            reason,
        };
        if len == 0 {
            return Err(bad("empty block"));
        }
        if len > self.budget_len / 4 {
            return Err(bad("block larger than a quarter of the write budget"));
        }
        let permits = u32::try_from(len).map_err(|_| bad("block too large"))?;
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(permits)
            .await
            .map_err(|_| DiskError::Closed)?;
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Write {
                piece,
                offset,
                data,
                permit,
                reply: Reply::One(reply),
            })
            .await
            .map_err(|_| DiskError::Closed)?;
        Ok(PendingWrite(rx))
    }

    /// Hands several received blocks `(piece, offset, data)` to the actor at
    /// once (one budget wait, one wake-up of the actor), waiting only for
    /// budget and queue space. A block that is empty or larger than a quarter
    /// of the budget gets a [`DiskError::BadBlock`] outcome. The returned
    /// [`PendingBatch`] yields every block's outcome once all are known.
    pub async fn queue_blocks(
        &self,
        blocks: Vec<(u32, u32, Bytes)>,
    ) -> Result<PendingBatch, DiskError> {
        let (batch, rx) = BatchReply::new(blocks.len());
        // Blocks go in groups of at most a quarter of the budget: one budget
        // wait and one message (one wake-up of the actor) per group.
        let mut group: Vec<WriteReq> = Vec::new();
        let mut group_len = 0usize;
        for (i, (piece, offset, data)) in blocks.into_iter().enumerate() {
            let reply = Reply::Batch(batch.clone(), i);
            let len = data.len();
            if len == 0 || len > self.budget_len / 4 {
                let _ = reply.send(Err(DiskError::BadBlock {
                    piece,
                    offset,
                    len,
                    reason: "empty, or larger than a quarter of the write budget",
                }));
                continue;
            }
            if group_len + len > self.budget_len / 4 {
                self.send_group(std::mem::take(&mut group), group_len)
                    .await?;
                group_len = 0;
            }
            group_len += len;
            group.push(WriteReq {
                piece,
                offset,
                data,
                reply,
            });
        }
        if !group.is_empty() {
            self.send_group(group, group_len).await?;
        }
        Ok(PendingBatch(rx))
    }

    async fn send_group(&self, group: Vec<WriteReq>, total: usize) -> Result<(), DiskError> {
        let mut permit = self
            .budget
            .clone()
            .acquire_many_owned(total as u32)
            .await
            .map_err(|_| DiskError::Closed)?;
        let mut writes = Vec::with_capacity(group.len());
        for w in group {
            // Cannot fail: the permits add up to `total`.
            let Some(p) = permit.split(w.data.len()) else {
                return Err(DiskError::Closed);
            };
            writes.push((w, p));
        }
        self.tx
            .send(Msg::WriteMany(writes))
            .await
            .map_err(|_| DiskError::Closed)
    }

    /// Reads a block for uploading, on a blocking thread. Only verified pieces
    /// should be served: they are on disk before they are reported verified.
    pub async fn read_block(
        &self,
        piece: u32,
        offset: u32,
        len: usize,
    ) -> Result<Bytes, DiskError> {
        let s = self.storage.clone();
        tokio::task::spawn_blocking(move || s.read_block(piece, u64::from(offset), len))
            .await
            .map_err(|_| DiskError::Closed)?
            .map(Bytes::from)
            .map_err(DiskError::from)
    }

    /// Saves the resume file for `verified`, in order after all writes
    /// accepted before it.
    pub async fn save_resume(&self, verified: Vec<bool>) -> Result<(), DiskError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::SaveResume { verified, reply })
            .await
            .map_err(|_| DiskError::Closed)?;
        rx.await.map_err(|_| DiskError::Closed)?
    }

    /// Current counters.
    pub async fn stats(&self) -> Result<DiskStats, DiskError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Stats { reply })
            .await
            .map_err(|_| DiskError::Closed)?;
        rx.await.map_err(|_| DiskError::Closed)
    }

    /// Writes buffered partial pieces to disk, waits for pieces being hashed,
    /// and stops the actor. Later calls on any handle return `Closed`.
    pub async fn shutdown(&self) -> Result<(), DiskError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Msg::Shutdown { reply })
            .await
            .map_err(|_| DiskError::Closed)?;
        rx.await.map_err(|_| DiskError::Closed)?
    }
}

struct Actor {
    storage: Arc<Storage>,
    rx: mpsc::Receiver<Msg>,
    weak: mpsc::WeakSender<Msg>,
    budget: Arc<Semaphore>,
    budget_len: usize,
    state: Vec<PieceState>,
    partial: HashMap<u32, Partial>,
    born: u64,
    in_flight: usize,
    stats: DiskStats,
}

impl Actor {
    fn run(mut self) {
        let mut shutdown: Option<oneshot::Sender<Result<(), DiskError>>> = None;
        while let Some(msg) = self.rx.blocking_recv() {
            self.note_buffered();
            match msg {
                Msg::Write {
                    piece,
                    offset,
                    data,
                    permit,
                    reply,
                } => {
                    if shutdown.is_some() {
                        let _ = reply.send(Err(DiskError::Closed));
                        continue;
                    }
                    self.on_write(piece, offset, data, permit, reply);
                    self.maybe_flush();
                }
                Msg::WriteMany(writes) => {
                    for (w, permit) in writes {
                        if shutdown.is_some() {
                            let _ = w.reply.send(Err(DiskError::Closed));
                            continue;
                        }
                        self.on_write(w.piece, w.offset, w.data, permit, w.reply);
                    }
                    self.maybe_flush();
                }
                Msg::Done { piece, verified } => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    if let Some(s) = self.state.get_mut(piece as usize) {
                        *s = if verified {
                            PieceState::Verified
                        } else {
                            PieceState::Open
                        };
                    }
                    if verified {
                        self.stats.pieces_verified += 1;
                    } else {
                        self.stats.pieces_failed += 1;
                    }
                }
                Msg::SaveResume { verified, reply } => {
                    let _ = reply.send(self.storage.save_resume(&verified).map_err(Into::into));
                }
                Msg::Stats { reply } => {
                    let mut s = self.stats;
                    s.buffered_bytes = self.buffered();
                    s.partial_pieces = self.partial.len();
                    let _ = reply.send(s);
                }
                Msg::Shutdown { reply } => {
                    self.budget.close();
                    let flushed = self.flush_all();
                    if let Err(e) = flushed {
                        let _ = reply.send(Err(e));
                    } else {
                        shutdown = Some(reply);
                    }
                }
            }
            if self.in_flight == 0 {
                if let Some(reply) = shutdown.take() {
                    let _ = reply.send(Ok(()));
                    return;
                }
            }
        }
    }

    fn buffered(&self) -> usize {
        self.budget_len
            .saturating_sub(self.budget.available_permits())
    }

    fn note_buffered(&mut self) {
        let b = self.buffered();
        self.stats.peak_buffered_bytes = self.stats.peak_buffered_bytes.max(b);
    }

    fn on_write(
        &mut self,
        piece: u32,
        offset: u32,
        data: Bytes,
        permit: OwnedSemaphorePermit,
        reply: Reply,
    ) {
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
        let Some(plen) = self.storage.map().piece_len(piece) else {
            let _ = reply.send(bad("no such piece"));
            return;
        };
        if off.checked_add(len).is_none_or(|e| e > plen) {
            let _ = reply.send(bad("block leaves its piece"));
            return;
        }
        if self.state.get(piece as usize) != Some(&PieceState::Open) {
            let _ = reply.send(Ok(WriteOutcome::Ignored));
            return;
        }
        let born = self.born;
        let incremental = self.storage.map().piece_hash(piece).is_some();
        let p = self.partial.entry(piece).or_insert_with(|| Partial {
            born,
            hasher: incremental.then(Sha1::new),
            ..Partial::default()
        });
        self.born += 1;
        match p.fit(off, len) {
            Fit::New => {}
            Fit::Duplicate => {
                let _ = reply.send(Ok(WriteOutcome::Duplicate));
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
        if let Err(e) = p.advance(&self.storage, piece) {
            // The piece's buffered data is dropped; it will be fetched again.
            self.partial.remove(&piece);
            let _ = reply.send(Err(e.into()));
            return;
        }
        if p.received < plen {
            let _ = reply.send(Ok(WriteOutcome::Buffered));
            return;
        }
        if p.hasher.is_some() {
            self.complete_incremental(piece, plen, reply);
            return;
        }
        let Some(done) = self.partial.remove(&piece) else {
            return;
        };
        if let Some(s) = self.state.get_mut(piece as usize) {
            *s = PieceState::Hashing;
        }
        self.in_flight += 1;
        let storage = self.storage.clone();
        let tx = self.weak.upgrade();
        rayon::spawn(move || {
            let result = hash_and_write(&storage, piece, done);
            let verified = matches!(result, Ok(WriteOutcome::PieceVerified(_)));
            // Report completion before replying, so the actor's state is
            // updated no later than the caller learns the outcome.
            if let Some(tx) = tx {
                let _ = tx.blocking_send(Msg::Done { piece, verified });
            }
            let _ = reply.send(result);
        });
    }

    /// Finishes a piece hashed as its blocks arrived: writes the last run and
    /// compares the digest.
    fn complete_incremental(&mut self, piece: u32, plen: u64, reply: Reply) {
        let Some(mut done) = self.partial.remove(&piece) else {
            return;
        };
        if let Err(e) = done.write_run(&self.storage, piece) {
            let _ = reply.send(Err(e.into()));
            return;
        }
        let digest: Option<[u8; 20]> = done.hasher.take().map(|h| h.finalize().into());
        let good = done.hashed == plen
            && !done.unreadable
            && digest.is_some_and(|d| self.storage.map().piece_hash(piece) == Some(&d));
        let outcome = if good {
            self.stats.pieces_verified += 1;
            if let Some(s) = self.state.get_mut(piece as usize) {
                *s = PieceState::Verified;
            }
            WriteOutcome::PieceVerified(piece)
        } else {
            self.stats.pieces_failed += 1;
            WriteOutcome::PieceFailed(piece)
        };
        // The outcome goes out once every run of the piece is on disk (a
        // verified piece may be read back for upload at once), or with the
        // error of a run that failed; the actor hashes on meanwhile.
        self.storage.after_written(piece, move |written| {
            let _ = reply.send(written.map(|()| outcome).map_err(Into::into));
        });
    }

    /// Frees budget by writing the oldest partial pieces to disk, unverified,
    /// when less than a quarter of the budget is free.
    fn maybe_flush(&mut self) {
        if self.budget.available_permits() >= self.budget_len / 4 {
            return;
        }
        let mut order: Vec<(u64, u32)> = self
            .partial
            .iter()
            .filter(|(_, p)| !p.run.is_empty() || p.blocks.values().any(|b| b.data.is_some()))
            .map(|(&i, p)| (p.born, i))
            .collect();
        order.sort_unstable();
        for (_, piece) in order {
            if self.budget.available_permits() >= self.budget_len / 2 {
                break;
            }
            if let Err(e) = self.flush_piece(piece) {
                // The blocks stay in memory; the error will surface again
                // when the piece completes and is written.
                tracing::warn!(piece, error = %e, "disk: flushing a partial piece failed");
                break;
            }
        }
    }

    fn flush_piece(&mut self, piece: u32) -> Result<(), DiskError> {
        let Some(p) = self.partial.get_mut(&piece) else {
            return Ok(());
        };
        self.stats.blocks_flushed += p.flush(&self.storage, piece)?;
        Ok(())
    }

    fn flush_all(&mut self) -> Result<(), DiskError> {
        let pieces: Vec<u32> = self.partial.keys().copied().collect();
        for p in pieces {
            self.flush_piece(p)?;
        }
        Ok(self.storage.wait_all_written()?)
    }
}
