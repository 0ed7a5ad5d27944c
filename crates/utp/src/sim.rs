//! A deterministic network simulator for uTP endpoints.
//!
//! [`Network`] holds endpoints by address and one [`LinkConfig`] per
//! direction between two of them: propagation delay, uniform jitter, seeded
//! loss, duplication and reordering (a packet held back), and optionally a
//! bottleneck of a given bandwidth with a tail-drop queue of a given size
//! (where LEDBAT's queueing delay shows) and a path MTU that drops
//! don't-fragment probes above it. Time is virtual: [`Network::step`] jumps
//! to the next delivery or timer. The same seed gives the same run, packet
//! for packet ([`Network::trace_hash`]).
//!
//! [`transfer`] runs the usual scenario on two endpoints: connect, send a
//! pseudo-random stream each way, close, and check what arrived.
use crate::config::EndpointConfig;
use crate::connection::{ConnectionStats, State};
use crate::endpoint::{ConnectionHandle, Endpoint};
use crate::error::{ConnectionError, ReadError, WriteError};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// What a scripted link does with one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered after the link's delay.
    Deliver,
    /// Lost.
    Drop,
    /// Delivered twice.
    Duplicate,
    /// Held back this many milliseconds more (reordering).
    Delay(u16),
}

/// One direction of a link.
#[derive(Debug, Clone)]
pub struct LinkConfig {
    /// Propagation delay.
    pub delay: Duration,
    /// Extra delay drawn uniformly from `0..=jitter` per packet.
    pub jitter: Duration,
    /// Probability a packet is lost.
    pub loss: f64,
    /// Probability a packet arrives twice.
    pub duplicate: f64,
    /// Probability a packet is held back by `reorder_delay`.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// Bottleneck bandwidth in bytes per second (`None`: unlimited).
    pub bandwidth: Option<u64>,
    /// Bytes the bottleneck queue holds; packets that do not fit are dropped.
    pub queue: usize,
    /// Don't-fragment datagrams larger than this are dropped (`None`: any size).
    pub mtu: Option<usize>,
    /// The fate of each packet in turn, cycling, instead of the random loss,
    /// duplication and reordering above.
    pub script: Option<Arc<[Fate]>>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(10),
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
            bandwidth: None,
            queue: 1 << 20,
            mtu: None,
            script: None,
        }
    }
}

/// What the network did.
#[derive(Debug, Clone, Default)]
pub struct NetStats {
    /// Datagrams sent by endpoints.
    pub sent: u64,
    /// Datagrams delivered (duplicates included).
    pub delivered: u64,
    /// Dropped by random loss.
    pub lost: u64,
    /// Dropped by a full bottleneck queue.
    pub queue_drops: u64,
    /// Don't-fragment datagrams dropped above the path MTU.
    pub mtu_drops: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Queueing delay at the bottleneck per enqueued packet: (time, delay).
    pub queue_delay: Vec<(Duration, Duration)>,
}

#[derive(Debug)]
struct Link {
    cfg: LinkConfig,
    busy_until: Duration,
    /// Packets sent so far (the script position).
    count: usize,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct InFlight {
    at: Duration,
    seq: u64,
    to: usize,
    from: SocketAddr,
    data: Vec<u8>,
}

/// Index of an endpoint in a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(pub usize);

/// Endpoints on a virtual network. See the module docs.
pub struct Network {
    now: Duration,
    rng: SmallRng,
    nodes: Vec<(SocketAddr, Endpoint)>,
    by_addr: HashMap<SocketAddr, usize>,
    links: HashMap<(usize, usize), Link>,
    queue: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
    trace: u64,
    stats: NetStats,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("now", &self.now)
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

const FNV_PRIME: u64 = 0x100_0000_01b3;

impl Network {
    /// An empty network at time zero.
    pub fn new(seed: u64) -> Network {
        Network {
            now: Duration::ZERO,
            rng: SmallRng::seed_from_u64(seed),
            nodes: Vec::new(),
            by_addr: HashMap::new(),
            links: HashMap::new(),
            queue: BinaryHeap::new(),
            next_seq: 0,
            trace: 0xcbf2_9ce4_8422_2325,
            stats: NetStats::default(),
            buf: Vec::with_capacity(2048),
        }
    }

