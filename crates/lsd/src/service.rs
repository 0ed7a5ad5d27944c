//! [`Lsd`]: when to announce which torrents, and which received announces
//! become peers. Every public torrent is announced every
//! [`LsdConfig::interval`] (BEP 14: 5 minutes), a new one as soon as the rate
//! limit allows; at most [`LsdConfig::burst`] announces go out in any
//! [`LsdConfig::window`] (BEP 14: one a minute), each carrying as many due
//! info hashes as fit in a datagram, oldest due first. Private torrents are
//! never announced and never take peers from here (BEP 27). Announces that
//! carry our cookie are our own, looped back. Time is passed in.
use crate::packet::{self, Group};
use shoal_base::InfoHash;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Tuning; the defaults follow BEP 14.
#[derive(Debug, Clone)]
pub struct LsdConfig {
    /// How often each torrent is announced (5 minutes).
    pub interval: Duration,
    /// The rate-limit window (one minute).
    pub window: Duration,
    /// Announces allowed per window (1).
    pub burst: usize,
    /// Announce to the IPv4 group.
    pub v4: bool,
    /// Announce to the IPv6 group.
    pub v6: bool,
    /// The same peer announcing the same torrent again within this time is
    /// not reported again (one minute).
    pub repeat: Duration,
    /// Most (torrent, peer) pairs remembered for `repeat`.
    pub max_recent: usize,
}

impl Default for LsdConfig {
    fn default() -> Self {
        LsdConfig {
            interval: Duration::from_secs(300),
            window: Duration::from_secs(60),
            burst: 1,
            v4: true,
            v6: true,
            repeat: Duration::from_secs(60),
            max_recent: 4096,
        }
    }
}

/// A datagram to send to [`Transmit::group`]'s address
/// ([`Group::addr`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The multicast group (and socket) to send on.
    pub group: Group,
    /// The announce.
    pub payload: Vec<u8>,
}

/// What the owner learns.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer on the LAN is in the swarm of `info_hash`, listening at `addr`
    /// (the announce's source address with its `Port`).
    Peer {
        /// One of our (public) torrents.
        info_hash: InfoHash,
        /// Where to connect.
        addr: SocketAddr,
    },
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Datagrams produced (one per group per announce).
    pub sent: u64,
    /// Datagrams handled.
    pub received: u64,
    /// Our own announces heard back (cookie matched).
    pub own: u64,
    /// Datagrams that were not valid announces.
    pub invalid: u64,
    /// Peers reported.
    pub peers: u64,
}

/// The LSD state machine. See the module docs.
#[derive(Debug)]
pub struct Lsd {
    cfg: LsdConfig,
    cookie: u32,
    port: Option<u16>,
    /// Public torrents and when each is next due.
    torrents: BTreeMap<InfoHash, Duration>,
    /// When the last announces went out (at most `burst`).
    sent_at: VecDeque<Duration>,
    recent: HashMap<(InfoHash, SocketAddr), Duration>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    stats: Stats,
}

impl Lsd {
    /// A service with `cookie` (random, chosen by the caller) to recognise
    /// its own announces. Nothing is announced until [`Lsd::set_port`].
    pub fn new(cfg: LsdConfig, cookie: u32) -> Lsd {
        Lsd {
            cfg,
            cookie,
            port: None,
            torrents: BTreeMap::new(),
            sent_at: VecDeque::new(),
            recent: HashMap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: Stats::default(),
        }
    }

