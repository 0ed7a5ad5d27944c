//! A deterministic swarm simulator: N peers in one process, each a real
//! torrent core (`torrent::core::TorrentCore`, seeded), on a virtual
//! clock. Same [`SwarmConfig`] (including the seed), same [`SwarmReport`]
//! apart from the wall-clock field.
//!
//! What is modelled, and how (module `world` runs it, `link` holds the
//! connections):
//! - the network: a seeded one-way latency per pair of peers; each peer's
//!   uplink serves the blocks it was asked for one at a time, round-robin
//!   over its connections (a fair share of its upload capacity), and each
//!   block then queues at the receiver's downlink (its download capacity).
//!   Control messages (handshake, bitfield, have, interest, choke, request,
//!   reject, cancel) take the latency only. No loss (TCP).
//! - connections, as `PeerTask` and `shoal_wire::PeerConnection` run them:
//!   TCP connect, handshake and bitfield, have, interest, choking as the
//!   cores command (requests of a choked peer are rejected, as with BEP 6),
//!   serving requests from the owner's verified pieces, cancels, request
//!   timeouts and snubbing, and per-connection rates reported to the core
//!   as `PeerMsg::Stats` twice a second.
//! - the disk: a piece whose blocks have all arrived is verified (or fails,
//!   when a corrupt peer sent any of them) after a small virtual delay;
//!   smart ban's digest reads are answered from the true data.
//! - discovery: a peer starts knowing the address of every peer present
//!   (as from a tracker; the starting leechers join within
//!   [`SwarmConfig::start_spread`], so their cores do not tick in lockstep)
//!   and dials within its core's connection limits; the others learn of it
//!   when it connects. Peer exchange is off (it would add nothing).
//! - churn (optional): peers leave and join at seeded times.
//! - behaviours: honest, free rider (never unchokes anyone, so never
//!   uploads), corrupt (sends wrong bytes for every block).
//!
//! The report compares the last completion with the fluid-model minimum
//! time of Kumar and Ross, [`SwarmConfig::fluid_bound`].
mod link;
#[cfg(test)]
mod tests;
mod world;

use std::time::Duration;

/// How a peer behaves towards the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Downloads but never unchokes anyone, so uploads nothing.
    FreeRider,
    /// Uploads wrong bytes for every block it sends.
    Corrupt,
}

/// A set of peers that start alike.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerGroup {
    /// How many.
    pub count: usize,
    /// They start with every piece.
    pub seed: bool,
    /// How they behave.
    pub behaviour: Behaviour,
    /// Upload capacity, bytes/s.
    pub upload: u64,
    /// Download capacity, bytes/s.
    pub download: u64,
}

impl PeerGroup {
    /// `count` honest seeds.
    pub fn seeds(count: usize, upload: u64, download: u64) -> Self {
        PeerGroup {
            count,
            seed: true,
            behaviour: Behaviour::Honest,
            upload,
            download,
        }
    }

    /// `count` honest peers that start with nothing.
    pub fn leechers(count: usize, upload: u64, download: u64) -> Self {
        PeerGroup {
            seed: false,
            ..PeerGroup::seeds(count, upload, download)
        }
    }

    /// The same group with another behaviour.
    pub fn behaving(self, behaviour: Behaviour) -> Self {
        PeerGroup { behaviour, ..self }
    }
}

/// Peers leaving and joining during the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Churn {
    /// Fraction of the starting leechers that leave (at uniform times within
    /// `window`), done or not.
    pub leave: f64,
    /// Honest leechers that join (at uniform times within `window`), with the
    /// upload and download capacity of the first leecher group.
    pub join: usize,
    /// The time span over which peers leave and join.
    pub window: Duration,
}

/// Simulation parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmConfig {
    /// The peers present at the start.
    pub groups: Vec<PeerGroup>,
    /// Torrent size, bytes.
    pub file_size: u64,
    /// Piece size, bytes (a multiple of 16 KiB).
    pub piece_size: u32,
    /// One-way latency range of a link, ms; each pair of peers gets a
    /// uniform draw from it.
    pub latency_ms: (u32, u32),
    /// Most connections per peer (the session's default is 50).
    pub max_peers: usize,
    /// Most outgoing connections being set up at once per peer.
    pub max_connecting: usize,
    /// Regular upload slots per peer (plus one optimistic; the session's
    /// default is 4).
    pub upload_slots: usize,
    /// Time to hash a complete piece.
    pub verify_delay: Duration,
    /// Starting leechers join at uniform times within this (seeds at 0), so
    /// that their cores do not tick in lockstep.
    pub start_spread: Duration,
    /// Peers leaving and joining (`None`: nobody does).
    pub churn: Option<Churn>,
    /// Seed of everything random (latencies, addresses, the cores' RNGs).
    pub seed: u64,
    /// Virtual time after which the run stops, finished or not.
    pub max_time: Duration,
}

/// One MiB.
pub const MIB: u64 = 1 << 20;

