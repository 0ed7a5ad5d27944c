//! The tracker's memory (sans-IO): peers per torrent with their last
//! announce time, bounded in torrents and peers, answering announces and
//! scrapes. Time is an argument; peer selection is deterministic (most
//! recently announced first).
use crate::types::{AnnounceRequest, AnnounceResponse, Event, ScrapeResponse, ScrapeStats};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Policy and bounds of the in-process tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    /// The `interval` sent to clients.
    pub interval: u32,
    /// The `min interval` sent to clients.
    pub min_interval: u32,
    /// A peer not heard from for this long is forgotten.
    pub peer_timeout: Duration,
    /// Most peers returned per announce (numwant is capped to this).
    pub max_numwant: u32,
    /// Most torrents tracked; announces for new ones beyond it are refused.
    pub max_torrents: usize,
    /// Most peers per torrent; new peers beyond it are not stored.
    pub max_peers_per_torrent: usize,
    /// If set, only these info-hashes are tracked.
    pub whitelist: Option<HashSet<[u8; 20]>>,
}

impl Default for SwarmConfig {
    /// Interval 30 min, min interval 1 min, peers forgotten after 1 h,
    /// 200 peers per reply, 10 000 torrents of 10 000 peers, no whitelist.
    fn default() -> Self {
        SwarmConfig {
            interval: 1800,
            min_interval: 60,
            peer_timeout: Duration::from_secs(3600),
            max_numwant: 200,
            max_torrents: 10_000,
            max_peers_per_torrent: 10_000,
            whitelist: None,
        }
    }
}

#[derive(Debug, Clone)]
struct Peer {
    left: u64,
    seen: Instant,
}

#[derive(Debug, Default)]
struct Torrent {
    peers: HashMap<SocketAddr, Peer>,
    downloaded: u32,
}

/// Why the tracker refuses an announce; the text goes into `failure reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceRefused {
    /// The info-hash is not on the whitelist.
    #[error("torrent not tracked here")]
    NotWhitelisted,
    /// The tracker tracks as many torrents as it may.
    #[error("tracker is full")]
    Full,
}

/// All swarms the tracker knows.
#[derive(Debug, Default)]
pub struct Swarms {
    config: SwarmConfig,
    torrents: HashMap<[u8; 20], Torrent>,
}

impl Swarms {
    /// An empty tracker with `config`.
    pub fn new(config: SwarmConfig) -> Self {
        Swarms {
            config,
            torrents: HashMap::new(),
        }
    }

