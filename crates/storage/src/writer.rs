//! The background writer of direct (`O_DIRECT`) chunks.
//!
//! A direct write blocks until the device has the data (about 0.6 ms per MiB
//! here), time in which the disk actor could hash the next blocks. So
//! [`Storage::write_vectored_behind`](crate::Storage::write_vectored_behind)
//! copies the aligned part of each run into a pooled [`AlignedBuf`] of 1 MiB
//! (contiguous runs of one piece share a buffer: one device request per MiB)
//! and hands full buffers to this thread. The caller blocks only when every
//! buffer is in flight (backpressure). Jobs run in order, so a callback
//! queued with [`Writer::after_written`] runs once every earlier write has
//! landed: the disk actor and the pool's workers report a piece verified
//! from there, without waiting themselves. A failed write is kept with its
//! (storage, piece) until that piece's callback or a wait reports it.
//!
//! One writer may serve many storages (a disk pool shares one): chunks carry
//! their file's [`FileKey`], errors are kept per owner. Each filling thread
//! has its own chunk being filled (its *slot*, [`set_thread_slot`]), so two
//! workers writing different pieces do not cut each other's chunks short.
//! Buffers are allocated on first use, at most the configured number.

use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::direct::{pwrite_direct, AlignedBuf, Gather};
use crate::error::{IoOp, StorageError};
use crate::files::FileKey;

/// Buffers of a storage's private writer (memory: `POOL * AlignedBuf::LEN`).
pub(crate) const POOL: usize = 3;

