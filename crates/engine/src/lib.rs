//! The engine: torrents and the session that runs them.
//!
//! The decision-making parts are sans-IO and deterministic given a seeded RNG
//! and the time passed in: the piece picker ([`picker`]), the choker
//! ([`choker`]), rate limiting ([`rate`]), guilt tracking for corrupt
//! pieces ([`smartban`]) and peer exchange ([`pex`]).
//!
//! The runtime is made of actors (DESIGN.md principle 4): a [`Session`]
//! (listen socket and routing by info-hash), one torrent actor per torrent
//! (picker, choker, smart ban, peers, announcer; reached through a
//! [`TorrentHandle`]), one task per peer connection driving a sans-IO
//! `shoal_wire::PeerConnection`, and the storage crate's disk actor. They
//! talk by bounded channels; blocks travel as `bytes::Bytes`.
#![deny(missing_docs)]

pub mod choker;
pub mod dht_peers;
pub mod error;
pub mod layout;
pub mod metadata;
mod peer;
pub mod pex;
pub mod picker;
pub mod piece_layers;
pub mod rate;
pub mod session;
pub mod smartban;
pub mod status;
mod torrent;

pub use error::{AddTorrentError, SessionError, TorrentError};
pub use layout::FileSelection;
pub use session::{AddTorrentParams, Session, SessionConfig, TorrentHandle};
pub use status::{TorrentState, TorrentStatus};
pub use torrent::PeerStream;