    /// Adds an endpoint at `addr` (its seed drawn from the network's).
    pub fn add_endpoint(&mut self, addr: SocketAddr, cfg: EndpointConfig) -> NodeId {
        let ep = Endpoint::new(cfg, self.rng.gen());
        self.by_addr.insert(addr, self.nodes.len());
        self.nodes.push((addr, ep));
        NodeId(self.nodes.len() - 1)
    }

    /// Sets the link from `a` to `b` (default: [`LinkConfig::default`]).
    pub fn set_link(&mut self, a: NodeId, b: NodeId, cfg: LinkConfig) {
        self.links.insert(
            (a.0, b.0),
            Link {
                cfg,
                busy_until: Duration::ZERO,
                count: 0,
            },
        );
    }

    /// The virtual time.
    pub fn now(&self) -> Duration {
        self.now
    }

    /// An endpoint.
    pub fn endpoint(&mut self, n: NodeId) -> &mut Endpoint {
        &mut self.nodes[n.0].1
    }

    /// An endpoint's address.
    pub fn addr(&self, n: NodeId) -> SocketAddr {
        self.nodes[n.0].0
    }

    /// What the network did so far.
    pub fn stats(&self) -> &NetStats {
        &self.stats
    }

    /// A hash of every datagram sent, dropped and delivered, with its time.
    pub fn trace_hash(&self) -> u64 {
        self.trace
    }

    fn record(&mut self, what: u8, from: SocketAddr, data: &[u8]) {
        if std::env::var_os("UTP_SIM_DEBUG").is_some() {
            if let Ok(p) = crate::packet::Packet::decode(data) {
                let h = p.header;
                eprintln!(
                    "{:>12.6} {} {} {:?} cid {} seq {} ack {} len {} sack {:?}",
                    self.now.as_secs_f64(),
                    what as char,
                    from,
                    h.ty,
                    h.connection_id,
                    h.seq_nr,
                    h.ack_nr,
                    p.payload.len(),
                    p.sacked().collect::<Vec<_>>()
                );
            }
        }
        let mut h = self.trace;
        let mut mix = |bytes: &[u8]| {
            for b in bytes {
                h ^= *b as u64;
                h = h.wrapping_mul(FNV_PRIME);
            }
        };
        mix(&[what]);
        mix(&(self.now.as_nanos() as u64).to_le_bytes());
        mix(from.to_string().as_bytes());
        mix(data);
        self.trace = h;
    }

    /// Moves every datagram the endpoints want to send onto the links.
    fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            loop {
                let mut buf = std::mem::take(&mut self.buf);
                buf.clear();
                let t = self.nodes[i].1.poll_transmit(self.now, &mut buf);
                match t {
                    Some(t) => self.send(i, t.to, t.dont_fragment, &buf[..t.len]),
                    None => {
                        self.buf = buf;
                        break;
                    }
                }
                self.buf = buf;
            }
        }
    }

