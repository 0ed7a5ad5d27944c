//! shoal's Local Service Discovery (BEP 14): BitTorrent clients on one LAN
//! announce the swarms they are in by multicast (`BT-SEARCH` datagrams to
//! 239.192.152.143:6771 and [ff15::efc0:988f]:6771) and connect to each
//! other without a tracker or the DHT.
//!
//! Sans-IO, in the house style: [`packet`] is the announce codec (with
//! limits, typed errors), [`Lsd`] decides what to announce when (every
//! torrent every 5 minutes, datagrams rate-limited, several info hashes per
//! datagram, never a private torrent), filters our own announces by cookie
//! and turns others' announces into peers. It takes the time and the cookie
//! and does no I/O; a driver owns the multicast sockets.
#![deny(missing_docs)]

pub mod packet;
pub mod service;

pub use packet::{encode, parse, Announce, Group, ParseError, MAX_DATAGRAM};
pub use service::{Event, Lsd, LsdConfig, Transmit};
