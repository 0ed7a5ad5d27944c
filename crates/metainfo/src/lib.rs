//! Torrent metainfo: info-hashes, .torrent files (BEP 3, 12, 19, 27, 47, 52),
//! magnet links (BEP 9, 53) and torrent creation.
//!
//! Everything here treats its input as hostile: limits are checked before work
//! is done, and file paths are sanitised so nothing escapes the download directory.
#![deny(missing_docs)]

pub mod hash;

pub use hash::{InfoHashV1, InfoHashV2, InfoHashes, PeerId};
