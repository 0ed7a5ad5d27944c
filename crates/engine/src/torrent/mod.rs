//! One torrent of a session: a sans-IO [`core`] (picker, choker, smart ban,
//! peer set, peer exchange), the tokio [`driver`] that runs it while it
//! transfers, and the [`task`] that carries it through its life (metadata,
//! checking, transfer, recheck, move, removal).
mod announcing;
mod check;
mod cmd;
pub(crate) mod cmd_queue;
mod commands;
pub(crate) mod core;
mod data_ops;
mod dormant;
pub(crate) mod driver;
mod goals;
mod handle;
mod magnet;
mod reader;
mod spawn;
mod task;
mod transfer;
pub(crate) mod watched;

pub(crate) use self::core::DiskVerdict;
pub(crate) use cmd::{Incoming, TorrentCmd};
pub(crate) use cmd_queue::{CmdSender, WeakCmdSender};
pub use driver::PeerStream;
pub(crate) use driver::ToTorrent;
pub use handle::{TorrentHandle, TorrentMeta};
pub use reader::{FileReader, ReadError, DEFAULT_READ_AHEAD, MAX_READ};
pub(crate) use spawn::{spawn, Launch, Origin};
pub(crate) use task::STOP_ANNOUNCE;
pub use watched::{WatchClosed, WatchReceiver, WatchRef};

/// Whether a handshake's 20-byte hash names a torrent with these hashes
/// (its v1 hash, or its v2 hash truncated).
pub(crate) fn matches_hash(h: &shoal_metainfo::InfoHashes, wire: &shoal_base::InfoHash) -> bool {
    h.v1.is_some_and(|v| v == *wire) || h.v2.is_some_and(|v| v.truncated() == *wire)
}
