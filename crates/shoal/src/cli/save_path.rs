//! `--data PATH` of `shoal seed` and `shoal verify`: where a torrent's data
//! is. Accepted: the directory that contains the torrent's content (as
//! libtorrent's save path), the content directory itself for a multi-file
//! torrent, or the file itself for a single-file torrent.
use std::path::{Path, PathBuf};

use anyhow::Context;
use shoal_metainfo::Torrent;

use super::InvalidInput;

/// The storage root for `data`: accepts the save path, the content
/// directory of a multi-file torrent, or the file of a single-file torrent.
pub(crate) fn save_path(t: &Torrent, data: &Path) -> anyhow::Result<PathBuf> {
    let meta = std::fs::metadata(data).with_context(|| format!("--data {}", data.display()))?;
    let name = t.name();
    let parent = || {
        data.parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    p.to_path_buf()
                }
            })
            .unwrap_or_else(|| PathBuf::from("."))
    };
    if meta.is_file() {
        if t.is_multi_file() {
            return Err(InvalidInput(format!(
                "--data {} is a file but the torrent has several files",
                data.display()
            ))
            .into());
        }
        let file_name = data.file_name().map(|n| n.to_string_lossy().into_owned());
        let first = t
            .files()
            .first()
            .map(|f| f.path_string())
            .unwrap_or_default();
        if file_name.as_deref() != Some(first.as_str()) {
            return Err(InvalidInput(format!(
                "--data {} is not the torrent's file {first:?}",
                data.display()
            ))
            .into());
        }
        return Ok(parent());
    }
    if data.join(name).exists() {
        return Ok(data.to_path_buf());
    }
    if t.is_multi_file()
        && data
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == name)
    {
        return Ok(parent());
    }
    Ok(data.to_path_buf())
}
