//! Verifying data on disk against the piece hashes, as fast as the machine
//! allows: the engine of `shoal verify`, of [`Storage::check`] and of the
//! resume check.
//!
//! The pieces to check are cut into *runs* of consecutive pieces of about
//! [`RUN_BYTES`] (at least one piece). One worker thread per core claims runs
//! in order, so the disk sees one sequential stream, and reads each run span
//! by span, window by window (at most [`RUN_BYTES`]), choosing per window:
//!
//! - **In the page cache** (`mincore` says at least half of it is): plain
//!   `pread`s of [`CACHED_CHUNK`] bytes into a buffer that stays in the CPU's
//!   L2 cache, each hashed at once. The only copy is the kernel's, into a hot
//!   buffer; bigger reads measured slower (the copy then goes to memory).
//! - **On the disk only**: one large `O_DIRECT` read of the whole window
//!   (rounded out to [`ALIGN`]) into an aligned buffer, then hashed. The
//!   device writes straight into the buffer (no page-cache copy, no
//!   readahead); on this project's VMs that reads about twice as fast as
//!   buffered reads and costs almost no CPU. Where `O_DIRECT` is refused
//!   (tmpfs, some network filesystems) the window is read with plain large
//!   `pread`s instead.
//!
//! Files that are absent or shorter than the torrent says make the pieces
//! that need them [`PieceStatus::Missing`] without being read. Pad bytes are
//! zeros and never read. Bytes of unwanted files come from the parts file
//! (see [`crate::store`]). Hashing is SHA-1 (v1, hybrid) or the BEP 52
//! merkle subtree root (v2), see [`PieceHasher`]; both detect SHA-NI at run
//! time.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::check::CheckProgress;
use crate::direct::ALIGN;
use crate::error::{IoOp, LayoutError, StorageError};
use crate::hash::PieceHasher;
use crate::layout::{PieceHashes, Span};
use crate::store::Storage;

/// Bytes of one run of pieces claimed by a worker, and the largest single
/// read from the disk (runs hold at least one piece, so bigger pieces make
/// bigger runs, still read in windows of this size).
pub const RUN_BYTES: u64 = 8 << 20;
/// Bytes of one read from the page cache.
pub const CACHED_CHUNK: usize = 64 << 10;

/// The verdict on one piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PieceStatus {
    /// Every byte is on disk and the piece matches its hash.
    Good,
    /// Every byte is on disk but the piece does not match its hash.
    Bad,
    /// Some byte is not on disk: a file it needs is absent or too short.
    Missing,
}

/// Which way data is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReadPath {
    /// Per window: through the page cache when at least half of it is
    /// cached, else with `O_DIRECT` (the default).
    #[default]
    Auto,
    /// Always through the page cache, in [`CACHED_CHUNK`] reads.
    PageCache,
    /// Always large `O_DIRECT` reads (large buffered reads where refused).
    Direct,
}

/// How to verify.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Worker threads; 0 picks [`default_threads`].
    pub threads: usize,
    /// How to read.
    pub read: ReadPath,
}

/// The default number of verify workers: one per core.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Where the bytes came from during a verification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyStats {
    /// Bytes read through the page cache.
    pub bytes_cached: u64,
    /// Bytes read with `O_DIRECT` (alignment slack included).
    pub bytes_direct: u64,
    /// Bytes read with large buffered reads (where `O_DIRECT` was refused).
    pub bytes_buffered: u64,
}

impl VerifyStats {
    fn add(&mut self, o: &VerifyStats) {
        self.bytes_cached += o.bytes_cached;
        self.bytes_direct += o.bytes_direct;
        self.bytes_buffered += o.bytes_buffered;
    }
}

/// The result of [`Storage::verify_pieces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// One verdict per requested piece, in the order they were given.
    pub status: Vec<PieceStatus>,
    /// How the data was read.
    pub stats: VerifyStats,
}

