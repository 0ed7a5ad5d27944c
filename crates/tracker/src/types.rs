//! The domain types shared by every tracker transport: what the client tells a
//! tracker ([`AnnounceRequest`]) and what it learns back ([`AnnounceResponse`],
//! [`ScrapeResponse`]). Transports (HTTP, UDP) only differ in how these travel.
use shoal_base::{InfoHash, PeerId};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The `event` of an announce (BEP 3; BEP 15 numbers them 0..=3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Event {
    /// A regular, periodic announce.
    #[default]
    None,
    /// The first announce to a tracker.
    Started,
    /// The download just finished (sent once, not when starting as a seed).
    Completed,
    /// The client is leaving the swarm (sent on shutdown).
    Stopped,
}

impl Event {
    /// The HTTP query value, or `None` for a regular announce (which omits `event`).
    pub fn as_http_str(self) -> Option<&'static str> {
        match self {
            Event::None => None,
            Event::Started => Some("started"),
            Event::Completed => Some("completed"),
            Event::Stopped => Some("stopped"),
        }
    }

    /// The BEP 15 wire number: none 0, completed 1, started 2, stopped 3.
    pub fn udp_code(self) -> u32 {
        match self {
            Event::None => 0,
            Event::Completed => 1,
            Event::Started => 2,
            Event::Stopped => 3,
        }
    }

    /// The inverse of [`Event::udp_code`]; `None` for an unknown number.
    pub fn from_udp_code(code: u32) -> Option<Self> {
        Some(match code {
            0 => Event::None,
            1 => Event::Completed,
            2 => Event::Started,
            3 => Event::Stopped,
            _ => return None,
        })
    }
}

/// One announce: who we are, where we listen, how far along we are.
///
/// The same request is used for HTTP and UDP trackers; fields a transport
/// cannot carry are ignored by it (UDP has no `ipv6`, HTTP no `key` width limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceRequest {
    /// The torrent's v1 info-hash (or a v2 hash truncated to 20 bytes, BEP 52).
    pub info_hash: InfoHash,
    /// Our peer id.
    pub peer_id: PeerId,
    /// The TCP port we accept peer connections on.
    pub port: u16,
    /// Bytes uploaded since the `started` event.
    pub uploaded: u64,
    /// Bytes downloaded since the `started` event.
    pub downloaded: u64,
    /// Bytes still missing for the wanted data (0 for a seed).
    pub left: u64,
    /// The event of this announce.
    pub event: Event,
    /// How many peers we want; `None` lets the tracker choose (UDP sends -1).
    pub numwant: Option<u32>,
    /// Ask for the compact peer list (BEP 23); nearly every tracker wants this.
    pub compact: bool,
    /// A random value that stays the same for the whole session, so a tracker
    /// recognises us when our IP changes.
    pub key: u32,
    /// An explicit IPv4 address to announce (HTTP `ip`, UDP `IP address` field).
    pub ip: Option<Ipv4Addr>,
    /// An explicit IPv6 address to announce (HTTP `ipv6`, BEP 7; not sent over UDP).
    pub ipv6: Option<Ipv6Addr>,
}

impl AnnounceRequest {
    /// A request with the usual defaults: no event, compact, tracker-chosen numwant.
    pub fn new(
        info_hash: impl Into<InfoHash>,
        peer_id: impl Into<PeerId>,
        port: u16,
        left: u64,
    ) -> Self {
        AnnounceRequest {
            info_hash: info_hash.into(),
            peer_id: peer_id.into(),
            port,
            uploaded: 0,
            downloaded: 0,
            left,
            event: Event::None,
            numwant: None,
            compact: true,
            key: 0,
            ip: None,
            ipv6: None,
        }
    }
}

/// What a tracker answered to an announce.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AnnounceResponse {
    /// Seconds the tracker wants us to wait before the next regular announce.
    pub interval: u32,
    /// Seconds we must wait at least before announcing again, if the tracker says.
    pub min_interval: Option<u32>,
    /// Peers, IPv4 and IPv6 together, in the order the tracker gave them
    /// (after BEP 23 `peers` comes BEP 7 `peers6`). Never longer than the
    /// parser's peer limit; duplicates are kept as sent.
    pub peers: Vec<SocketAddr>,
    /// Number of seeders, if the tracker says.
    pub complete: Option<u32>,
    /// Number of leechers, if the tracker says.
    pub incomplete: Option<u32>,
    /// A `warning message` to show to the user; the announce still succeeded.
    pub warning: Option<String>,
    /// A `tracker id` to send back on the next announces to this tracker.
    pub tracker_id: Option<Vec<u8>>,
    /// Our address as the tracker saw it (BEP 24 `external ip`).
    pub external_ip: Option<IpAddr>,
}

/// Swarm statistics for one torrent, from a scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScrapeStats {
    /// Number of seeders.
    pub complete: u32,
    /// Number of times a download completed (the `completed` events seen).
    pub downloaded: u32,
    /// Number of leechers.
    pub incomplete: u32,
}

/// What a tracker answered to a scrape: statistics per info-hash.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScrapeResponse {
    /// One entry per info-hash the tracker knows, in the tracker's order.
    /// Hashes the tracker does not know are absent (HTTP) or zero (UDP).
    pub files: Vec<(InfoHash, ScrapeStats)>,
    /// The tracker's `min_request_interval` for scrapes (HTTP `flags`), if any.
    pub min_request_interval: Option<u32>,
}

impl ScrapeResponse {
    /// The statistics for one info-hash, if the reply has them.
    pub fn get(&self, info_hash: &InfoHash) -> Option<&ScrapeStats> {
        self.files
            .iter()
            .find(|(h, _)| h == info_hash)
            .map(|(_, s)| s)
    }
}
