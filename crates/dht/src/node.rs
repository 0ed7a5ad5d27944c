//! The sans-IO DHT node: feed it datagrams ([`Node::handle_packet`]) and timer expiries
//! ([`Node::handle_timeout`]) with the current time; take datagrams to send
//! ([`Node::poll_transmit`]), finished operations ([`Node::poll_event`]) and the next
//! deadline ([`Node::poll_timeout`]). It owns a seeded RNG and never reads a clock.
//!
//! Time is a [`Duration`] since an arbitrary origin chosen by the driver (virtual in the
//! simulator, `Instant`-based in the tokio driver).
use crate::compact::NodeInfo;
use crate::id::Id20;
use crate::item::{self, Item, MutableFields};
use crate::krpc::{Body, Message, PutArgs, Query, QueryKind, Response, Want};
use crate::lookup::{Lookup, LookupId, LookupKind, LookupResult, Phase};
use crate::ratelimit::{RateConfig, RateLimiter};
use crate::routing::{Insert, RoutingConfig, RoutingTable};
use crate::rtt::RttEstimator;
use crate::store::{Store, StoreConfig};
use crate::token::Tokens;
use crate::{bep42, Counters};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Encoded KRPC message.
    pub data: Vec<u8>,
}

/// Identifies a ping started with [`Node::ping`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PingId(pub u64);

/// Something that finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A lookup finished.
    LookupDone(LookupId, Box<LookupResult>),
    /// A ping finished: the node's ID and the RTT, or `None` on timeout or error.
    PingDone(PingId, Option<(Id20, Duration)>),
}

/// Why an operation could not be started.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum StartError {
    /// Too many lookups or queries in flight.
    #[error("dht: too many operations in flight")]
    Busy,
    /// The item is invalid.
    #[error("dht: {0}")]
    Item(#[from] item::ItemError),
}

#[derive(Clone, Debug)]
enum Purpose {
    Ping(Option<PingId>),
    Lookup(LookupId),
    Store(LookupId),
}

#[derive(Clone, Debug)]
struct Pending {
    to: SocketAddr,
    sent: u64,
    purpose: Purpose,
    /// The soft timeout (one RTO) has passed: a lookup stopped waiting for this
    /// answer but still accepts it until the hard timeout.
    slow: bool,
}

/// The hard timeout is this many soft timeouts (RTOs).
const HARD_TIMEOUT_FACTOR: u64 = 2;

/// The sans-IO DHT node.
pub struct Node {
    cfg: Config,
    id: Id20,
    v4: RoutingTable,
    v6: RoutingTable,
    store: Store,
    tokens: Tokens,
    rate: RateLimiter,
    rng: SmallRng,
    rtt: RttEstimator,
    next_tid: u16,
    next_op: u64,
    pending: BTreeMap<u16, Pending>,
    lookups: Vec<Lookup>,
    out: VecDeque<Transmit>,
    events: VecDeque<Event>,
    counters: Counters,
    next_maintenance: u64,
    ip_votes: Vec<(IpAddr, u32)>,
}

fn ms(t: Duration) -> u64 {
    t.as_millis() as u64
}

impl Node {
    /// A node with an empty routing table, started at `now`.
    pub fn new(cfg: Config, now: Duration) -> Node {
        let now = ms(now);
        let mut rng = SmallRng::seed_from_u64(cfg.seed);
        let id = match (cfg.id, cfg.external_ip) {
            (Some(id), _) => id,
            (None, Some(ip)) => bep42::generate_id(ip, &mut rng),
            (None, None) => Id20::random(&mut rng),
        };
        let tokens = Tokens::new(now, &mut rng);
        Node {
            v4: RoutingTable::new(id, false, cfg.routing),
            v6: RoutingTable::new(id, true, cfg.routing),
            store: Store::new(cfg.store),
            rate: RateLimiter::new(cfg.rate),
            rtt: RttEstimator::new(
                cfg.timeout_min_ms,
                cfg.timeout_max_ms,
                cfg.timeout_initial_ms,
            ),
            next_tid: rng.gen(),
            next_op: 1,
            pending: BTreeMap::new(),
            lookups: Vec::new(),
            out: VecDeque::new(),
            events: VecDeque::new(),
            counters: Counters::default(),
            next_maintenance: now + cfg.maintenance_ms,
            ip_votes: Vec::new(),
            tokens,
            rng,
            id,
            cfg,
        }
    }

