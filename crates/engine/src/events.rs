//! The session's event stream: one `broadcast` channel for every torrent,
//! so a caller (a progress display, the daemon's server-sent events) follows
//! 10,000 torrents without polling each. A subscriber that falls more than
//! [`EVENT_QUEUE`] events behind gets `Lagged` and should re-read the
//! snapshot ([`crate::Session::snapshot`]).
use crate::error::TorrentError;
use crate::status::TorrentState;
use crate::TorrentId;

/// Events kept for a slow subscriber before it lags.
pub const EVENT_QUEUE: usize = 4096;

/// Something that happened to a torrent of the session.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SessionEvent {
    /// A torrent joined the session.
    Added {
        /// Its id.
        id: TorrentId,
        /// Its name, when known.
        name: Option<String>,
    },
    /// A magnet link's metadata arrived: the torrent now has a name, files
    /// and pieces.
    MetadataReceived {
        /// The torrent.
        id: TorrentId,
        /// Its name.
        name: String,
    },
    /// The state changed (checking, downloading, seeding, paused...).
    StateChanged {
        /// The torrent.
        id: TorrentId,
        /// The new state.
        state: TorrentState,
    },
    /// Progress and rates, at most about once a second per torrent while
    /// they change.
    Progress {
        /// The torrent.
        id: TorrentId,
        /// Bytes of wanted pieces verified.
        verified_wanted_bytes: u64,
        /// Bytes wanted.
        wanted_bytes: u64,
        /// Download rate, bytes/s.
        download_rate: u64,
        /// Upload rate, bytes/s.
        upload_rate: u64,
        /// Connected peers.
        peers: usize,
    },
    /// Every wanted piece is verified.
    Completed {
        /// The torrent.
        id: TorrentId,
    },
    /// The torrent stopped on a failure.
    Error {
        /// The torrent.
        id: TorrentId,
        /// Why.
        error: TorrentError,
    },
    /// The torrent left the session.
    Removed {
        /// The torrent.
        id: TorrentId,
    },
}

impl SessionEvent {
    /// The torrent the event is about.
    pub fn id(&self) -> TorrentId {
        match self {
            SessionEvent::Added { id, .. }
            | SessionEvent::MetadataReceived { id, .. }
            | SessionEvent::StateChanged { id, .. }
            | SessionEvent::Progress { id, .. }
            | SessionEvent::Completed { id }
            | SessionEvent::Error { id, .. }
            | SessionEvent::Removed { id } => *id,
        }
    }
}
