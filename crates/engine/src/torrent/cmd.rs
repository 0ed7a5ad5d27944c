//! The messages a torrent's task takes.
use super::driver::PeerStream;
use crate::error::TorrentOpError;
use crate::persist::TorrentLimits;
use shoal_wire::HandshakePrefix;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::sync::oneshot;

/// A reply to a command that can fail.
pub(crate) type Reply<T = ()> = oneshot::Sender<Result<T, TorrentOpError>>;

/// A question for [`TorrentCmd::Query`].
pub(crate) enum Query {
    /// The connections.
    Peers(oneshot::Sender<Vec<crate::info::PeerInfo>>),
    /// The verified pieces.
    Pieces(oneshot::Sender<shoal_wire::Bitfield>),
    /// The trackers.
    Trackers(oneshot::Sender<Vec<crate::info::TrackerInfo>>),
    /// The torrent's handle in the disk pool, registered on demand (`None`
    /// unless it transfers), for readers of its files.
    Disk(oneshot::Sender<Option<shoal_storage::TorrentDisk>>),
}

/// A connection the listener hands over.
pub(crate) struct Incoming {
    pub stream: Box<dyn PeerStream>,
    pub prefix: HandshakePrefix,
    pub addr: SocketAddr,
    /// The stream is RC4-encrypted (MSE).
    pub encrypted: bool,
    /// The stream is uTP (else TCP).
    pub utp: bool,
}

/// Commands to a torrent's task.
pub(crate) enum TorrentCmd {
    /// A connection whose handshake prefix names this torrent (boxed: the
    /// command stays small, and so the channel's buffer of an idle torrent).
    Incoming(Box<Incoming>),
    /// An outgoing connection over an established stream (tests).
    Outgoing {
        stream: Box<dyn PeerStream>,
        addr: SocketAddr,
    },
    /// Addresses to connect to.
    AddPeers(Vec<SocketAddr>),
    /// Stop transferring until resumed.
    Pause,
    /// Transfer again (`force`: even beyond the session's download queue).
    Resume { force: bool },
    /// Hash everything again.
    Recheck,
    /// Ask trackers and the DHT for peers now.
    Reannounce,
    /// One priority per file.
    SetFilePriorities(Vec<u8>, Reply),
    /// New limits.
    SetLimits(Box<TorrentLimits>),
    /// New labels.
    SetLabels(Vec<String>),
    /// Into this bandwidth group (`None`: out of any).
    SetGroup(Option<String>, Reply),
    /// A new tracker list (tiers) replacing every other.
    SetTrackers(Vec<Vec<String>>),
    /// Move the data under another directory.
    Move(PathBuf, Reply),
    /// The session's download queue: wait (`true`) or go (`false`).
    Queue(bool),
    /// A new place in the download queue.
    SetQueuePosition(i64),
    /// The session's live settings (seeding goals) changed.
    SettingsChanged,
    /// Reader `id`'s windows of wanted pieces (`None`: the reader closed).
    Reader(u64, Option<Box<super::reader::ReaderWindows>>),
    /// A question about the torrent (answered at once, whatever its phase).
    Query(Query),
    /// The session's check turn, handed to a torrent restored parked (see
    /// `session::check_turns`): it checks on it. Any phase but the wait for
    /// a turn drops it, which passes the turn on.
    CheckTurn(tokio::sync::OwnedSemaphorePermit),
    /// A tracker's answer with peers in it (from the session's announce
    /// service, which announces for a dormant torrent while it parks;
    /// answers without peers and failures are not sent).
    Announced(Box<shoal_tracker::AnnounceResponse>),
    /// Stop for good: close peers, announce `stopped`, save resume data,
    /// and delete the data when asked.
    Shutdown { delete_data: bool, reply: Reply },
}