    fn send(&mut self, from: usize, to: SocketAddr, dont_fragment: bool, data: &[u8]) {
        let from_addr = self.nodes[from].0;
        self.stats.sent += 1;
        self.record(b's', from_addr, data);
        let Some(&to_idx) = self.by_addr.get(&to) else {
            return;
        };
        let now = self.now;
        let link = self.links.entry((from, to_idx)).or_insert_with(|| Link {
            cfg: LinkConfig::default(),
            busy_until: Duration::ZERO,
            count: 0,
        });
        let cfg = link.cfg.clone();
        let fate = cfg
            .script
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| s[link.count % s.len()]);
        link.count += 1;
        let mut lost = self.rng.gen_bool(cfg.loss.clamp(0.0, 1.0));
        let mut dup = self.rng.gen_bool(cfg.duplicate.clamp(0.0, 1.0));
        let mut held = if self.rng.gen_bool(cfg.reorder.clamp(0.0, 1.0)) {
            cfg.reorder_delay
        } else {
            Duration::ZERO
        };
        if let Some(f) = fate {
            lost = f == Fate::Drop;
            dup = f == Fate::Duplicate;
            held = match f {
                Fate::Delay(ms) => Duration::from_millis(ms as u64),
                _ => Duration::ZERO,
            };
        }
        if lost {
            self.stats.lost += 1;
            self.record(b'l', from_addr, data);
            return;
        }
        if dont_fragment && cfg.mtu.is_some_and(|m| data.len() > m) {
            self.stats.mtu_drops += 1;
            self.record(b'm', from_addr, data);
            return;
        }
        for _ in 0..if dup { 2 } else { 1 } {
            let mut departure = now;
            if let Some(bw) = cfg.bandwidth.filter(|b| *b > 0) {
                let link = self
                    .links
                    .get_mut(&(from, to_idx))
                    .expect("link inserted above");
                let start = link.busy_until.max(now);
                let waiting = start - now;
                let queued = (waiting.as_nanos() * bw as u128 / 1_000_000_000) as usize;
                if queued + data.len() > cfg.queue {
                    self.stats.queue_drops += 1;
                    self.record(b'q', from_addr, data);
                    continue;
                }
                let serialize = Duration::from_nanos((data.len() as u64 * 1_000_000_000) / bw);
                link.busy_until = start + serialize;
                departure = link.busy_until;
                self.stats.queue_delay.push((now, waiting));
            }
            let jitter = if cfg.jitter.is_zero() {
                Duration::ZERO
            } else {
                Duration::from_nanos(self.rng.gen_range(0..=cfg.jitter.as_nanos() as u64))
            };
            let at = departure + cfg.delay + jitter + held;
            self.next_seq += 1;
            self.queue.push(Reverse(InFlight {
                at,
                seq: self.next_seq,
                to: to_idx,
                from: from_addr,
                data: data.to_vec(),
            }));
        }
        if dup {
            self.stats.duplicated += 1;
        }
    }

    /// Sends what is queued, then advances to the next delivery or timer and
    /// handles everything due then. Returns false when nothing is left to
    /// happen.
    pub fn step(&mut self) -> bool {
        self.step_until(Duration::MAX)
    }

    /// As [`Network::step`], but never past `deadline`: with nothing due
    /// before it, the clock moves to `deadline` (and true is returned).
    pub fn step_until(&mut self, deadline: Duration) -> bool {
        self.flush();
        let next_delivery = self.queue.peek().map(|r| r.0.at);
        let next_timer = self.nodes.iter().filter_map(|n| n.1.poll_timeout()).min();
        let next = match (next_delivery, next_timer) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) if deadline == Duration::MAX => return false,
            (None, None) => deadline,
        };
        if next > deadline {
            self.now = self.now.max(deadline);
            return true;
        }
        self.now = self.now.max(next);
        while self.queue.peek().is_some_and(|r| r.0.at <= self.now) {
            let Some(Reverse(p)) = self.queue.pop() else {
                break;
            };
            self.stats.delivered += 1;
            self.record(b'd', p.from, &p.data);
            let now = self.now;
            self.nodes[p.to].1.handle(now, p.from, &p.data);
        }
        let now = self.now;
        for n in &mut self.nodes {
            if n.1.poll_timeout().is_some_and(|t| t <= now) {
                n.1.handle_timeout(now);
            }
        }
        self.flush();
        true
    }
}