    /// This node's ID.
    pub fn id(&self) -> Id20 {
        self.id
    }

    /// The routing table for IPv4 or IPv6 nodes.
    pub fn table(&self, v6: bool) -> &RoutingTable {
        if v6 {
            &self.v6
        } else {
            &self.v4
        }
    }

    fn table_mut(&mut self, v6: bool) -> &mut RoutingTable {
        if v6 {
            &mut self.v6
        } else {
            &mut self.v4
        }
    }

    /// Packet and error counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The current adaptive query timeout.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.rtt.timeout_ms())
    }

    /// The external IP most nodes reported in BEP 42 `ip` fields, with its vote count.
    pub fn external_ip(&self) -> Option<(IpAddr, u32)> {
        self.ip_votes.iter().max_by_key(|v| v.1).copied()
    }

    /// Adds a known node (from a saved table) as if it had answered at `now`.
    pub fn add_node(&mut self, node: NodeInfo, now: Duration) -> Insert {
        self.table_mut(node.addr.is_ipv6())
            .insert(node, ms(now), true)
    }

    /// Number of lookups in progress.
    pub fn lookups_in_progress(&self) -> usize {
        self.lookups.len()
    }

    /// Approximate heap bytes of this node (routing tables and maps), for budgets.
    pub fn heap_bytes(&self) -> usize {
        self.v4.heap_bytes()
            + self.v6.heap_bytes()
            + self.rate.len() * 48
            + self.pending.len() * 64
            + self.out.capacity() * std::mem::size_of::<Transmit>()
    }

    fn tid(&mut self) -> u16 {
        loop {
            self.next_tid = self.next_tid.wrapping_add(1);
            if !self.pending.contains_key(&self.next_tid) {
                return self.next_tid;
            }
        }
    }

    fn send_query(&mut self, now: u64, to: SocketAddr, kind: QueryKind, purpose: Purpose) -> bool {
        self.send_query_with(now, to, kind, purpose, false)
    }

    /// Sends a query; `slow` starts it past its soft timeout (a retransmission has
    /// only the hard timeout).
    fn send_query_with(
        &mut self,
        now: u64,
        to: SocketAddr,
        kind: QueryKind,
        purpose: Purpose,
        slow: bool,
    ) -> bool {
        if self.pending.len() >= self.cfg.max_pending {
            return false;
        }
        let tid = self.tid();
        let msg = Message {
            tid: tid.to_be_bytes().to_vec(),
            version: self.cfg.version.clone(),
            ip: None,
            read_only: self.cfg.read_only,
            body: Body::Query(Query {
                id: self.id,
                kind,
                want: Want::default(),
            }),
        };
        self.pending.insert(
            tid,
            Pending {
                to,
                sent: now,
                purpose,
                slow,
            },
        );
        self.transmit(to, &msg);
        true
    }

    fn transmit(&mut self, to: SocketAddr, msg: &Message) {
        self.counters.packets_out += 1;
        self.out.push_back(Transmit {
            to,
            data: msg.encode(),
        });
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.out.pop_front()
    }

    /// The next finished operation.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Node::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Duration {
        let rto = self.rtt.timeout_ms();
        let hard = rto * HARD_TIMEOUT_FACTOR;
        let q = self
            .pending
            .values()
            .map(|p| {
                p.sent
                    + if p.slow || !matches!(p.purpose, Purpose::Lookup(_)) {
                        hard
                    } else {
                        rto
                    }
            })
            .min();
        let t = q.map_or(self.next_maintenance, |q| q.min(self.next_maintenance));
        Duration::from_millis(t)
    }

    /// Expires timed-out queries and runs periodic maintenance.
    ///
    /// Lookup queries have two timeouts: after one RTO (the soft timeout) the lookup
    /// gives the slot to another node, but a late answer is still used; after
    /// [`HARD_TIMEOUT_FACTOR`] RTOs the query has failed. Other queries have only the
    /// hard timeout.
    pub fn handle_timeout(&mut self, now: Duration) {
        let now = ms(now);
        let rto = self.rtt.timeout_ms();
        let hard = rto * HARD_TIMEOUT_FACTOR;
        let mut soft = Vec::new();
        let mut expired = Vec::new();
        for (t, p) in self.pending.iter_mut() {
            if p.sent + hard <= now {
                expired.push(*t);
            } else if !p.slow && p.sent + rto <= now {
                if let Purpose::Lookup(lid) = p.purpose {
                    p.slow = true;
                    soft.push((lid, p.to));
                }
            }
        }
        for (lid, to) in soft {
            let retransmit = match self.lookups.iter_mut().find(|l| l.id == lid) {
                Some(l) => {
                    l.result.timeouts += 1;
                    l.slow(to)
                }
                None => false,
            };
            if retransmit {
                self.retransmit(now, lid, to);
            }
            self.step(now, lid);
        }
        for tid in expired {
            if let Some(p) = self.pending.remove(&tid) {
                self.counters.timeouts += 1;
                self.query_failed(now, p, None);
            }
        }
        if now >= self.next_maintenance {
            self.next_maintenance = now + self.cfg.maintenance_ms;
            self.maintenance(now);
        }
    }

    fn maintenance(&mut self, now: u64) {
        self.tokens.maybe_rotate(now, &mut self.rng);
        self.store.expire(now);
        if self.cfg.read_only && self.v4.is_empty() && self.v6.is_empty() {
            return;
        }
        for v6 in [false, true] {
            let targets = {
                let rng = &mut self.rng;
                let t = if v6 { &mut self.v6 } else { &mut self.v4 };
                if t.is_empty() {
                    continue;
                }
                t.refresh_targets(now, rng)
            };
            for target in targets.into_iter().take(4) {
                if let Ok(id) = self.start(now, LookupKind::FindNode, target, v6, &[]) {
                    if let Some(l) = self.lookups.iter_mut().find(|l| l.id == id) {
                        l.internal = true;
                    }
                }
            }
            let stale = self.table(v6).stale(now, 8);
            for n in stale {
                self.send_query(now, n.addr, QueryKind::Ping, Purpose::Ping(None));
            }
        }
    }

    /// Pings `addr`; the answer arrives as [`Event::PingDone`].
    pub fn ping(&mut self, now: Duration, addr: SocketAddr) -> Result<PingId, StartError> {
        let id = PingId(self.next_op);
        self.next_op += 1;
        if !self.send_query(ms(now), addr, QueryKind::Ping, Purpose::Ping(Some(id))) {
            return Err(StartError::Busy);
        }
        Ok(id)
    }

    /// Starts a lookup of `target` over the IPv4 (`v6 = false`) or IPv6 table, also
    /// querying the address-only `seeds` (bootstrap nodes). The result arrives as
    /// [`Event::LookupDone`].
    pub fn start_lookup(
        &mut self,
        now: Duration,
        kind: LookupKind,
        target: Id20,
        v6: bool,
        seeds: &[SocketAddr],
    ) -> Result<LookupId, StartError> {
        if let LookupKind::PutItem { item, .. } = &kind {
            item.validate()?;
        }
        self.start(ms(now), kind, target, v6, seeds)
    }

    fn start(
        &mut self,
        now: u64,
        kind: LookupKind,
        target: Id20,
        v6: bool,
        seeds: &[SocketAddr],
    ) -> Result<LookupId, StartError> {
        if self.lookups.len() >= self.cfg.max_lookups {
            return Err(StartError::Busy);
        }
        let id = LookupId(self.next_op);
        self.next_op += 1;
        let k = self.cfg.routing.k;
        let mut l = Lookup::new(id, kind, target, k, self.cfg.alpha, now);
        for n in self.table(v6).closest(&target, k * 2) {
            l.add(n, 1, false);
        }
        for s in seeds.iter().filter(|s| s.is_ipv6() == v6) {
            l.add(
                NodeInfo {
                    id: Id20::ZERO,
                    addr: *s,
                },
                1,
                true,
            );
        }
        self.lookups.push(l);
        self.step(now, id);
        Ok(id)
    }

    /// Sends the search query of lookup `lid` to `to` once more (new transaction id,
    /// hard timeout only); the first query stays outstanding too.
    fn retransmit(&mut self, now: u64, lid: LookupId, to: SocketAddr) {
        let Some(li) = self.lookups.iter().position(|l| l.id == lid) else {
            return;
        };
        let q = self.lookup_query(&self.lookups[li]);
        if self.send_query_with(now, to, q, Purpose::Lookup(lid), true) {
            let l = &mut self.lookups[li];
            l.retransmitted(to);
            l.result.messages += 1;
        }
    }

    fn lookup_query(&self, l: &Lookup) -> QueryKind {
        match &l.kind {
            LookupKind::FindNode => QueryKind::FindNode { target: l.target },
            LookupKind::GetPeers { .. } => QueryKind::GetPeers {
                info_hash: l.target,
            },
            LookupKind::GetItem { seq, .. } => QueryKind::Get {
                target: l.target,
                seq: *seq,
            },
            LookupKind::PutItem { .. } => QueryKind::Get {
                target: l.target,
                seq: None,
            },
            LookupKind::Sample => QueryKind::SampleInfohashes { target: l.target },
        }
    }

    /// Advances lookup `id`: sends queries, or moves to the store phase, or finishes.
    fn step(&mut self, now: u64, id: LookupId) {
        let Some(li) = self.lookups.iter().position(|l| l.id == id) else {
            return;
        };
        if let Phase::Store { pending } = self.lookups[li].phase {
            if pending == 0 {
                self.finish(now, li);
            }
            return;
        }
        loop {
            let Some(nodes) = self.lookups[li].next_queries() else {
                self.start_store_or_finish(now, li);
                return;
            };
            let q = self.lookup_query(&self.lookups[li]);
            let mut unsent = false;
            for n in nodes {
                self.lookups[li].result.messages += 1;
                if !self.send_query(now, n.addr, q.clone(), Purpose::Lookup(id)) {
                    self.lookups[li].timed_out(n.addr);
                    unsent = true;
                }
            }
            // Queries that could not be sent count as dead: look again.
            if !unsent {
                return;
            }
        }
    }

    fn start_store_or_finish(&mut self, now: u64, li: usize) {
        let id = self.lookups[li].id;
        let queries: Vec<(SocketAddr, QueryKind)> = {
            let l = &self.lookups[li];
            let targets = l.store_targets();
            match &l.kind {
                LookupKind::GetPeers {
                    announce: Some(port),
                    implied_port,
                } => targets
                    .into_iter()
                    .map(|(n, token)| {
                        (
                            n.addr,
                            QueryKind::AnnouncePeer {
                                info_hash: l.target,
                                port: *port,
                                implied_port: *implied_port,
                                token,
                            },
                        )
                    })
                    .collect(),
                LookupKind::PutItem { item, cas } => targets
                    .into_iter()
                    .map(|(n, token)| {
                        let m = item.mutable.as_ref();
                        (
                            n.addr,
                            QueryKind::Put(PutArgs {
                                token,
                                v: item.v.clone(),
                                k: m.map(|m| m.k),
                                sig: m.and_then(|m| m.sig.as_slice().try_into().ok()),
                                seq: m.map(|m| m.seq),
                                cas: *cas,
                                salt: m.map(|m| m.salt.clone()).unwrap_or_default(),
                            }),
                        )
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        if queries.is_empty() {
            self.finish(now, li);
            return;
        }
        let mut sent = 0;
        for (addr, q) in queries {
            if self.send_query(now, addr, q, Purpose::Store(id)) {
                sent += 1;
            }
        }
        let l = &mut self.lookups[li];
        l.result.messages += sent;
        l.phase = Phase::Store {
            pending: sent as usize,
        };
        if sent == 0 {
            self.finish(now, li);
        }
    }

    fn finish(&mut self, now: u64, li: usize) {
        let mut l = self.lookups.swap_remove(li);
        let r = l.finish(now);
        // Late answers for this lookup are dropped; forget its queries.
        let id = l.id;
        self.pending
            .retain(|_, p| !matches!(p.purpose, Purpose::Lookup(x) | Purpose::Store(x) if x == id));
        if !l.internal {
            self.events.push_back(Event::LookupDone(id, Box::new(r)));
        }
    }

    fn query_failed(&mut self, now: u64, p: Pending, error: Option<i64>) {
        if error.is_none() {
            // A timeout: count against the node in the routing table.
            let v6 = p.to.is_ipv6();
            let id = self
                .table(v6)
                .entries()
                .find(|e| e.node.addr == p.to)
                .map(|e| e.node.id);
            if let Some(id) = id {
                self.table_mut(v6).failed(&id);
            }
        }
        match p.purpose {
            Purpose::Ping(Some(pid)) => self.events.push_back(Event::PingDone(pid, None)),
            Purpose::Ping(None) => {}
            Purpose::Lookup(lid) => {
                if let Some(l) = self.lookups.iter_mut().find(|l| l.id == lid) {
                    // A soft timeout already counted it.
                    if !p.slow && error.is_none() {
                        l.result.timeouts += 1;
                    }
                    if error.is_some() {
                        l.dead(p.to);
                    } else {
                        l.timed_out(p.to);
                    }
                }
                self.step(now, lid);
            }
            Purpose::Store(lid) => {
                if let Some(l) = self.lookups.iter_mut().find(|l| l.id == lid) {
                    if let Phase::Store { pending } = &mut l.phase {
                        *pending = pending.saturating_sub(1);
                    }
                    if let Some(code) = error {
                        l.result.store_errors.push((p.to, code));
                    } else {
                        l.result.timeouts += 1;
                    }
                }
                self.step(now, lid);
            }
        }
    }

    /// Handles one received datagram. Garbage is counted and dropped.
    pub fn handle_packet(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        let now = ms(now);
        self.counters.packets_in += 1;
        let msg = match Message::decode(data) {
            Ok(m) => m,
            Err(e) => {
                self.counters.decode_errors += 1;
                tracing::trace!(%from, error = %e, "dht: dropped undecodable packet");
                return;
            }
        };
        match msg.body {
            Body::Query(q) => self.handle_query(now, from, msg.tid, msg.read_only, q),
            Body::Response(r) => self.handle_response(now, from, &msg.tid, msg.ip, r),
            Body::Error(e) => {
                let Some(p) = self.take_pending(from, &msg.tid) else {
                    return;
                };
                self.counters.errors_received += 1;
                self.query_failed(now, p, Some(e.code));
            }
        }
    }

    fn take_pending(&mut self, from: SocketAddr, tid: &[u8]) -> Option<Pending> {
        let t = <[u8; 2]>::try_from(tid).ok().map(u16::from_be_bytes);
        match t.and_then(|t| self.pending.get(&t).map(|p| (t, p.to))) {
            Some((t, to)) if to == from => self.pending.remove(&t),
            _ => {
                self.counters.unexpected_responses += 1;
                None
            }
        }
    }

    fn handle_response(
        &mut self,
        now: u64,
        from: SocketAddr,
        tid: &[u8],
        ip: Option<SocketAddr>,
        r: Response,
    ) {
        let Some(p) = self.take_pending(from, tid) else {
            return;
        };
        let rtt = now.saturating_sub(p.sent);
        self.rtt.sample(rtt);
        if let Some(ip) = ip {
            self.vote_ip(ip.ip());
        }
        let v6 = from.is_ipv6();
        let node = NodeInfo {
            id: r.id,
            addr: from,
        };
        if let Insert::Cached { ping: Some(q) } = self.table_mut(v6).insert(node, now, true) {
            self.send_query(now, q.addr, QueryKind::Ping, Purpose::Ping(None));
        }
        match p.purpose {
            Purpose::Ping(Some(pid)) => self.events.push_back(Event::PingDone(
                pid,
                Some((r.id, Duration::from_millis(rtt))),
            )),
            Purpose::Ping(None) => {}
            Purpose::Store(lid) => {
                if let Some(l) = self.lookups.iter_mut().find(|l| l.id == lid) {
                    if let Phase::Store { pending } = &mut l.phase {
                        *pending = pending.saturating_sub(1);
                        l.result.stored += 1;
                    }
                }
                self.step(now, lid);
            }
            Purpose::Lookup(lid) => {
                self.lookup_response(now, lid, from, r);
                self.step(now, lid);
            }
        }
    }

    fn lookup_response(&mut self, _now: u64, lid: LookupId, from: SocketAddr, r: Response) {
        let Some(l) = self.lookups.iter_mut().find(|l| l.id == lid) else {
            return;
        };
        let hops = l.responded(from, r.id, r.token.clone());
        let v6 = from.is_ipv6();
        let nodes = if v6 { &r.nodes6 } else { &r.nodes };
        for n in nodes {
            if n.id != self.id {
                l.add(*n, hops.saturating_add(1), false);
            }
        }
        if l.result.peers.len() < crate::lookup::MAX_PEERS {
            for p in &r.values {
                if !l.result.peers.contains(p) && l.result.peers.len() < crate::lookup::MAX_PEERS {
                    l.result.peers.push(*p);
                }
            }
        }
        if let Some(s) = &r.samples {
            for h in s {
                if !l.result.samples.contains(h)
                    && l.result.samples.len() < crate::lookup::MAX_SAMPLE_RESULTS
                {
                    l.result.samples.push(*h);
                }
            }
        }
        if let (LookupKind::GetItem { salt, .. }, Some(v)) = (&l.kind, &r.v) {
            let item = match (r.k, r.sig, r.seq) {
                (Some(k), Some(sig), Some(seq)) => Item {
                    v: v.clone(),
                    mutable: Some(MutableFields {
                        k,
                        sig: sig.to_vec(),
                        seq,
                        salt: salt.clone(),
                    }),
                },
                _ => Item {
                    v: v.clone(),
                    mutable: None,
                },
            };
            if item.target() == l.target && item.validate().is_ok() {
                let better = l
                    .result
                    .item
                    .as_ref()
                    .is_none_or(|old| item.seq() > old.seq());
                if better {
                    l.result.item = Some(item);
                } else {
                    self.counters.stale_items += 1;
                }
            } else {
                self.counters.bad_items += 1;
            }
        }
    }

    fn vote_ip(&mut self, ip: IpAddr) {
        if let Some(v) = self.ip_votes.iter_mut().find(|v| v.0 == ip) {
            v.1 = v.1.saturating_add(1);
        } else if self.ip_votes.len() < 8 {
            self.ip_votes.push((ip, 1));
        }
    }
}

#[path = "answer.rs"]
mod answer;
#[path = "node_config.rs"]
mod config;
pub use config::Config;

#[cfg(test)]
#[path = "node_tests.rs"]
mod tests;
