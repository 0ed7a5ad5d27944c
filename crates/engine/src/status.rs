//! What a torrent reports: a snapshot published on a `watch` channel
//! (progress bars, the API, the announcer read it; nobody locks anything).
use crate::error::TorrentError;

/// Where a torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TorrentState {
    /// Hashing the data already on disk (at start, or a recheck).
    Checking,
    /// A magnet link: fetching the info dictionary (and v2 piece layers) from peers.
    FetchingMetadata,
    /// Waiting for a download slot (the session's active-download limit).
    Queued,
    /// Fetching wanted pieces.
    #[default]
    Downloading,
    /// Every wanted piece is verified; serving others.
    Seeding,
    /// Stopped by the user; data intact, no connections.
    Paused,
    /// Stopped by a failure (see [`TorrentStatus::error`]); data intact.
    Error,
    /// Shut down (removed, or the session stopped).
    Stopped,
}

impl TorrentState {
    /// A short lower-case name (`"downloading"`, `"fetching metadata"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            TorrentState::Checking => "checking",
            TorrentState::FetchingMetadata => "fetching metadata",
            TorrentState::Queued => "queued",
            TorrentState::Downloading => "downloading",
            TorrentState::Seeding => "seeding",
            TorrentState::Paused => "paused",
            TorrentState::Error => "error",
            TorrentState::Stopped => "stopped",
        }
    }

    /// Transferring (downloading or seeding).
    pub fn is_active(self) -> bool {
        matches!(self, TorrentState::Downloading | TorrentState::Seeding)
    }
}

impl std::fmt::Display for TorrentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A snapshot of one torrent's progress and traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentStatus {
    /// Life-cycle state.
    pub state: TorrentState,
    /// Pieces in the torrent (0 until a magnet's metadata arrived).
    pub pieces: u32,
    /// Pieces verified (wanted or not).
    pub pieces_have: u32,
    /// Bytes of the wanted pieces.
    pub wanted_bytes: u64,
    /// Bytes of the wanted pieces that are verified on disk.
    pub verified_wanted_bytes: u64,
    /// Payload bytes received from peers since the torrent was added
    /// (duplicates included, pieces that failed their hash excluded: see
    /// [`TorrentStatus::corrupt`]). Kept across restarts by the session's
    /// persistence.
    pub downloaded: u64,
    /// Payload bytes of pieces that failed their hash check (Transmission's
    /// "corrupt").
    pub corrupt: u64,
    /// Payload bytes written to peers' sockets since the torrent was added.
    pub uploaded: u64,
    /// Recent download rate, payload bytes per second.
    pub download_rate: u64,
    /// Recent upload rate, payload bytes per second.
    pub upload_rate: u64,
    /// Connected peers (handshake done).
    pub peers: usize,
    /// Connected peers that have every piece.
    pub seeds: usize,
    /// Candidate addresses known (from trackers, the DHT, peer exchange).
    pub known_peers: usize,
    /// Pieces that failed their hash check since start.
    pub pieces_failed: u64,
    /// IP addresses banned for sending corrupt data.
    pub banned: usize,
    /// Pieces hashed by the last check (0 when the resume data was fully trusted).
    pub pieces_checked_at_start: u64,
    /// Pieces hashed so far by a check in progress.
    pub pieces_checked: u64,
    /// Why the torrent is in [`TorrentState::Error`].
    pub error: Option<TorrentError>,
    /// It stopped because it reached its seeding goal (ratio or idle time).
    pub finished: bool,
    /// Its place in the session's download queue (lower starts first; a
    /// sort key, not a rank).
    pub queue_position: i64,
}

impl TorrentStatus {
    /// True when every wanted byte is verified on disk (never while the
    /// metadata or the check is missing).
    pub fn is_complete(&self) -> bool {
        self.pieces > 0
            && !matches!(
                self.state,
                TorrentState::Checking | TorrentState::FetchingMetadata
            )
            && self.verified_wanted_bytes >= self.wanted_bytes
    }

    /// Fraction of the wanted bytes that are verified, in `0.0..=1.0`.
    pub fn progress(&self) -> f64 {
        if self.wanted_bytes == 0 {
            if self.pieces > 0 {
                1.0
            } else {
                0.0
            }
        } else {
            self.verified_wanted_bytes as f64 / self.wanted_bytes as f64
        }
    }
}
