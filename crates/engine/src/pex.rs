//! BEP 11 peer exchange (`ut_pex`) for one torrent, as a sans-IO core.
//!
//! [`PeerExchange`] keeps, per connection, where others can reach that peer
//! (the address we dialled, or the remote IP with the `p` port of its
//! extension handshake), whether it speaks `ut_pex`, and a
//! [`PexTracker`] of what it has been told. The torrent actor feeds it
//! connection events and received messages and asks it, with the current
//! time, which messages are due ([`PeerExchange::poll_transmit`]).
//!
//! Receiving is bounded: one honoured message per peer per
//! [`PexConfig::min_receive_interval`] (floods are ignored, not punished), at
//! most [`PexConfig::max_added_per_message`] addresses used per message and
//! [`PexConfig::max_added_per_peer`] per connection, never our own listen
//! address, and no LAN/loopback addresses from a peer that is not itself
//! local (BEP 11 security considerations; libtorrent does the same).
//! Private torrents (BEP 27) build the core disabled: nothing is sent or used.
use crate::picker::PeerKey;
use shoal_wire::pex::{PexFlags, PexMessage, PexTracker, MAX_PEX_PEERS};
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Most of our own addresses (as peers report them in `yourip`) remembered.
const MAX_OWN_IPS: usize = 8;

/// Timing and limits of peer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PexConfig {
    /// Time between two messages to one peer (BEP 11: at most one a minute;
    /// libtorrent disconnects peers that send more than three a minute).
    pub interval: Duration,
    /// Delay of the first message after the peer's extension handshake (the
    /// first message carries our whole current set).
    pub first_delay: Duration,
    /// A message from a peer sooner than this after its last honoured one is
    /// ignored.
    pub min_receive_interval: Duration,
    /// Most added addresses used from one message.
    pub max_added_per_message: usize,
    /// Most addresses one connection may contribute in total.
    pub max_added_per_peer: usize,
}

impl PexConfig {
    /// The settings for a send interval: first message after
    /// `min(interval, 2 s)`, incoming messages honoured at most every
    /// `3/4 × interval` (45 s for the 60 s default).
    pub fn with_interval(interval: Duration) -> Self {
        PexConfig {
            interval,
            first_delay: interval.min(Duration::from_secs(2)),
            min_receive_interval: interval * 3 / 4,
            max_added_per_message: MAX_PEX_PEERS,
            max_added_per_peer: 500,
        }
    }
}

impl Default for PexConfig {
    fn default() -> Self {
        PexConfig::with_interval(Duration::from_secs(60))
    }
}

/// Why a received `ut_pex` message was not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PexIgnored {
    /// Peer exchange is off for this torrent (private, BEP 27).
    #[error("peer exchange is disabled for this torrent")]
    Disabled,
    /// The connection is not known (closed meanwhile).
    #[error("unknown connection")]
    UnknownPeer,
    /// The peer sent messages faster than allowed.
    #[error("ut_pex message too soon after the previous one ({since:?})")]
    TooSoon {
        /// Time since the last honoured message.
        since: Duration,
    },
    /// The peer already gave as many addresses as one connection may.
    #[error("peer already contributed {0} addresses")]
    Exhausted(usize),
}

#[derive(Debug)]
struct PexPeer {
    /// The remote socket address of the connection.
    addr: SocketAddr,
    /// Where others can reach it, once known.
    listen: Option<SocketAddr>,
    outgoing: bool,
    seed: bool,
    /// The connection is uTP (announced with flag `0x04`).
    utp: bool,
    /// Handshake done (only such peers are announced, BEP 11).
    connected: bool,
    /// It advertised `ut_pex`.
    supports: bool,
    tracker: PexTracker,
    next_send: Option<Instant>,
    last_recv: Option<Instant>,
    contributed: usize,
}

impl PexPeer {
    fn flags(&self) -> PexFlags {
        let mut f = 0;
        if self.seed {
            f |= PexFlags::SEED;
        }
        if self.outgoing {
            f |= PexFlags::REACHABLE;
        }
        if self.utp {
            f |= PexFlags::UTP;
        }
        PexFlags(f)
    }
}

