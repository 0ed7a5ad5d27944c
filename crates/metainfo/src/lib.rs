//! Torrent metainfo: info-hashes, .torrent files (BEP 3, 12, 19, 27, 47, 52),
//! magnet links (BEP 9, 53) and torrent creation.
//!
//! Everything here treats its input as hostile: limits are checked before work
//! is done, and file paths are sanitised so nothing escapes the download directory.
#![deny(missing_docs)]

pub mod create;
pub mod error;
pub mod files;
pub mod irregular;
pub mod limits;
pub mod magnet;
pub mod merkle;
pub mod path;
pub mod sha1_pair;
pub mod torrent;
pub mod v2;

pub use create::{create, CreateError, CreateOptions, CreatePlan};
pub use error::{MetainfoError, Problem};
pub use files::FileEntry;
/// The identities, defined in `shoal-base` for every layer.
pub mod hash {
    pub use shoal_base::hash::*;
}
pub use irregular::Irregularity;
pub use limits::ParseLimits;
pub use magnet::{HostPort, Magnet, MagnetError};
pub use shoal_base::{InfoHashV1, InfoHashV2, InfoHashes, PeerId};
pub use torrent::{MetaVersion, Torrent, TrackerTier};
