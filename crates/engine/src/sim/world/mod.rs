//! The simulation loop: the peers (each a torrent core with its uplink,
//! downlink and disk), the connections between them, and one event queue
//! ordered by virtual time (ties in the order the events were made, so a
//! run is a pure function of its configuration).
//!
//! Every input reaches a core through an event; after each event the cores
//! it touched are drained of their actions (which only make more events)
//! and their next deadline is queued. Nothing here calls a core from
//! inside another core's actions.
mod connect;
mod transfer;

use super::link::{good_digests, listen_addr, mix, peer_id, Conn, ConnId, Ctl, Side};
use super::{Behaviour, PeerReport, SwarmConfig, SwarmReport};
use crate::peer::PeerMsg;
use crate::pex::{PeerExchange, PexConfig};
use crate::picker::{PeerKey, PiecePicker, BLOCK_SIZE};
use crate::status::TorrentStatus;
use crate::torrent::core::{Action, CoreInit, CoreLimits, PeerSource, TorrentCore};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use transfer::{Arrival, PieceBuf, Sending};

/// How often a connection reports its rates to its core (as `PeerTask`).
const STATS_INTERVAL: u64 = 500_000;
/// No timer is due.
const NEVER: u64 = u64::MAX;

enum Ev {
    /// The core's deadline (stale unless it equals `Node::timer`).
    Timer(usize),
    /// Rates of every connection of a peer go to its core.
    Stats(usize),
    Join(usize),
    Leave(usize),
    /// A dial's SYN reached the other peer.
    Syn(ConnId),
    /// A message reached side `to` of a connection.
    Ctl {
        conn: ConnId,
        to: Side,
        msg: Ctl,
    },
    /// A message from a peer's own connection to its core.
    Msg {
        node: usize,
        key: PeerKey,
        msg: PeerMsg,
    },
    /// A peer's uplink finished sending a block.
    UpDone(usize),
    /// A block reached a peer's downlink.
    DownArrive(usize, Arrival),
    /// A peer's downlink finished receiving the block at its head.
    DownDone(usize),
    /// The disk's verdict about a piece whose blocks have all arrived.
    Verdict {
        node: usize,
        piece: u32,
    },
    /// The disk read back a verified piece's block digests (smart ban).
    Digests {
        node: usize,
        piece: u32,
    },
}

struct Queued {
    at: u64,
    seq: u64,
    ev: Ev,
}
impl PartialEq for Queued {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Queued {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// What a peer is, fixed before the run.
struct Spec {
    group: usize,
    behaviour: Behaviour,
    seed: bool,
    up: u64,
    down: u64,
    join_at: u64,
    leave_at: Option<u64>,
}

impl Spec {
    /// The run ends when every such peer has finished.
    fn required(&self) -> bool {
        !self.seed && self.behaviour != Behaviour::Corrupt && self.leave_at.is_none()
    }
}

struct Node {
    spec: Spec,
    addr: SocketAddr,
    /// `None` before it joins and after it leaves.
    core: Option<TorrentCore>,
    conns: BTreeMap<PeerKey, (ConnId, Side)>,
    timer: u64,
    up_ring: VecDeque<(ConnId, Side)>,
    up_busy: Option<Sending>,
    down_q: VecDeque<Arrival>,
    down_busy: bool,
    disk: HashMap<u32, PieceBuf>,
    done_at: Option<u64>,
    left_at: Option<u64>,
    uploaded: u64,
    downloaded: u64,
    /// Peers that saw a piece fail with our (corrupt) data in it.
    victims: BTreeSet<usize>,
    /// Of those, the ones whose smart ban has the evidence to convict us.
    provable_victims: BTreeSet<usize>,
}

/// The whole simulated swarm. See the module docs.
pub(super) struct World<'a> {
    cfg: &'a SwarmConfig,
    base: Instant,
    now: u64,
    heap: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    nodes: Vec<Node>,
    conns: Vec<Conn>,
    by_addr: HashMap<SocketAddr, usize>,
    dirty: Vec<usize>,
    /// Required peers not finished yet.
    pending: usize,
    events: u64,
    num_pieces: u32,
    /// Blocks any seed has sent, by global block index.
    seed_sent: Vec<bool>,
    seed_uploaded: u64,
    seed_distinct: u64,
    /// Bytes all peers uploaded in each second of virtual time.
    upload_timeline: Vec<u64>,
    pieces_failed: u64,
    seed_all_sent: Option<u64>,
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u128::from(u64::MAX / 2)) as u64
}

