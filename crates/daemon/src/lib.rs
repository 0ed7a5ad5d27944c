//! The shoal service (`shoal daemon`): one engine session holding many
//! torrents, driven over HTTP, with its state in a database.
//!
//! - [`service`]: [`Daemon`] (start, shutdown) and [`Shared`], what every
//!   front end uses;
//! - [`store`]: the redb state database, the engine's [`shoal_engine::Persist`];
//! - [`config`]: defaults, TOML file, overrides; [`settings`]: what changes
//!   at run time;
//! - [`http`]: the router and its guards (Host, auth, origin, size);
//!   [`rpc`]: Transmission RPC; [`rest`]: the REST API and server-sent
//!   events; [`openapi`]; [`metrics`]; [`page`]: the status page; [`ui`]: the web UI;
//!   [`stream`]: files served while they download; [`playlist`]: `.m3u`;
//!   [`search`]: keyword search, with [`flood`]: flooding among shoal peers;
//! - [`add`]: adding a torrent from any front end; [`watch`]: the watch
//!   folder; [`activity`]: time and traffic accounting; [`paths`]: checks
//!   of directories given over the API; [`client`]: a small HTTP client.
#![deny(missing_docs)]

pub mod activity;
pub mod add;
pub mod client;
pub mod config;
pub mod flood;
pub mod groups;
pub mod http;
pub mod memory;
pub mod metrics;
pub mod openapi;
pub mod page;
pub mod paths;
pub mod playlist;
pub mod publish;
pub mod rest;
pub mod rpc;
pub mod search;
pub mod service;
pub mod settings;
pub mod store;
pub mod stream;
pub mod throttle;
pub mod tracker;
pub mod ui;
pub mod watch;

pub use config::{ConfigError, ConfigLayer, DaemonConfig};
pub use service::{Daemon, DaemonError, Shared};
pub use store::{Store, StoreError};
