//! shoal's BitTorrent tracker server: the central index of peers for
//! `shoal tracker`, over HTTP (BEP 3, 7, 23, 24, 48) and UDP (BEP 15, 41).
//!
//! Layers, bottom up:
//! - [`peers`]: compact peer storage (6/18-byte packed addresses);
//! - [`swarm`]: the sharded, bounded swarm table ([`Swarms`]), sans-IO;
//! - sans-IO protocol handlers: [`udp::UdpTracker`] (with stateless
//!   connection ids from [`conn_id`]) and [`http::HttpTracker`] (with the
//!   query parser [`query`], the statistics page and `/metrics` from
//!   [`stats`]), both behind per-IP limits ([`ratelimit`]);
//! - [`state`]: the state file (atomic save, checked load); [`allow`]: the
//!   allow list;
//! - [`server`]: the drivers (hyper, UDP threads, housekeeping) in
//!   [`TrackerServer`].
//!
//! An index of torrent names hooks in through [`SwarmObserver`], told
//! about every info-hash the table sees for the first time, and serves its
//! own routes on the HTTP port through [`HttpExtension`].
//!
//! This crate is separate from `shoal-tracker` (the clients the engine
//! uses) because it is a second responsibility with its own dependencies
//! (hyper server, state file): the engine never compiles it.
#![deny(missing_docs)]

pub mod allow;
pub mod clock;
pub mod conn_id;
pub mod extension;
pub mod http;
pub mod peers;
pub mod query;
pub mod ratelimit;
pub mod server;
pub mod state;
pub mod stats;
pub mod swarm;
pub mod udp;

pub use allow::{AllowList, AllowListError};
pub use clock::Clock;
pub use extension::{AnswerFuture, ExtensionRequest, HttpExtension};
pub use ratelimit::RateConfig;
pub use server::{TrackerConfig, TrackerServer};
pub use state::{load_state, save_state, Restored, StateError};
pub use swarm::{SwarmConfig, SwarmObserver, Swarms};