thread_local! {
    /// The filling slot of this thread (see [`set_thread_slot`]).
    static SLOT: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread fill chunks in `slot` (taken modulo the
/// writer's slot count). Pool workers call it once with their index; other
/// threads use slot 0.
pub(crate) fn set_thread_slot(slot: usize) {
    SLOT.with(|s| s.set(slot));
}

/// A direct write that takes longer than [`SLOW_LATENCY`] plus its length
/// at this rate counts as slow: a seeking hard disk (about 15 ms per MiB) or
/// a network filesystem, not an SSD (1 to 4 ms per MiB) or a fast VM disk.
const SLOW_BYTES_PER_SEC: u64 = 256 << 20;

/// Latency allowed to every direct write before it counts as slow.
const SLOW_LATENCY: Duration = Duration::from_millis(2);

/// After this many slow jobs the storage gives up `O_DIRECT`: without the
/// page cache the kernel cannot merge and reorder writes for such a device.
pub(crate) const SLOW_JOBS_TO_GIVE_UP: u64 = 8;

/// Called on the writer thread once the writes queued before it are done,
/// with the first failed write of its piece.
pub(crate) type Callback = Box<dyn FnOnce(Result<(), StorageError>) + Send>;

/// Where a chunk goes: the file's two handles and its cache key.
#[derive(Clone)]
pub(crate) struct Dest {
    /// The `O_DIRECT` handle.
    pub direct: Arc<File>,
    /// The ordinary handle of the same file, for a chunk the device refuses.
    pub buffered: Arc<File>,
    /// Cache key of the file (its owner first), reported back when
    /// `O_DIRECT` was refused.
    pub key: FileKey,
    pub path: PathBuf,
}

/// A piece of one storage: (storage id, piece index).
type PieceKey = (u64, u32);

/// Aligned bytes of one piece for one file, contiguous from `offset`.
struct Chunk {
    dest: Dest,
    buf: AlignedBuf,
    len: usize,
    offset: u64,
    piece: u32,
}

impl Chunk {
    fn piece_key(&self) -> PieceKey {
        (self.dest.key.0, self.piece)
    }
}

enum Job {
    Write(Chunk),
    Call(PieceKey, Callback),
}

#[derive(Default)]
struct State {
    queued: u64,
    done: u64,
    /// Failed writes not reported yet, by piece.
    errors: Vec<(PieceKey, StorageError)>,
    /// Files whose direct writes were refused (`EINVAL`).
    refused: Vec<FileKey>,
    /// Writes slower than [`SLOW_BYTES_PER_SEC`].
    slow: u64,
    /// Writes sent to the device together with the one before them.
    paired: u64,
}

impl State {
    fn take_error(&mut self, piece: PieceKey) -> Option<StorageError> {
        let pos = self.errors.iter().position(|(p, _)| *p == piece);
        pos.map(|i| self.errors.swap_remove(i).1)
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single field change: poisoning cannot leave the
        // state inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs a callback with its piece's first failed write, if any.
    fn call(&self, piece: PieceKey, f: Callback) {
        let err = self.lock().take_error(piece);
        f(err.map_or(Ok(()), Err));
        // Counted once it has run: a wait covers the callbacks queued
        // before it (a re-hash waits for a piece's verdict).
        self.lock().done += 1;
        self.changed.notify_all();
    }
}

/// A chunk written (or not), with how long the write took.
struct Written {
    chunk: Chunk,
    result: Result<bool, StorageError>,
    took: Duration,
}

/// Writes `c` now; returns the outcome and how long it took.
fn write_timed(c: &Chunk) -> (Result<bool, StorageError>, Duration) {
    let t0 = Instant::now();
    let result = write_chunk(c);
    (result, t0.elapsed())
}

impl Written {
    /// Writes `chunk` now.
    fn of(chunk: Chunk) -> Self {
        let r = write_timed(&chunk);
        Self::from(chunk, r)
    }

    fn from(chunk: Chunk, (result, took): (Result<bool, StorageError>, Duration)) -> Self {
        Written {
            chunk,
            result,
            took,
        }
    }
}

impl Shared {
    /// Records a write's outcome (it counts as done from here); returns its
    /// buffer.
    fn record(&self, w: Written) -> AlignedBuf {
        let Written {
            chunk: c,
            result,
            took,
        } = w;
        let slow = took
            > SLOW_LATENCY
                + Duration::from_nanos(c.len as u64 * 1_000_000_000 / SLOW_BYTES_PER_SEC);
        let mut st = self.lock();
        st.slow += u64::from(slow);
        if slow && st.slow == SLOW_JOBS_TO_GIVE_UP {
            tracing::debug!(
                jobs = st.slow,
                last_ms = took.as_millis() as u64,
                "direct writes slow: the page cache takes the next ones"
            );
        }
        match result {
            Ok(false) => {}
            Ok(true) => st.refused.push(c.dest.key),
            Err(e) => st.errors.push((c.piece_key(), e)),
        }
        st.done += 1;
        drop(st);
        self.changed.notify_all();
        c.buf
    }

    /// The writer thread: runs the jobs in order. When the next job is a
    /// write too, the two writes go to the device at once ([`write_pair`]),
    /// and both are recorded only once both landed, so a wait or a callback
    /// never sees a later write done before an earlier one.
    fn serve(&self, rx: Receiver<Job>, free: &Sender<AlignedBuf>) {
        let mut next: Option<Job> = None;
        loop {
            let job = match next.take() {
                Some(j) => j,
                None => match rx.recv() {
                    Ok(j) => j,
                    Err(_) => return,
                },
            };
            let first = match job {
                Job::Write(c) => c,
                Job::Call(piece, f) => {
                    self.call(piece, f);
                    continue;
                }
            };
            match rx.try_recv() {
                Ok(Job::Write(second)) => {
                    let (a, b) = write_pair(first, second);
                    self.lock().paired += 1;
                    for w in [a, b] {
                        let _ = free.send(self.record(w));
                    }
                }
                Ok(other) => {
                    let _ = free.send(self.record(Written::of(first)));
                    next = Some(other);
                }
                Err(_) => {
                    let _ = free.send(self.record(Written::of(first)));
                }
            }
        }
    }
}

/// Writes two chunks at once, the second on a scoped thread (or after the
/// first if no thread can be started); returns them in order.
///
/// Why two at once: on ext4 a direct write into preallocated space takes the
/// inode lock shared, so two proceed together, and a virtual disk serves two
/// requests faster than one after the other. Measured here with `dd` (1 GiB
/// in 1 MiB direct writes to a fresh preallocated file): 0.62–0.72 s with
/// two writers, 0.84–0.89 s with one. A thread per pair costs tens of
/// microseconds per 2 MiB.
fn write_pair(first: Chunk, second: Chunk) -> (Written, Written) {
    let (ra, rb) = std::thread::scope(|s| {
        let other = std::thread::Builder::new()
            .name("shoal-writer2".into())
            .spawn_scoped(s, || write_timed(&second));
        let ra = write_timed(&first);
        let rb = match other {
            // A panic in the write is raised here as it would have been
            // with one thread.
            Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
            Err(_) => write_timed(&second),
        };
        (ra, rb)
    });
    (Written::from(first, ra), Written::from(second, rb))
}

impl Shared {
    /// Waits until `target` jobs are done, then returns the first error
    /// that `report` asks for, which is then forgotten.
    fn wait_done(&self, target: u64, report: Report) -> Option<StorageError> {
        let mut st = self.lock();
        while st.done < target {
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        match report {
            Report::Piece(owner, piece) => st.take_error((owner, piece)),
            Report::All(owner) => {
                let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut st.errors)
                    .into_iter()
                    .partition(|(k, _)| k.0 == owner);
                st.errors = others;
                mine.into_iter().next().map(|(_, e)| e)
            }
            Report::Nothing => None,
        }
    }
}

/// Which failed writes a wait reports (and forgets).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Report {
    /// The first failure of this piece of this storage.
    Piece(u64, u32),
    /// The first failure of any piece of this storage; all of its failures
    /// are forgotten.
    All(u64),
    /// None: they stay for their piece.
    Nothing,
}

/// A wait prepared under the writer's lock and completed without it (see
/// [`Writer::prepare_wait`]).
pub(crate) struct Waiter {
    shared: Arc<Shared>,
    target: u64,
}

impl Waiter {
    /// Blocks until every job queued before the wait was prepared is done;
    /// returns the first failure `report` asks for.
    pub(crate) fn wait(self, report: Report) -> Option<StorageError> {
        self.shared.wait_done(self.target, report)
    }
}

/// The writer thread, its job queue, its buffer pool and the chunks being
/// filled.
pub(crate) struct Writer {
    jobs: Option<SyncSender<Job>>,
    free: Receiver<AlignedBuf>,
    /// Buffers not allocated yet.
    unallocated: usize,
    /// Buffers allocated so far.
    allocated: usize,
    /// The chunk being filled by each slot, not queued yet.
    filling: Vec<Option<Chunk>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread, with at most `buffers` aligned buffers (raised to
    /// `slots + 1`, so a slot waiting for a buffer never waits on buffers
    /// that other slots hold half-filled) and `slots` filling slots.
    pub(crate) fn spawn(buffers: usize, slots: usize) -> io::Result<Self> {
        let slots = slots.max(1);
        let buffers = buffers.max(slots + 1);
        let (jobs, rx) = mpsc::sync_channel::<Job>(buffers);
        let (free_tx, free): (Sender<AlignedBuf>, _) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("shoal-writer".into())
            .spawn(move || sh.serve(rx, &free_tx))?;
        Ok(Self {
            jobs: Some(jobs),
            free,
            unallocated: buffers,
            allocated: 0,
            filling: (0..slots).map(|_| None).collect(),
            shared,
            thread: Some(thread),
        })
    }

    /// Aligned buffers allocated so far (each [`AlignedBuf::LEN`] bytes).
    pub(crate) fn buffers_allocated(&self) -> usize {
        self.allocated
    }

    /// A buffer to fill: a free one, a new one while the pool is not full,
    /// else waits for the oldest write to finish.
    fn buffer(&mut self) -> AlignedBuf {
        if let Ok(b) = self.free.try_recv() {
            return b;
        }
        if self.unallocated > 0 {
            self.unallocated -= 1;
            self.allocated += 1;
            return AlignedBuf::new();
        }
        // The thread returns every buffer it takes; if it is gone, allocate.
        self.free.recv().unwrap_or_else(|_| AlignedBuf::new())
    }

    /// Copies the next `n` bytes of `gather` (a multiple of the alignment)
    /// for `dest` at the aligned `offset`, queuing each buffer that fills up
    /// or cannot take them contiguously.
    pub(crate) fn append(
        &mut self,
        dest: &Dest,
        piece: u32,
        mut offset: u64,
        gather: &mut Gather<'_>,
        mut n: usize,
    ) {
        let slot = SLOT.with(Cell::get) % self.filling.len().max(1);
        while n > 0 {
            let joins = self
                .filling
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|c| {
                    c.dest.key == dest.key
                        && c.piece == piece
                        && c.offset + c.len as u64 == offset
                        && c.len < AlignedBuf::LEN
                });
            if !joins {
                self.flush_slot(slot);
                let buf = self.buffer();
                if let Some(f) = self.filling.get_mut(slot) {
                    *f = Some(Chunk {
                        dest: dest.clone(),
                        buf,
                        len: 0,
                        offset,
                        piece,
                    });
                }
            }
            let Some(c) = self.filling.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            let take = n.min(AlignedBuf::LEN - c.len);
            let copied = gather.fill(
                c.buf
                    .get_mut()
                    .get_mut(c.len..c.len + take)
                    .unwrap_or_default(),
            );
            c.len += copied;
            offset += copied as u64;
            n -= take;
            if copied < take {
                n = 0; // the parts ran out (cannot happen for a valid `n`)
            }
            if c.len == AlignedBuf::LEN {
                self.flush_slot(slot);
            }
        }
    }

    /// Queues the chunk being filled in `slot`, if any.
    fn flush_slot(&mut self, slot: usize) {
        if let Some(c) = self.filling.get_mut(slot).and_then(Option::take) {
            if c.len > 0 {
                self.submit(Job::Write(c));
            }
        }
    }

    /// Queues every chunk being filled.
    fn flush(&mut self) {
        for slot in 0..self.filling.len() {
            self.flush_slot(slot);
        }
    }

    /// Queues a job (or, if the thread is gone, runs it here).
    fn submit(&mut self, job: Job) {
        self.shared.lock().queued += 1;
        let job = match &self.jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            None => job,
        };
        // The thread is gone: run the job here (a write's buffer is freed).
        match job {
            Job::Write(c) => drop(self.shared.record(Written::of(c))),
            Job::Call(piece, f) => self.shared.call(piece, f),
        }
    }

    /// Runs `f` on the writer thread once every write queued so far (the
    /// chunks being filled for this piece included) is done, with the first
    /// failure of piece `piece` of storage `owner`.
    pub(crate) fn after_written(&mut self, owner: u64, piece: u32, f: Callback) {
        for slot in 0..self.filling.len() {
            let mine = self
                .filling
                .get(slot)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.piece_key() == (owner, piece));
            if mine {
                self.flush_slot(slot);
            }
        }
        self.submit(Job::Call((owner, piece), f));
    }

    /// How many writes went to the device together with another.
    #[cfg(test)]
    pub(crate) fn paired_writes(&self) -> u64 {
        self.shared.lock().paired
    }

    /// How many writes were slow so far (see [`SLOW_JOBS_TO_GIVE_UP`]).
    pub(crate) fn slow_jobs(&self) -> u64 {
        self.shared.lock().slow
    }

    /// Files whose direct writes were refused since the last call.
    pub(crate) fn take_refused(&self) -> Vec<FileKey> {
        std::mem::take(&mut self.shared.lock().refused)
    }

    /// Queues the chunks being filled and returns a [`Waiter`] for every job
    /// queued so far, to wait on once the writer's lock is released (so
    /// other threads keep writing meanwhile).
    pub(crate) fn prepare_wait(&mut self) -> Waiter {
        self.flush();
        let target = self.shared.lock().queued;
        Waiter {
            shared: self.shared.clone(),
            target,
        }
    }

    /// Queues the chunks being filled and waits until every queued job is
    /// done. Returns the first error that `report` asks for, which is then
    /// forgotten.
    #[cfg(test)]
    pub(crate) fn wait(&mut self, report: Report) -> Option<StorageError> {
        self.prepare_wait().wait(report)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // A callback on the writer thread may drop the last owner of the
        // writer: then what is left runs here (the queue may be full) and the
        // thread ends by itself, as it cannot join itself.
        let here = self
            .thread
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id());
        if here {
            self.jobs = None;
        }
        self.flush();
        self.jobs = None; // ends the thread's loop once the queue is drained
        if let Some(t) = self.thread.take() {
            if !here {
                let _ = t.join();
            }
        }
    }
}

