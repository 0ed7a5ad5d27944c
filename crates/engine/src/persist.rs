//! What a session keeps across restarts, behind a trait the session calls:
//! each torrent's record (its metainfo or magnet link and its settings) and
//! its resume data (verified pieces with the file stamps they were verified
//! against, and cumulative traffic).
//!
//! The session calls the trait from blocking threads, never from an async
//! task: implementations may do synchronous I/O. [`ResumeFiles`] is what the
//! one-shot CLI uses (today's resume file beside the data, no records);
//! the daemon backs the trait with a database.
use shoal_metainfo::InfoHashes;
use shoal_storage::ResumeData;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PersistError {
    /// Reading or writing the store failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The stored data is not valid (corrupt, or from another program).
    #[error("stored data is invalid: {0}")]
    Corrupt(Box<dyn std::error::Error + Send + Sync>),
    /// The store belongs to a newer version of shoal.
    #[error("stored data has version {found}, this shoal reads up to {supported}")]
    Version {
        /// Version found.
        found: u32,
        /// Highest version understood.
        supported: u32,
    },
    /// Any other failure of an implementation (a database error...).
    #[error("{0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// A seeding goal of one torrent: the session's, none, or its own.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum SeedGoal<T> {
    /// Whatever the session's setting is.
    #[default]
    Session,
    /// Seed forever.
    Unlimited,
    /// This torrent's own goal.
    Limit(T),
}

impl<T: Copy> SeedGoal<T> {
    /// The goal in force given the session's.
    pub fn resolve(self, session: Option<T>) -> Option<T> {
        match self {
            SeedGoal::Session => session,
            SeedGoal::Unlimited => None,
            SeedGoal::Limit(v) => Some(v),
        }
    }
}

/// Per-torrent transfer limits and seeding goals.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TorrentLimits {
    /// Upload limit in bytes/s for this torrent (`None`: only the session's).
    pub max_upload_rate: Option<u64>,
    /// Download limit in bytes/s for this torrent.
    pub max_download_rate: Option<u64>,
    /// Most connections of this torrent (`None`: the session's default).
    pub max_peers: Option<usize>,
    /// Stop seeding at this ratio (uploaded / downloaded).
    pub seed_ratio: SeedGoal<f64>,
    /// Stop seeding after this long without uploading.
    pub seed_idle: SeedGoal<std::time::Duration>,
    /// The session's rate limits do not apply to this torrent
    /// (Transmission's `honorsSessionLimits` false).
    pub bypass_session_limits: bool,
}

/// How a torrent was added: enough to add it again after a restart.
#[derive(Debug, Clone, PartialEq)]
pub struct TorrentRecord {
    /// Its identity.
    pub info_hashes: InfoHashes,
    /// The .torrent bytes, or the bare info dictionary once a magnet link's
    /// metadata arrived; `None` while only the magnet link is known.
    pub metainfo: Option<Vec<u8>>,
    /// The magnet link it was added from, if any.
    pub magnet: Option<String>,
    /// Display name (the torrent's, or the magnet's `dn`).
    pub name: Option<String>,
    /// Directory the files live under.
    pub save_path: PathBuf,
    /// One priority per file (0: skip); empty means every file at 1.
    pub file_priorities: Vec<u8>,
    /// Trackers added besides the torrent's own.
    pub extra_trackers: Vec<String>,
    /// The whole tracker list (tiers) when the user replaced it: used instead
    /// of the torrent's, the magnet's and `extra_trackers`.
    pub tracker_list: Option<Vec<Vec<String>>>,
    /// Paused by the user.
    pub paused: bool,
    /// Free-form labels (the daemon's; the engine only keeps them).
    pub labels: Vec<String>,
    /// Limits.
    pub limits: TorrentLimits,
    /// The bandwidth group it is in, if any.
    pub group: Option<String>,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// Position in the download queue (lower starts first; a sort key,
    /// not a rank: gaps and negative values are fine).
    pub queue_position: i64,
}

/// Resume data of one torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResumeRecord {
    /// Verified pieces and file stamps.
    pub data: ResumeData,
    /// Payload bytes sent, over the torrent's whole life.
    pub uploaded: u64,
    /// Payload bytes received (verified or not), over the torrent's whole life.
    pub downloaded: u64,
}