/// The scenario of [`transfer`].
#[derive(Debug, Clone)]
pub struct TransferConfig {
    /// Seed of the network (and so of everything).
    pub seed: u64,
    /// Bytes the connecting side sends.
    pub a_to_b: usize,
    /// Bytes the accepting side sends.
    pub b_to_a: usize,
    /// The link from the connecting side.
    pub link_ab: LinkConfig,
    /// The link back.
    pub link_ba: LinkConfig,
    /// Both endpoints' settings.
    pub endpoint: EndpointConfig,
    /// Give up at this virtual time.
    pub time_limit: Duration,
    /// Bytes offered per write.
    pub write_chunk: usize,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            seed: 1,
            a_to_b: 100_000,
            b_to_a: 10_000,
            link_ab: LinkConfig::default(),
            link_ba: LinkConfig::default(),
            endpoint: EndpointConfig::default(),
            time_limit: Duration::from_secs(600),
            write_chunk: 16 << 10,
        }
    }
}

/// How one side of a [`transfer`] ended.
#[derive(Debug, Clone, Default)]
pub struct SideReport {
    /// Every byte the other side sent arrived, once, in order, then the end
    /// of the stream.
    pub received_ok: bool,
    /// Bytes received.
    pub received: usize,
    /// The connection reached [`State::Closed`] without an error.
    pub closed_cleanly: bool,
    /// The error it ended with.
    pub error: Option<ConnectionError>,
    /// When it finished (everything read, closed).
    pub finished_at: Option<Duration>,
    /// The connection's counters at the end.
    pub stats: ConnectionStats,
}

/// What [`transfer`] saw.
#[derive(Debug, Clone)]
pub struct TransferReport {
    /// The connecting side.
    pub a: SideReport,
    /// The accepting side.
    pub b: SideReport,
    /// Both endpoints forgot every connection after release.
    pub cleaned_up: bool,
    /// Virtual time at the end.
    pub elapsed: Duration,
    /// [`Network::trace_hash`] at the end.
    pub trace_hash: u64,
    /// The network's counters.
    pub net: NetStats,
}

impl TransferReport {
    /// Both streams arrived whole and both sides closed cleanly.
    pub fn success(&self) -> bool {
        self.a.received_ok && self.b.received_ok && self.a.closed_cleanly && self.b.closed_cleanly
    }
}

