//! Keyword search for torrents, four ways (the four ways of finding content
//! in a peer-to-peer system):
//!
//! - **central index** (Napster, eDonkey servers): [`central`] indexes the
//!   names and file lists of the torrents announced to a tracker (metadata
//!   fetched from their peers with BEP 9, or uploaded) and answers keyword
//!   queries over HTTP; [`client`] asks it from the announce URL;
//! - **DHT keyword index** (Kad, eMule): [`kad`] stores, under each keyword
//!   of a torrent's name, a BEP 44 item pointing to it, and intersects the
//!   lists of a query's keywords;
//! - **flooding** (Gnutella): [`flood`] is the sans-IO core of a BEP 10
//!   extension message sent to connected peers with a TTL and a query id,
//!   shown in a deterministic simulation ([`flood::sim`]);
//! - **crawling**: [`crawl`] samples the DHT (BEP 51), fetches metadata (BEP
//!   9) and fills a local index.
//!
//! [`tracker_node`] runs a tracker with its central index, for `shoal
//! tracker` and `shoal daemon`.
//!
//! Shared pieces: keyword normalisation ([`keywords`]), the torrent record
//! ([`doc::TorrentDoc`]), the full-text index on disk ([`index`], tantivy)
//! and results with their ranking ([`hit`]).
#![deny(missing_docs)]

pub mod central;
pub mod client;
pub mod crawl;
pub mod doc;
pub mod flood;
pub mod hit;
pub mod index;
pub mod kad;
pub mod keywords;
pub mod tracker_node;

pub use doc::TorrentDoc;
pub use hit::{rank, SearchHit};
pub use index::{IndexConfig, IndexError, TorrentIndex};
pub use keywords::{keywords, query_keywords};
pub use tracker_node::{TrackerNode, TrackerNodeConfig, TrackerNodeError};
