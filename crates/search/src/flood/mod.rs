//! Flooding search (Gnutella) as a BEP 10 extension (`shoal_search`),
//! sans-IO: [`FloodNode`] takes messages and the list of connected peers
//! and returns what to send; the engine (or [`sim`]) moves the bytes.
//!
//! A query carries a random id and a TTL. A node answers a query from its
//! library ([`Library`]) back to the peer it came from, and forwards it with
//! TTL − 1 to every other connected peer, once per id (the query-id cache
//! remembers, for a while, where each id came from). Results travel back
//! hop by hop along that reverse path; the originator merges them
//! (deduplicated by info-hash, bounded).
//!
//! Bounds: a token bucket per peer for the queries it sends us and one for
//! all the queries we forward; the id cache is bounded in entries and
//! lifetime; results relayed per query are bounded; messages are bounded
//! on decode ([`msg`]).
pub mod msg;
pub mod sim;

pub use msg::{FloodMsg, FloodMsgError, FloodResult, QueryId, EXTENSION_NAME, MAX_TTL};

use crate::keywords::{query_keywords, words};
use rand::{Rng, SeedableRng};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::time::Duration;

/// Settings of a flooding node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodConfig {
    /// TTL of our own queries.
    pub ttl: u8,
    /// Most query ids remembered.
    pub seen_capacity: usize,
    /// How long a query id is remembered (and its results routed).
    pub seen_lifetime: Duration,
    /// Queries accepted from one peer per second, sustained.
    pub peer_rate: f64,
    /// Queries accepted from one peer in a burst.
    pub peer_burst: f64,
    /// Queries forwarded per second (all peers), sustained.
    pub forward_rate: f64,
    /// Queries forwarded in a burst.
    pub forward_burst: f64,
    /// Most results of our library in one answer.
    pub max_answers: usize,
    /// Most results relayed back per query id.
    pub max_relayed: usize,
    /// Most results kept per own query.
    pub max_results: usize,
}

impl Default for FloodConfig {
    fn default() -> Self {
        FloodConfig {
            ttl: 4,
            seen_capacity: 10_000,
            seen_lifetime: Duration::from_secs(120),
            peer_rate: 1.0,
            peer_burst: 10.0,
            forward_rate: 20.0,
            forward_burst: 100.0,
            max_answers: msg::MAX_RESULTS_PER_MSG,
            max_relayed: 200,
            max_results: 200,
        }
    }
}

/// Torrents a node offers to flooded queries.
pub trait Library {
    /// At most `max` torrents matching `query`.
    fn matches(&self, query: &str, max: usize) -> Vec<FloodResult>;
}

/// A library in memory: a torrent matches when its name holds every
/// keyword of the query.
#[derive(Debug, Clone, Default)]
pub struct MemoryLibrary(pub Vec<FloodResult>);

impl Library for MemoryLibrary {
    fn matches(&self, query: &str, max: usize) -> Vec<FloodResult> {
        let q = query_keywords(query);
        if q.is_empty() {
            return Vec::new();
        }
        self.0
            .iter()
            .filter(|r| {
                let w = words(&r.name);
                q.iter().all(|k| w.contains(k))
            })
            .take(max)
            .cloned()
            .collect()
    }
}

impl Library for crate::TorrentIndex {
    fn matches(&self, query: &str, max: usize) -> Vec<FloodResult> {
        self.search(query, max)
            .unwrap_or_default()
            .into_iter()
            .map(|h| FloodResult {
                info_hash: h.info_hash,
                name: h.name,
                size: h.size,
            })
            .collect()
    }
}

/// What the node wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action<P> {
    /// Send this message to this peer.
    Send(P, FloodMsg),
    /// New results for one of our queries.
    Found(QueryId, Vec<FloodResult>),
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FloodCounters {
    /// Queries received.
    pub queries_in: u64,
    /// Queries dropped as already seen.
    pub duplicates: u64,
    /// Queries answered from our library (with at least one result).
    pub answered: u64,
    /// Queries dropped by a rate limit (the peer's or the forward budget).
    pub rate_limited: u64,
    /// Queries forwarded (messages).
    pub forwarded: u64,
    /// Results messages dropped (unknown id, or over the relay bound).
    pub results_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Duration,
}