impl<'a> World<'a> {
    pub(super) fn new(cfg: &'a SwarmConfig) -> Self {
        let mut rng = StdRng::seed_from_u64(cfg.seed);
        let mut specs = Vec::new();
        let spread = micros(cfg.start_spread).max(1);
        for (g, grp) in cfg.groups.iter().enumerate() {
            for _ in 0..grp.count {
                specs.push(Spec {
                    group: g,
                    behaviour: grp.behaviour,
                    seed: grp.seed,
                    up: grp.upload,
                    down: grp.download,
                    join_at: if grp.seed {
                        0
                    } else {
                        rng.gen_range(0..spread)
                    },
                    leave_at: None,
                });
            }
        }
        if let Some(ch) = &cfg.churn {
            let window = micros(ch.window).max(1);
            let leechers: Vec<usize> = (0..specs.len()).filter(|&i| !specs[i].seed).collect();
            let n = ((ch.leave.clamp(0.0, 1.0)) * leechers.len() as f64).round() as usize;
            for j in rand::seq::index::sample(&mut rng, leechers.len(), n.min(leechers.len())) {
                specs[leechers[j]].leave_at = Some(rng.gen_range(0..window));
            }
            let like = cfg.groups.iter().find(|g| !g.seed);
            for _ in 0..ch.join {
                specs.push(Spec {
                    group: cfg.groups.len(),
                    behaviour: Behaviour::Honest,
                    seed: false,
                    up: like.map_or(1 << 20, |g| g.upload),
                    down: like.map_or(4 << 20, |g| g.download),
                    join_at: rng.gen_range(0..window),
                    leave_at: None,
                });
            }
        }
        // Addresses in a seeded order: the cores dial candidates sorted by
        // address, so who has the lowest ones must not follow the groups.
        let mut slots: Vec<usize> = (0..specs.len()).collect();
        slots.shuffle(&mut rng);
        let piece = u64::from(cfg.piece_size.max(BLOCK_SIZE));
        let num_pieces = cfg.file_size.div_ceil(piece) as u32;
        let blocks = u64::from(num_pieces) * piece.div_ceil(u64::from(BLOCK_SIZE));
        let mut w = World {
            cfg,
            base: Instant::now(),
            now: 0,
            heap: BinaryHeap::new(),
            seq: 0,
            nodes: Vec::with_capacity(specs.len()),
            conns: Vec::new(),
            by_addr: HashMap::new(),
            dirty: Vec::new(),
            pending: specs.iter().filter(|s| s.required()).count(),
            events: 0,
            num_pieces,
            seed_sent: vec![false; blocks as usize],
            seed_uploaded: 0,
            upload_timeline: Vec::new(),
            seed_distinct: 0,
            pieces_failed: 0,
            seed_all_sent: None,
        };
        for (i, spec) in specs.into_iter().enumerate() {
            let addr = listen_addr(slots[i]);
            w.by_addr.insert(addr, i);
            w.schedule(spec.join_at, Ev::Join(i));
            if let Some(t) = spec.leave_at {
                w.schedule(t, Ev::Leave(i));
            }
            w.nodes.push(Node {
                spec,
                addr,
                core: None,
                conns: BTreeMap::new(),
                timer: NEVER,
                up_ring: VecDeque::new(),
                up_busy: None,
                down_q: VecDeque::new(),
                down_busy: false,
                disk: HashMap::new(),
                done_at: None,
                left_at: None,
                uploaded: 0,
                downloaded: 0,
                victims: BTreeSet::new(),
                provable_victims: BTreeSet::new(),
            });
        }
        w
    }

    /// Runs until every required peer finished, nothing is left to do, or
    /// the time limit.
    pub(super) fn run(mut self) -> SwarmReport {
        let wall = Instant::now();
        let end = micros(self.cfg.max_time);
        while let Some(Reverse(q)) = self.heap.pop() {
            if q.at > end {
                break;
            }
            self.now = q.at;
            self.events += 1;
            self.handle(q.ev);
            while let Some(n) = self.dirty.pop() {
                self.settle(n);
            }
            if self.pending == 0 {
                break;
            }
        }
        self.report(wall.elapsed().as_secs_f64())
    }

