//! Moving a torrent's data to another directory and deleting it. Both work
//! only on the torrent's own files (joined under the save path with the
//! storage crate's `safe_join`, so nothing outside it is touched) and its
//! side files (`.shoal/<hash>.parts`, `.resume`). A move that fails puts
//! back what it already moved, so the data stays whole in one place.
use super::task::TorrentTask;
use crate::error::TorrentOpError;
use shoal_storage::files::safe_join;
use std::io;
use std::path::{Path, PathBuf};

/// The torrent's files (no padding) as paths relative to the save path,
/// then its side files.
fn own_files(task: &TorrentTask) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = task
        .torrent
        .iter()
        .flat_map(|t| t.files().iter())
        .filter(|f| !f.pad)
        .map(|f| f.path.clone())
        .collect();
    let hex = task.hashes.primary().to_hex();
    out.push(Path::new(".shoal").join(format!("{hex}.parts")));
    out.push(Path::new(".shoal").join(format!("{hex}.resume")));
    out
}

/// Moves one file, across filesystems if need be (copy keeps the
/// modification time, so resume data stays valid).
fn move_file(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            // EXDEV: another filesystem.
            let mtime = std::fs::metadata(from)?.modified()?;
            std::fs::copy(from, to)?;
            std::fs::OpenOptions::new()
                .write(true)
                .open(to)?
                .set_modified(mtime)?;
            std::fs::remove_file(from)
        }
        Err(e) => Err(e),
    }
}

/// Removes the empty directories between `file` and `root` (exclusive).
fn prune_dirs(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) {
            break;
        }
        if std::fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn move_all(from_root: &Path, to_root: &Path, files: &[PathBuf]) -> io::Result<()> {
    let mut done: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| {
        for rel in files {
            let from = safe_join(from_root, rel).map_err(io::Error::other)?;
            let to = safe_join(to_root, rel).map_err(io::Error::other)?;
            if !from.exists() {
                continue;
            }
            if to.exists() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} already exists", to.display()),
                ));
            }
            move_file(&from, &to)?;
            done.push((from, to));
        }
        Ok(())
    })();
    match result {
        Ok(()) => {
            for (from, _) in &done {
                prune_dirs(from_root, from);
            }
            Ok(())
        }
        Err(e) => {
            for (from, to) in done.iter().rev() {
                if let Err(back) = move_file(to, from) {
                    tracing::error!(file = %to.display(), error = %back, "moving a file back failed");
                }
                prune_dirs(to_root, to);
            }
            Err(e)
        }
    }
}

fn delete_all(root: &Path, files: &[PathBuf]) -> io::Result<()> {
    let mut first: Option<io::Error> = None;
    for rel in files {
        let Ok(p) = safe_join(root, rel) else {
            continue;
        };
        match std::fs::remove_file(&p) {
            Ok(()) => prune_dirs(root, &p),
            Err(e) if e.kind() == io::ErrorKind::NotFound => prune_dirs(root, &p),
            Err(e) => {
                first.get_or_insert(e);
            }
        }
    }
    first.map_or(Ok(()), Err)
}

impl TorrentTask {
    /// Moves the data under `to` (the transfer is stopped by the caller).
    pub(super) async fn move_data(&mut self, to: PathBuf) -> Result<(), TorrentOpError> {
        let from = self.meta_tx.borrow().save_path.clone();
        if from == to {
            return Ok(());
        }
        let files = own_files(self);
        let dest = to.clone();
        let r = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dest)?;
            move_all(&from, &dest, &files)
        })
        .await
        .map_err(|_| TorrentOpError::Stopped)?;
        r.map_err(|source| TorrentOpError::Move {
            to: to.clone(),
            source,
        })?;
        self.meta_tx.send_modify(|m| m.save_path = to);
        self.save_record().await;
        Ok(())
    }

    /// Deletes the torrent's files and side files.
    pub(super) async fn delete_data(&mut self) -> Result<(), TorrentOpError> {
        let root = self.meta_tx.borrow().save_path.clone();
        let files = own_files(self);
        tokio::task::spawn_blocking(move || delete_all(&root, &files))
            .await
            .map_err(|_| TorrentOpError::Stopped)?
            .map_err(TorrentOpError::Delete)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn move_and_delete_touch_only_the_listed_files() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        let b = d.path().join("b");
        std::fs::create_dir_all(a.join("t/sub")).unwrap();
        std::fs::write(a.join("t/sub/x"), b"x").unwrap();
        std::fs::write(a.join("t/y"), b"y").unwrap();
        std::fs::write(a.join("other"), b"keep").unwrap();
        let files = vec![PathBuf::from("t/sub/x"), PathBuf::from("t/y")];
        move_all(&a, &b, &files).unwrap();
        assert_eq!(std::fs::read(b.join("t/sub/x")).unwrap(), b"x");
        assert!(!a.join("t").exists(), "emptied directories are pruned");
        assert!(a.join("other").exists());
        // A clash: nothing moves back and forth half-way.
        std::fs::create_dir_all(a.join("t")).unwrap();
        std::fs::write(a.join("t/y"), b"clash").unwrap();
        assert!(move_all(&b, &a, &files).is_err());
        assert_eq!(std::fs::read(b.join("t/sub/x")).unwrap(), b"x");
        assert_eq!(std::fs::read(b.join("t/y")).unwrap(), b"y");
        assert_eq!(std::fs::read(a.join("t/y")).unwrap(), b"clash");
        delete_all(&b, &files).unwrap();
        assert!(!b.join("t").exists());
        assert!(a.join("other").exists() && a.join("t/y").exists());
        // Paths that would leave the root are never followed.
        assert!(delete_all(&b, &[PathBuf::from("../a/other")]).is_ok());
        assert!(a.join("other").exists());
    }
}