/// The storage of a session's state. Calls come from blocking threads.
pub trait Persist: Send + Sync + 'static {
    /// Every torrent stored, to add again at start.
    fn load_torrents(&self) -> Result<Vec<TorrentRecord>, PersistError>;
    /// Hands every torrent stored to `each`, one at a time, until it says
    /// `false`; an error ends the walk (the records before it were handed
    /// over). A session restores its torrents this way: a few records are
    /// in memory at once, not thousands freed between the torrents' own
    /// allocations. The default walks [`Persist::load_torrents`].
    fn visit_torrents(
        &self,
        each: &mut dyn FnMut(TorrentRecord) -> bool,
    ) -> Result<(), PersistError> {
        for r in self.load_torrents()? {
            if !each(r) {
                break;
            }
        }
        Ok(())
    }
    /// Stores (or replaces) a torrent's record. Called when a torrent is
    /// added and when its settings change; durable when it returns.
    fn save_torrent(&self, record: &TorrentRecord) -> Result<(), PersistError>;
    /// Forgets a torrent (record and resume data).
    fn remove_torrent(&self, key: &InfoHashes) -> Result<(), PersistError>;
    /// The resume data stored for a torrent, if any.
    fn load_resume(&self, key: &InfoHashes) -> Result<Option<ResumeRecord>, PersistError>;
    /// Stores a torrent's resume data (called in batches while pieces are
    /// verified, and when the torrent stops).
    fn save_resume(&self, key: &InfoHashes, resume: &ResumeRecord) -> Result<(), PersistError>;
}

/// Keeps nothing: every start checks the data from scratch.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPersist;

impl Persist for NoPersist {
    fn load_torrents(&self) -> Result<Vec<TorrentRecord>, PersistError> {
        Ok(Vec::new())
    }
    fn save_torrent(&self, _: &TorrentRecord) -> Result<(), PersistError> {
        Ok(())
    }
    fn remove_torrent(&self, _: &InfoHashes) -> Result<(), PersistError> {
        Ok(())
    }
    fn load_resume(&self, _: &InfoHashes) -> Result<Option<ResumeRecord>, PersistError> {
        Ok(None)
    }
    fn save_resume(&self, _: &InfoHashes, _: &ResumeRecord) -> Result<(), PersistError> {
        Ok(())
    }
}

/// The resume files of `shoal download` and `shoal seed`:
/// `<save path>/.shoal/<info-hash>.resume` beside the data (see
/// [`shoal_storage::resume`]). Records are not kept (the command line names
/// the torrent each time), nor are traffic totals.
#[derive(Debug, Default)]
pub struct ResumeFiles {
    paths: Mutex<HashMap<InfoHashes, PathBuf>>,
}

impl ResumeFiles {
    /// An empty set (paths are learnt from [`Persist::save_torrent`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The resume file of a torrent saved under `save_path`.
    pub fn path_for(save_path: &Path, key: &InfoHashes) -> PathBuf {
        save_path
            .join(".shoal")
            .join(format!("{}.resume", key.primary().to_hex()))
    }

    fn path(&self, key: &InfoHashes) -> Option<PathBuf> {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        paths.get(key).map(|p| Self::path_for(p, key))
    }
}

impl Persist for ResumeFiles {
    fn load_torrents(&self) -> Result<Vec<TorrentRecord>, PersistError> {
        Ok(Vec::new())
    }

    fn save_torrent(&self, record: &TorrentRecord) -> Result<(), PersistError> {
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        paths.insert(record.info_hashes, record.save_path.clone());
        Ok(())
    }

    fn remove_torrent(&self, key: &InfoHashes) -> Result<(), PersistError> {
        let path = self.path(key);
        self.paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        if let Some(p) = path {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(PersistError::Io { path: p, source }),
            }
        }
        Ok(())
    }

    fn load_resume(&self, key: &InfoHashes) -> Result<Option<ResumeRecord>, PersistError> {
        let Some(path) = self.path(key) else {
            return Ok(None);
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(PersistError::Io { path, source }),
        };
        match ResumeData::decode(&bytes) {
            Ok(data) => Ok(Some(ResumeRecord {
                data,
                uploaded: 0,
                downloaded: 0,
            })),
            // An unreadable resume file only costs a full check.
            Err(e) => {
                tracing::info!(path = %path.display(), error = %e, "ignoring the resume file");
                Ok(None)
            }
        }
    }

    fn save_resume(&self, key: &InfoHashes, resume: &ResumeRecord) -> Result<(), PersistError> {
        let Some(path) = self.path(key) else {
            return Ok(());
        };
        let io = |path: &Path, source| PersistError::Io {
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let tmp = path.with_extension("resume.tmp");
        std::fs::write(&tmp, resume.data.encode()).map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| io(&path, e))
    }
}
