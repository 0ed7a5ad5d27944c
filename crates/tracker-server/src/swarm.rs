//! The swarm table (sans-IO): every torrent the tracker knows, its peers in
//! compact form ([`crate::peers`]), seeder and completed counts, bounded in
//! torrents, peers per torrent and peers in all. Time is an argument (tracker
//! seconds, see [`crate::clock`]); peer selection uses a per-shard PRNG.
//!
//! The table is split into [`SHARDS`] mutex-protected shards chosen by a keyed
//! mix of the info-hash, so announces for different torrents rarely contend
//! and a lock is held for one announce only.
//!
//! Completed downloads (scrape `downloaded`) are counted once per peer: at
//! its `completed` event, or when a peer known as a leecher first reports
//! `left=0` without one (in a regular or a `stopped` announce), as aria2
//! does when it stops right after finishing.
//!
//! Bounds: a new torrent beyond `max_torrents` is refused (`tracker is full`);
//! a new peer beyond `max_peers_per_torrent` or `max_peers` is answered as
//! usual (counts, peers) but not stored, so it is never handed out.
use crate::allow::AllowList;
use crate::peers::{unpack, Entry, PackedAddr, PeerList, Upsert};
use shoal_base::InfoHash;
use shoal_tracker::{Event, ScrapeStats};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

/// Number of shards of the table.
pub const SHARDS: usize = 64;

/// Policy and bounds of the swarm table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwarmConfig {
    /// The `interval` sent to clients (seconds).
    pub interval: u32,
    /// The `min interval` sent to clients (seconds).
    pub min_interval: u32,
    /// A peer not heard from for this long (seconds) is forgotten; a torrent
    /// without peers is forgotten this long after its last announce.
    pub peer_timeout: u32,
    /// Peers returned when the client does not say how many it wants.
    pub default_numwant: u32,
    /// Most peers returned per announce (numwant is capped to this).
    pub max_numwant: u32,
    /// Most torrents tracked; announces for new ones beyond it are refused.
    pub max_torrents: usize,
    /// Most peers stored per torrent; new peers beyond it are not stored.
    pub max_peers_per_torrent: usize,
    /// Most peers stored in all; new peers beyond it are not stored.
    pub max_peers: usize,
}

impl Default for SwarmConfig {
    /// Interval 30 min, min interval 1 min, peers forgotten after 2
    /// intervals and 5 minutes, 50 peers by default and at most 200 per
    /// reply, a million torrents, 100 000 peers per torrent, 20 million peers
    /// (about 300 MB of IPv4 peers).
    fn default() -> Self {
        SwarmConfig {
            interval: 1800,
            min_interval: 60,
            peer_timeout: 2 * 1800 + 300,
            default_numwant: 50,
            max_numwant: 200,
            max_torrents: 1_000_000,
            max_peers_per_torrent: 100_000,
            max_peers: 20_000_000,
        }
    }
}

/// Told about torrents as they appear, e.g. to index their names later.
/// Called with a shard lock held: it must be quick (e.g. a `try_send`).
pub trait SwarmObserver: Send + Sync + 'static {
    /// A torrent the table did not hold got its first announce.
    fn torrent_added(&self, info_hash: &InfoHash);
}

/// One announce as the table sees it: the transport has already decided the
/// peer's address (the source IP with the announced port).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAnnounce {
    /// The torrent.
    pub info_hash: InfoHash,
    /// Where peers reach it.
    pub addr: PackedAddr,
    /// It has everything (`left` is 0).
    pub seeder: bool,
    /// The announce event.
    pub event: Event,
    /// Peers wanted; `None` for the default.
    pub numwant: Option<u32>,
}

/// The table's answer to an announce; reuse one across announces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceReply {
    /// Seeders in the swarm.
    pub complete: u32,
    /// Leechers in the swarm.
    pub incomplete: u32,
    /// Other IPv4 peers, 6 bytes each (BEP 23).
    pub peers4: Vec<u8>,
    /// Other IPv6 peers, 18 bytes each (BEP 7).
    pub peers6: Vec<u8>,
}

impl AnnounceReply {
    fn clear(&mut self) {
        self.complete = 0;
        self.incomplete = 0;
        self.peers4.clear();
        self.peers6.clear();
    }
}

/// Why an announce was refused; the text goes into `failure reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AnnounceRefused {
    /// The info-hash is not on the allow list.
    #[error("torrent not tracked here")]
    NotAllowed,
    /// The tracker tracks as many torrents as it may.
    #[error("tracker is full")]
    Full,
}