/// Peer exchange state of one torrent. See the module docs.
#[derive(Debug)]
pub struct PeerExchange {
    config: PexConfig,
    enabled: bool,
    own: SocketAddr,
    own_ips: HashSet<IpAddr>,
    peers: HashMap<PeerKey, PexPeer>,
}

impl PeerExchange {
    /// A core for a torrent whose node listens on `own` (filtered out of what
    /// peers tell us). `enabled` is false for private torrents.
    pub fn new(config: PexConfig, enabled: bool, own: SocketAddr) -> Self {
        PeerExchange {
            config,
            enabled,
            own,
            own_ips: HashSet::new(),
            peers: HashMap::new(),
        }
    }

    /// Turns peer exchange off for good (the torrent turned out private,
    /// BEP 27): nothing is sent or used from now on.
    pub fn disable(&mut self) {
        self.enabled = false;
        for p in self.peers.values_mut() {
            p.supports = false;
            p.next_send = None;
        }
    }

    /// Whether peer exchange is on (we advertise `ut_pex` only then).
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Our listen address (its port goes out as `p` in our extension handshake).
    pub fn own_addr(&self) -> SocketAddr {
        self.own
    }

    /// The settings.
    pub fn config(&self) -> &PexConfig {
        &self.config
    }

    /// A new connection to `addr`; `outgoing` when we dialled it (then `addr`
    /// is its listen address and it is flagged reachable).
    pub fn add_peer(&mut self, key: PeerKey, addr: SocketAddr, outgoing: bool) {
        self.peers.insert(
            key,
            PexPeer {
                addr,
                listen: outgoing.then_some(addr),
                outgoing,
                seed: false,
                utp: false,
                connected: false,
                supports: false,
                tracker: PexTracker::new(),
                next_send: None,
                last_recv: None,
                contributed: 0,
            },
        );
    }

