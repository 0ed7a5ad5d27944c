//! Typed errors of the engine, one enum per operation.
use std::net::SocketAddr;
use std::path::PathBuf;

/// Why a [`crate::Session`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The tracker client could not be built.
    #[error("tracker client: {0}")]
    Tracker(#[from] shoal_tracker::TrackerError),
    /// The disk pool could not start its threads.
    #[error("starting the disk pool: {0}")]
    Disk(#[source] shoal_storage::DiskError),
    /// Loading the persisted torrents failed.
    #[error("loading saved torrents: {0}")]
    Persist(#[from] crate::persist::PersistError),
}

/// Why a torrent could not be added to a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddTorrentError {
    /// A v2-only torrent without its piece layers and no way to fetch them.
    #[error("v2-only torrent without piece layers")]
    V2Only,
    /// The file selection names a file index past the end.
    #[error("file selection: no file {index} (the torrent has {count} files)")]
    NoSuchFile {
        /// The index given.
        index: usize,
        /// Number of files.
        count: usize,
    },
    /// The file selection selects no file.
    #[error("file selection matches no file")]
    EmptySelection,
    /// The same info-hash is already in the session.
    #[error("torrent {0} is already in the session")]
    Duplicate(String),
    /// A magnet link naming no info-hash.
    #[error("the magnet link names no info-hash")]
    NoInfoHash,
    /// The torrent's layout is not usable as storage (bad piece hashes...).
    #[error("storage: {0}")]
    Storage(#[from] shoal_storage::StorageError),
    /// Starting the disk actor failed.
    #[error("disk: {0}")]
    Disk(#[from] shoal_storage::DiskError),
    /// The tracker client could not be built.
    #[error("tracker client: {0}")]
    Tracker(#[from] shoal_tracker::TrackerError),
    /// Storing the torrent in the session's persistence failed.
    #[error("saving the torrent: {0}")]
    Persist(#[from] crate::persist::PersistError),
    /// The session has shut down.
    #[error("session closed")]
    SessionClosed,
}

/// An operation on a torrent of the session failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorrentOpError {
    /// No torrent has this id (never added, or removed).
    #[error("no torrent {0}")]
    NoSuchTorrent(crate::TorrentId),
    /// The operation needs the torrent's metadata, which a magnet link has
    /// not delivered yet.
    #[error("the torrent's metadata is not known yet")]
    NoMetadata,
    /// The file priorities name more files than the torrent has.
    #[error("file priorities: {given} given, the torrent has {count} files")]
    BadPriorities {
        /// Entries given.
        given: usize,
        /// Files in the torrent.
        count: usize,
    },
    /// Moving the data failed; the data stays where it was.
    #[error("moving the data to {to}: {source}")]
    Move {
        /// The destination asked for.
        to: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// Deleting the data failed (some files may be left).
    #[error("deleting the data: {0}")]
    Delete(std::io::Error),
    /// The torrent or the session stopped while the operation ran.
    #[error("the torrent stopped")]
    Stopped,
    /// A bandwidth group name was refused.
    #[error(transparent)]
    Group(#[from] crate::bandwidth::GroupError),
}

/// What kind of storage failure stopped a torrent (what a user acts on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiskErrorKind {
    /// The disk is full (ENOSPC, EDQUOT).
    NoSpace,
    /// Permission denied, or a read-only filesystem.
    Permission,
    /// Anything else (I/O error, missing directory...).
    Other,
}

/// Why a torrent stopped transferring (its data is intact).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorrentError {
    /// Writing or reading the data failed.
    #[error("disk error, torrent paused: {message}")]
    Disk {
        /// What kind of failure.
        kind: DiskErrorKind,
        /// The storage error, as text (path, operation, OS error).
        message: String,
    },
    /// No peer gave a magnet link's metadata in time.
    #[error("no metadata after {secs} s")]
    MetadataTimeout {
        /// The time allowed.
        secs: u64,
    },
    /// The metadata a peer gave (matching the info-hash) is not a usable torrent.
    #[error("the metadata is not a usable torrent: {0}")]
    BadMetadata(String),
    /// The v2 piece layers could not be fetched from any peer.
    #[error("fetching piece layers: {0}")]
    PieceLayers(String),
    /// The data could not be checked or opened.
    #[error("opening the data: {0}")]
    Open(String),
}

impl TorrentError {
    /// A [`TorrentError::Disk`] from a storage error, keeping its kind.
    pub fn from_storage(e: &shoal_storage::StorageError) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e {
            shoal_storage::StorageError::Io { kind, .. } => match kind {
                K::StorageFull | K::QuotaExceeded => DiskErrorKind::NoSpace,
                K::PermissionDenied | K::ReadOnlyFilesystem => DiskErrorKind::Permission,
                _ if e.is_disk_full() => DiskErrorKind::NoSpace,
                _ => DiskErrorKind::Other,
            },
            shoal_storage::StorageError::PathEscape { .. } => DiskErrorKind::Permission,
            _ => DiskErrorKind::Other,
        };
        TorrentError::Disk {
            kind,
            message: e.to_string(),
        }
    }
}