/// One torrent's state, as saved and restored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TorrentRecord {
    /// The info-hash.
    pub info_hash: InfoHash,
    /// `completed` events seen (scrape `downloaded`).
    pub completed: u32,
    /// Tracker time of its last announce.
    pub last_seen: u32,
    /// Its IPv4 peers.
    pub peers4: Vec<Entry<6>>,
    /// Its IPv6 peers.
    pub peers6: Vec<Entry<18>>,
}

#[derive(Debug, Default)]
struct Torrent {
    v4: PeerList<6>,
    v6: PeerList<18>,
    seeders: u32,
    completed: u32,
    last_seen: u32,
}

impl Torrent {
    fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    fn stats(&self) -> ScrapeStats {
        let total = u32::try_from(self.len()).unwrap_or(u32::MAX);
        ScrapeStats {
            complete: self.seeders,
            downloaded: self.completed,
            incomplete: total.saturating_sub(self.seeders),
        }
    }
}

#[derive(Debug)]
struct Shard {
    torrents: HashMap<InfoHash, Torrent>,
    rng: u64,
}

impl Shard {
    fn next_random(&mut self) -> u64 {
        // xorshift64*: fast, good enough to spread peer selection.
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Gauges of the whole table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SwarmTotals {
    /// Torrents held.
    pub torrents: usize,
    /// Peers held.
    pub peers: usize,
    /// Of which seeders.
    pub seeders: usize,
}

/// What one expiry sweep removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Expired {
    /// Peers forgotten.
    pub peers: usize,
    /// Torrents forgotten.
    pub torrents: usize,
}

/// All swarms the tracker knows; shared by every transport (`Sync`).
pub struct Swarms {
    config: SwarmConfig,
    shards: Box<[Mutex<Shard>]>,
    shard_key: u64,
    torrents: AtomicUsize,
    peers: AtomicUsize,
    seeders: AtomicUsize,
    allow: RwLock<Option<Arc<AllowList>>>,
    observer: Option<Arc<dyn SwarmObserver>>,
}

impl std::fmt::Debug for Swarms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Swarms")
            .field("config", &self.config)
            .field("totals", &self.totals())
            .finish_non_exhaustive()
    }
}