    /// Our cookie.
    pub fn cookie(&self) -> u32 {
        self.cookie
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The port we listen on for BitTorrent connections (what we announce).
    pub fn set_port(&mut self, port: u16) {
        self.port = (port != 0).then_some(port);
    }

    /// Joins a swarm: announced as soon as the rate limit allows, then every
    /// interval. A private torrent is refused (and dropped if it was added as
    /// public, e.g. a magnet link whose metadata turned out private);
    /// returns whether the torrent is announced.
    pub fn add_torrent(&mut self, info_hash: InfoHash, private: bool, now: Duration) -> bool {
        if private {
            self.remove_torrent(&info_hash);
            return false;
        }
        self.torrents.entry(info_hash).or_insert(now);
        true
    }

    /// Leaves a swarm: no more announces, no more peers for it.
    pub fn remove_torrent(&mut self, info_hash: &InfoHash) {
        self.torrents.remove(info_hash);
        self.recent.retain(|(ih, _), _| ih != info_hash);
    }

    /// Whether `info_hash` is announced.
    pub fn contains(&self, info_hash: &InfoHash) -> bool {
        self.torrents.contains_key(info_hash)
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn groups(&self) -> impl Iterator<Item = Group> {
        [(self.cfg.v4, Group::V4), (self.cfg.v6, Group::V6)]
            .into_iter()
            .filter_map(|(on, g)| on.then_some(g))
    }

    /// When the rate limit next allows an announce.
    fn allowed_at(&self) -> Duration {
        if self.sent_at.len() < self.cfg.burst.max(1) {
            Duration::ZERO
        } else {
            self.sent_at[0] + self.cfg.window
        }
    }

    /// When [`Lsd::handle_timeout`] should next be called, if anything is
    /// waiting.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.port?;
        self.groups().next()?;
        let due = self.torrents.values().min()?;
        Some((*due).max(self.allowed_at()))
    }

    /// Sends the announces that are due, within the rate limit.
    pub fn handle_timeout(&mut self, now: Duration) {
        let Some(port) = self.port else { return };
        while self
            .sent_at
            .front()
            .is_some_and(|&t| t + self.cfg.window <= now)
        {
            self.sent_at.pop_front();
        }
        while now >= self.allowed_at() {
            let mut due: Vec<(Duration, InfoHash)> = self
                .torrents
                .iter()
                .filter(|(_, &t)| t <= now)
                .map(|(ih, &t)| (t, *ih))
                .collect();
            if due.is_empty() {
                return;
            }
            due.sort();
            let hashes: Vec<InfoHash> = due.into_iter().map(|(_, ih)| ih).collect();
            let mut carried = 0;
            for group in self.groups().collect::<Vec<_>>() {
                let (payload, n) = packet::encode(group, port, Some(self.cookie), &hashes);
                carried = carried.max(n);
                self.transmits.push_back(Transmit { group, payload });
                self.stats.sent += 1;
            }
            if carried == 0 {
                return;
            }
            for ih in &hashes[..carried] {
                self.torrents.insert(*ih, now + self.cfg.interval);
            }
            self.sent_at.push_back(now);
        }
    }

    /// Handles a datagram received on the LSD port from `from`.
    pub fn handle_datagram(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        self.stats.received += 1;
        let Ok(a) = packet::parse(data) else {
            self.stats.invalid += 1;
            return;
        };
        if a.cookie_value() == Some(self.cookie) {
            self.stats.own += 1;
            return;
        }
        let ip = match from.ip() {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        if ip.is_unspecified() || ip.is_multicast() {
            self.stats.invalid += 1;
            return;
        }
        let addr = SocketAddr::new(ip, a.port);
        for ih in a.info_hashes {
            if !self.torrents.contains_key(&ih) {
                continue;
            }
            if let Some(&t) = self.recent.get(&(ih, addr)) {
                if now < t + self.cfg.repeat {
                    continue;
                }
            }
            if self.recent.len() >= self.cfg.max_recent {
                let repeat = self.cfg.repeat;
                self.recent.retain(|_, t| now < *t + repeat);
            }
            if self.recent.len() < self.cfg.max_recent {
                self.recent.insert((ih, addr), now);
            }
            self.stats.peers += 1;
            self.events.push_back(Event::Peer {
                info_hash: ih,
                addr,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    fn ih(b: u8) -> InfoHash {
        InfoHash([b; 20])
    }

    fn drain(l: &mut Lsd) -> Vec<Transmit> {
        std::iter::from_fn(|| l.poll_transmit()).collect()
    }

    fn events(l: &mut Lsd) -> Vec<Event> {
        std::iter::from_fn(|| l.poll_event()).collect()
    }

    fn hashes(t: &Transmit) -> Vec<InfoHash> {
        packet::parse(&t.payload).unwrap().info_hashes
    }

    fn v4_only() -> LsdConfig {
        LsdConfig {
            v6: false,
            ..LsdConfig::default()
        }
    }

    fn announce(port: u16, cookie: Option<u32>, ihs: &[InfoHash]) -> Vec<u8> {
        packet::encode(Group::V4, port, cookie, ihs).0
    }

    #[test]
    fn announces_to_both_groups_once_a_port_is_known() {
        let mut l = Lsd::new(LsdConfig::default(), 7);
        assert!(l.add_torrent(ih(1), false, Duration::ZERO));
        assert_eq!(l.poll_timeout(), None, "no port yet");
        l.handle_timeout(Duration::ZERO);
        assert!(drain(&mut l).is_empty());
        l.set_port(6881);
        assert_eq!(l.poll_timeout(), Some(Duration::ZERO));
        l.handle_timeout(S);
        let t = drain(&mut l);
        assert_eq!(
            t.iter().map(|t| t.group).collect::<Vec<_>>(),
            vec![Group::V4, Group::V6]
        );
        for t in &t {
            let a = packet::parse(&t.payload).unwrap();
            assert_eq!((a.port, a.cookie_value()), (6881, Some(7)));
            assert_eq!(a.info_hashes, vec![ih(1)]);
            let host = format!("\r\nHost: {}\r\n", t.group.host());
            assert!(String::from_utf8_lossy(&t.payload).contains(&host));
        }
        assert_eq!(l.poll_timeout(), Some(S + Duration::from_secs(300)));
    }

    #[test]
    fn never_more_than_the_rate_limit() {
        let mut l = Lsd::new(v4_only(), 1);
        l.set_port(1000);
        let mut sent = Vec::new();
        let mut now = Duration::ZERO;
        // A new torrent every 7 s for 10 minutes; run the clock in 1 s steps.
        for step in 0..600u32 {
            if step % 7 == 0 && step < 420 {
                l.add_torrent(ih((step / 7) as u8 + 1), false, now);
            }
            if l.poll_timeout().is_some_and(|t| t <= now) {
                l.handle_timeout(now);
            }
            for t in drain(&mut l) {
                sent.push((now, t));
            }
            now += S;
        }
        assert!(sent.len() >= 9, "{} announces", sent.len());
        for w in sent.windows(2) {
            assert!(
                w[1].0 - w[0].0 >= Duration::from_secs(60),
                "{:?} then {:?}",
                w[0].0,
                w[1].0
            );
        }
        // Several hashes per datagram once many are due; all 60 announced.
        let mut all: Vec<InfoHash> = sent.iter().flat_map(|(_, t)| hashes(t)).collect();
        assert!(sent.iter().any(|(_, t)| hashes(t).len() > 1));
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 60);
    }

    #[test]
    fn each_torrent_again_every_interval_oldest_first() {
        let cfg = LsdConfig {
            burst: 2,
            ..v4_only()
        };
        let mut l = Lsd::new(cfg, 1);
        l.set_port(1000);
        l.add_torrent(ih(1), false, Duration::ZERO);
        l.handle_timeout(Duration::ZERO);
        l.add_torrent(ih(2), false, 10 * S);
        l.handle_timeout(10 * S);
        let t = drain(&mut l);
        assert_eq!(
            t.iter().map(hashes).collect::<Vec<_>>(),
            vec![vec![ih(1)], vec![ih(2)]]
        );
        assert_eq!(l.poll_timeout(), Some(Duration::from_secs(300)));
        l.handle_timeout(Duration::from_secs(299));
        assert!(drain(&mut l).is_empty());
        l.handle_timeout(Duration::from_secs(400));
        let t = drain(&mut l);
        assert_eq!(t.len(), 1);
        assert_eq!(hashes(&t[0]), vec![ih(1), ih(2)], "oldest due first");
        l.remove_torrent(&ih(1));
        l.handle_timeout(Duration::from_secs(800));
        assert_eq!(
            drain(&mut l).iter().map(hashes).collect::<Vec<_>>(),
            vec![vec![ih(2)]]
        );
    }

    #[test]
    fn many_torrents_are_split_over_datagrams() {
        let cfg = LsdConfig {
            burst: 100,
            ..v4_only()
        };
        let mut l = Lsd::new(cfg, 1);
        l.set_port(1000);
        for b in 1..=100 {
            l.add_torrent(ih(b), false, Duration::ZERO);
        }
        l.handle_timeout(Duration::ZERO);
        let t = drain(&mut l);
        let per = packet::hashes_per_datagram(Group::V4, 1000, Some(1));
        assert_eq!(t.len(), 100usize.div_ceil(per));
        assert!(t.iter().all(|t| t.payload.len() <= packet::MAX_DATAGRAM));
        assert_eq!(t.iter().map(|t| hashes(t).len()).sum::<usize>(), 100);
    }

    #[test]
    fn never_a_private_torrent() {
        let mut l = Lsd::new(LsdConfig::default(), 1);
        l.set_port(1000);
        assert!(!l.add_torrent(ih(9), true, Duration::ZERO));
        assert_eq!(l.poll_timeout(), None);
        l.handle_timeout(Duration::from_secs(1000));
        assert!(drain(&mut l).is_empty());
        // Peers announcing it are not taken either.
        let from: SocketAddr = "192.168.1.5:6771".parse().unwrap();
        l.handle_datagram(S, from, &announce(5000, Some(2), &[ih(9)]));
        assert!(events(&mut l).is_empty());
        // A magnet link added as public whose metadata says private.
        assert!(l.add_torrent(ih(3), false, Duration::ZERO));
        assert!(!l.add_torrent(ih(3), true, Duration::ZERO));
        assert!(!l.contains(&ih(3)));
        l.handle_timeout(Duration::from_secs(2000));
        assert!(drain(&mut l).is_empty());
    }

    #[test]
    fn own_cookie_is_ignored_others_become_peers() {
        let mut l = Lsd::new(LsdConfig::default(), 0xc0ffee);
        l.add_torrent(ih(1), false, Duration::ZERO);
        l.add_torrent(ih(2), false, Duration::ZERO);
        let from: SocketAddr = "10.0.0.7:6771".parse().unwrap();
        l.handle_datagram(S, from, &announce(6881, Some(0xc0ffee), &[ih(1)]));
        assert!(events(&mut l).is_empty());
        assert_eq!(l.stats().own, 1);
        // Another client's announce, with a hash we do not have among ours.
        l.handle_datagram(
            S,
            from,
            &announce(6881, Some(0xc0fff0), &[ih(5), ih(2), ih(1)]),
        );
        let peer = "10.0.0.7:6881".parse().unwrap();
        assert_eq!(
            events(&mut l),
            vec![
                Event::Peer {
                    info_hash: ih(2),
                    addr: peer
                },
                Event::Peer {
                    info_hash: ih(1),
                    addr: peer
                },
            ]
        );
        // No cookie at all (e.g. Transmission) is somebody else too.
        let from6: SocketAddr = "[fe80::1]:6771".parse().unwrap();
        l.handle_datagram(S, from6, &announce(7000, None, &[ih(1)]));
        assert_eq!(
            events(&mut l),
            vec![Event::Peer {
                info_hash: ih(1),
                addr: "[fe80::1]:7000".parse().unwrap()
            }]
        );
        // IPv4-mapped sources become IPv4 peers.
        let mapped: SocketAddr = "[::ffff:10.0.0.8]:6771".parse().unwrap();
        l.handle_datagram(S, mapped, &announce(7001, None, &[ih(2)]));
        assert_eq!(
            events(&mut l),
            vec![Event::Peer {
                info_hash: ih(2),
                addr: "10.0.0.8:7001".parse().unwrap()
            }]
        );
        l.handle_datagram(S, from, b"d1:ad2:id20:xxxxxxxxxxxxxxxxxxxxe1:q4:pinge");
        assert_eq!(l.stats().invalid, 1);
        assert!(events(&mut l).is_empty());
    }

    #[test]
    fn repeats_are_reported_once_a_minute() {
        let cfg = LsdConfig {
            max_recent: 2,
            ..LsdConfig::default()
        };
        let mut l = Lsd::new(cfg, 1);
        l.add_torrent(ih(1), false, Duration::ZERO);
        let a = announce(6881, None, &[ih(1)]);
        let from: SocketAddr = "10.0.0.7:6771".parse().unwrap();
        l.handle_datagram(S, from, &a);
        l.handle_datagram(2 * S, from, &a);
        assert_eq!(events(&mut l).len(), 1);
        l.handle_datagram(61 * S, from, &a);
        assert_eq!(events(&mut l).len(), 1);
        // The memory is bounded: more peers than `max_recent` are still
        // reported.
        for i in 0..5u8 {
            let f = SocketAddr::from(([10, 0, 1, i], 6771));
            l.handle_datagram(62 * S, f, &a);
        }
        assert_eq!(events(&mut l).len(), 5);
        assert!(l.recent.len() <= 2);
        // Removing the torrent forgets it.
        l.remove_torrent(&ih(1));
        l.handle_datagram(63 * S, from, &a);
        assert!(events(&mut l).is_empty());
    }
}