    /// Handles an announce from `peer` (the address peers should dial: the
    /// source IP with the announced port). Returns up to `numwant` other peers.
    pub fn announce(
        &mut self,
        now: Instant,
        peer: SocketAddr,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, AnnounceRefused> {
        if let Some(w) = &self.config.whitelist {
            if !w.contains(&req.info_hash) {
                return Err(AnnounceRefused::NotWhitelisted);
            }
        }
        if !self.torrents.contains_key(&req.info_hash)
            && self.torrents.len() >= self.config.max_torrents
        {
            self.expire(now);
            if self.torrents.len() >= self.config.max_torrents {
                return Err(AnnounceRefused::Full);
            }
        }
        let timeout = self.config.peer_timeout;
        let t = self.torrents.entry(req.info_hash).or_default();
        t.peers
            .retain(|_, p| now.saturating_duration_since(p.seen) < timeout);
        match req.event {
            Event::Stopped => {
                t.peers.remove(&peer);
            }
            ev => {
                if ev == Event::Completed {
                    t.downloaded = t.downloaded.saturating_add(1);
                }
                if t.peers.contains_key(&peer) || t.peers.len() < self.config.max_peers_per_torrent
                {
                    t.peers.insert(
                        peer,
                        Peer {
                            left: req.left,
                            seen: now,
                        },
                    );
                }
            }
        }
        let want = req.numwant.unwrap_or(50).min(self.config.max_numwant) as usize;
        let mut others: Vec<(&SocketAddr, &Peer)> =
            t.peers.iter().filter(|(a, _)| **a != peer).collect();
        others.sort_by(|a, b| b.1.seen.cmp(&a.1.seen).then(a.0.cmp(b.0)));
        let stats = stats_of(t);
        let resp = AnnounceResponse {
            interval: self.config.interval,
            min_interval: Some(self.config.min_interval),
            peers: others.into_iter().take(want).map(|(a, _)| *a).collect(),
            complete: Some(stats.complete),
            incomplete: Some(stats.incomplete),
            external_ip: Some(peer.ip()),
            ..AnnounceResponse::default()
        };
        if t.peers.is_empty() && t.downloaded == 0 {
            self.torrents.remove(&req.info_hash);
        }
        Ok(resp)
    }

    /// Statistics for `info_hashes`; unknown ones are omitted.
    pub fn scrape(&self, info_hashes: &[[u8; 20]]) -> ScrapeResponse {
        ScrapeResponse {
            files: info_hashes
                .iter()
                .filter_map(|h| self.torrents.get(h).map(|t| (*h, stats_of(t))))
                .collect(),
            min_request_interval: None,
        }
    }

    /// Forgets peers not heard from within the peer timeout, and empty torrents.
    pub fn expire(&mut self, now: Instant) {
        let timeout = self.config.peer_timeout;
        self.torrents.retain(|_, t| {
            t.peers
                .retain(|_, p| now.saturating_duration_since(p.seen) < timeout);
            !t.peers.is_empty()
        });
    }
}

fn stats_of(t: &Torrent) -> ScrapeStats {
    let complete = t.peers.values().filter(|p| p.left == 0).count();
    let clamp = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    ScrapeStats {
        complete: clamp(complete),
        downloaded: t.downloaded,
        incomplete: clamp(t.peers.len() - complete),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(left: u64, event: Event) -> AnnounceRequest {
        let mut r = AnnounceRequest::new([7; 20], [1; 20], 1, left);
        r.event = event;
        r
    }

    #[test]
    fn peers_see_each_other_and_leave() {
        let t0 = Instant::now();
        let mut s = Swarms::new(SwarmConfig::default());
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        assert!(s
            .announce(t0, a, &req(5, Event::Started))
            .unwrap()
            .peers
            .is_empty());
        let r = s.announce(t0, b, &req(0, Event::Started)).unwrap();
        assert_eq!(r.peers, vec![a]);
        assert_eq!((r.complete, r.incomplete), (Some(1), Some(1)));
        s.announce(t0, a, &req(0, Event::Completed)).unwrap();
        let st = s.scrape(&[[7; 20], [8; 20]]);
        assert_eq!(
            st.files,
            vec![(
                [7; 20],
                ScrapeStats {
                    complete: 2,
                    downloaded: 1,
                    incomplete: 0
                }
            )]
        );
        s.announce(t0, a, &req(0, Event::Stopped)).unwrap();
        assert_eq!(s.scrape(&[[7; 20]]).files[0].1.complete, 1);
        // b times out
        s.expire(t0 + Duration::from_secs(3600));
        assert!(s.scrape(&[[7; 20]]).files.is_empty());
    }

    #[test]
    fn whitelist_and_bounds() {
        let t0 = Instant::now();
        let cfg = SwarmConfig {
            whitelist: Some([[7; 20]].into_iter().collect()),
            max_peers_per_torrent: 2,
            max_numwant: 1,
            ..SwarmConfig::default()
        };
        let mut s = Swarms::new(cfg);
        let mut other = req(1, Event::Started);
        other.info_hash = [9; 20];
        let p: SocketAddr = "127.0.0.1:1".parse().unwrap();
        assert_eq!(
            s.announce(t0, p, &other),
            Err(AnnounceRefused::NotWhitelisted)
        );
        for port in 1..=5u16 {
            s.announce(
                t0,
                SocketAddr::from(([127, 0, 0, 1], port)),
                &req(1, Event::Started),
            )
            .unwrap();
        }
        let st = s.scrape(&[[7; 20]]);
        assert_eq!(st.files[0].1.incomplete, 2);
        let r = s
            .announce(
                t0,
                SocketAddr::from(([127, 0, 0, 1], 9)),
                &req(1, Event::None),
            )
            .unwrap();
        assert_eq!(r.peers.len(), 1);
    }
}
