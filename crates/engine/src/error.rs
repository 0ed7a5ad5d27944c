//! Typed errors of the engine, one enum per operation.
use std::net::SocketAddr;

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
}

/// Why a torrent could not be added to a session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AddTorrentError {
    /// A v2-only torrent without its piece layers (made from a bare `info`
    /// dictionary, e.g. a v2-only magnet link): its pieces cannot be verified.
    #[error("v2-only torrent without piece layers (v2-only magnet links are not supported yet)")]
    V2Only,
    /// `--only` names a file index past the end.
    #[error("file selection: no file {index} (the torrent has {count} files)")]
    NoSuchFile {
        /// The index given.
        index: usize,
        /// Number of files.
        count: usize,
    },
    /// `--only` selects no file.
    #[error("file selection matches no file")]
    EmptySelection,
    /// The same info-hash is already in the session.
    #[error("torrent {0} is already in the session")]
    Duplicate(String),
    /// Opening or checking the data failed.
    #[error("storage: {0}")]
    Storage(#[from] shoal_storage::StorageError),
    /// Starting the disk actor failed.
    #[error("disk: {0}")]
    Disk(#[from] shoal_storage::DiskError),
    /// The tracker client could not be built.
    #[error("tracker client: {0}")]
    Tracker(#[from] shoal_tracker::TrackerError),
    /// The session has shut down.
    #[error("session closed")]
    SessionClosed,
}

/// Why a running torrent stopped transferring (it is paused, its data intact).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TorrentError {
    /// Writing or reading the data failed (disk full, permission denied, ...).
    #[error("disk error, torrent paused: {0}")]
    Disk(String),
}