/// Writes one chunk. `Ok(true)`: the device refused `O_DIRECT` (`EINVAL`)
/// and the chunk was written through the page cache instead.
fn write_chunk(c: &Chunk) -> Result<bool, StorageError> {
    let data = c.buf.get(c.len);
    let io_err = |e| StorageError::io(IoOp::Write, &c.dest.path, c.offset, e);
    let (done, refused) = match pwrite_direct(&c.dest.direct, data, c.offset) {
        Ok(n) => (n, false),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (0, true),
        Err(e) => return Err(io_err(e)),
    };
    if let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
        c.dest
            .buffered
            .write_all_at(rest, c.offset + done as u64)
            .map_err(io_err)?;
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(f: &Arc<File>) -> Dest {
        Dest {
            direct: f.clone(),
            buffered: f.clone(),
            key: (0, 0),
            path: PathBuf::from("f"),
        }
    }

    /// A file `f` under `dir`, with a read-write handle and a read-only
    /// one (writes through it fail).
    fn file_rw_ro(dir: &std::path::Path) -> (PathBuf, Arc<File>, Arc<File>) {
        let path = dir.join("f");
        let rw = Arc::new(
            File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .unwrap(),
        );
        let ro = Arc::new(File::open(&path).unwrap());
        (path, rw, ro)
    }

    #[test]
    fn writes_land_in_order_and_errors_stay_with_their_piece() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rw, ro) = file_rw_ro(dir.path());
        let mut w = Writer::spawn(POOL, 1).unwrap();
        // Piece 1: 1.5 buffers of ones, appended in 4 KiB steps (two jobs).
        let ones = vec![1u8; AlignedBuf::LEN * 3 / 2];
        for (i, c) in ones.chunks(4096).enumerate() {
            let parts = [c];
            w.append(
                &dest(&rw),
                1,
                (i * 4096) as u64,
                &mut Gather::new(&parts),
                4096,
            );
        }
        // A write that fails (read-only descriptor) belongs to piece 7.
        let sevens = [7u8; 4096];
        let parts: [&[u8]; 1] = [&sevens];
        w.append(
            &dest(&ro),
            7,
            ones.len() as u64,
            &mut Gather::new(&parts),
            4096,
        );
        // Callbacks run after the writes before them, with their piece's error.
        let (tx, rx) = mpsc::channel();
        for piece in [1u32, 7, 7] {
            let tx = tx.clone();
            w.after_written(
                0,
                piece,
                Box::new(move |r| tx.send((piece, r.is_ok())).unwrap()),
            );
        }
        let got: Vec<(u32, bool)> = rx.iter().take(3).collect();
        assert_eq!(got, [(1, true), (7, false), (7, true)]);
        assert!(w.wait(Report::All(0)).is_none(), "reported twice");
        assert_eq!(std::fs::read(&path).unwrap(), ones);
        // A failure is also reported by wait, for its piece only.
        w.append(&dest(&ro), 9, 0, &mut Gather::new(&parts), 4096);
        assert!(w.wait(Report::Piece(0, 1)).is_none());
        assert!(w.wait(Report::Nothing).is_none());
        assert!(
            w.wait(Report::All(1)).is_none(),
            "another storage's failure"
        );
        assert!(matches!(
            w.wait(Report::Piece(0, 9)),
            Some(StorageError::Io { .. })
        ));
        drop(w); // joins the thread
    }

    #[test]
    fn queued_writes_go_in_pairs_and_keep_their_order() {
        let dir = tempfile::tempdir().unwrap();
        let (path, rw, ro) = file_rw_ro(dir.path());
        let mut w = Writer::spawn(8, 1).unwrap();
        // A slow callback first: the writes behind it queue up.
        w.after_written(
            0,
            99,
            Box::new(|_| std::thread::sleep(Duration::from_millis(100))),
        );
        let buf = AlignedBuf::LEN as u64;
        let (tx, rx) = mpsc::channel();
        for piece in 0..6u32 {
            // Each piece is one whole buffer of its own byte; piece 3's
            // write fails (read-only descriptor).
            let data = vec![piece as u8 + 1; AlignedBuf::LEN];
            let parts = [&data[..]];
            let f = if piece == 3 { &ro } else { &rw };
            w.append(
                &dest(f),
                piece,
                u64::from(piece) * buf,
                &mut Gather::new(&parts),
                AlignedBuf::LEN,
            );
            if piece % 2 == 1 {
                // After every second write: both writes before it landed.
                let (tx, check) = (tx.clone(), path.clone());
                w.after_written(
                    0,
                    piece,
                    Box::new(move |r| {
                        let on_disk = std::fs::read(&check).unwrap_or_default();
                        let landed = (0..=piece).filter(|&p| p != 3).all(|p| {
                            let at = (u64::from(p) * buf) as usize;
                            on_disk
                                .get(at..at + AlignedBuf::LEN)
                                .is_some_and(|d| d.iter().all(|&b| b == p as u8 + 1))
                        });
                        tx.send((piece, r.is_ok(), landed)).unwrap();
                    }),
                );
            }
        }
        let got: Vec<(u32, bool, bool)> = rx.iter().take(3).collect();
        assert_eq!(got, [(1, true, true), (3, false, true), (5, true, true)]);
        assert!(w.paired_writes() > 0, "no two writes went together");
        drop(w);
    }

    #[test]
    fn a_wait_returns_after_the_callbacks_before_it() {
        let mut w = Writer::spawn(POOL, 2).unwrap();
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let r = ran.clone();
        w.after_written(
            3,
            1,
            Box::new(move |_| {
                std::thread::sleep(Duration::from_millis(50));
                r.store(true, std::sync::atomic::Ordering::SeqCst);
            }),
        );
        assert!(w.wait(Report::Nothing).is_none());
        assert!(ran.load(std::sync::atomic::Ordering::SeqCst));
    }
}