    fn report(&self, wall_s: f64) -> SwarmReport {
        let secs = |t: u64| t as f64 / 1e6;
        let banned = |by: usize, who: usize| {
            self.nodes[by]
                .core
                .as_ref()
                .is_some_and(|c| c.is_banned(self.nodes[who].addr))
        };
        let peers = (0..self.nodes.len())
            .map(|i| {
                let n = &self.nodes[i];
                PeerReport {
                    group: n.spec.group,
                    behaviour: n.spec.behaviour,
                    seed: n.spec.seed,
                    joined_s: secs(n.spec.join_at),
                    left_s: n.left_at.map(secs),
                    completed_s: n.done_at.map(secs),
                    uploaded: n.uploaded,
                    downloaded: n.downloaded,
                    victims: n.victims.len(),
                    banned_by_victims: n.victims.iter().filter(|&&v| banned(v, i)).count(),
                    provable_victims: n.provable_victims.len(),
                    banned_by_provable_victims: n
                        .provable_victims
                        .iter()
                        .filter(|&&v| banned(v, i))
                        .count(),
                    banned_by: (0..self.nodes.len()).filter(|&v| banned(v, i)).count(),
                }
            })
            .collect();
        let last = self
            .nodes
            .iter()
            .filter(|n| n.spec.required())
            .filter_map(|n| n.done_at)
            .max();
        SwarmReport {
            peers,
            fluid_bound_s: self.cfg.fluid_bound(),
            all_completed: self.pending == 0,
            last_completion_s: last.map(secs),
            seed_uploaded: self.seed_uploaded,
            upload_timeline: self.upload_timeline.clone(),
            seed_distinct: self.seed_distinct,
            seed_all_sent_s: self.seed_all_sent.map(secs),
            uploaded: self.nodes.iter().map(|n| n.uploaded).sum(),
            pieces_failed: self.pieces_failed,
            events: self.events,
            virtual_s: secs(self.now),
            wall_s,
        }
    }

    // ------------------------------------------------------------ plumbing

    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Reverse(Queued {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn instant(&self) -> Instant {
        self.base + Duration::from_micros(self.now)
    }

    fn mark(&mut self, n: usize) {
        if !self.dirty.contains(&n) {
            self.dirty.push(n);
        }
    }

    /// An event from peer `n`'s connection `key` to its core.
    fn feed(&mut self, n: usize, key: PeerKey, msg: PeerMsg) {
        let now = self.instant();
        if let Some(core) = self.nodes[n].core.as_mut() {
            core.on_peer(now, key, msg);
            self.mark(n);
        }
    }

    /// A message from side `from` of `c` to the other side, after the latency.
    fn send(&mut self, c: ConnId, from: Side, msg: Ctl) {
        let at = self.now + self.conns[c].latency;
        self.schedule(
            at,
            Ev::Ctl {
                conn: c,
                to: 1 - from,
                msg,
            },
        );
    }

    fn piece_len(&self, piece: u32) -> u32 {
        let size = u64::from(self.cfg.piece_size.max(BLOCK_SIZE));
        let start = u64::from(piece) * size;
        self.cfg.file_size.saturating_sub(start).min(size) as u32
    }

    /// Carries out what core `n` asked for, queues its next deadline and
    /// notes when it finishes.
    fn settle(&mut self, n: usize) {
        while let Some(a) = self.nodes[n].core.as_mut().and_then(|c| c.poll_action()) {
            match a {
                Action::Peer(key, cmd) => self.peer_cmd(n, key, cmd),
                Action::Close(key) => {
                    if let Some(&(c, s)) = self.nodes[n].conns.get(&key) {
                        self.close_end(c, s, "closed");
                    }
                }
                Action::Connect { key, addr } => self.dial(n, key, addr),
                Action::ReadDigests(piece) => {
                    let at = self.now + micros(self.cfg.verify_delay);
                    self.schedule(at, Ev::Digests { node: n, piece });
                }
                // Simulated torrents start with their metadata and layers.
                Action::SaveResume(_)
                | Action::AnnounceCompleted
                | Action::MetadataReady(_)
                | Action::LayersReady(_) => {}
            }
        }
        let Some(core) = self.nodes[n].core.as_ref() else {
            return;
        };
        let complete = core.status().is_complete();
        let next = core
            .poll_timeout()
            .map(|t| micros(t.saturating_duration_since(self.base)).max(self.now + 1));
        if let Some(at) = next {
            if at < self.nodes[n].timer {
                self.nodes[n].timer = at;
                self.schedule(at, Ev::Timer(n));
            }
        }
        if complete && self.nodes[n].done_at.is_none() {
            self.nodes[n].done_at = Some(self.now);
            if self.nodes[n].spec.required() {
                self.pending -= 1;
            }
        }
    }

    fn handle(&mut self, ev: Ev) {
        match ev {
            Ev::Timer(n) => {
                if self.nodes[n].timer != self.now {
                    return;
                }
                self.nodes[n].timer = NEVER;
                let now = self.instant();
                if let Some(core) = self.nodes[n].core.as_mut() {
                    core.handle_timeout(now);
                    self.mark(n);
                }
            }
            Ev::Stats(n) => {
                if self.nodes[n].core.is_some() {
                    self.stats_tick(n);
                    self.schedule(self.now + STATS_INTERVAL, Ev::Stats(n));
                }
            }
            Ev::Join(n) => self.join(n),
            Ev::Leave(n) => self.leave(n),
            Ev::Syn(c) => self.on_syn(c),
            Ev::Ctl { conn, to, msg } => self.on_ctl(conn, to, msg),
            Ev::Msg { node, key, msg } => self.feed(node, key, msg),
            Ev::UpDone(n) => self.up_done(n),
            Ev::DownArrive(n, a) => {
                if self.nodes[n].core.is_some() && self.conns[a.conn].open {
                    self.nodes[n].down_q.push_back(a);
                    if !self.nodes[n].down_busy {
                        self.start_down(n);
                    }
                }
            }
            Ev::DownDone(n) => {
                self.nodes[n].down_busy = false;
                if self.nodes[n].core.is_none() {
                    return;
                }
                if let Some(a) = self.nodes[n].down_q.pop_front() {
                    self.deliver(n, a);
                }
                self.start_down(n);
            }
            Ev::Verdict { node, piece } => self.verdict(node, piece),
            Ev::Digests { node, piece } => {
                let good = good_digests(piece, self.piece_len(piece));
                if let Some(core) = self.nodes[node].core.as_mut() {
                    core.on_digests(piece, &good);
                    self.mark(node);
                }
            }
        }
    }

    // ------------------------------------------------------------ peers

    fn join(&mut self, n: usize) {
        let cfg = self.cfg;
        let spec = &self.nodes[n].spec;
        let mut picker = PiecePicker::new(cfg.piece_size.max(BLOCK_SIZE), cfg.file_size);
        if spec.seed {
            for p in 0..self.num_pieces {
                picker.set_have(p);
            }
        }
        let now = self.instant();
        let addr = self.nodes[n].addr;
        let mut core = TorrentCore::new(
            CoreInit {
                peer_id: peer_id(n),
                picker,
                limits: CoreLimits {
                    max_peers: cfg.max_peers,
                    max_connecting: cfg.max_connecting,
                    upload_slots: cfg.upload_slots,
                    super_seed: true,
                    resume_interval: std::time::Duration::from_secs(1),
                },
                rng: StdRng::seed_from_u64(mix(cfg.seed ^ mix(n as u64 + 1))),
                status: TorrentStatus::default(),
                pex: PeerExchange::new(PexConfig::default(), false, addr),
            },
            now,
        );
        // As from a tracker: everyone present now.
        let others: Vec<SocketAddr> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, o)| *i != n && o.spec.join_at <= self.now && o.left_at.is_none())
            .map(|(_, o)| o.addr)
            .collect();
        core.add_addrs(now, others, PeerSource::Tracker);
        self.nodes[n].core = Some(core);
        let stagger = mix(self.cfg.seed ^ n as u64) % STATS_INTERVAL;
        self.schedule(self.now + stagger + 1, Ev::Stats(n));
        self.mark(n);
    }

