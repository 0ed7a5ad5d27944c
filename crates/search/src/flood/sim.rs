//! A deterministic simulation of flooding search: `n` [`FloodNode`]s on a
//! seeded random graph (a ring for connectivity plus random chords), every
//! message encoded and decoded on the way, delivered in FIFO order (one
//! millisecond per delivery), run until no message is left.
use super::{Action, FloodConfig, FloodMsg, FloodNode, FloodResult, MemoryLibrary, QueryId};
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;
use std::time::Duration;

/// Settings of a simulation.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Node settings (all nodes).
    pub flood: FloodConfig,
    /// Random chords added per node (beyond the ring).
    pub chords: usize,
    /// Seed of the graph and of the nodes' query ids.
    pub seed: u64,
    /// One library per node (their count is the number of nodes).
    pub libraries: Vec<MemoryLibrary>,
}

/// A running simulation.
#[derive(Debug)]
pub struct Sim {
    /// Neighbours of each node.
    pub adj: Vec<Vec<usize>>,
    nodes: Vec<FloodNode<usize>>,
    libs: Vec<MemoryLibrary>,
    now: Duration,
    queue: VecDeque<(usize, usize, Vec<u8>)>,
    /// Messages delivered so far.
    pub messages: u64,
    /// Bytes delivered so far.
    pub bytes: u64,
    /// Messages that did not decode.
    pub bad: u64,
}

impl Sim {
    /// Builds the graph and the nodes.
    pub fn new(cfg: SimConfig) -> Sim {
        let n = cfg.libraries.len();
        let mut rng = rand::rngs::SmallRng::seed_from_u64(cfg.seed);
        let mut adj = vec![Vec::new(); n];
        let link = |a: usize, b: usize, adj: &mut Vec<Vec<usize>>| {
            if a != b && !adj[a].contains(&b) {
                adj[a].push(b);
                adj[b].push(a);
            }
        };
        for i in 0..n {
            link(i, (i + 1) % n, &mut adj);
        }
        for i in 0..n {
            for _ in 0..cfg.chords {
                let j = rng.gen_range(0..n);
                link(i, j, &mut adj);
            }
        }
        let nodes = (0..n)
            .map(|i| FloodNode::new(cfg.flood, cfg.seed ^ (i as u64 + 1)))
            .collect();
        Sim {
            adj,
            nodes,
            libs: cfg.libraries,
            now: Duration::ZERO,
            queue: VecDeque::new(),
            messages: 0,
            bytes: 0,
            bad: 0,
        }
    }

    /// Hop distances from `from` (None: unreachable).
    pub fn distances(&self, from: usize) -> Vec<Option<usize>> {
        let mut d = vec![None; self.adj.len()];
        d[from] = Some(0);
        let mut q = VecDeque::from([from]);
        while let Some(a) = q.pop_front() {
            for &b in &self.adj[a] {
                if d[b].is_none() {
                    d[b] = d[a].map(|x| x + 1);
                    q.push_back(b);
                }
            }
        }
        d
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &FloodNode<usize> {
        &self.nodes[i]
    }

    /// Queues `msg` from `from` to `to` (e.g. a hostile node's message).
    pub fn inject(&mut self, from: usize, to: usize, msg: &FloodMsg) {
        self.queue.push_back((from, to, msg.encode()));
    }

    /// Lets `ms` milliseconds pass.
    pub fn advance(&mut self, ms: u64) {
        self.now += Duration::from_millis(ms);
    }

    fn push(
        &mut self,
        from: usize,
        actions: Vec<Action<usize>>,
        found: &mut Vec<(QueryId, FloodResult)>,
    ) {
        for a in actions {
            match a {
                Action::Send(to, m) => self.queue.push_back((from, to, m.encode())),
                Action::Found(id, rs) => found.extend(rs.into_iter().map(|r| (id, r))),
            }
        }
    }

    /// Delivers messages until none is left; returns the results found by
    /// any node's own queries.
    pub fn run(&mut self) -> Vec<(QueryId, FloodResult)> {
        let mut found = Vec::new();
        while let Some((from, to, bytes)) = self.queue.pop_front() {
            self.now += Duration::from_millis(1);
            self.messages += 1;
            self.bytes += bytes.len() as u64;
            let Ok(m) = FloodMsg::decode(&bytes) else {
                self.bad += 1;
                continue;
            };
            let peers = self.adj[to].clone();
            let actions = self.nodes[to].handle(self.now, from, m, &peers, &self.libs[to]);
            self.push(to, actions, &mut found);
        }
        found
    }

    /// Node `origin` asks `query`; runs to the end; returns the query id and
    /// the merged results the origin holds.
    pub fn query(&mut self, origin: usize, query: &str) -> (QueryId, Vec<FloodResult>) {
        let peers = self.adj[origin].clone();
        let (id, actions) = self.nodes[origin].start_query(self.now, query, &peers);
        let mut found = Vec::new();
        self.push(origin, actions, &mut found);
        self.run();
        (id, self.nodes[origin].results(&id).to_vec())
    }
}
