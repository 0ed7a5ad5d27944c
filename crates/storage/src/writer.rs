//! The background writer of direct (`O_DIRECT`) chunks.
//!
//! A direct write blocks until the device has the data (about 0.2 ms per
//! 256 KiB here), time in which the disk actor could hash the next blocks.
//! So [`Storage::write_vectored_behind`](crate::Storage::write_vectored_behind)
//! copies each aligned chunk into one of a few pooled [`AlignedBuf`]s and
//! hands it to this thread; the actor waits only when every buffer is in
//! flight (backpressure), and [`Writer::wait`] before it reports a piece
//! complete. Jobs run in order; an error is kept with its piece until that
//! piece is waited for.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::direct::{pwrite_direct, AlignedBuf};
use crate::error::{IoOp, StorageError};

/// Buffers in flight at most (their memory: `POOL * AlignedBuf::LEN`).
const POOL: usize = 4;

/// A direct write of one buffer slower than this counts as slow (256 KiB in
/// 8 ms is 32 MiB/s: a seeking hard disk, a network filesystem).
const SLOW_JOB: Duration = Duration::from_millis(8);

/// After this many slow jobs the storage gives up `O_DIRECT`: without the
/// page cache the kernel cannot merge and reorder writes for such a device.
pub(crate) const SLOW_JOBS_TO_GIVE_UP: u64 = 8;

/// One aligned chunk to write.
pub(crate) struct Job {
    /// The `O_DIRECT` handle.
    pub direct: Arc<File>,
    /// The ordinary handle of the same file, for a chunk the device refuses.
    pub buffered: Arc<File>,
    /// Cache key of the file, reported back when `O_DIRECT` was refused.
    pub key: usize,
    pub path: PathBuf,
    pub buf: AlignedBuf,
    pub len: usize,
    pub offset: u64,
    pub piece: u32,
}

#[derive(Default)]
struct State {
    queued: u64,
    done: u64,
    /// Failed writes not reported yet, by piece.
    errors: Vec<(u32, StorageError)>,
    /// Files whose direct writes were refused (`EINVAL`).
    refused: Vec<usize>,
    /// Jobs that took longer than [`SLOW_JOB`].
    slow: u64,
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
}

/// Which failed writes [`Writer::wait`] reports (and forgets).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Report {
    /// The first failure of this piece.
    Piece(u32),
    /// The first failure of any piece; all are forgotten.
    All,
    /// None: they stay for their piece.
    Nothing,
}