    fn leave(&mut self, n: usize) {
        let ends: Vec<(ConnId, Side)> = self.nodes[n].conns.values().copied().collect();
        for (c, s) in ends {
            self.conns[c].open = false;
            self.conns[c].ends[s].alive = false;
            if self.conns[c].ends[1 - s].alive {
                self.send(c, s, Ctl::Eof("peer closed the connection"));
            }
        }
        let node = &mut self.nodes[n];
        node.conns.clear();
        node.core = None;
        node.left_at = Some(self.now);
        node.timer = NEVER;
        node.up_ring.clear();
        node.up_busy = None;
        node.down_q.clear();
        node.disk.clear();
    }

    /// Rates, snubbing and request timeouts of every connection of `n`.
    fn stats_tick(&mut self, n: usize) {
        let now = self.instant();
        let ends: Vec<(PeerKey, ConnId, Side)> = self.nodes[n]
            .conns
            .iter()
            .map(|(&k, &(c, s))| (k, c, s))
            .collect();
        for (key, c, s) in ends {
            if !self.conns[c].open || !self.conns[c].ends[s].connected {
                continue;
            }
            let end = &mut self.conns[c].ends[s];
            let expired = end.expire(self.now);
            let msg = PeerMsg::Stats {
                down_rate: end.down.rate(now),
                recent_down_rate: end
                    .down
                    .recent_rate(now, shoal_wire::rate::PIPELINE_BUCKETS),
                up_rate: end.up.rate(now),
                uploaded: std::mem::take(&mut end.unreported),
                snubbed: end.snubbed,
            };
            if !expired.is_empty() {
                for b in &expired {
                    self.send(c, s, Ctl::Cancel(*b));
                }
                self.feed(n, key, PeerMsg::RequestsFailed(expired));
            }
            self.feed(n, key, msg);
        }
    }
}