impl Bucket {
    fn take(&mut self, now: Duration, rate: f64, burst: f64) -> bool {
        let dt = now.saturating_sub(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(burst);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Route<P> {
    /// Where the query came from; `None`: ours.
    from: Option<P>,
    relayed: usize,
    results: Vec<FloodResult>,
    have: HashSet<[u8; 20]>,
}

/// Most peers with a rate bucket (the map is cleared past it).
const MAX_BUCKETS: usize = 4096;

/// One node of the flooding protocol, generic over the peer handle `P`.
#[derive(Debug)]
pub struct FloodNode<P> {
    cfg: FloodConfig,
    rng: rand::rngs::SmallRng,
    routes: HashMap<QueryId, Route<P>>,
    order: VecDeque<(QueryId, Duration)>,
    peers: HashMap<P, Bucket>,
    forward: Bucket,
    counters: FloodCounters,
}

impl<P: Copy + Eq + Hash> FloodNode<P> {
    /// A node; `seed` drives its query ids.
    pub fn new(cfg: FloodConfig, seed: u64) -> Self {
        FloodNode {
            cfg,
            rng: rand::rngs::SmallRng::seed_from_u64(seed),
            routes: HashMap::new(),
            order: VecDeque::new(),
            peers: HashMap::new(),
            forward: Bucket {
                tokens: cfg.forward_burst,
                at: Duration::ZERO,
            },
            counters: FloodCounters::default(),
        }
    }

    /// The counters.
    pub fn counters(&self) -> FloodCounters {
        self.counters
    }

    /// The merged results of our query `id` so far.
    pub fn results(&self, id: &QueryId) -> &[FloodResult] {
        self.routes
            .get(id)
            .filter(|r| r.from.is_none())
            .map_or(&[], |r| r.results.as_slice())
    }

    fn expire(&mut self, now: Duration) {
        while let Some((id, at)) = self.order.front().copied() {
            let old = now.saturating_sub(at) >= self.cfg.seen_lifetime;
            if !old && self.order.len() <= self.cfg.seen_capacity {
                break;
            }
            self.order.pop_front();
            self.routes.remove(&id);
        }
    }

    fn remember(&mut self, now: Duration, id: QueryId, from: Option<P>) {
        self.routes.insert(
            id,
            Route {
                from,
                relayed: 0,
                results: Vec::new(),
                have: HashSet::new(),
            },
        );
        self.order.push_back((id, now));
        self.expire(now);
    }

    /// Sends `query` (a [`FloodMsg::Query`]) to every peer but `except`,
    /// within the forward budget.
    fn flood(
        &mut self,
        now: Duration,
        query: &FloodMsg,
        except: Option<P>,
        peers: &[P],
        out: &mut Vec<Action<P>>,
    ) {
        for p in peers.iter().filter(|p| Some(**p) != except) {
            if !self
                .forward
                .take(now, self.cfg.forward_rate, self.cfg.forward_burst)
            {
                self.counters.rate_limited += 1;
                break;
            }
            self.counters.forwarded += 1;
            out.push(Action::Send(*p, query.clone()));
        }
    }

    /// Starts a query to every peer in `peers`; its results come as
    /// [`Action::Found`] from [`FloodNode::handle`].
    pub fn start_query(
        &mut self,
        now: Duration,
        query: &str,
        peers: &[P],
    ) -> (QueryId, Vec<Action<P>>) {
        let id: QueryId = self.rng.gen();
        let query = crate::doc::clip_str(query, msg::MAX_QUERY_BYTES);
        self.remember(now, id, None);
        let mut out = Vec::new();
        let ttl = self.cfg.ttl.clamp(1, MAX_TTL);
        let q = FloodMsg::Query { id, ttl, query };
        self.flood(now, &q, None, peers, &mut out);
        (id, out)
    }

    /// Handles a message from `from`; `peers` are the connected peers that
    /// speak the extension; `library` answers queries.
    pub fn handle(
        &mut self,
        now: Duration,
        from: P,
        msg: FloodMsg,
        peers: &[P],
        library: &dyn Library,
    ) -> Vec<Action<P>> {
        self.expire(now);
        let mut out = Vec::new();
        match msg {
            FloodMsg::Query { id, ttl, query } => {
                self.counters.queries_in += 1;
                if self.routes.contains_key(&id) {
                    self.counters.duplicates += 1;
                    return out;
                }
                if self.peers.len() >= MAX_BUCKETS && !self.peers.contains_key(&from) {
                    self.peers.clear();
                }
                let (rate, burst) = (self.cfg.peer_rate, self.cfg.peer_burst);
                let bucket = self.peers.entry(from).or_insert(Bucket {
                    tokens: burst,
                    at: now,
                });
                if !bucket.take(now, rate, burst) {
                    self.counters.rate_limited += 1;
                    return out;
                }
                self.remember(now, id, Some(from));
                let answers = library.matches(&query, self.cfg.max_answers);
                if !answers.is_empty() {
                    self.counters.answered += 1;
                    out.push(Action::Send(
                        from,
                        FloodMsg::Results {
                            id,
                            results: answers,
                        },
                    ));
                }
                if ttl > 1 {
                    let q = FloodMsg::Query {
                        id,
                        ttl: ttl - 1,
                        query,
                    };
                    self.flood(now, &q, Some(from), peers, &mut out);
                }
            }
            FloodMsg::Results { id, results } => {
                let cfg = self.cfg;
                let Some(route) = self.routes.get_mut(&id) else {
                    self.counters.results_dropped += 1;
                    return out;
                };
                match route.from {
                    None => {
                        let mut new = Vec::new();
                        for r in results {
                            if route.results.len() >= cfg.max_results {
                                break;
                            }
                            if route.have.insert(r.info_hash) {
                                route.results.push(r.clone());
                                new.push(r);
                            }
                        }
                        if !new.is_empty() {
                            out.push(Action::Found(id, new));
                        }
                    }
                    Some(back) => {
                        let room = cfg.max_relayed.saturating_sub(route.relayed);
                        if room == 0 || back == from {
                            self.counters.results_dropped += 1;
                            return out;
                        }
                        let results: Vec<FloodResult> = results.into_iter().take(room).collect();
                        route.relayed += results.len();
                        out.push(Action::Send(back, FloodMsg::Results { id, results }));
                    }
                }
            }
        }
        out
    }
}
