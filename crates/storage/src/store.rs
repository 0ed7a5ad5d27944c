//! [`Storage`]: synchronous positional reads and writes of piece data.
//!
//! `Storage` is `Send + Sync` and every method takes `&self`, so the disk
//! actor, the checker's worker threads and upload reads can share one
//! `Arc<Storage>`. All calls block on disk I/O: call them from blocking
//! threads (`spawn_blocking`, rayon, the [`crate::Disk`] actor), never from an
//! async task directly.
//!
//! # Files that are not wanted (priority 0)
//!
//! Unwanted files are never created. A piece that overlaps both a wanted and
//! an unwanted file (a *boundary piece*) must still be downloadable, verifiable
//! and servable, so the bytes that belong to unwanted files are stored in one
//! sparse side file, `<state_dir>/<name>.parts`, at their offset in the
//! torrent's byte space (so it stays sparse: only boundary bytes occupy
//! space). Reads use the same rule, so a boundary piece reads back exactly as
//! it was written. When a file becomes wanted its bytes from boundary pieces
//! are copied from the parts file into it; when it becomes unwanted, its
//! boundary bytes are copied to the parts file (the file itself is kept).
//! Interior pieces of an unwanted file are never requested by the picker.

use std::fs::File;
use std::io::IoSlice;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock, RwLockReadGuard};

use crate::backend::Backend;
use crate::direct::{Gather, ALIGN};
use crate::writer::{Dest, Report, POOL, SLOW_JOBS_TO_GIVE_UP};

use crate::error::{IoOp, LayoutError, StorageError};
use crate::files::{safe_join, Allocation, FileRules, Target};
use crate::layout::{PieceMap, Span, StorageLayout};

/// Source of [`Storage`] ids (keys of open files and queued writes in a
/// shared backend).
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Options for [`Storage::open`].
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// Upper bound on open file handles (LRU eviction beyond it). Default 128.
    pub max_open_files: usize,
    /// Sparse files (default) or preallocation.
    pub allocation: Allocation,
    /// Directory for the resume and parts files; default `<root>/.shoal`.
    pub state_dir: Option<PathBuf>,
    /// Base name of the resume and parts files, normally the hex info-hash.
    pub name: String,
    /// Write aligned runs of downloaded data with `O_DIRECT`, bypassing the
    /// page cache (see the `direct` module); where the filesystem or the
    /// alignment does not allow it, writes are buffered. Default `true`.
    pub direct_io: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            max_open_files: 128,
            allocation: Allocation::Preallocate,
            state_dir: None,
            name: "torrent".to_owned(),
            direct_io: true,
        }
    }
}