    /// The connection to `key` runs over uTP: others learn it speaks uTP.
    pub fn set_utp(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.utp = true;
        }
    }

    /// The BitTorrent handshake with `key` completed: it may be announced.
    pub fn on_handshake(&mut self, key: PeerKey) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.connected = true;
        }
    }

    /// The peer's extension handshake: its listen port `p`, whether it speaks
    /// `ut_pex`, and our address as it sees us (`yourip`).
    pub fn on_extensions(
        &mut self,
        key: PeerKey,
        now: Instant,
        port: Option<u16>,
        supports_pex: bool,
        your_ip: Option<IpAddr>,
    ) {
        if let Some(ip) = your_ip {
            if self.own_ips.len() < MAX_OWN_IPS && !ip.is_unspecified() {
                self.own_ips.insert(ip);
            }
        }
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if !p.outgoing {
            p.listen = port.map(|port| SocketAddr::new(p.addr.ip(), port));
        }
        p.supports = supports_pex && self.enabled;
        if p.supports && p.next_send.is_none() {
            p.next_send = Some(now + self.config.first_delay);
        }
    }

    /// The peer became (or stopped being) a seed.
    pub fn set_seed(&mut self, key: PeerKey, seed: bool) {
        if let Some(p) = self.peers.get_mut(&key) {
            p.seed = seed;
        }
    }

    /// The connection closed: it drops out of the set (announced as dropped
    /// in the next messages to the others).
    pub fn remove_peer(&mut self, key: PeerKey) {
        self.peers.remove(&key);
    }

    /// Whether `addr` is (probably) this node's own listen address.
    pub fn is_own(&self, addr: SocketAddr) -> bool {
        if addr.port() != self.own.port() {
            return false;
        }
        let ip = addr.ip();
        ip == self.own.ip()
            || self.own_ips.contains(&ip)
            || (self.own.ip().is_unspecified() && (ip.is_loopback() || ip.is_unspecified()))
            || (self.own.ip().is_loopback() && ip.is_loopback())
    }

    /// The `dropped` entries of a message from `key` that
    /// [`PeerExchange::on_message`] honoured: addresses that peer no longer
    /// sees (bounded as added ones). The torrent forgets a candidate that no
    /// other source still names.
    pub fn dropped(&self, key: PeerKey, msg: &PexMessage) -> Vec<SocketAddr> {
        if !self.enabled || !self.peers.contains_key(&key) {
            return Vec::new();
        }
        msg.dropped
            .iter()
            .copied()
            .filter(|a| a.port() != 0)
            .take(self.config.max_added_per_message)
            .collect()
    }

    /// A `ut_pex` message from `key`: the addresses worth adding as
    /// connection candidates (bounded, filtered; see the module docs). When
    /// `we_are_seed`, peers flagged as seeds are skipped. Its `dropped`
    /// entries: [`PeerExchange::dropped`].
    pub fn on_message(
        &mut self,
        key: PeerKey,
        now: Instant,
        msg: &PexMessage,
        we_are_seed: bool,
    ) -> Result<Vec<SocketAddr>, PexIgnored> {
        if !self.enabled {
            return Err(PexIgnored::Disabled);
        }
        let Some(p) = self.peers.get(&key) else {
            return Err(PexIgnored::UnknownPeer);
        };
        if let Some(last) = p.last_recv {
            let since = now.saturating_duration_since(last);
            if since < self.config.min_receive_interval {
                return Err(PexIgnored::TooSoon { since });
            }
        }
        if p.contributed >= self.config.max_added_per_peer {
            return Err(PexIgnored::Exhausted(p.contributed));
        }
        let room = self
            .config
            .max_added_per_message
            .min(self.config.max_added_per_peer - p.contributed);
        let sender_local = is_local(p.addr.ip());
        let sender = p.addr;
        let sender_listen = p.listen;
        let mut ips = HashSet::new();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for &(addr, flags) in &msg.added {
            if out.len() >= room {
                break;
            }
            let ip = addr.ip();
            let usable = addr.port() != 0
                && !ip.is_unspecified()
                && !ip.is_multicast()
                && !is_broadcast(ip)
                && (sender_local || !is_local(ip))
                && !(we_are_seed && flags.is_seed())
                && !self.is_own(addr)
                && addr != sender
                && Some(addr) != sender_listen;
            // BEP 11: one address per IP from a message (loopback swarms
            // share one IP, so only there ports tell peers apart).
            let fresh = seen.insert(addr) && (ip.is_loopback() || ips.insert(ip));
            if usable && fresh {
                out.push(addr);
            }
        }
        if let Some(p) = self.peers.get_mut(&key) {
            p.last_recv = Some(now);
            p.contributed += out.len();
        }
        Ok(out)
    }

    /// The messages due at `now`, one per peer: the difference between our
    /// current set (handshaken peers with a known listen address, minus the
    /// receiver) and what that peer was told. Each peer is next asked after
    /// [`PexConfig::interval`].
    pub fn poll_transmit(&mut self, now: Instant) -> Vec<(PeerKey, PexMessage)> {
        if !self.enabled {
            return Vec::new();
        }
        let due: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected && p.supports && p.next_send.is_some_and(|t| t <= now))
            .map(|(&k, _)| k)
            .collect();
        if due.is_empty() {
            return Vec::new();
        }
        let set: Vec<(PeerKey, SocketAddr, PexFlags)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.connected)
            .filter_map(|(&k, p)| p.listen.map(|a| (k, a, p.flags())))
            .collect();
        let mut out = Vec::new();
        for key in due {
            let Some(p) = self.peers.get_mut(&key) else {
                continue;
            };
            p.next_send = Some(now + self.config.interval);
            let own_listen = p.listen;
            let current = set
                .iter()
                .filter(|(k, a, _)| *k != key && Some(*a) != own_listen)
                .map(|&(_, a, f)| (a, f));
            if let Some(m) = p.tracker.diff(current) {
                out.push((key, m));
            }
        }
        out.sort_by_key(|(k, _)| *k);
        out
    }

    /// The earliest time a message may be due, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.peers
            .values()
            .filter(|p| p.connected && p.supports)
            .filter_map(|p| p.next_send)
            .min()
    }
}

fn is_broadcast(ip: IpAddr) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.is_broadcast())
}

/// Loopback, private, link-local or unique-local.
fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_private() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

#[cfg(test)]
#[path = "pex_tests.rs"]
mod tests;
