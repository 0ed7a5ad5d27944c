//! Lazily opened file handles, bounded by an LRU, and safe path joining.
//!
//! Files are opened on first use and kept in a `FileCache` of at most
//! `max_open` handles (the least recently used is closed first). One cache
//! may serve many torrents: entries are keyed by `FileKey`, the owning
//! storage's id and the file's index, so a session's disk pool holds one
//! cache with one global cap, and closing a torrent drops just its handles
//! (`FileCache::forget_owner`). The per-torrent rules of where a file may
//! be created live in `FileRules`: opening for writing creates parent
//! directories inside the root only, re-checks after creation that the real
//! parent directory is inside the real root (defense in depth against `..`
//! and symlinked directories), never truncates, and extends a short file to
//! its expected length (sparse `set_len` or `posix_fallocate`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use crate::error::{IoOp, StorageError};
use crate::layout::is_safe_relative;

/// How a file should be sized when first opened for writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Allocation {
    /// Extend with `set_len` (holes; no space reserved).
    Sparse,
    /// Reserve the space with `fallocate`. The default: direct writes into
    /// reserved space are overwrites, which ext4 runs two at a time (see
    /// the `writer` module); into holes it runs them one by one. Where the
    /// filesystem cannot reserve, or has not the room (`ENOSPC`), the file
    /// is made sparse instead: a nearly full disk still takes the pieces
    /// that fit, as with `Sparse`.
    #[default]
    Preallocate,
}

/// Cache key of an open file: the id of the [`crate::Storage`] that owns it
/// and the file's index there (`usize::MAX` for the parts file).
pub(crate) type FileKey = (u64, usize);

/// What to open: the file's index, where it is and how long it should be.
#[derive(Debug, Clone)]
pub(crate) struct Target<'a> {
    pub key: usize,
    pub path: &'a Path,
    /// `path` must stay inside the root (files of the torrent; not the parts
    /// file, which lives in the state directory).
    pub inside_root: bool,
    pub expected_len: u64,
}

/// Where one torrent's files may be created and how they are sized.
pub(crate) struct FileRules {
    root: PathBuf,
    canonical_root: OnceLock<PathBuf>,
    allocation: Allocation,
}

struct Entry {
    file: Arc<File>,
    writable: bool,
    /// The same file opened again with `O_DIRECT` for aligned writes.
    direct: Direct,
    last_use: u64,
}

/// Whether an entry has an `O_DIRECT` handle.
#[derive(Clone)]
enum Direct {
    /// Not asked for yet.
    Untried,
    Open(Arc<File>),
    /// The filesystem refused `O_DIRECT` (or an aligned write failed with
    /// `EINVAL`): buffered writes only for this file.
    Unavailable,
}

#[derive(Default)]
struct Lru {
    map: HashMap<FileKey, Entry>,
    tick: u64,
}

/// A bounded cache of open files, shared by all threads (and, in a disk
/// pool, by all torrents).
pub(crate) struct FileCache {
    max_open: usize,
    lru: Mutex<Lru>,
}

/// Joins a relative torrent path to `root`, refusing anything but normal
/// components, and checks the result is lexically under `root`.
pub fn safe_join(root: &Path, rel: &Path) -> Result<PathBuf, StorageError> {
    if !is_safe_relative(rel) {
        return Err(StorageError::PathEscape {
            path: rel.to_path_buf(),
        });
    }
    let joined = root.join(rel);
    if !joined.starts_with(root) {
        return Err(StorageError::PathEscape { path: joined });
    }
    Ok(joined)
}

impl FileRules {
    pub(crate) fn new(root: PathBuf, allocation: Allocation) -> Self {
        Self {
            root,
            canonical_root: OnceLock::new(),
            allocation,
        }
    }

    /// Fails unless the real path of the existing directory `dir` is inside
    /// the real root.
    pub(crate) fn check_inside_root(&self, dir: &Path) -> Result<(), StorageError> {
        let root = match self.canonical_root.get() {
            Some(r) => r.clone(),
            None => {
                let r = self
                    .root
                    .canonicalize()
                    .map_err(|e| StorageError::io(IoOp::Stat, &self.root, 0, e))?;
                let _ = self.canonical_root.set(r.clone());
                r
            }
        };
        let real = dir
            .canonicalize()
            .map_err(|e| StorageError::io(IoOp::Stat, dir, 0, e))?;
        if real.starts_with(&root) {
            Ok(())
        } else {
            Err(StorageError::PathEscape { path: real })
        }
    }

