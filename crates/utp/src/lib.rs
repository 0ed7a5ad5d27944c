//! shoal's uTP (BEP 29, the µTorrent transport protocol) with LEDBAT
//! congestion control.
//!
//! Three layers, as the DHT crate:
//! - a **sans-IO core**: [`Endpoint`] demultiplexes datagrams to
//!   [`Connection`]s (SYN/STATE/DATA/FIN/RESET, selective ACKs, RTT-based
//!   retransmission with fast retransmit, path MTU discovery, LEDBAT with a
//!   100 ms target, receive window, Nagle, SYN-flood limits). It takes the
//!   time and a seed and never does I/O ([`packet`] is the codec);
//! - a deterministic **simulator**, [`sim`], running endpoints over links
//!   with seeded loss, reordering, delay, duplication and a bottleneck queue;
//! - a thin **tokio driver** (feature `tokio`), [`UtpSocket`] and
//!   [`UtpStream`], on one UDP socket that it can share with the DHT and a
//!   UDP tracker client: datagrams that are not uTP ([`is_utp`]) are handed
//!   on.
#![deny(missing_docs)]

pub mod config;
pub mod connection;
pub mod delay;
#[cfg(feature = "tokio")]
pub mod driver;
pub mod endpoint;
pub mod error;
pub mod ledbat;
pub mod mtu;
pub mod packet;
pub mod rtt;
pub mod seq;
pub mod sim;

pub use config::{ConnectionConfig, EndpointConfig};
pub use connection::{Connection, ConnectionStats, Event, State};
#[cfg(feature = "tokio")]
pub use driver::{Datagram, UtpSocket, UtpSocketConfig, UtpStream};
pub use endpoint::{ConnectionHandle, Endpoint, EndpointStats, Transmit};
pub use error::{ConnectError, ConnectionError, ReadError, WriteError};
pub use ledbat::LedbatConfig;
pub use packet::is_utp;
