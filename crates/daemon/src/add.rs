//! Adding a torrent, the same for every front end (the RPC's
//! `torrent-add`, `POST /api/v1/torrents`, the watch folder): a .torrent's
//! bytes, a magnet link, a local .torrent path or an `http://` URL; the
//! directory checked ([`crate::paths`]), the file selection and priorities
//! applied, the whole .torrent kept in the database, a duplicate answered
//! with the torrent already there.
use crate::paths::{check_dir, PathError};
use crate::Shared;
use shoal_engine::{
    AddTorrentError, AddTorrentParams, FileSelection, TorrentHandle, TorrentLimits, TorrentSource,
};
use shoal_metainfo::{Magnet, Torrent};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Largest .torrent read from a file or a URL.
pub const MAX_TORRENT_FILE: usize = 16 << 20;
/// Most labels on a torrent.
pub const MAX_LABELS: usize = 64;
/// Longest label.
pub const MAX_LABEL: usize = 128;

/// What a torrent is added from.
#[derive(Debug, Clone)]
pub enum AddSource {
    /// The bytes of a .torrent file.
    Metainfo(Vec<u8>),
    /// A magnet link.
    Magnet(String),
    /// A .torrent file on the daemon's machine.
    Path(PathBuf),
    /// An `http://` URL of a .torrent file.
    Url(String),
}

impl AddSource {
    /// Transmission's `filename`: a magnet link, a URL or a local path.
    pub fn from_filename(s: &str) -> AddSource {
        let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
        if lower.starts_with("magnet:") {
            AddSource::Magnet(s.to_owned())
        } else if lower.starts_with("http://") || lower.starts_with("https://") {
            AddSource::Url(s.to_owned())
        } else if s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
            AddSource::Magnet(format!("magnet:?xt=urn:btih:{s}"))
        } else {
            AddSource::Path(PathBuf::from(s))
        }
    }
}

/// One add.
#[derive(Debug, Clone)]
pub struct AddRequest {
    /// What to add.
    pub source: AddSource,
    /// Where (default: the session's download directory).
    pub download_dir: Option<String>,
    /// Add it stopped (default: the `start-added-torrents` setting).
    pub paused: Option<bool>,
    /// Labels.
    pub labels: Vec<String>,
    /// Files not to download (indices).
    pub files_unwanted: Vec<usize>,
    /// Files of high priority.
    pub priority_high: Vec<usize>,
    /// Files of low priority.
    pub priority_low: Vec<usize>,
    /// Most connections of this torrent.
    pub peer_limit: Option<usize>,
}

impl AddRequest {
    /// Adds `source` with the defaults.
    pub fn new(source: AddSource) -> AddRequest {
        AddRequest {
            source,
            download_dir: None,
            paused: None,
            labels: Vec::new(),
            files_unwanted: Vec::new(),
            priority_high: Vec::new(),
            priority_low: Vec::new(),
            peer_limit: None,
        }
    }
}

/// What an add gave.
#[derive(Debug, Clone)]
pub struct Added {
    /// The torrent.
    pub handle: TorrentHandle,
    /// It was there already (nothing changed).
    pub duplicate: bool,
}