impl Storage {
    /// Verifies every piece; `status[i]` is the verdict on piece `i`.
    pub fn verify_all(
        &self,
        opts: &VerifyOptions,
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<VerifyOutcome, StorageError> {
        let all: Vec<u32> = (0..self.map().piece_count()).collect();
        self.verify_pieces(&all, opts, progress)
    }

    /// Verifies the listed pieces (any order; ascending reads fastest) on
    /// all cores. `progress` is called from worker threads after each run of
    /// pieces. Fails on a piece index out of range and on I/O errors other
    /// than a missing or short file (those make pieces
    /// [`PieceStatus::Missing`]).
    pub fn verify_pieces(
        &self,
        pieces: &[u32],
        opts: &VerifyOptions,
        progress: &(dyn Fn(CheckProgress) + Sync),
    ) -> Result<VerifyOutcome, StorageError> {
        let map = self.map();
        let count = map.piece_count();
        if let Some(&piece) = pieces.iter().find(|&&p| p >= count) {
            return Err(LayoutError::NoSuchPiece { piece, count }.into());
        }
        let mut status = vec![PieceStatus::Missing; pieces.len()];
        // Pieces whose wanted files are absent or too short cannot be on
        // disk: they are missing without a read (a fresh download reads
        // nothing).
        let sizes = self.on_disk_lengths();
        let could_be_there = |p: u32| {
            map.piece_spans(p).is_ok_and(|mut spans| {
                spans.all(|s| {
                    s.pad
                        || !self.is_wanted(s.file)
                        || sizes
                            .get(s.file)
                            .copied()
                            .flatten()
                            .is_some_and(|l| l >= s.file_offset + s.len)
                })
            })
        };
        let todo: Vec<(usize, u32)> = pieces
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, p)| could_be_there(p))
            .collect();
        let runs = cut_runs(&todo, map.layout().piece_length);
        let total = pieces.len() as u64;
        let skipped = total - todo.len() as u64;
        let done = AtomicU64::new(skipped);
        let bytes = AtomicU64::new(0);
        let next = AtomicUsize::new(0);
        let failed = AtomicBool::new(false);
        let results: Mutex<Vec<(usize, PieceStatus)>> = Mutex::new(Vec::new());
        let first_error: Mutex<Option<StorageError>> = Mutex::new(None);
        let stats = Mutex::new(VerifyStats::default());
        let threads = if opts.threads == 0 {
            default_threads()
        } else {
            opts.threads
        }
        .clamp(1, runs.len().max(1));
        if skipped > 0 {
            progress(CheckProgress {
                pieces_done: skipped,
                pieces_total: total,
                bytes_done: 0,
            });
        }
        if runs.is_empty() {
            // Nothing to read: no thread and no buffer (a resume with
            // unchanged files checks no piece, thousands of times at start).
            return Ok(VerifyOutcome {
                status,
                stats: VerifyStats::default(),
            });
        }
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    let mut w = Worker::new(self, opts.read);
                    let mut out = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(run) = runs.get(i) else { break };
                        let run_bytes: u64 = run
                            .iter()
                            .filter_map(|&(_, p)| self.map().piece_len(p))
                            .sum();
                        match w.run(run, &mut out) {
                            Ok(()) => {
                                let n = run.len() as u64;
                                let d = done.fetch_add(n, Ordering::Relaxed) + n;
                                let b = bytes.fetch_add(run_bytes, Ordering::Relaxed) + run_bytes;
                                progress(CheckProgress {
                                    pieces_done: d,
                                    pieces_total: total,
                                    bytes_done: b,
                                });
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                let mut slot = lock(&first_error);
                                if slot.is_none() {
                                    *slot = Some(e);
                                }
                                break;
                            }
                        }
                    }
                    lock(&results).append(&mut out);
                    lock(&stats).add(&w.stats);
                });
            }
        });
        if let Some(e) = lock(&first_error).take() {
            return Err(e);
        }
        for (i, s) in lock(&results).drain(..) {
            if let Some(slot) = status.get_mut(i) {
                *slot = s;
            }
        }
        let stats = *lock(&stats);
        Ok(VerifyOutcome { status, stats })
    }

    /// Length on disk of each file (`None`: absent, or a pad file).
    pub(crate) fn on_disk_lengths(&self) -> Vec<Option<u64>> {
        (0..self.map().file_count())
            .map(|i| {
                self.file_path(i)
                    .and_then(|p| std::fs::metadata(p).ok())
                    .map(|m| m.len())
            })
            .collect()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Workers only push finished values: a panic cannot leave these torn.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs of consecutive pieces of at most [`RUN_BYTES`] (at least one piece).
fn cut_runs(todo: &[(usize, u32)], piece_length: u64) -> Vec<&[(usize, u32)]> {
    let per_run = (RUN_BYTES / piece_length.max(1)).max(1) as usize;
    let mut runs = Vec::new();
    let mut start = 0;
    for i in 1..=todo.len() {
        let cut = i == todo.len()
            || i - start >= per_run
            || todo.get(i).map(|t| t.1) != todo.get(i - 1).map(|t| t.1 + 1);
        if cut {
            if let Some(r) = todo.get(start..i).filter(|r| !r.is_empty()) {
                runs.push(r);
            }
            start = i;
        }
    }
    runs
}

/// A buffer of `len` bytes starting at an [`ALIGN`] boundary.
struct Aligned {
    mem: Vec<u8>,
    start: usize,
    len: usize,
}

impl Aligned {
    fn new(len: usize) -> Self {
        let mem = vec![0u8; len + ALIGN];
        let start = mem.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self { mem, start, len }
    }

    fn get_mut(&mut self, len: usize) -> &mut [u8] {
        let end = self.start + len.min(self.len);
        self.mem.get_mut(self.start..end).unwrap_or_default()
    }
}

/// The pieces of a run being hashed, fed in order.
struct RunHasher<'a> {
    storage: &'a Storage,
    run: &'a [(usize, u32)],
    /// Index into `run` of the current piece.
    k: usize,
    hasher: Option<PieceHasher>,
    /// Bytes of the current piece not fed yet.
    left: u64,
    missing: bool,
    out: &'a mut Vec<(usize, PieceStatus)>,
}