    fn extend(&self, f: &File, path: &Path, from: u64, to: u64) -> Result<(), StorageError> {
        match self.allocation {
            Allocation::Sparse => f
                .set_len(to)
                .map_err(|e| StorageError::io(IoOp::Allocate, path, from, e)),
            Allocation::Preallocate => {
                use std::os::fd::AsRawFd;
                let (Ok(off), Ok(len)) = (i64::try_from(from), i64::try_from(to - from)) else {
                    return Err(StorageError::io(
                        IoOp::Allocate,
                        path,
                        from,
                        io::Error::from(io::ErrorKind::InvalidInput),
                    ));
                };
                // `fallocate(2)`, not `posix_fallocate`: where the filesystem
                // cannot preallocate, glibc's `posix_fallocate` writes a byte
                // into every block instead, reading and writing the whole file.
                // SAFETY: plain syscall on a valid, owned file descriptor.
                let rc = if unsafe { libc::fallocate(f.as_raw_fd(), 0, off, len) } == 0 {
                    0
                } else {
                    io::Error::last_os_error()
                        .raw_os_error()
                        .unwrap_or(libc::EIO)
                };
                if rc == 0 {
                    Ok(())
                } else if [libc::EOPNOTSUPP, libc::EINVAL, libc::ENOSYS, libc::ENOSPC].contains(&rc)
                {
                    if rc == libc::ENOSPC {
                        // What it reserved before running out would leave no
                        // room for the pieces that fit: give it back (nothing
                        // was written past `from`, the file's old end).
                        // SAFETY: as above.
                        unsafe {
                            libc::fallocate(
                                f.as_raw_fd(),
                                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                                off,
                                len,
                            )
                        };
                    }
                    // Cannot (or not now): a sparse file, as `Sparse`.
                    f.set_len(to)
                        .map_err(|e| StorageError::io(IoOp::Allocate, path, from, e))
                } else {
                    Err(StorageError::io(
                        IoOp::Allocate,
                        path,
                        from,
                        io::Error::from_raw_os_error(rc),
                    ))
                }
            }
        }
    }

    /// Opens (creating it and its directories if needed) `t` for writing,
    /// never truncating, extending it to its expected length.
    fn open_write(&self, t: &Target<'_>) -> Result<File, StorageError> {
        if let Some(parent) = t.path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StorageError::io(IoOp::CreateDir, parent, 0, e))?;
            if t.inside_root {
                self.check_inside_root(parent)?;
            }
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(t.path)
            .map_err(|e| StorageError::io(IoOp::Open, t.path, 0, e))?;
        let meta = f
            .metadata()
            .map_err(|e| StorageError::io(IoOp::Stat, t.path, 0, e))?;
        // Only ever extend regular files; never truncate existing data.
        if meta.is_file() && meta.len() < t.expected_len {
            self.extend(&f, t.path, meta.len(), t.expected_len)?;
        }
        Ok(f)
    }
}

