//! One torrent: a sans-IO [`core`] (picker, choker, smart ban, peer set,
//! peer exchange) and the tokio [`driver`] that runs it.
pub(crate) mod core;
pub(crate) mod driver;

pub(crate) use self::core::{CoreInit, CoreLimits, DiskVerdict, TorrentCore};
pub use driver::PeerStream;
pub(crate) use driver::{Counters, DriverInit, ToTorrent, TorrentCmd, TorrentDriver};
