//! What the core asks its driver to do, and what the disk says of a piece.
use super::*;

/// What the core asks its driver to do.
#[derive(Debug)]
pub(crate) enum Action {
    /// Send a command to the task of peer `key`.
    Peer(PeerKey, PeerCmd),
    /// End peer `key`'s connection now (its task then reports `Closed`).
    Close(PeerKey),
    /// Dial `addr`; the connection is peer `key` from now on. Failure is
    /// reported as `PeerMsg::Closed`.
    Connect {
        /// The key the connection gets.
        key: PeerKey,
        /// Where to.
        addr: SocketAddr,
    },
    /// Store the verified-piece set (resume data).
    SaveResume(Vec<bool>),
    /// Read back `piece` (verified) and hand the digest of each 16 KiB block
    /// to [`TorrentCore::on_digests`] (smart ban).
    ReadDigests(u32),
    /// Tell the trackers that the download completed.
    AnnounceCompleted,
    /// A magnet link's info dictionary arrived (it hashes to the
    /// info-hash): parse it, check the data, then
    /// [`TorrentCore::set_metadata`].
    MetadataReady(bytes::Bytes),
    /// The missing v2 piece layers arrived (each checked against its
    /// file's `pieces root`): (file index, layer) to attach to the torrent.
    LayersReady(Vec<(usize, Vec<[u8; 32]>)>),
}

/// A disk verdict about a piece, or a failure that stops the torrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DiskVerdict {
    /// The piece matched its hash and is on disk.
    Verified(u32),
    /// The piece did not match its hash.
    Failed(u32),
    /// The piece's received data was lost to a storage error (nobody's
    /// fault): it is fetched again.
    Lost(u32),
    /// Storage failed: the torrent pauses with this error.
    Error(TorrentError),
}