impl Swarms {
    /// An empty, open table; `seed` keys the shard choice and peer selection.
    pub fn new(config: SwarmConfig, seed: u64) -> Self {
        let shards = (0..SHARDS as u64)
            .map(|i| {
                Mutex::new(Shard {
                    torrents: HashMap::new(),
                    rng: (seed ^ (i.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1,
                })
            })
            .collect();
        Swarms {
            config,
            shards,
            shard_key: seed.rotate_left(17) | 1,
            torrents: AtomicUsize::new(0),
            peers: AtomicUsize::new(0),
            seeders: AtomicUsize::new(0),
            allow: RwLock::new(None),
            observer: None,
        }
    }

    /// Sets the observer told about new torrents.
    pub fn set_observer(&mut self, observer: Arc<dyn SwarmObserver>) {
        self.observer = Some(observer);
    }

    /// The policy in force.
    pub fn config(&self) -> &SwarmConfig {
        &self.config
    }

    /// Restricts the table to `allow` (`None`: open). Torrents already held
    /// but no longer allowed stay until their peers expire; new announces
    /// for them are refused.
    pub fn set_allow_list(&self, allow: Option<AllowList>) {
        if let Ok(mut a) = self.allow.write() {
            *a = allow.map(Arc::new);
        }
    }

    /// True if announces for `info_hash` are accepted.
    pub fn is_allowed(&self, info_hash: &InfoHash) -> bool {
        match self.allow.read() {
            Ok(a) => a.as_ref().is_none_or(|l| l.contains(info_hash)),
            Err(_) => false,
        }
    }

    fn shard(&self, info_hash: &InfoHash) -> MutexGuard<'_, Shard> {
        let mut b = [0u8; 8];
        b.copy_from_slice(&info_hash.0[..8]);
        let mixed = (u64::from_le_bytes(b) ^ self.shard_key).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let i = (mixed >> 32) as usize % SHARDS;
        // A poisoned shard only means another thread panicked mid-announce;
        // its data is still consistent enough to serve.
        self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Handles an announce at tracker time `now`. The reply holds the swarm's
    /// counts and up to numwant other peers: of the announcer's own family
    /// first and, if `both_families`, then of the other. Seeders are sent
    /// leechers only.
    pub fn announce(
        &self,
        now: u32,
        a: &PeerAnnounce,
        both_families: bool,
        out: &mut AnnounceReply,
    ) -> Result<(), AnnounceRefused> {
        out.clear();
        if !self.is_allowed(&a.info_hash) {
            return Err(AnnounceRefused::NotAllowed);
        }
        let cfg = &self.config;
        let mut shard = self.shard(&a.info_hash);
        let shard = &mut *shard;
        let t = match shard.torrents.get_mut(&a.info_hash) {
            Some(t) => t,
            None if a.event == Event::Stopped => return Ok(()),
            None => {
                if self.torrents.fetch_add(1, Ordering::Relaxed) >= cfg.max_torrents {
                    self.torrents.fetch_sub(1, Ordering::Relaxed);
                    return Err(AnnounceRefused::Full);
                }
                if let Some(o) = &self.observer {
                    o.torrent_added(&a.info_hash);
                }
                shard.torrents.entry(a.info_hash).or_default()
            }
        };
        t.last_seen = now;
        if a.event == Event::Stopped {
            let was = match &a.addr {
                PackedAddr::V4(p) => t.v4.remove(p),
                PackedAddr::V6(p) => t.v6.remove(p),
            };
            if let Some(was_seeder) = was {
                self.peers.fetch_sub(1, Ordering::Relaxed);
                if was_seeder {
                    t.seeders = t.seeders.saturating_sub(1);
                    self.seeders.fetch_sub(1, Ordering::Relaxed);
                } else if a.seeder {
                    // A leecher leaving complete (aria2 with --seed-time=0
                    // sends no `completed`): count the download.
                    t.completed = t.completed.saturating_add(1);
                }
            }
            let st = t.stats();
            out.complete = st.complete;
            out.incomplete = st.incomplete;
            return Ok(());
        }
        let max = cfg.max_peers_per_torrent;
        let may_grow = self.peers.load(Ordering::Relaxed) < cfg.max_peers;
        let r = match &a.addr {
            PackedAddr::V4(p) => {
                t.v4.upsert(*p, a.seeder, now, max.saturating_sub(t.v6.len()), may_grow)
            }
            PackedAddr::V6(p) => {
                t.v6.upsert(*p, a.seeder, now, max.saturating_sub(t.v4.len()), may_grow)
            }
        };
        // A download is counted once: at a `completed` event, or when a
        // known leecher first reports nothing left without that event.
        let completed = match r {
            Upsert::Updated { was_seeder } => !was_seeder && a.seeder,
            Upsert::Added | Upsert::Full => a.event == Event::Completed,
        };
        if completed {
            t.completed = t.completed.saturating_add(1);
        }
        match r {
            Upsert::Added => {
                self.peers.fetch_add(1, Ordering::Relaxed);
                if a.seeder {
                    t.seeders += 1;
                    self.seeders.fetch_add(1, Ordering::Relaxed);
                }
            }
            Upsert::Updated { was_seeder } if was_seeder != a.seeder => {
                if a.seeder {
                    t.seeders += 1;
                    self.seeders.fetch_add(1, Ordering::Relaxed);
                } else {
                    t.seeders = t.seeders.saturating_sub(1);
                    self.seeders.fetch_sub(1, Ordering::Relaxed);
                }
            }
            Upsert::Updated { .. } | Upsert::Full => {}
        }
        let st = t.stats();
        out.complete = st.complete;
        out.incomplete = st.incomplete;
        let mut want = a
            .numwant
            .unwrap_or(cfg.default_numwant)
            .min(cfg.max_numwant) as usize;
        let r = shard.next_random() as usize;
        // `t` borrows the shard; look it up again after using the PRNG.
        let Some(t) = shard.torrents.get(&a.info_hash) else {
            return Ok(());
        };
        match &a.addr {
            PackedAddr::V4(p) => {
                want -= t.v4.select(r, want, Some(p), a.seeder, &mut out.peers4);
                if both_families {
                    t.v6.select(r, want, None, a.seeder, &mut out.peers6);
                }
            }
            PackedAddr::V6(p) => {
                want -= t.v6.select(r, want, Some(p), a.seeder, &mut out.peers6);
                if both_families {
                    t.v4.select(r, want, None, a.seeder, &mut out.peers4);
                }
            }
        }
        Ok(())
    }

    /// Up to `max` stored peer addresses of a torrent (IPv4 first), e.g. for
    /// an index that fetches the torrent's metadata from its peers.
    pub fn peer_addrs(&self, info_hash: &InfoHash, max: usize) -> Vec<std::net::SocketAddr> {
        let shard = self.shard(info_hash);
        let Some(t) = shard.torrents.get(info_hash) else {
            return Vec::new();
        };
        let v4 = t.v4.entries().iter().map(|e| unpack(&e.addr));
        let v6 = t.v6.entries().iter().map(|e| unpack(&e.addr));
        v4.chain(v6).flatten().take(max).collect()
    }

    /// Statistics of one torrent, if it is held.
    pub fn scrape(&self, info_hash: &InfoHash) -> Option<ScrapeStats> {
        self.shard(info_hash)
            .torrents
            .get(info_hash)
            .map(Torrent::stats)
    }

    /// Forgets peers not heard from within the peer timeout, and torrents
    /// without peers whose last announce is that old. Locks one shard at a time.
    pub fn expire(&self, now: u32) -> Expired {
        let deadline = now.saturating_sub(self.config.peer_timeout);
        let mut total = Expired::default();
        for shard in self.shards.iter() {
            let mut s = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (mut peers, mut seeders, mut torrents) = (0, 0, 0);
            s.torrents.retain(|_, t| {
                let (p4, s4) = t.v4.expire(deadline);
                let (p6, s6) = t.v6.expire(deadline);
                peers += p4 + p6;
                seeders += s4 + s6;
                t.seeders = t
                    .seeders
                    .saturating_sub(u32::try_from(s4 + s6).unwrap_or(u32::MAX));
                let keep = t.len() > 0 || t.last_seen >= deadline;
                if !keep {
                    torrents += 1;
                }
                keep
            });
            drop(s);
            self.peers.fetch_sub(peers, Ordering::Relaxed);
            self.seeders.fetch_sub(seeders, Ordering::Relaxed);
            self.torrents.fetch_sub(torrents, Ordering::Relaxed);
            total.peers += peers;
            total.torrents += torrents;
        }
        total
    }

    /// Torrents, peers and seeders held now.
    pub fn totals(&self) -> SwarmTotals {
        SwarmTotals {
            torrents: self.torrents.load(Ordering::Relaxed),
            peers: self.peers.load(Ordering::Relaxed),
            seeders: self.seeders.load(Ordering::Relaxed),
        }
    }

    /// Calls `f` with every torrent's record, one shard locked at a time
    /// (for saving the state).
    pub fn for_each(&self, mut f: impl FnMut(&TorrentRecord)) {
        let mut rec = TorrentRecord::default();
        for shard in self.shards.iter() {
            let s = shard
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (h, t) in &s.torrents {
                rec.info_hash = *h;
                rec.completed = t.completed;
                rec.last_seen = t.last_seen;
                rec.peers4.clear();
                rec.peers4.extend_from_slice(t.v4.entries());
                rec.peers6.clear();
                rec.peers6.extend_from_slice(t.v6.entries());
                f(&rec);
            }
        }
    }

    /// Adds a saved torrent (replacing one with the same info-hash), within
    /// the bounds: returns false if the table is full of torrents. Peers
    /// beyond the per-torrent or total bounds are dropped.
    pub fn restore(&self, rec: TorrentRecord) -> bool {
        let cfg = &self.config;
        let mut shard = self.shard(&rec.info_hash);
        if let Some(old) = shard.torrents.remove(&rec.info_hash) {
            self.peers.fetch_sub(old.len(), Ordering::Relaxed);
            self.seeders
                .fetch_sub(old.seeders as usize, Ordering::Relaxed);
            self.torrents.fetch_sub(1, Ordering::Relaxed);
        }
        if self.torrents.load(Ordering::Relaxed) >= cfg.max_torrents {
            return false;
        }
        let room = cfg
            .max_peers
            .saturating_sub(self.peers.load(Ordering::Relaxed))
            .min(cfg.max_peers_per_torrent);
        let mut p4 = rec.peers4;
        p4.truncate(room);
        let mut p6 = rec.peers6;
        p6.truncate(room - p4.len());
        let t = Torrent {
            v4: PeerList::from_entries(p4),
            v6: PeerList::from_entries(p6),
            seeders: 0,
            completed: rec.completed,
            last_seen: rec.last_seen,
        };
        let seeders = t.v4.entries().iter().filter(|e| e.seeder).count()
            + t.v6.entries().iter().filter(|e| e.seeder).count();
        let t = Torrent {
            seeders: u32::try_from(seeders).unwrap_or(u32::MAX),
            ..t
        };
        self.peers.fetch_add(t.len(), Ordering::Relaxed);
        self.seeders.fetch_add(seeders, Ordering::Relaxed);
        self.torrents.fetch_add(1, Ordering::Relaxed);
        shard.torrents.insert(rec.info_hash, t);
        true
    }
}

#[cfg(test)]
#[path = "swarm_tests.rs"]
mod tests;
