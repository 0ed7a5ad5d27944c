//! Deleting and moving one torrent's files, for
//! [`super::TorrentDisk::delete_files`] and [`super::TorrentDisk::move_to`].
//!
//! Only the torrent's own files are touched (its file list, its parts and
//! resume files), never its root nor files of other torrents sharing the
//! root; a file reached through a directory whose real path leaves the root
//! is refused. A move never overwrites (targets are checked first and
//! renamed with `RENAME_NOREPLACE` where the filesystem allows it) and is
//! all or nothing: on an error, files already moved go back and copies are
//! removed, so the old data stays whole and in use.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::torrent::TorrentShared;
use crate::backend::Backend;
use crate::disk::DiskError;
use crate::error::{IoOp, StorageError};
use crate::store::{AttachError, Storage};

/// The torrent's files on disk plus, when the state directory lives in the
/// root, its parts and resume files: `(old path, new path)`, existing ones
/// only. `new` may be `old` itself (deletion).
fn own_files(old: &Storage, new: &Storage) -> Vec<(PathBuf, PathBuf)> {
    let mut pairs = Vec::new();
    for i in 0..old.map().file_count() {
        if let (Some(a), Some(b)) = (old.file_path(i), new.file_path(i)) {
            pairs.push((a.to_path_buf(), b.to_path_buf()));
        }
    }
    if old.state_dir_in_root() || std::ptr::eq(old, new) {
        pairs.push((
            old.parts_path().to_path_buf(),
            new.parts_path().to_path_buf(),
        ));
        pairs.push((old.resume_path(), new.resume_path()));
    }
    pairs.retain(|(a, _)| a.symlink_metadata().is_ok());
    pairs
}

/// Directories between `root` (excluded) and each of `files`, deepest
/// first.
fn dirs_under(root: &Path, files: impl IntoIterator<Item = PathBuf>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for f in files {
        let mut d = f.parent();
        while let Some(dir) = d {
            if dir == root || !dir.starts_with(root) {
                break;
            }
            dirs.push(dir.to_path_buf());
            d = dir.parent();
        }
    }
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    dirs
}

/// Removes the directories in `dirs` that are empty (deepest first).
fn remove_empty(dirs: &[PathBuf]) {
    for d in dirs {
        let _ = std::fs::remove_dir(d); // fails, as wanted, when not empty
    }
}

/// Removes the torrent's files, the directories they leave empty, and its
/// parts and resume files. Goes on after an error; returns the first one.
pub(crate) fn delete_files(s: &Storage) -> Result<(), DiskError> {
    let mut first: Option<DiskError> = None;
    let mut files: Vec<PathBuf> = own_files(s, s).into_iter().map(|(a, _)| a).collect();
    files.push(s.resume_path().with_extension("resume.tmp"));
    for path in &files {
        let inside = path.starts_with(s.state_dir())
            || path
                .parent()
                .map_or(Ok(()), |p| s.check_inside_root(p))
                .is_ok();
        if !inside {
            first.get_or_insert(DiskError::Storage(StorageError::PathEscape {
                path: path.clone(),
            }));
            continue;
        }
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                first.get_or_insert(StorageError::io(IoOp::Remove, path, 0, e).into());
            }
        }
    }
    remove_empty(&dirs_under(s.root(), files));
    if s.state_dir_in_root() {
        let _ = std::fs::remove_dir(s.state_dir());
    }
    first.map_or(Ok(()), Err)
}

/// How one file was moved, to undo it.
enum Moved {
    Renamed(PathBuf, PathBuf),
    Copied(PathBuf, PathBuf),
}

/// Moves the torrent of `t` under `new_root` and makes the new storage the
/// torrent's (see [`super::TorrentDisk::move_to`]). Its jobs are held back
/// by the caller meanwhile.
pub(crate) fn move_storage(
    t: &TorrentShared,
    backend: Arc<Backend>,
    new_root: &Path,
    force_copy: bool,
) -> Result<(), DiskError> {
    let old = t.storage();
    old.wait_all_written()?;
    let new = old.relocated(new_root)?;
    // Open handles would keep copied-then-removed files alive.
    old.forget_files();
    move_files(&old, &new, force_copy)?;
    new.attach(backend).map_err(|e| match e {
        AttachError::Attached => DiskError::AlreadyAttached,
        AttachError::Storage(e) => DiskError::Storage(e),
    })?;
    t.set_storage(Arc::new(new));
    Ok(())
}