/// The byte at `i` of the stream seeded with `seed`.
pub fn pattern(seed: u64, i: usize) -> u8 {
    let x = (i as u64).wrapping_add(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let x = (x ^ (x >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x ^ (x >> 32)) as u8
}

struct Side {
    node: NodeId,
    conn: Option<ConnectionHandle>,
    send: usize,
    sent: usize,
    shut: bool,
    expect: usize,
    expect_seed: u64,
    own_seed: u64,
    received: usize,
    corrupt: bool,
    eof: bool,
    report: SideReport,
    done: bool,
}

impl Side {
    fn pump(&mut self, net: &mut Network, buf: &mut [u8], chunk: usize) {
        let Some(h) = self.conn else { return };
        if self.done {
            return;
        }
        let now = net.now();
        let mut out = vec![0u8; chunk];
        while self.sent < self.send {
            let n = chunk.min(self.send - self.sent);
            for (k, b) in out[..n].iter_mut().enumerate() {
                *b = pattern(self.own_seed, self.sent + k);
            }
            match net.endpoint(self.node).write(h, now, &out[..n]) {
                Ok(0) | Err(WriteError::NotConnected) => break,
                Ok(w) => self.sent += w,
                Err(_) => break,
            }
        }
        let connected =
            net.endpoint(self.node).connection(h).map(|c| c.state()) == Some(State::Connected);
        if self.sent == self.send && !self.shut && connected {
            net.endpoint(self.node).close(h, now);
            self.shut = true;
        }
        loop {
            match net.endpoint(self.node).read(h, now, buf) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => {
                    for (k, b) in buf[..n].iter().enumerate() {
                        let i = self.received + k;
                        if i >= self.expect || *b != pattern(self.expect_seed, i) {
                            self.corrupt = true;
                        }
                    }
                    self.received += n;
                }
                Err(ReadError::WouldBlock) => break,
                Err(ReadError::Closed(e)) => {
                    self.report.error = Some(e);
                    break;
                }
                Err(ReadError::UnknownConnection) => break,
            }
        }
        let Some(c) = net.endpoint(self.node).connection(h) else {
            return;
        };
        if c.state() == State::Closed {
            self.report.error = self.report.error.or(c.error());
            self.report.closed_cleanly = c.error().is_none();
            self.report.stats = c.stats();
            self.report.received = self.received;
            self.report.received_ok = self.eof && !self.corrupt && self.received == self.expect;
            self.report.finished_at = Some(now);
            self.done = true;
            net.endpoint(self.node).release(h, now);
        }
    }
}

/// Runs two endpoints through connect, a stream each way, and close.
pub fn transfer(cfg: &TransferConfig) -> TransferReport {
    let mut net = Network::new(cfg.seed);
    let addr_a: SocketAddr = "10.0.0.1:6881".parse().expect("literal address");
    let addr_b: SocketAddr = "10.0.0.2:6881".parse().expect("literal address");
    let a = net.add_endpoint(addr_a, cfg.endpoint.clone());
    let b = net.add_endpoint(addr_b, cfg.endpoint.clone());
    net.set_link(a, b, cfg.link_ab.clone());
    net.set_link(b, a, cfg.link_ba.clone());
    let seed_a = cfg.seed ^ 0xa;
    let seed_b = cfg.seed ^ 0xb;
    let side = |node, send, own_seed, expect, expect_seed| Side {
        node,
        conn: None,
        send,
        sent: 0,
        shut: false,
        expect,
        expect_seed,
        own_seed,
        received: 0,
        corrupt: false,
        eof: false,
        report: SideReport::default(),
        done: false,
    };
    let mut sa = side(a, cfg.a_to_b, seed_a, cfg.b_to_a, seed_b);
    let mut sb = side(b, cfg.b_to_a, seed_b, cfg.a_to_b, seed_a);
    let now = net.now();
    match net.endpoint(a).connect(now, addr_b) {
        Ok(h) => sa.conn = Some(h),
        Err(_) => sa.done = true,
    }
    let mut buf = vec![0u8; 64 << 10];
    let chunk = cfg.write_chunk.max(1);
    loop {
        // A server takes every connection; one that died before its peer
        // ever answered (all its SYN-ACKs lost) is replaced by the next.
        let retry = sb.done && sb.report.error.is_some();
        if sb.conn.is_none() || retry {
            if let Some(h) = net.endpoint(b).accept() {
                sb = side(b, cfg.b_to_a, seed_b, cfg.a_to_b, seed_a);
                sb.conn = Some(h);
            }
        }
        while net.endpoint(a).poll_event().is_some() {}
        while net.endpoint(b).poll_event().is_some() {}
        sa.pump(&mut net, &mut buf, chunk);
        sb.pump(&mut net, &mut buf, chunk);
        if sa.done && (sb.done || sb.conn.is_none()) && net.endpoint(b).is_empty()
            || sa.done && sb.done && sb.report.error.is_none()
        {
            break;
        }
        if net.now() > cfg.time_limit || !net.step() {
            break;
        }
    }
    for side in [&mut sa, &mut sb] {
        if let Some(c) = side
            .conn
            .and_then(|h| net.endpoint(side.node).connection(h))
        {
            if !side.done {
                side.report.stats = c.stats();
                side.report.received = side.received;
                if std::env::var_os("UTP_SIM_DEBUG").is_some() {
                    eprintln!("unfinished: eof {} {:#?}", side.eof, c);
                }
            }
        }
    }
    // Let the closing handshakes and lingering finish.
    while !(net.endpoint(a).is_empty() && net.endpoint(b).is_empty())
        && net.now() <= cfg.time_limit
        && net.step()
    {}
    let cleaned_up = net.endpoint(a).is_empty() && net.endpoint(b).is_empty();
    TransferReport {
        a: sa.report,
        b: sb.report,
        cleaned_up,
        elapsed: net.now(),
        trace_hash: net.trace_hash(),
        net: net.stats().clone(),
    }
}
