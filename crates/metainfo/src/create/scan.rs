//! Walking the input of `create`: which files, in which order, under which names.
//!
//! Symbolic links are followed (a link to an ancestor directory is a loop and
//! refused); anything but regular files and directories is refused; names must
//! be UTF-8. Files are sorted by their path components in byte order, which is
//! the depth-first order of the sorted v2 `file tree`.
use std::fs;
use std::path::{Path, PathBuf};

use super::CreateError;

/// One input file of a torrent being created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// Path components relative to the torrent root (empty for a single-file
    /// torrent, whose only file is named by the torrent name).
    pub path: Vec<String>,
    /// Where to read it on disk.
    pub source: PathBuf,
    /// Length in bytes when scanned.
    pub length: u64,
}

/// The result of scanning the input.
#[derive(Debug)]
pub(super) struct Scanned {
    pub name: String,
    pub single_file: bool,
    pub files: Vec<InputFile>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> CreateError + '_ {
    move |source| CreateError::Io {
        path: path.to_owned(),
        source,
    }
}

fn utf8_name(path: &Path, name: &std::ffi::OsStr) -> Result<String, CreateError> {
    name.to_str()
        .map(str::to_owned)
        .ok_or_else(|| CreateError::NonUtf8Name {
            path: path.to_owned(),
        })
}

/// Scans `path`: a file gives one file, a directory is walked recursively.
pub(super) fn scan(path: &Path, max_files: usize) -> Result<Scanned, CreateError> {
    let meta = fs::metadata(path).map_err(io_err(path))?;
    // Name after the final component of the canonical path, so `.` or `dir/`
    // name the torrent after the directory itself.
    let canonical = fs::canonicalize(path).map_err(io_err(path))?;
    let name = match canonical.file_name() {
        Some(n) => utf8_name(path, n)?,
        None => {
            return Err(CreateError::NoName {
                path: path.to_owned(),
            })
        }
    };
    if meta.is_file() {
        return Ok(Scanned {
            name,
            single_file: true,
            files: vec![InputFile {
                path: Vec::new(),
                source: path.to_owned(),
                length: meta.len(),
            }],
        });
    }
    if !meta.is_dir() {
        return Err(CreateError::UnsupportedFileType {
            path: path.to_owned(),
        });
    }
    let mut files = Vec::new();
    let mut ancestors = vec![dir_id(&meta)];
    let mut prefix = Vec::new();
    walk(path, &mut prefix, &mut ancestors, &mut files, max_files)?;
    if files.is_empty() {
        return Err(CreateError::NoFiles {
            path: path.to_owned(),
        });
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Scanned {
        name,
        single_file: false,
        files,
    })
}

#[cfg(unix)]
fn dir_id(meta: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn dir_id(_meta: &fs::Metadata) -> (u64, u64) {
    (0, 0)
}

fn walk(
    dir: &Path,
    prefix: &mut Vec<String>,
    ancestors: &mut Vec<(u64, u64)>,
    out: &mut Vec<InputFile>,
    max_files: usize,
) -> Result<(), CreateError> {
    let entries = fs::read_dir(dir).map_err(io_err(dir))?;
    for entry in entries {
        let entry = entry.map_err(io_err(dir))?;
        let path = entry.path();
        let name = utf8_name(&path, &entry.file_name())?;
        // Follows symbolic links.
        let meta = fs::metadata(&path).map_err(io_err(&path))?;
        if meta.is_file() {
            if out.len() >= max_files {
                return Err(CreateError::TooManyFiles {
                    path: path.clone(),
                    max: max_files,
                });
            }
            let mut components = prefix.clone();
            components.push(name);
            out.push(InputFile {
                path: components,
                source: path,
                length: meta.len(),
            });
        } else if meta.is_dir() {
            if prefix.len() + 1 >= super::MAX_PATH_DEPTH {
                return Err(CreateError::TooDeep {
                    path,
                    max: super::MAX_PATH_DEPTH,
                });
            }
            let id = dir_id(&meta);
            if cfg!(unix) && ancestors.contains(&id) {
                return Err(CreateError::SymlinkLoop { path });
            }
            ancestors.push(id);
            prefix.push(name);
            walk(&path, prefix, ancestors, out, max_files)?;
            prefix.pop();
            ancestors.pop();
        } else {
            return Err(CreateError::UnsupportedFileType { path });
        }
    }
    Ok(())
}