/// The writer thread, its job queue and its buffer pool.
pub(crate) struct Writer {
    jobs: Option<SyncSender<Job>>,
    free: Receiver<AlignedBuf>,
    /// Buffers not allocated yet.
    unallocated: usize,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread.
    pub(crate) fn spawn() -> io::Result<Self> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(POOL);
        let (free_tx, free) = mpsc::channel();
        let shared = Arc::new(Shared::default());
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("shoal-writer".into())
            .spawn(move || {
                for job in rx {
                    let t0 = Instant::now();
                    let result = write_job(&job);
                    if t0.elapsed() > SLOW_JOB {
                        sh.lock().slow += 1;
                    }
                    finish(&sh, &job, result);
                    let _ = free_tx.send(job.buf);
                }
            })?;
        Ok(Self {
            jobs: Some(jobs),
            free,
            unallocated: POOL,
            shared,
            thread: Some(thread),
        })
    }

    /// A buffer to fill: a free one, a new one while the pool is not full,
    /// else waits for the oldest job to finish.
    pub(crate) fn buffer(&mut self) -> AlignedBuf {
        if let Ok(b) = self.free.try_recv() {
            return b;
        }
        if self.unallocated > 0 {
            self.unallocated -= 1;
            return AlignedBuf::new();
        }
        // The thread returns every buffer it takes; if it is gone, allocate.
        self.free.recv().unwrap_or_else(|_| AlignedBuf::new())
    }

    /// Queues a job (or, if the thread is gone, runs it here).
    pub(crate) fn submit(&mut self, job: Job) {
        self.shared.lock().queued += 1;
        let job = match &self.jobs {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                Err(e) => e.0,
            },
            None => job,
        };
        finish(&self.shared, &job, write_job(&job));
    }

    /// How many jobs were slow so far (see [`SLOW_JOBS_TO_GIVE_UP`]).
    pub(crate) fn slow_jobs(&self) -> u64 {
        self.shared.lock().slow
    }

    /// Waits until every queued job is done. Returns the files whose direct
    /// writes were refused since the last call, and the first error that
    /// `report` asks for, which is then forgotten.
    pub(crate) fn wait(&self, report: Report) -> (Vec<usize>, Option<StorageError>) {
        let mut st = self.shared.lock();
        while st.done < st.queued {
            st = self
                .shared
                .changed
                .wait(st)
                .unwrap_or_else(|e| e.into_inner());
        }
        let refused = std::mem::take(&mut st.refused);
        let err = match report {
            Report::Piece(piece) => {
                let pos = st.errors.iter().position(|(p, _)| *p == piece);
                pos.map(|i| st.errors.swap_remove(i).1)
            }
            Report::All => {
                let first = st.errors.drain(..).next();
                first.map(|(_, e)| e)
            }
            Report::Nothing => None,
        };
        (refused, err)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None; // ends the thread's loop once the queue is drained
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Records the outcome of a job and wakes the waiters.
fn finish(shared: &Shared, job: &Job, result: Result<bool, StorageError>) {
    let mut st = shared.lock();
    match result {
        Ok(false) => {}
        Ok(true) => st.refused.push(job.key),
        Err(e) => st.errors.push((job.piece, e)),
    }
    st.done += 1;
    drop(st);
    shared.changed.notify_all();
}

/// Writes one job. `Ok(true)`: the device refused `O_DIRECT` (`EINVAL`) and
/// the chunk was written through the page cache instead.
fn write_job(job: &Job) -> Result<bool, StorageError> {
    let data = job.buf.get(job.len);
    let io_err = |e| StorageError::io(IoOp::Write, &job.path, job.offset, e);
    let (done, refused) = match pwrite_direct(&job.direct, data, job.offset) {
        Ok(n) => (n, false),
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => (0, true),
        Err(e) => return Err(io_err(e)),
    };
    if let Some(rest) = data.get(done..).filter(|r| !r.is_empty()) {
        job.buffered
            .write_all_at(rest, job.offset + done as u64)
            .map_err(io_err)?;
    }
    Ok(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(
        direct: &Arc<File>,
        buffered: &Arc<File>,
        w: &mut Writer,
        piece: u32,
        offset: u64,
    ) -> Job {
        let mut buf = w.buffer();
        buf.get_mut().fill(piece as u8);
        Job {
            direct: direct.clone(),
            buffered: buffered.clone(),
            key: 0,
            path: PathBuf::from("f"),
            buf,
            len: crate::direct::ALIGN,
            offset,
            piece,
        }
    }

    #[test]
    fn jobs_land_in_order_and_errors_stay_with_their_piece() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
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
        let mut w = Writer::spawn().unwrap();
        for i in 0..10u32 {
            let j = job(&rw, &rw, &mut w, 1, u64::from(i % 2) * 4096);
            w.submit(j);
        }
        // A write that fails (read-only descriptor) belongs to piece 7.
        let j = job(&ro, &ro, &mut w, 7, 8192);
        w.submit(j);
        let (_, err) = w.wait(Report::Piece(1));
        assert!(err.is_none());
        let (_, err) = w.wait(Report::Nothing);
        assert!(err.is_none());
        let (_, err) = w.wait(Report::Piece(7));
        assert!(matches!(err, Some(StorageError::Io { .. })), "{err:?}");
        let (_, err) = w.wait(Report::All);
        assert!(err.is_none(), "reported twice");
        let got = std::fs::read(&path).unwrap();
        assert_eq!(got.len(), 8192);
        assert!(got.iter().all(|&b| b == 1));
        drop(w); // joins the thread
    }
}
