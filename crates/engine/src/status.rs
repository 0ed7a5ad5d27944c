//! What a running torrent reports: a snapshot published on a `watch` channel
//! (progress bars, tests and the announcer read it; nobody locks anything).
use crate::error::TorrentError;

/// Where a torrent is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TorrentState {
    /// Fetching wanted pieces.
    #[default]
    Downloading,
    /// Every wanted piece is verified; serving others.
    Seeding,
    /// Stopped after an error (see [`TorrentStatus::error`]); data is intact.
    Paused,
    /// Shut down.
    Stopped,
}

/// A snapshot of one torrent's progress and traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentStatus {
    /// Life-cycle state.
    pub state: TorrentState,
    /// Pieces in the torrent.
    pub pieces: u32,
    /// Pieces verified (wanted or not).
    pub pieces_have: u32,
    /// Bytes of the wanted pieces.
    pub wanted_bytes: u64,
    /// Bytes of the wanted pieces that are verified on disk.
    pub verified_wanted_bytes: u64,
    /// Payload bytes received from peers since this torrent was added
    /// (duplicates included): a restart that refetches nothing keeps it low.
    pub downloaded: u64,
    /// Payload bytes sent to peers since the torrent was added.
    pub uploaded: u64,
    /// Recent download rate, payload bytes per second.
    pub download_rate: u64,
    /// Recent upload rate, payload bytes per second.
    pub upload_rate: u64,
    /// Connected peers (handshake done).
    pub peers: usize,
    /// Pieces that failed their hash check since start.
    pub pieces_failed: u64,
    /// IP addresses banned for sending corrupt data.
    pub banned: usize,
    /// Pieces hashed at start (0 when the resume file was fully trusted).
    pub pieces_checked_at_start: u64,
    /// Why the torrent is paused.
    pub error: Option<TorrentError>,
}

impl TorrentStatus {
    /// True when every wanted byte is verified on disk.
    pub fn is_complete(&self) -> bool {
        self.verified_wanted_bytes >= self.wanted_bytes
    }

    /// Fraction of the wanted bytes that are verified, in `0.0..=1.0`.
    pub fn progress(&self) -> f64 {
        if self.wanted_bytes == 0 {
            1.0
        } else {
            self.verified_wanted_bytes as f64 / self.wanted_bytes as f64
        }
    }
}