/// Why a torrent could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddError {
    /// The .torrent does not parse.
    #[error("invalid or corrupt torrent file: {0}")]
    BadTorrent(String),
    /// The magnet link does not parse or names no hash.
    #[error("invalid magnet link: {0}")]
    BadMagnet(String),
    /// The directory is refused.
    #[error("download-dir: {0}")]
    Dir(#[from] PathError),
    /// A label is refused.
    #[error("labels: {0}")]
    Label(String),
    /// A file index is out of range.
    #[error("file index {index} out of range (the torrent has {count} files)")]
    FileIndex {
        /// The index given.
        index: usize,
        /// Files in the torrent.
        count: usize,
    },
    /// A local .torrent could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A URL could not be fetched.
    #[error("fetching {url}: {source}")]
    Fetch {
        /// The URL.
        url: String,
        /// Why.
        source: crate::client::ClientError,
    },
    /// The engine refused it.
    #[error("{0}")]
    Engine(#[from] AddTorrentError),
    /// The database failed.
    #[error("saving the torrent: {0}")]
    Store(String),
}

/// Checks labels: non-empty, no control characters or commas, bounded.
pub fn check_labels(labels: &[String]) -> Result<Vec<String>, AddError> {
    if labels.len() > MAX_LABELS {
        return Err(AddError::Label(format!("more than {MAX_LABELS}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(labels.len());
    for l in labels {
        let l = l.trim();
        if l.is_empty() || l.len() > MAX_LABEL {
            return Err(AddError::Label(format!(
                "a label must have 1 to {MAX_LABEL} bytes"
            )));
        }
        if l.contains(',') || l.chars().any(char::is_control) {
            return Err(AddError::Label(format!(
                "{l:?} has a comma or a control character"
            )));
        }
        if !out.iter().any(|o| o == l) {
            out.push(l.to_owned());
        }
    }
    Ok(out)
}

async fn source_bytes(source: AddSource) -> Result<AddSource, AddError> {
    match source {
        AddSource::Path(p) => {
            let p2 = p.clone();
            let r = tokio::task::spawn_blocking(move || {
                let meta = std::fs::metadata(&p2)?;
                if meta.len() > MAX_TORRENT_FILE as u64 {
                    return Err(std::io::Error::other(format!(
                        "larger than {MAX_TORRENT_FILE} bytes"
                    )));
                }
                std::fs::read(&p2)
            })
            .await
            .map_err(|e| AddError::Read {
                path: p.clone(),
                source: std::io::Error::other(e),
            })?;
            r.map(AddSource::Metainfo)
                .map_err(|source| AddError::Read { path: p, source })
        }
        AddSource::Url(u) => crate::client::fetch(&u, MAX_TORRENT_FILE, Duration::from_secs(30))
            .await
            .map(AddSource::Metainfo)
            .map_err(|source| AddError::Fetch { url: u, source }),
        other => Ok(other),
    }
}

/// Adds a torrent. See the module docs.
pub async fn add(shared: &Shared, req: AddRequest) -> Result<Added, AddError> {
    let settings = shared.settings();
    let dir = match &req.download_dir {
        Some(d) => check_dir(d, &shared.config.download_roots)?,
        None => settings.download_dir.clone(),
    };
    let labels = check_labels(&req.labels)?;
    let (source, bytes) = match source_bytes(req.source.clone()).await? {
        AddSource::Metainfo(b) => {
            let t = Torrent::from_bytes(&b).map_err(|e| AddError::BadTorrent(e.to_string()))?;
            (TorrentSource::Torrent(Arc::new(t)), Some(b))
        }
        AddSource::Magnet(m) => {
            let m = Magnet::parse(&m).map_err(|e| AddError::BadMagnet(e.to_string()))?;
            if m.v1.is_none() && m.v2.is_none() {
                return Err(AddError::BadMagnet("it names no info-hash".into()));
            }
            (TorrentSource::Magnet(Box::new(m)), None)
        }
        AddSource::Path(_) | AddSource::Url(_) => {
            return Err(AddError::BadTorrent("no torrent data".into()))
        }
    };
    let hashes = source.info_hashes();
    let existing = hashes
        .v1
        .map(|h| h.0.to_vec())
        .into_iter()
        .chain(hashes.v2.map(|h| h.0.to_vec()))
        .find_map(|h| shared.session.find(&h));
    if let Some(handle) = existing {
        return Ok(Added {
            handle,
            duplicate: true,
        });
    }
    let mut params = AddTorrentParams::new(source.clone(), &dir);
    params.paused = req.paused.unwrap_or(!settings.start_added_torrents);
    params.labels = labels;
    params.limits = TorrentLimits {
        max_peers: req.peer_limit,
        ..TorrentLimits::default()
    };
    let mut priorities = None;
    if let TorrentSource::Torrent(t) = &source {
        let count = t.files().len();
        let all = req
            .files_unwanted
            .iter()
            .chain(&req.priority_high)
            .chain(&req.priority_low);
        if let Some(&index) = all.clone().find(|&&i| i >= count) {
            return Err(AddError::FileIndex { index, count });
        }
        if !req.files_unwanted.is_empty() {
            let wanted: Vec<usize> = (0..count)
                .filter(|i| !req.files_unwanted.contains(i))
                .collect();
            params.selection = FileSelection::Indices(wanted);
        }
        if !req.priority_high.is_empty() || !req.priority_low.is_empty() {
            let mut p = vec![crate::rpc::prio::NORMAL; count];
            for &i in &req.priority_high {
                p[i] = crate::rpc::prio::HIGH;
            }
            for &i in &req.priority_low {
                p[i] = crate::rpc::prio::LOW;
            }
            for &i in &req.files_unwanted {
                p[i] = 0;
            }
            priorities = Some(p);
        }
    }
    if let Some(b) = bytes {
        let store = shared.store.clone();
        tokio::task::spawn_blocking(move || store.put_metainfo(&hashes, &b))
            .await
            .map_err(|e| AddError::Store(e.to_string()))?
            .map_err(|e| AddError::Store(e.to_string()))?;
    }
    let handle = match shared.session.add(params).await {
        Ok(h) => h,
        Err(AddTorrentError::Duplicate(_)) => {
            // Added by someone else meanwhile.
            match shared.session.find(&hashes.primary().0) {
                Some(handle) => {
                    return Ok(Added {
                        handle,
                        duplicate: true,
                    })
                }
                None => return Err(AddError::Engine(AddTorrentError::SessionClosed)),
            }
        }
        Err(e) => {
            let store = shared.store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                shoal_engine::Persist::remove_torrent(&store, &hashes)
            })
            .await;
            return Err(e.into());
        }
    };
    if let Some(p) = priorities {
        if let Err(e) = handle.set_file_priorities(p).await {
            tracing::warn!(error = %e, "file priorities of a new torrent");
        }
    }
    shared.activity.count_added();
    Ok(Added {
        handle,
        duplicate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames() {
        assert!(matches!(
            AddSource::from_filename("magnet:?xt=urn:btih:00"),
            AddSource::Magnet(_)
        ));
        assert!(matches!(
            AddSource::from_filename("MAGNET:?xt"),
            AddSource::Magnet(_)
        ));
        assert!(matches!(
            AddSource::from_filename("http://127.0.0.1/x.torrent"),
            AddSource::Url(_)
        ));
        assert!(matches!(
            AddSource::from_filename("/tmp/x.torrent"),
            AddSource::Path(_)
        ));
        assert!(matches!(
            AddSource::from_filename(&"ab".repeat(20)),
            AddSource::Magnet(_)
        ));
    }

    #[test]
    fn labels() {
        assert_eq!(
            check_labels(&["tv".into(), " tv ".into(), "hd".into()]).unwrap(),
            vec!["tv".to_string(), "hd".to_string()]
        );
        assert!(check_labels(&["a,b".into()]).is_err());
        assert!(check_labels(&["".into()]).is_err());
        assert!(check_labels(&["x".repeat(MAX_LABEL + 1)]).is_err());
        assert!(check_labels(&vec!["x".to_string(); MAX_LABELS + 1]).is_err());
    }
}