impl<'a> RunHasher<'a> {
    fn new(
        storage: &'a Storage,
        run: &'a [(usize, u32)],
        out: &'a mut Vec<(usize, PieceStatus)>,
    ) -> Self {
        let mut h = RunHasher {
            storage,
            run,
            k: 0,
            hasher: None,
            left: 0,
            missing: false,
            out,
        };
        h.start_piece();
        h
    }

    fn start_piece(&mut self) {
        let Some(&(_, p)) = self.run.get(self.k) else {
            return;
        };
        let map = self.storage.map();
        self.left = map.piece_len(p).unwrap_or(0);
        self.missing = false;
        self.hasher = match &map.layout().piece_hashes {
            PieceHashes::V1(v) => v.get(p as usize).map(|h| PieceHasher::v1(*h)),
            PieceHashes::V2(v) => v.get(p as usize).map(|e| PieceHasher::v2(*e)),
        };
    }

    fn end_piece(&mut self) {
        if let Some(&(i, _)) = self.run.get(self.k) {
            let status = if self.missing {
                PieceStatus::Missing
            } else if self.hasher.take().is_some_and(PieceHasher::finish) {
                PieceStatus::Good
            } else {
                PieceStatus::Bad
            };
            self.out.push((i, status));
        }
        self.k += 1;
        self.start_piece();
    }

    /// Feeds the next bytes of the run (`None`: `n` bytes that are not on disk).
    fn feed(&mut self, mut data: Option<&[u8]>, mut n: u64) {
        while n > 0 && self.k < self.run.len() {
            let take = n.min(self.left);
            match data {
                Some(d) => {
                    let (head, tail) = d.split_at((take as usize).min(d.len()));
                    if !self.missing {
                        if let Some(h) = self.hasher.as_mut() {
                            h.update(head);
                        }
                    }
                    data = Some(tail);
                }
                None => self.missing = true,
            }
            n -= take;
            self.left -= take;
            if self.left == 0 {
                self.end_piece();
            }
        }
    }

    fn bytes(&mut self, d: &[u8]) {
        self.feed(Some(d), d.len() as u64);
    }

    fn absent(&mut self, n: u64) {
        self.feed(None, n);
    }
}