/// The data of one torrent on disk: mapping, open files and file selection.
///
/// Open files and direct writes go through a private backend (a cache of
/// `max_open_files` handles, a writer thread started on the first direct
/// write) until a [`crate::DiskPool`] attaches the storage to its shared one.
pub struct Storage {
    /// Unique in the process: keys this storage's handles and writes in a
    /// shared backend.
    id: u64,
    map: PieceMap,
    root: PathBuf,
    state_dir: PathBuf,
    name: String,
    /// Absolute path of every file (pad files: unused placeholder).
    paths: Vec<PathBuf>,
    parts_path: PathBuf,
    rules: FileRules,
    wanted: RwLock<Vec<bool>>,
    direct_io: bool,
    /// The options it was opened with (to open it again elsewhere).
    opts: StorageOptions,
    /// Handles and writer until attached to a pool.
    private: Backend,
    /// The disk pool's backend, once attached.
    shared: OnceLock<Arc<Backend>>,
    /// Bytes handed to the direct writer so far.
    direct_bytes: AtomicU64,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("root", &self.root)
            .field("pieces", &self.map.piece_count())
            .field("files", &self.map.file_count())
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// Validates `layout` and prepares storage under `root`. Touches no disk:
    /// files are created lazily on first write. Every file starts wanted.
    pub fn open(
        layout: StorageLayout,
        root: impl Into<PathBuf>,
        opts: StorageOptions,
    ) -> Result<Self, StorageError> {
        let root = root.into();
        let map = PieceMap::new(layout)?;
        let mut paths = Vec::with_capacity(map.file_count());
        for f in &map.layout().files {
            paths.push(if f.pad {
                PathBuf::new()
            } else {
                safe_join(&root, &f.path)?
            });
        }
        let state_dir = opts
            .state_dir
            .clone()
            .unwrap_or_else(|| root.join(".shoal"));
        let name = opts.name.clone();
        let parts_path = state_dir.join(format!("{name}.parts"));
        let wanted = vec![true; map.file_count()];
        Ok(Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            rules: FileRules::new(root.clone(), opts.allocation),
            private: Backend::new(opts.max_open_files, POOL, 1),
            shared: OnceLock::new(),
            map,
            root,
            state_dir,
            name,
            paths,
            parts_path,
            wanted: RwLock::new(wanted),
            direct_io: opts.direct_io,
            opts,
            direct_bytes: AtomicU64::new(0),
        })
    }

    /// The same torrent under `root`, with the same options and file
    /// selection (the state directory moves along when it was the default
    /// `<root>/.shoal`). Touches no disk; not attached to any pool.
    pub(crate) fn relocated(&self, root: &Path) -> Result<Self, StorageError> {
        let s = Self::open(self.map.layout().clone(), root, self.opts.clone())?;
        *s.wanted.write().unwrap_or_else(|e| e.into_inner()) = self.wanted().clone();
        Ok(s)
    }

    /// Whether the state directory is the default one inside the root (then
    /// it moves with the data).
    pub(crate) fn state_dir_in_root(&self) -> bool {
        self.opts.state_dir.is_none()
    }

    /// The backend in use: the pool's once attached, else the private one.
    fn backend(&self) -> &Backend {
        self.shared.get().map_or(&self.private, |b| &**b)
    }

    /// Switches to a disk pool's backend: waits for and stops the private
    /// writer, closes the private handles. Fails with the first failed
    /// queued write, or hands `backend` back when already attached.
    pub(crate) fn attach(&self, backend: Arc<Backend>) -> Result<(), AttachError> {
        if self.shared.get().is_some() {
            return Err(AttachError::Attached);
        }
        let flushed = self.wait(Report::All(self.id));
        self.private.shut();
        self.private.files.forget_owner(self.id);
        self.shared
            .set(backend)
            .map_err(|_| AttachError::Attached)?;
        flushed.map_err(AttachError::Storage)
    }

    /// Fails unless the real path of the existing directory `dir` is inside
    /// the real root.
    pub(crate) fn check_inside_root(&self, dir: &Path) -> Result<(), StorageError> {
        self.rules.check_inside_root(dir)
    }

    /// Closes this storage's cached file handles.
    pub(crate) fn forget_files(&self) {
        self.backend().files.forget_owner(self.id);
    }

    /// The validated piece map.
    pub fn map(&self) -> &PieceMap {
        &self.map
    }

    /// The storage root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the resume and parts files live.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Path of the resume file: `<state_dir>/<name>.resume`.
    pub fn resume_path(&self) -> PathBuf {
        self.state_dir.join(format!("{}.resume", self.name))
    }

    /// Path of the parts side file for boundary pieces of unwanted files.
    pub fn parts_path(&self) -> &Path {
        &self.parts_path
    }

    /// Absolute path of file `i` (`None` for pad files or out of range).
    pub fn file_path(&self, i: usize) -> Option<&Path> {
        let f = self.map.layout().files.get(i)?;
        (!f.pad)
            .then(|| self.paths.get(i).map(PathBuf::as_path))
            .flatten()
    }

    /// Number of this storage's currently open file handles (bounded by the
    /// options, or by the disk pool's global cap once attached).
    pub fn open_files(&self) -> usize {
        self.backend().files.owner_count(self.id)
    }

    fn wanted(&self) -> RwLockReadGuard<'_, Vec<bool>> {
        self.wanted.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether file `i` is wanted (priority > 0).
    pub fn is_wanted(&self, i: usize) -> bool {
        self.wanted().get(i).copied().unwrap_or(false)
    }

    /// Marks the files wanted or not without moving any data: for a storage
    /// opened again over data already laid out for this selection (a
    /// dormant torrent waking up). Files beyond `wanted` stay wanted.
    pub fn restore_wanted(&self, wanted: &[bool]) {
        let mut w = self.wanted.write().unwrap_or_else(|e| e.into_inner());
        for (i, &want) in wanted.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = want;
            }
        }
    }

    /// Selects or deselects file `i`, moving its boundary-piece bytes between
    /// the file and the parts file so boundary pieces stay readable.
    pub fn set_file_wanted(&self, i: usize, want: bool) -> Result<(), StorageError> {
        let count = self.map.file_count();
        // Held for the whole move so no concurrent write lands on the side
        // being emptied.
        let mut wanted = self.wanted.write().unwrap_or_else(|e| e.into_inner());
        // Boundary bytes may be in queued writes: let them land first.
        self.wait(Report::Nothing)?;
        let was = *wanted
            .get(i)
            .ok_or(LayoutError::NoSuchFile { index: i, count })?;
        if was == want {
            return Ok(());
        }
        let pieces = self.map.pieces_of_file(i);
        let mut boundary = Vec::new();
        if !pieces.is_empty() {
            boundary.push(pieces.start);
            if pieces.end - 1 != pieces.start {
                boundary.push(pieces.end - 1);
            }
        }
        let mut buf = Vec::new();
        for p in boundary {
            for s in self.map.piece_spans(p)?.filter(|s| s.file == i && !s.pad) {
                buf.resize(s.len as usize, 0);
                let abs = self.abs_offset(&s);
                // Copy from the side holding the data now to the other side.
                let present = if want {
                    self.read_parts(abs, &mut buf)?
                } else {
                    self.read_file(&s, &mut buf)?
                };
                if !present {
                    continue;
                }
                if want {
                    self.write_file(&s, &buf)?;
                } else {
                    self.write_parts(abs, &buf)?;
                }
            }
        }
        if let Some(w) = wanted.get_mut(i) {
            *w = want;
        }
        if !want {
            self.backend().files.forget((self.id, i));
        }
        Ok(())
    }

    /// Creates the wanted zero-length files (they hold no piece, so no write
    /// would ever create them).
    pub fn create_empty_files(&self) -> Result<(), StorageError> {
        let wanted = self.wanted().clone();
        for (i, f) in self.map.layout().files.iter().enumerate() {
            if f.length == 0 && !f.pad && wanted.get(i).copied().unwrap_or(false) {
                let t = self.target(i);
                self.backend().files.get_write(self.id, &t, &self.rules)?;
                // Nothing will be written to it: no need to keep it open.
                self.backend().files.forget((self.id, i));
            }
        }
        Ok(())
    }

    fn target(&self, i: usize) -> Target<'_> {
        Target {
            key: i,
            path: self
                .paths
                .get(i)
                .map(PathBuf::as_path)
                .unwrap_or(Path::new("")),
            inside_root: true,
            expected_len: self.map.layout().files.get(i).map_or(0, |f| f.length),
        }
    }

    fn parts_target(&self) -> Target<'_> {
        Target {
            key: usize::MAX,
            path: &self.parts_path,
            inside_root: false,
            expected_len: 0,
        }
    }

    fn abs_offset(&self, s: &Span) -> u64 {
        self.map.file_start(s.file).unwrap_or(0) + s.file_offset
    }

    fn write_file(&self, s: &Span, data: &[u8]) -> Result<(), StorageError> {
        use std::os::unix::fs::FileExt;
        let t = self.target(s.file);
        let f = self.get_write(&t)?;
        f.write_all_at(data, s.file_offset)
            .map_err(|e| StorageError::io(IoOp::Write, t.path, s.file_offset, e))
    }

    fn write_parts(&self, abs: u64, data: &[u8]) -> Result<(), StorageError> {
        use std::os::unix::fs::FileExt;
        let t = self.parts_target();
        let f = self.get_write(&t)?;
        f.write_all_at(data, abs)
            .map_err(|e| StorageError::io(IoOp::Write, t.path, abs, e))
    }

    /// Reads a span of a file; `Ok(false)` when the file is missing or short.
    fn read_file(&self, s: &Span, buf: &mut [u8]) -> Result<bool, StorageError> {
        let t = self.target(s.file);
        self.read_target(&t, s.file_offset, buf)
    }

    fn read_parts(&self, abs: u64, buf: &mut [u8]) -> Result<bool, StorageError> {
        let t = self.parts_target();
        self.read_target(&t, abs, buf)
    }

    fn read_target(&self, t: &Target<'_>, off: u64, buf: &mut [u8]) -> Result<bool, StorageError> {
        use std::os::unix::fs::FileExt;
        let Some(f) = self.backend().files.get_read(self.id, t)? else {
            return Ok(false);
        };
        match f.read_exact_at(buf, off) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(StorageError::io(IoOp::Read, t.path, off, e)),
        }
    }

    /// Writes `data` at `offset` inside `piece`. Pad bytes are skipped, bytes
    /// of unwanted files go to the parts file. Fails on a range outside the
    /// piece or on I/O errors (nothing is truncated or deleted).
    pub fn write(&self, piece: u32, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        let spans = self.map.block_spans(piece, offset, data.len() as u64)?;
        let wanted = self.wanted();
        for s in spans {
            if s.pad {
                continue;
            }
            let lo = s.buf_offset as usize;
            let chunk = data.get(lo..lo + s.len as usize).unwrap_or_default();
            if wanted.get(s.file).copied().unwrap_or(false) {
                self.write_file(&s, chunk)?;
            } else {
                self.write_parts(self.abs_offset(&s), chunk)?;
            }
        }
        Ok(())
    }

    /// Writes the concatenation of `bufs` at `offset` inside `piece`, with one
    /// `pwritev` per file span (a verified piece goes to disk in a handful of
    /// system calls instead of one per block). Same rules as [`Storage::write`].
    pub fn write_vectored(
        &self,
        piece: u32,
        offset: u64,
        bufs: &[&[u8]],
    ) -> Result<(), StorageError> {
        self.write_vectored_behind(piece, offset, bufs)?;
        self.wait_written(piece)
    }

    /// [`Storage::write_vectored`] that may return before the aligned parts
    /// are on disk: they are copied and queued to the direct writer (see
    /// the `direct` module). Call [`Storage::wait_written`] for `piece` before
    /// reading this range back or reporting the piece complete; a failed
    /// queued write is reported there.
    pub fn write_vectored_behind(
        &self,
        piece: u32,
        offset: u64,
        bufs: &[&[u8]],
    ) -> Result<(), StorageError> {
        let total: u64 = bufs.iter().map(|b| b.len() as u64).sum();
        let spans = self.map.block_spans(piece, offset, total)?;
        let wanted = self.wanted();
        for s in spans {
            if s.pad {
                continue;
            }
            let parts = sub_parts(bufs, s.buf_offset as usize, (s.buf_offset + s.len) as usize);
            let file_wanted = wanted.get(s.file).copied().unwrap_or(false);
            let (target, at) = if file_wanted {
                (self.target(s.file), s.file_offset)
            } else {
                (self.parts_target(), self.abs_offset(&s))
            };
            let f = self.get_write(&target)?;
            let len = s.len as usize;
            // The whole pages inside the span may go direct; the partial
            // pages at either end are written through the page cache.
            let head = ((ALIGN as u64 - at % ALIGN as u64) % ALIGN as u64) as usize;
            let middle = len.saturating_sub(head) & !(ALIGN - 1);
            let direct = if file_wanted && middle > 0 {
                let mid = sub_parts(&parts, head, head + middle);
                self.write_direct(&target, &f, piece, &mid, at + head as u64)?
            } else {
                0
            };
            let buffered = |lo: usize, hi: usize| -> Result<(), StorageError> {
                if lo >= hi {
                    return Ok(());
                }
                let mut slices: Vec<IoSlice<'_>> = sub_parts(&parts, lo, hi)
                    .into_iter()
                    .map(IoSlice::new)
                    .collect();
                let at = at + lo as u64;
                crate::files::write_all_vectored_at(&f, &mut slices, at)
                    .map_err(|e| StorageError::io(IoOp::Write, target.path, at, e))
            };
            if direct == 0 {
                buffered(0, len)?;
            } else {
                buffered(0, head)?;
                buffered(head + direct, len)?;
            }
        }
        Ok(())
    }

    /// Queues the aligned prefix of `parts` (to be written at `at`) to the
    /// direct writer when enabled and possible; returns its length (0: the
    /// caller writes it all buffered). `buffered` is the file's ordinary
    /// handle, for chunks the device refuses.
    fn write_direct(
        &self,
        t: &Target<'_>,
        buffered: &Arc<File>,
        piece: u32,
        parts: &[&[u8]],
        at: u64,
    ) -> Result<usize, StorageError> {
        let total: usize = parts.iter().map(|s| s.len()).sum();
        let direct_len = total & !(ALIGN - 1);
        if !self.direct_io || !at.is_multiple_of(ALIGN as u64) || direct_len == 0 {
            return Ok(0);
        }
        let backend = self.backend();
        let key = (self.id, t.key);
        let Some(direct) = backend.files.get_direct(key) else {
            return Ok(0);
        };
        let mut guard = backend.writer_started();
        let Some(w) = guard.as_mut() else {
            return Ok(0);
        };
        for refused in w.take_refused() {
            tracing::debug!(file = ?refused, "O_DIRECT write refused; buffered from now on");
            backend.files.disable_direct(refused);
        }
        if w.slow_jobs() >= SLOW_JOBS_TO_GIVE_UP {
            return Ok(0);
        }
        let dest = Dest {
            direct,
            buffered: buffered.clone(),
            key,
            path: t.path.to_path_buf(),
        };
        w.append(&dest, piece, at, &mut Gather::new(parts), direct_len);
        self.direct_bytes
            .fetch_add(direct_len as u64, Ordering::Relaxed);
        Ok(direct_len)
    }

    fn get_write(&self, t: &Target<'_>) -> Result<Arc<File>, StorageError> {
        self.backend().files.get_write(self.id, t, &self.rules)
    }

    /// Whether direct writes were given up because the device was slow
    /// (a loaded machine can look like a slow disk).
    #[cfg(test)]
    pub(crate) fn direct_given_up(&self) -> bool {
        self.backend()
            .writer_started()
            .as_ref()
            .is_some_and(|w| w.slow_jobs() >= SLOW_JOBS_TO_GIVE_UP)
    }

    /// Bytes written with `O_DIRECT` so far (queued ones included): 0 when
    /// the option is off, the filesystem refuses it or nothing was aligned.
    pub fn direct_bytes_written(&self) -> u64 {
        self.direct_bytes.load(Ordering::Relaxed)
    }

    /// Waits until every write queued by [`Storage::write_vectored_behind`]
    /// is done; fails with the first failed write of `piece`.
    pub fn wait_written(&self, piece: u32) -> Result<(), StorageError> {
        self.wait(Report::Piece(self.id, piece))
    }

    /// Waits for every queued write; fails with the first failed one of
    /// this storage.
    pub fn wait_all_written(&self) -> Result<(), StorageError> {
        self.wait(Report::All(self.id))
    }

    fn wait(&self, report: Report) -> Result<(), StorageError> {
        let waiter = {
            let mut guard = self.backend().writer();
            let Some(w) = guard.as_mut() else {
                return Ok(());
            };
            w.prepare_wait()
        };
        // The writer's lock is released: other storages keep writing.
        waiter.wait(report).map_or(Ok(()), Err)
    }

    /// Runs `f` once every write queued so far by
    /// [`Storage::write_vectored_behind`] is done, with the first failed
    /// write of `piece`: on the writer thread, or here at once when nothing
    /// was ever queued. The disk actor reports a piece verified from `f`,
    /// so it never waits for the device itself.
    pub fn after_written(
        &self,
        piece: u32,
        f: impl FnOnce(Result<(), StorageError>) + Send + 'static,
    ) {
        let mut guard = self.backend().writer();
        match guard.as_mut() {
            Some(w) => w.after_written(self.id, piece, Box::new(f)),
            None => {
                drop(guard);
                f(Ok(()));
            }
        }
    }

    /// Fills `buf` with the bytes at `offset` inside `piece`. Returns
    /// `Ok(false)` when some of them are not on disk (missing or short
    /// file); pad bytes read as zeros.
    pub fn read_into(&self, piece: u32, offset: u64, buf: &mut [u8]) -> Result<bool, StorageError> {
        let spans = self.map.block_spans(piece, offset, buf.len() as u64)?;
        self.read_spans(spans, buf)
    }

    fn read_spans(
        &self,
        spans: crate::layout::Spans<'_>,
        buf: &mut [u8],
    ) -> Result<bool, StorageError> {
        let wanted = self.wanted();
        let mut complete = true;
        let mut covered = 0u64;
        for s in spans {
            let lo = s.buf_offset as usize;
            let Some(chunk) = buf.get_mut(lo..lo + s.len as usize) else {
                return Ok(false);
            };
            covered += s.len;
            let ok = if s.pad {
                chunk.fill(0);
                true
            } else if wanted.get(s.file).copied().unwrap_or(false) {
                self.read_file(&s, chunk)?
            } else {
                self.read_parts(self.abs_offset(&s), chunk)?
            };
            complete &= ok;
        }
        Ok(complete && covered == buf.len() as u64)
    }

    /// Where the bytes of span `s` live (the file itself, or the parts file
    /// for an unwanted file), opened for reading: the handle, the offset of
    /// the span's first byte in it and its path. `None` when that file does
    /// not exist. Used by [`crate::verify`] to read large runs itself.
    pub(crate) fn span_source(
        &self,
        s: &Span,
    ) -> Result<Option<(Arc<File>, u64, PathBuf)>, StorageError> {
        let (t, at) = if self.is_wanted(s.file) {
            (self.target(s.file), s.file_offset)
        } else {
            (self.parts_target(), self.abs_offset(s))
        };
        Ok(self
            .backend()
            .files
            .get_read(self.id, &t)?
            .map(|f| (f, at, t.path.to_path_buf())))
    }

    /// The open read handle of span `s`'s file and the span's offset in it,
    /// without opening anything: `None` when the file is not wanted (its
    /// bytes live in the parts file) or not open. Used by
    /// [`crate::FileBlock::resident`], which must not block.
    pub(crate) fn open_source(&self, s: &Span) -> Option<(Arc<File>, u64)> {
        if !self.is_wanted(s.file) {
            return None;
        }
        let f = self.backend().files.get_open(self.id, s.file)?;
        Some((f, s.file_offset))
    }

    /// Reads `len` bytes at `offset` inside `piece`, for uploading. Fails with
    /// an I/O error of kind `UnexpectedEof` when the data is not on disk.
    pub fn read_block(&self, piece: u32, offset: u64, len: usize) -> Result<Vec<u8>, StorageError> {
        // Validate the range before allocating: `len` may come from a peer.
        self.map.block_spans(piece, offset, len as u64)?;
        let mut buf = vec![0u8; len];
        if self.read_into(piece, offset, &mut buf)? {
            Ok(buf)
        } else {
            Err(StorageError::io(
                IoOp::Read,
                &self.root,
                offset,
                std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("piece {piece} is not on disk"),
                ),
            ))
        }
    }

    /// Hashes `piece` as stored on disk and compares it with its expected
    /// hash (SHA-1 or v2 merkle root). `Ok(false)` when it differs or is not (fully) on disk.
    pub fn verify_on_disk(&self, piece: u32) -> Result<bool, StorageError> {
        let len = self.map.piece_len(piece).ok_or(LayoutError::NoSuchPiece {
            piece,
            count: self.map.piece_count(),
        })?;
        let mut buf = vec![0u8; len as usize];
        if !self.read_into(piece, 0, &mut buf)? {
            return Ok(false);
        }
        Ok(self.verify_data(piece, &[&buf]))
    }

    /// Whether the concatenation of `chunks` (the whole piece) matches
    /// `piece`'s expected hash (v1 SHA-1 or v2 merkle root, see
    /// [`PieceMap::verify_piece`]).
    pub fn verify_data(&self, piece: u32, chunks: &[&[u8]]) -> bool {
        self.map.verify_piece(piece, chunks)
    }

    /// Stat of file `i` on disk: `(len, mtime_ns)`, `None` when absent.
    pub(crate) fn stat_path(path: &Path) -> Result<Option<(u64, i64)>, StorageError> {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => Ok(Some((
                m.len(),
                m.mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(m.mtime_nsec()),
            ))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(IoOp::Stat, path, 0, e)),
        }
    }

    /// Flushes every file of the torrent (and the parts file) that exists to
    /// stable storage.
    pub fn sync_all(&self) -> Result<(), StorageError> {
        self.wait(Report::Nothing)?;
        let n = self.map.file_count();
        for i in 0..n {
            if self.file_path(i).is_some() {
                self.sync_one(&self.target(i))?;
            }
        }
        self.sync_one(&self.parts_target())
    }

    fn sync_one(&self, t: &Target<'_>) -> Result<(), StorageError> {
        if let Some(f) = self.backend().files.get_read(self.id, t)? {
            f.sync_data()
                .map_err(|e| StorageError::io(IoOp::Sync, t.path, 0, e))?;
        }
        Ok(())
    }
}

/// Why [`Storage::attach`] failed.
#[derive(Debug)]
pub(crate) enum AttachError {
    /// The storage already belongs to a disk pool.
    Attached,
    /// A write queued on the private writer failed.
    Storage(StorageError),
}

/// The bytes `[lo, hi)` of the concatenation of `bufs`, as sub-slices.
fn sub_parts<'a>(bufs: &[&'a [u8]], lo: usize, hi: usize) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(bufs.len());
    let mut pos = 0usize;
    for b in bufs {
        let (blo, bhi) = (pos, pos + b.len());
        pos = bhi;
        if bhi <= lo || blo >= hi {
            continue;
        }
        if let Some(part) = b.get(lo.max(blo) - blo..hi.min(bhi) - blo) {
            out.push(part);
        }
    }
    out
}
