//! shoal's BitTorrent mainline DHT (BEP 5, with BEP 32 IPv6, BEP 42 node-ID security,
//! BEP 43 read-only nodes, BEP 44 arbitrary data and BEP 51 infohash sampling).
//!
//! Three layers:
//! - a **sans-IO core**, [`Node`]: KRPC codec ([`krpc`]), routing table ([`routing`]),
//!   RPC manager with adaptive timeouts ([`rtt`]), iterative lookups ([`lookup`]),
//!   peer and item storage ([`store`]), write tokens ([`token`]) and a per-source rate
//!   limit ([`ratelimit`]). It takes the time and a seed as inputs and never does I/O;
//! - a deterministic **simulator**, [`sim::simulate`], running thousands of cores over a
//!   virtual clock with seeded latency, loss and churn;
//! - a thin **tokio UDP driver**, [`Dht`], with async operations for applications.
#![deny(missing_docs)]

pub mod bep42;
pub mod compact;
pub mod driver;
pub mod id;
pub mod item;
pub mod krpc;
pub mod lookup;
mod node;
pub mod persist;
pub mod ratelimit;
pub mod routing;
pub mod rtt;
pub mod sim;
pub mod store;
pub mod token;

pub use driver::{Dht, DhtConfig, DhtError};
pub use sim::{simulate, Percentiles, SimConfig, SimReport};

pub use compact::NodeInfo;

pub use id::{Id20, NodeId};
pub use item::{Item, ItemError, MutableFields};
pub use lookup::{LookupId, LookupKind, LookupResult, Reached};
pub use node::{Config, Event, Node, PingId, StartError, Transmit};

/// Public bootstrap routers, by host name only. They are never resolved or contacted
/// by this crate's tests; applications resolve them when the user allows it.
pub const DEFAULT_BOOTSTRAP: [&str; 3] = [
    "router.bittorrent.com:6881",
    "dht.transmissionbt.com:6881",
    "router.utorrent.com:6881",
];

/// Counters of what a node received, sent and dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    /// Datagrams received.
    pub packets_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Datagrams that were not valid KRPC (dropped).
    pub decode_errors: u64,
    /// Queries dropped by the per-source rate limit.
    pub rate_limited: u64,
    /// Queries dropped for other reasons (read-only mode, own ID).
    pub dropped_queries: u64,
    /// Responses or errors matching no outstanding query (dropped).
    pub unexpected_responses: u64,
    /// Queries of ours that timed out.
    pub timeouts: u64,
    /// Queries answered.
    pub queries_answered: u64,
    /// KRPC errors sent.
    pub errors_sent: u64,
    /// KRPC errors received.
    pub errors_received: u64,
    /// BEP 44 items refused (bad signature, size, seq, target).
    pub bad_items: u64,
    /// BEP 44 items ignored because an equal or newer one was already found.
    pub stale_items: u64,
}