/// The `O_DIRECT` handle of the file a worker read last.
struct DirectHandle {
    key: usize,
    file: Option<File>,
}

/// One verify thread's buffers and handles.
struct Worker<'a> {
    storage: &'a Storage,
    small: Vec<u8>,
    big: Aligned,
    read: ReadPath,
    direct: Option<DirectHandle>,
    stats: VerifyStats,
}

static ZEROS: [u8; CACHED_CHUNK] = [0u8; CACHED_CHUNK];

impl<'a> Worker<'a> {
    fn new(storage: &'a Storage, read: ReadPath) -> Self {
        Worker {
            storage,
            small: vec![0u8; CACHED_CHUNK],
            // Room for a whole window rounded out to ALIGN at both ends.
            big: Aligned::new(RUN_BYTES as usize + 2 * ALIGN),
            read,
            direct: None,
            stats: VerifyStats::default(),
        }
    }

    /// Hashes one run; pushes `(position, verdict)` for each of its pieces.
    fn run(
        &mut self,
        run: &[(usize, u32)],
        out: &mut Vec<(usize, PieceStatus)>,
    ) -> Result<(), StorageError> {
        let storage = self.storage;
        let map = storage.map();
        let (Some(&(_, first)), Some(&(_, last))) = (run.first(), run.last()) else {
            return Ok(());
        };
        let pl = map.layout().piece_length;
        let start = u64::from(first) * pl;
        let end = u64::from(last) * pl + map.piece_len(last).unwrap_or(0);
        let mut h = RunHasher::new(storage, run, out);
        for s in map.range_spans(start, end - start) {
            if s.pad {
                let mut left = s.len;
                while left > 0 {
                    let n = left.min(CACHED_CHUNK as u64) as usize;
                    h.bytes(ZEROS.get(..n).unwrap_or_default());
                    left -= n as u64;
                }
                continue;
            }
            match storage.span_source(&s)? {
                None => h.absent(s.len),
                Some((file, at, path)) => {
                    let key = if storage.is_wanted(s.file) {
                        s.file
                    } else {
                        usize::MAX
                    };
                    self.read_span(&s, key, &file, at, &path, &mut h)?;
                }
            }
        }
        Ok(())
    }

    /// Reads the `s.len` bytes at `at` of `file` into the hasher, window by window.
    fn read_span(
        &mut self,
        s: &Span,
        key: usize,
        file: &File,
        at: u64,
        path: &Path,
        h: &mut RunHasher<'_>,
    ) -> Result<(), StorageError> {
        let mut pos = 0u64;
        while pos < s.len {
            let window = (s.len - pos).min(RUN_BYTES);
            let off = at + pos;
            let cached = match self.read {
                ReadPath::PageCache => true,
                ReadPath::Direct => false,
                ReadPath::Auto => mostly_cached(file, off, window),
            };
            let got = if cached {
                self.read_cached(file, off, window, path, h)?
            } else {
                self.read_uncached(key, file, off, window, path, h)?
            };
            if got < window {
                // The file ended early (it shrank since it was measured).
                h.absent(s.len - pos - got);
                return Ok(());
            }
            pos += window;
        }
        Ok(())
    }

    /// Small `pread`s through the page cache; returns the bytes read (fewer
    /// than `len` at the end of the file).
    fn read_cached(
        &mut self,
        file: &File,
        off: u64,
        len: u64,
        path: &Path,
        h: &mut RunHasher<'_>,
    ) -> Result<u64, StorageError> {
        let mut pos = 0u64;
        while pos < len {
            let n = (len - pos).min(CACHED_CHUNK as u64) as usize;
            let buf = self.small.get_mut(..n).unwrap_or_default();
            let got = read_full(file, buf, off + pos)
                .map_err(|e| StorageError::io(IoOp::Read, path, off + pos, e))?;
            self.stats.bytes_cached += got as u64;
            h.bytes(buf.get(..got).unwrap_or_default());
            pos += got as u64;
            if got < n {
                break;
            }
        }
        Ok(pos)
    }

