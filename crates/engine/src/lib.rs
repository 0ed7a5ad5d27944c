//! The engine: one session that holds many torrents.
//!
//! The decision-making parts are sans-IO and deterministic given a seeded RNG
//! and the time passed in: the torrent core (`torrent::core`: peers,
//! requests, choking, smart ban), the piece picker ([`picker`]), the choker
//! ([`choker`]), rate limiting ([`rate`]), guilt tracking for corrupt
//! pieces ([`smartban`]) and peer exchange ([`pex`]).
//!
//! The runtime is made of actors (DESIGN.md principle 4): the [`Session`]
//! (listener, connection and rate limits, tracker client, DHT node and its
//! announce scheduler, persistence, the table of torrents), one task per
//! torrent that carries a core through its life (reached through a
//! [`TorrentHandle`]), one task per peer connection driving a sans-IO
//! `shoal_wire::PeerConnection`, and the storage crate's disk actor. They
//! talk by bounded channels; blocks travel as `bytes::Bytes`. Callers
//! follow everything through one event stream ([`events`]) and a cheap
//! snapshot ([`Session::snapshot`]).
#![deny(missing_docs)]

pub mod bandwidth;
pub mod choker;
pub mod dht_peers;
pub mod error;
pub mod events;
pub mod extension;
pub mod info;
pub mod layout;
pub mod metadata;
mod peer;
pub mod peer_close;
pub mod persist;
pub mod pex;
pub mod picker;
pub mod piece_layers;
pub mod rate;
pub mod session;
pub mod sim;
pub mod smartban;
pub mod status;
mod torrent;

pub use bandwidth::{BandwidthGroup, GroupError};
pub use error::{AddTorrentError, DiskErrorKind, SessionError, TorrentError, TorrentOpError};
pub use events::SessionEvent;
pub use extension::{ExtMessage, ExtPeer, ExtSendError, Extensions};
pub use info::{PeerInfo, PeerOrigin, TrackerInfo};
pub use layout::FileSelection;
pub use persist::SeedGoal;
pub use persist::{NoPersist, Persist, ResumeFiles, TorrentLimits, TorrentRecord};
pub use session::{
    AddTorrentParams, DhtSettings, EncryptionPolicy, LiveSettings, QueueMove, Session,
    SessionConfig, SessionStats, TorrentId, TorrentSource, TorrentSummary,
};
pub use status::{TorrentState, TorrentStatus};
pub use torrent::{
    FileReader, PeerStream, ReadError, TorrentHandle, TorrentMeta, WatchClosed, WatchReceiver,
    WatchRef, DEFAULT_READ_AHEAD, MAX_READ,
};