/// Moves every existing file of `old` to its place in `new`; all or
/// nothing.
pub(crate) fn move_files(old: &Storage, new: &Storage, force_copy: bool) -> Result<(), DiskError> {
    let pairs = own_files(old, new);
    for (a, b) in &pairs {
        if b.symlink_metadata().is_ok() {
            return Err(DiskError::TargetExists { path: b.clone() });
        }
        if !a.starts_with(old.state_dir()) {
            if let Some(p) = a.parent() {
                old.check_inside_root(p)?;
            }
        }
    }
    let mut moved: Vec<Moved> = Vec::new();
    let mut created: Vec<PathBuf> = Vec::new();
    let mut result = Ok(());
    for (a, b) in &pairs {
        let step = make_parent(new, b, &mut created).and_then(|()| move_one(a, b, force_copy));
        match step {
            Ok(m) => moved.push(m),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if let Err(e) = result {
        for m in moved.into_iter().rev() {
            let undone = match &m {
                Moved::Renamed(a, b) => std::fs::rename(b, a),
                Moved::Copied(_, b) => std::fs::remove_file(b),
            };
            if let Err(u) = undone {
                tracing::error!(error = %u, "disk pool: undoing a failed move");
            }
        }
        created.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        remove_empty(&created);
        return Err(e);
    }
    for m in &moved {
        if let Moved::Copied(a, _) = m {
            if let Err(e) = std::fs::remove_file(a) {
                tracing::warn!(path = ?a, error = %e, "disk pool: removing a moved file");
            }
        }
    }
    remove_empty(&dirs_under(
        old.root(),
        pairs.iter().map(|(a, _)| a.clone()),
    ));
    if old.state_dir_in_root() {
        let _ = std::fs::remove_dir(old.state_dir());
    }
    Ok(())
}

/// Creates the parent directories of `b` (recording the new ones) and
/// checks that it is inside `new`'s root (or its state directory).
fn make_parent(new: &Storage, b: &Path, created: &mut Vec<PathBuf>) -> Result<(), DiskError> {
    let Some(parent) = b.parent() else {
        return Ok(());
    };
    let mut missing = Vec::new();
    let mut d = Some(parent);
    while let Some(dir) = d {
        if dir.symlink_metadata().is_ok() {
            break;
        }
        missing.push(dir.to_path_buf());
        d = dir.parent();
    }
    std::fs::create_dir_all(parent).map_err(|e| StorageError::io(IoOp::CreateDir, parent, 0, e))?;
    created.extend(missing);
    if !b.starts_with(new.state_dir()) {
        new.check_inside_root(parent)?;
    }
    Ok(())
}

/// Renames `a` to `b` (never replacing `b`), or copies it across
/// filesystems (synced before anything is removed).
fn move_one(a: &Path, b: &Path, force_copy: bool) -> Result<Moved, DiskError> {
    if !force_copy {
        match rename_noreplace(a, b) {
            Ok(()) => return Ok(Moved::Renamed(a.into(), b.into())),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(DiskError::TargetExists { path: b.into() })
            }
            Err(e) => return Err(StorageError::io(IoOp::Rename, a, 0, e).into()),
        }
    }
    let mut src = File::open(a).map_err(|e| StorageError::io(IoOp::Open, a, 0, e))?;
    let mut dst = match OpenOptions::new().write(true).create_new(true).open(b) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(DiskError::TargetExists { path: b.into() })
        }
        Err(e) => return Err(StorageError::io(IoOp::Open, b, 0, e).into()),
    };
    let copied = io::copy(&mut src, &mut dst)
        .and_then(|_| dst.sync_all())
        .map_err(|e| StorageError::io(IoOp::Copy, b, 0, e));
    if let Err(e) = copied {
        drop(dst);
        let _ = std::fs::remove_file(b); // our own partial copy
        return Err(e.into());
    }
    Ok(Moved::Copied(a.into(), b.into()))
}

/// `rename` that fails with `AlreadyExists` instead of replacing `b`
/// (`renameat2(RENAME_NOREPLACE)`; where the filesystem lacks it, a plain
/// rename after checking that `b` does not exist).
fn rename_noreplace(a: &Path, b: &Path) -> io::Result<()> {
    let (Ok(ca), Ok(cb)) = (
        CString::new(a.as_os_str().as_bytes()),
        CString::new(b.as_os_str().as_bytes()),
    ) else {
        return Err(io::ErrorKind::InvalidInput.into());
    };
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them
    // relative to the working directory as `rename` does.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::ENOSYS) => {
            if b.symlink_metadata().is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(a, b)
        }
        _ => Err(e),
    }
}