impl FileCache {
    pub(crate) fn new(max_open: usize) -> Self {
        Self {
            max_open: max_open.max(1),
            lru: Mutex::new(Lru::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Lru> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (single insert/remove), so poisoning is ignored.
        self.lru.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Number of handles currently cached (all owners).
    pub(crate) fn open_count(&self) -> usize {
        self.lock().map.len()
    }

    /// Number of handles cached for `owner`.
    pub(crate) fn owner_count(&self, owner: u64) -> usize {
        self.lock().map.keys().filter(|k| k.0 == owner).count()
    }

    /// Drops the cached handle for `key` (e.g. after the file was replaced).
    pub(crate) fn forget(&self, key: FileKey) {
        let e = self.lock().map.remove(&key);
        drop(e); // closed outside the lock
    }

    /// Drops every cached handle of `owner` (a closed or moved torrent).
    pub(crate) fn forget_owner(&self, owner: u64) {
        let mut lru = self.lock();
        let gone: Vec<Entry> = {
            let keys: Vec<FileKey> = lru.map.keys().filter(|k| k.0 == owner).copied().collect();
            keys.iter().filter_map(|k| lru.map.remove(k)).collect()
        };
        drop(lru);
        drop(gone);
    }

    /// A handle for reading; `Ok(None)` when the file does not exist.
    pub(crate) fn get_read(
        &self,
        owner: u64,
        t: &Target<'_>,
    ) -> Result<Option<Arc<File>>, StorageError> {
        let key = (owner, t.key);
        if let Some(f) = self.cached(key, false) {
            return Ok(Some(f));
        }
        match File::open(t.path) {
            Ok(f) => Ok(Some(self.insert(key, f, false))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StorageError::io(IoOp::Open, t.path, 0, e)),
        }
    }

    /// The cached handle of file `key` of `owner` (readable; never the
    /// `O_DIRECT` one), without opening it: `None` when it is not open.
    pub(crate) fn get_open(&self, owner: u64, key: usize) -> Option<Arc<File>> {
        self.cached((owner, key), false)
    }

    /// A handle for writing, creating the file (and its directories) if
    /// needed, following `rules`.
    pub(crate) fn get_write(
        &self,
        owner: u64,
        t: &Target<'_>,
        rules: &FileRules,
    ) -> Result<Arc<File>, StorageError> {
        let key = (owner, t.key);
        if let Some(f) = self.cached(key, true) {
            return Ok(f);
        }
        let f = rules.open_write(t)?;
        Ok(self.insert(key, f, true))
    }

    /// An `O_DIRECT` handle on a file already opened by
    /// [`FileCache::get_write`] under `key`; `None` when the filesystem does
    /// not support it (then the caller writes through the page cache).
    ///
    /// The handle is a reopening of the cached descriptor through
    /// `/proc/self/fd`, so the path is not resolved again.
    pub(crate) fn get_direct(&self, key: FileKey) -> Option<Arc<File>> {
        let fd = {
            let lru = self.lock();
            let e = lru.map.get(&key)?;
            match &e.direct {
                Direct::Open(f) => return Some(f.clone()),
                Direct::Unavailable => return None,
                Direct::Untried if !e.writable => return None,
                Direct::Untried => e.file.clone(),
            }
        };
        let direct = crate::direct::reopen_direct(&fd).ok().map(Arc::new);
        let mut lru = self.lock();
        let e = lru.map.get_mut(&key)?;
        e.direct = match &direct {
            Some(f) => Direct::Open(f.clone()),
            None => Direct::Unavailable,
        };
        direct
    }

    /// Stops using `O_DIRECT` for `key` (an aligned write was refused).
    pub(crate) fn disable_direct(&self, key: FileKey) {
        if let Some(e) = self.lock().map.get_mut(&key) {
            e.direct = Direct::Unavailable;
        }
    }

    fn cached(&self, key: FileKey, write: bool) -> Option<Arc<File>> {
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let e = lru.map.get_mut(&key)?;
        if write && !e.writable {
            return None;
        }
        e.last_use = tick;
        Some(e.file.clone())
    }

    fn insert(&self, key: FileKey, file: File, writable: bool) -> Arc<File> {
        let file = Arc::new(file);
        let mut lru = self.lock();
        lru.tick += 1;
        let tick = lru.tick;
        let mut evicted = None;
        if !lru.map.contains_key(&key) && lru.map.len() >= self.max_open {
            // O(max_open) scan, only when a file is opened while the cache
            // is full; hits stay O(1).
            if let Some(victim) = lru
                .map
                .iter()
                .min_by_key(|(_, e)| e.last_use)
                .map(|(k, _)| *k)
            {
                evicted = lru.map.remove(&victim);
            }
        }
        let old = lru.map.insert(
            key,
            Entry {
                file: file.clone(),
                writable,
                direct: Direct::Untried,
                last_use: tick,
            },
        );
        drop(lru);
        drop((evicted, old)); // closed outside the lock
        file
    }
}

/// `pwritev` until every byte of `bufs` is written at `offset` (retrying on
/// `EINTR` and short writes, at most `IOV_MAX` slices per call).
pub(crate) fn write_all_vectored_at(
    file: &File,
    mut bufs: &mut [io::IoSlice<'_>],
    mut offset: u64,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const IOV_MAX: usize = 1024;
    while !bufs.is_empty() {
        let cnt = bufs.len().min(IOV_MAX);
        let off = libc::off_t::try_from(offset)
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, the slice
        // holds `cnt` valid entries, and the descriptor is owned by `file`.
        let n = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                bufs.as_ptr().cast::<libc::iovec>(),
                cnt as libc::c_int,
                off,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        io::IoSlice::advance_slices(&mut bufs, n as usize);
        offset += n as u64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectored_write_writes_everything_in_order() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let f = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.path().join("v"))
            .unwrap();
        let parts: Vec<Vec<u8>> = (0..1500u32)
            .map(|i| vec![(i % 251) as u8; (i % 7) as usize])
            .collect();
        let mut slices: Vec<io::IoSlice<'_>> = parts.iter().map(|p| io::IoSlice::new(p)).collect();
        write_all_vectored_at(&f, &mut slices, 3).unwrap();
        let want: Vec<u8> = parts.concat();
        let mut got = vec![0u8; want.len()];
        f.read_exact_at(&mut got, 3).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn safe_join_rejects_escapes() {
        let root = Path::new("/tmp/root");
        assert!(safe_join(root, Path::new("a/b")).is_ok());
        for bad in ["../a", "/abs", "a/../../b", ""] {
            assert!(matches!(
                safe_join(root, Path::new(bad)),
                Err(StorageError::PathEscape { .. })
            ));
        }
    }

    #[test]
    fn lru_is_bounded_and_never_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let rules = FileRules::new(dir.path().to_path_buf(), Allocation::Sparse);
        let cache = FileCache::new(3);
        let paths: Vec<_> = (0..10)
            .map(|i| dir.path().join(format!("d/f{i}")))
            .collect();
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(&paths[0], b"existing data that is long").unwrap();
        for (i, p) in paths.iter().enumerate() {
            let t = Target {
                key: i,
                path: p,
                inside_root: true,
                expected_len: 5,
            };
            cache.get_write(0, &t, &rules).unwrap();
            assert!(cache.open_count() <= 3);
        }
        assert_eq!(
            std::fs::read(&paths[0]).unwrap(),
            b"existing data that is long"
        );
        assert_eq!(std::fs::metadata(&paths[9]).unwrap().len(), 5);
    }

    #[test]
    fn symlinked_dir_escape_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("evil")).unwrap();
        let rules = FileRules::new(root.clone(), Allocation::Sparse);
        let cache = FileCache::new(4);
        let p = root.join("evil/x");
        let t = Target {
            key: 0,
            path: &p,
            inside_root: true,
            expected_len: 1,
        };
        assert!(matches!(
            cache.get_write(0, &t, &rules),
            Err(StorageError::PathEscape { .. })
        ));
        assert!(!outside.path().join("x").exists());
    }

    #[test]
    fn owners_share_the_cap_and_are_forgotten_alone() {
        let dir = tempfile::tempdir().unwrap();
        let rules = FileRules::new(dir.path().to_path_buf(), Allocation::Sparse);
        let cache = FileCache::new(4);
        let paths: Vec<_> = (0..6).map(|i| dir.path().join(format!("f{i}"))).collect();
        for (i, p) in paths.iter().enumerate() {
            let t = Target {
                key: 0,
                path: p,
                inside_root: true,
                expected_len: 1,
            };
            // Six owners with one file each: the cap holds across owners.
            cache.get_write(i as u64, &t, &rules).unwrap();
        }
        assert_eq!(cache.open_count(), 4);
        assert_eq!(cache.owner_count(0), 0, "the oldest owner was evicted");
        assert_eq!(cache.owner_count(5), 1);
        cache.forget_owner(5);
        assert_eq!((cache.open_count(), cache.owner_count(5)), (3, 0));
        assert_eq!(cache.owner_count(4), 1);
    }
}