    /// One large read of `len` bytes at `off`, `O_DIRECT` when the
    /// filesystem allows it; returns the bytes read (fewer at the end of the file).
    fn read_uncached(
        &mut self,
        key: usize,
        file: &File,
        off: u64,
        len: u64,
        path: &Path,
        h: &mut RunHasher<'_>,
    ) -> Result<u64, StorageError> {
        let align = ALIGN as u64;
        let lead = off % align;
        let from = off - lead;
        let span = (lead + len).div_ceil(align) * align;
        if let Some(direct) = self.direct_handle(key, file) {
            let buf = self.big.get_mut(span as usize);
            match read_full(&direct, buf, from) {
                Ok(got) => {
                    self.stats.bytes_direct += got as u64;
                    let avail = (got as u64).saturating_sub(lead).min(len);
                    let data = buf
                        .get(lead as usize..(lead + avail) as usize)
                        .unwrap_or_default();
                    h.bytes(data);
                    self.direct = Some(DirectHandle {
                        key,
                        file: Some(direct),
                    });
                    return Ok(avail);
                }
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    // This file or device refuses unaligned-looking direct
                    // reads after all: buffered from now on.
                    self.direct = Some(DirectHandle { key, file: None });
                }
                Err(e) => return Err(StorageError::io(IoOp::Read, path, from, e)),
            }
        }
        let buf = self.big.get_mut(len as usize);
        let got =
            read_full(file, buf, off).map_err(|e| StorageError::io(IoOp::Read, path, off, e))?;
        self.stats.bytes_buffered += got as u64;
        h.bytes(buf.get(..got).unwrap_or_default());
        Ok(got as u64)
    }

    /// The `O_DIRECT` handle for `key` (taken out of the worker's slot), or
    /// `None` when the filesystem refuses it.
    fn direct_handle(&mut self, key: usize, file: &File) -> Option<File> {
        match self.direct.take() {
            Some(DirectHandle { key: k, file: f }) if k == key => {
                if f.is_none() {
                    self.direct = Some(DirectHandle { key, file: None });
                }
                f
            }
            _ => match reopen_direct_read(file) {
                Ok(f) => Some(f),
                Err(_) => {
                    self.direct = Some(DirectHandle { key, file: None });
                    None
                }
            },
        }
    }
}

/// Opens `file` again read-only with `O_DIRECT`, through `/proc/self/fd`
/// (the same inode, without resolving its path again).
pub(crate) fn reopen_direct_read(file: &File) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(format!("/proc/self/fd/{}", file.as_raw_fd()))
}

/// `pread` until `buf` is full or the file ends; returns the bytes read.
fn read_full(file: &File, buf: &mut [u8], mut off: u64) -> std::io::Result<usize> {
    let mut got = 0usize;
    while got < buf.len() {
        let rest = buf.get_mut(got..).unwrap_or_default();
        match file.read_at(rest, off) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                off += n as u64;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Whether at least half of the pages of `[off, off + len)` of `file` are in
/// the page cache (`mincore` on a mapping that is never touched, so it costs
/// no I/O). When that cannot be told, `true`: read through the cache.
fn mostly_cached(file: &File, off: u64, len: u64) -> bool {
    crate::page_cache::mincore_pages(file, off, len)
        .is_none_or(|(cached, pages)| pages == 0 || cached * 2 >= pages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_consecutive_and_bounded() {
        let pl = 1 << 20;
        let todo: Vec<(usize, u32)> = [0u32, 1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12]
            .iter()
            .copied()
            .enumerate()
            .collect();
        let runs = cut_runs(&todo, pl);
        let lens: Vec<usize> = runs.iter().map(|r| r.len()).collect();
        assert_eq!(lens, vec![8, 2, 2]);
        assert_eq!(runs[2][0], (10, 11));
        // Pieces bigger than a run: one piece each.
        let runs = cut_runs(&todo, 16 << 20);
        assert_eq!(runs.len(), todo.len());
    }

    #[test]
    fn mincore_sees_cached_pages() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, vec![1u8; 1 << 20]).unwrap();
        let f = File::open(&p).unwrap();
        // Just written: in the page cache.
        assert!(mostly_cached(&f, 0, 1 << 20));
        assert!(mostly_cached(&f, 4097, 10_000));
    }
}