impl Default for SwarmConfig {
    /// 1 seed and 100 leechers, 64 MiB in 256 KiB pieces, every peer with
    /// 1 MiB/s up and 4 MiB/s down, one-way latencies of 10–100 ms.
    fn default() -> Self {
        SwarmConfig {
            groups: vec![
                PeerGroup::seeds(1, MIB, 4 * MIB),
                PeerGroup::leechers(100, MIB, 4 * MIB),
            ],
            file_size: 64 * MIB,
            piece_size: 256 * 1024,
            latency_ms: (10, 100),
            max_peers: 50,
            max_connecting: 10,
            upload_slots: 4,
            verify_delay: Duration::from_millis(2),
            start_spread: Duration::from_millis(500),
            churn: None,
            seed: 1,
            max_time: Duration::from_secs(3600),
        }
    }
}

impl SwarmConfig {
    /// The fluid-model minimum time (Kumar and Ross) for every starting
    /// leecher to have the file, in seconds:
    /// `max(F/u_s, F/d_min, N·F/(u_s + Σu_i))`, with `u_s` the seeds' upload,
    /// `N` the leechers and `u_i` their upload (0 for free riders and
    /// corrupt peers: nothing they send is of use).
    pub fn fluid_bound(&self) -> f64 {
        let f = self.file_size as f64;
        let mut u_s = 0.0;
        let mut u_sum = 0.0;
        let mut n = 0.0;
        let mut d_min = f64::INFINITY;
        for g in &self.groups {
            let c = g.count as f64;
            if g.seed {
                u_s += c * g.upload as f64;
            } else if g.count > 0 {
                n += c;
                d_min = d_min.min(g.download as f64);
                if g.behaviour == Behaviour::Honest {
                    u_sum += c * g.upload as f64;
                }
            }
        }
        if n == 0.0 || u_s == 0.0 {
            return if n == 0.0 { 0.0 } else { f64::INFINITY };
        }
        (f / u_s).max(f / d_min).max(n * f / (u_s + u_sum))
    }
}

/// What happened to one peer.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerReport {
    /// Index of its group in [`SwarmConfig::groups`] (`groups.len()` for
    /// peers that joined by churn).
    pub group: usize,
    /// How it behaved.
    pub behaviour: Behaviour,
    /// It started with every piece.
    pub seed: bool,
    /// When it started, seconds.
    pub joined_s: f64,
    /// When it left, seconds (churn).
    pub left_s: Option<f64>,
    /// When it had every piece, seconds since the start of the run.
    pub completed_s: Option<f64>,
    /// Payload bytes it uploaded.
    pub uploaded: u64,
    /// Payload bytes it received (duplicates included).
    pub downloaded: u64,
    /// Peers that saw a piece fail its hash check with its data in it.
    pub victims: usize,
    /// Of those, the ones whose core banned it by the end.
    pub banned_by_victims: usize,
    /// Victims whose smart ban had the evidence to convict it: a failed
    /// piece that came from it alone, or whose every block came with its
    /// digest (kept once a torrent has seen a hash failure).
    pub provable_victims: usize,
    /// Of those, the ones whose core banned it by the end.
    pub banned_by_provable_victims: usize,
    /// Peers whose core banned it by the end.
    pub banned_by: usize,
}

/// What a simulation measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SwarmReport {
    /// Every peer, starting peers first in group order, then joiners.
    pub peers: Vec<PeerReport>,
    /// [`SwarmConfig::fluid_bound`], seconds.
    pub fluid_bound_s: f64,
    /// Every peer that had to finish did (honest and free-riding leechers
    /// that did not leave).
    pub all_completed: bool,
    /// The last completion among those peers, seconds.
    pub last_completion_s: Option<f64>,
    /// Bytes the seeds uploaded.
    pub seed_uploaded: u64,
    /// Of those, bytes of blocks they sent for the first time.
    pub seed_distinct: u64,
    /// When every block had left a seed at least once, seconds.
    pub seed_all_sent_s: Option<f64>,
    /// Bytes all peers uploaded.
    pub uploaded: u64,
    /// Bytes all peers uploaded in each second of virtual time (index:
    /// the second).
    pub upload_timeline: Vec<u64>,
    /// Pieces that failed their hash check, over all peers.
    pub pieces_failed: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end of the run, seconds.
    pub virtual_s: f64,
    /// Wall-clock seconds of the run (not deterministic).
    pub wall_s: f64,
}

impl SwarmReport {
    /// Last completion over the fluid bound (`None` when not all finished).
    pub fn ratio(&self) -> Option<f64> {
        let last = self.last_completion_s.filter(|_| self.all_completed)?;
        Some(last / self.fluid_bound_s)
    }

    /// Mean completion time of the leechers that behave so and finished.
    pub fn mean_completion(&self, behaviour: Behaviour) -> Option<f64> {
        let v: Vec<f64> = self
            .peers
            .iter()
            .filter(|p| !p.seed && p.behaviour == behaviour)
            .filter_map(|p| p.completed_s)
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Completion times of every peer, in [`SwarmReport::peers`] order.
    pub fn completion_times(&self) -> Vec<Option<f64>> {
        self.peers.iter().map(|p| p.completed_s).collect()
    }
}

/// Runs one simulation.
pub fn simulate(cfg: &SwarmConfig) -> SwarmReport {
    world::World::new(cfg).run()
}
