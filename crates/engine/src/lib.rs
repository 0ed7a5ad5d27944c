//! The engine: torrents and the session that runs them.
//!
//! The decision-making parts are sans-IO and deterministic given a seeded RNG
//! and the time passed in: the piece picker ([`picker`]), the choker
//! ([`choker`]), rate limiting ([`rate`]) and guilt tracking for corrupt
//! pieces ([`smartban`]).
#![deny(missing_docs)]

pub mod choker;
pub mod picker;
pub mod rate;
pub mod smartban;
