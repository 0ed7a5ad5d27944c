//! The identities every protocol layer of shoal shares: the v1 and v2
//! info-hashes, a torrent's pair of them, and peer ids. The wire protocol,
//! the DHT, trackers, local discovery and the engine all name torrents and
//! peers with these types rather than with bare byte arrays. Also
//! [`VecMap`], the compact map of the session's per-torrent tables, and
//! [`intern`], one shared copy of each tracker URL.
#![deny(missing_docs)]

pub mod hash;
pub mod intern;
pub mod vec_map;

pub use hash::{HexIdError, InfoHashV1, InfoHashV2, InfoHashes, PeerId};
pub use intern::intern;
pub use vec_map::VecMap;

/// The 20-byte info-hash of the handshake, the DHT, trackers and local
/// discovery: a v1 hash, or the truncated v2 hash of a v2-only torrent
/// ([`InfoHashes::primary`]).
pub use hash::InfoHashV1 as InfoHash;
