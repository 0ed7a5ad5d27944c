//! Iterative Kademlia lookups: candidate set, adaptive parallelism, termination, and
//! the store phase (`announce_peer` / `put` to the k closest with their tokens).
//!
//! Definitions used by the simulator and tests:
//! - **hops** of a node reached by a lookup: 1 for a node taken from the own routing
//!   table (or a bootstrap address), and `h + 1` for a node first returned by a node
//!   with hops `h`. "Hops to reach the closest node" is the hops value of the closest
//!   node that answered.
//! - A lookup **succeeds** when the node closest to the target among all live nodes
//!   answered it (so it is the first of [`LookupResult::closest`]).
use crate::compact::NodeInfo;
use crate::id::Id20;
use crate::item::Item;
use std::net::SocketAddr;
use std::time::Duration;

/// Identifies a lookup started on a [`crate::Node`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LookupId(pub u64);

/// What a lookup is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupKind {
    /// `find_node`: the k closest nodes.
    FindNode,
    /// `get_peers`, then optionally `announce_peer` to the k closest.
    GetPeers {
        /// Announce this port after the search (`None`: search only).
        announce: Option<u16>,
        /// Ask the storers to use our UDP source port instead (`implied_port`).
        implied_port: bool,
    },
    /// BEP 44 `get`; `seq` asks only for newer mutable items.
    GetItem {
        /// Only items with a larger sequence number.
        seq: Option<i64>,
        /// Expected salt for mutable items (target = SHA-1(k + salt)).
        salt: Vec<u8>,
    },
    /// BEP 44 `get` for tokens, then `put` to the k closest.
    PutItem {
        /// The item to store.
        item: Item,
        /// Compare-and-swap against this seq.
        cas: Option<i64>,
    },
    /// BEP 51 `sample_infohashes`.
    Sample,
}

/// A node that answered a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reached {
    /// The node.
    pub node: NodeInfo,
    /// Hops needed to reach it (see the module docs).
    pub hops: u8,
}

/// The outcome of a lookup.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LookupResult {
    /// The target searched for.
    pub target: Id20,
    /// Nodes that answered, closest first (at most k).
    pub closest: Vec<Reached>,
    /// Peers found (`get_peers`).
    pub peers: Vec<SocketAddr>,
    /// The item found (BEP 44 `get`: the one with the highest seq).
    pub item: Option<Item>,
    /// Info-hash samples found (BEP 51), deduplicated.
    pub samples: Vec<Id20>,
    /// Nodes that acknowledged our `announce_peer` or `put`.
    pub stored: usize,
    /// KRPC errors received for `announce_peer` or `put` (code per node).
    pub store_errors: Vec<(SocketAddr, i64)>,
    /// Queries sent for this lookup (including the store phase).
    pub messages: u32,
    /// Queries that timed out (counted at their soft timeout).
    pub timeouts: u32,
    /// Distinct nodes that gave a real answer to a search query (KRPC error replies
    /// and duplicate answers to a retransmission are not counted).
    pub responses: u32,
    /// Search queries sent once more after their soft timeout, to nodes among the
    /// k closest not known dead (a lost datagram must not drop that branch).
    pub retransmits: u32,
    /// Time from start to completion.
    pub duration: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CState {
    New,
    InFlight,
    /// Past the soft timeout: no longer holds a parallelism slot, but the search
    /// still waits for it (until the hard timeout) when it is among the k closest.
    Slow,
    Responded,
    /// Hard timeout or error reply.
    Dead,
}

#[derive(Clone, Debug)]
pub(crate) struct Candidate {
    pub node: NodeInfo,
    pub dist: Id20,
    pub state: CState,
    pub hops: u8,
    pub token: Option<Vec<u8>>,
    /// Address-only seed (bootstrap): the ID is not known until it answers.
    pub unknown_id: bool,
    /// Queries to this node still waiting for an answer (the first one and, after a
    /// soft timeout, one retransmission).
    pub outstanding: u8,
    /// Whether the query was already sent again.
    pub retransmitted: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    Search,
    Store { pending: usize },
}

/// Most candidates kept per lookup.
pub const MAX_CANDIDATES: usize = 96;
/// Most peers collected per lookup.
pub const MAX_PEERS: usize = 500;
/// Most samples collected per lookup.
pub const MAX_SAMPLE_RESULTS: usize = 1000;

#[derive(Clone, Debug)]
pub(crate) struct Lookup {
    pub id: LookupId,
    pub kind: LookupKind,
    pub target: Id20,
    pub candidates: Vec<Candidate>,
    pub phase: Phase,
    pub alpha: usize,
    pub max_alpha: usize,
    pub k: usize,
    pub started: u64,
    pub result: LookupResult,
    /// Internal (refresh) lookups produce no event.
    pub internal: bool,
}

impl Lookup {
    pub fn new(
        id: LookupId,
        kind: LookupKind,
        target: Id20,
        k: usize,
        alpha: usize,
        now: u64,
    ) -> Self {
        Lookup {
            id,
            kind,
            target,
            candidates: Vec::new(),
            phase: Phase::Search,
            alpha,
            max_alpha: alpha * 2,
            k,
            started: now,
            result: LookupResult {
                target,
                ..LookupResult::default()
            },
            internal: false,
        }
    }

    /// Adds a candidate unless known; keeps the list sorted and bounded.
    pub fn add(&mut self, node: NodeInfo, hops: u8, unknown_id: bool) {
        if self
            .candidates
            .iter()
            .any(|c| (!unknown_id && c.node.id == node.id) || c.node.addr == node.addr)
        {
            return;
        }
        let dist = if unknown_id {
            Id20([0xff; 20])
        } else {
            node.id.distance(&self.target)
        };
        let c = Candidate {
            node,
            dist,
            state: CState::New,
            hops,
            token: None,
            unknown_id,
            outstanding: 0,
            retransmitted: false,
        };
        let pos = self.candidates.partition_point(|x| x.dist <= dist);
        if pos >= MAX_CANDIDATES {
            return;
        }
        self.candidates.insert(pos, c);
        if self.candidates.len() > MAX_CANDIDATES {
            // Drop the farthest that is not in flight (keep accounting right).
            if let Some(i) = self
                .candidates
                .iter()
                .rposition(|c| c.state != CState::InFlight)
            {
                self.candidates.remove(i);
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.candidates
            .iter()
            .filter(|c| c.state == CState::InFlight)
            .count()
    }

    /// The candidates to query now (marked in flight), or `None` when the search is
    /// over: the k closest non-failed candidates have all answered (or none are left).
    pub fn next_queries(&mut self) -> Option<Vec<NodeInfo>> {
        let mut responded = 0;
        let mut waiting = false;
        let mut in_flight = self.in_flight();
        let mut out = Vec::new();
        for c in self.candidates.iter_mut() {
            if responded >= self.k {
                break;
            }
            match c.state {
                CState::Responded => responded += 1,
                CState::Dead => {}
                CState::Slow => waiting = true,
                CState::InFlight => waiting = true,
                CState::New => {
                    waiting = true;
                    if in_flight < self.alpha {
                        c.state = CState::InFlight;
                        c.outstanding = 1;
                        in_flight += 1;
                        out.push(c.node);
                    }
                }
            }
        }
        if !waiting {
            // Only farther queries remain in flight: not needed for the result.
            return None;
        }
        Some(out)
    }

    fn find(&mut self, addr: SocketAddr) -> Option<usize> {
        self.candidates.iter().position(|c| c.node.addr == addr)
    }

    /// A candidate answered with `id`; returns its hops. The first answer of each
    /// candidate counts in [`LookupResult::responses`] (a late answer to the first
    /// query after the retransmission was answered is not counted again).
    pub fn responded(&mut self, addr: SocketAddr, id: Id20, token: Option<Vec<u8>>) -> u8 {
        let Some(i) = self.find(addr) else {
            return 1;
        };
        let mut c = self.candidates.remove(i);
        if c.state != CState::Responded {
            self.result.responses += 1;
        }
        c.outstanding = 0;
        c.state = CState::Responded;
        c.token = token;
        c.node.id = id;
        c.dist = id.distance(&self.target);
        c.unknown_id = false;
        let hops = c.hops;
        let pos = self.candidates.partition_point(|x| x.dist <= c.dist);
        self.candidates.insert(pos, c);
        hops
    }

    /// A candidate passed its soft timeout (it may still answer): its slot goes to
    /// another query and parallelism widens (adaptive alpha).
    ///
    /// Returns whether to send the query to it once more: a datagram may have been
    /// lost, and a node among the k closest that are not known dead decides the
    /// result. Only one retransmission per candidate; the caller reports it with
    /// [`Lookup::retransmitted`] once it is sent. Either answer counts, and the
    /// candidate is dead only when both queries timed out.
    pub fn slow(&mut self, addr: SocketAddr) -> bool {
        let Some(i) = self.find(addr) else {
            return false;
        };
        if self.candidates[i].state != CState::InFlight {
            return false;
        }
        self.candidates[i].state = CState::Slow;
        self.alpha = (self.alpha + 1).min(self.max_alpha);
        let rank = self.candidates[..i]
            .iter()
            .filter(|c| c.state != CState::Dead)
            .count();
        !self.candidates[i].retransmitted && rank < self.k
    }

    /// The query to a slow candidate was sent again.
    pub fn retransmitted(&mut self, addr: SocketAddr) {
        if let Some(i) = self.find(addr) {
            let c = &mut self.candidates[i];
            if c.state == CState::Slow {
                c.retransmitted = true;
                c.outstanding = c.outstanding.saturating_add(1);
                self.result.retransmits += 1;
            }
        }
    }

    /// A query to a candidate hit its hard timeout (or could not be sent): the
    /// candidate is dead when no other query to it is outstanding.
    pub fn timed_out(&mut self, addr: SocketAddr) {
        if let Some(i) = self.find(addr) {
            let c = &mut self.candidates[i];
            if matches!(c.state, CState::InFlight | CState::Slow) {
                c.outstanding = c.outstanding.saturating_sub(1);
                if c.outstanding == 0 {
                    c.state = CState::Dead;
                }
            }
        }
    }

    /// A candidate answered with a KRPC error: it is alive but useless, dead at once.
    pub fn dead(&mut self, addr: SocketAddr) {
        if let Some(i) = self.find(addr) {
            let c = &mut self.candidates[i];
            if matches!(c.state, CState::InFlight | CState::Slow) {
                c.state = CState::Dead;
                c.outstanding = 0;
            }
        }
    }

    /// The k closest that answered and gave a token (targets of the store phase).
    pub fn store_targets(&self) -> Vec<(NodeInfo, Vec<u8>)> {
        self.candidates
            .iter()
            .filter(|c| c.state == CState::Responded)
            .take(self.k)
            .filter_map(|c| c.token.clone().map(|t| (c.node, t)))
            .collect()
    }

    /// Fills `result.closest` and the duration.
    pub fn finish(&mut self, now: u64) -> LookupResult {
        let mut r = std::mem::take(&mut self.result);
        r.closest = self
            .candidates
            .iter()
            .filter(|c| c.state == CState::Responded && !c.unknown_id)
            .take(self.k)
            .map(|c| Reached {
                node: c.node,
                hops: c.hops,
            })
            .collect();
        r.duration = Duration::from_millis(now.saturating_sub(self.started));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(b: u8) -> NodeInfo {
        let mut id = [0u8; 20];
        id[0] = b;
        NodeInfo {
            id: Id20(id),
            addr: SocketAddr::from(([10, 0, 0, b], 1)),
        }
    }

    #[test]
    fn terminates_when_k_closest_answered() {
        let mut l = Lookup::new(LookupId(1), LookupKind::FindNode, Id20::ZERO, 2, 2, 0);
        for b in [8, 4, 2, 1] {
            l.add(n(b), 1, false);
        }
        let q = l.next_queries().unwrap();
        assert_eq!(q, vec![n(1), n(2)]);
        assert!(l.next_queries().unwrap().is_empty());
        l.responded(n(1).addr, n(1).id, None);
        l.slow(n(2).addr);
        // alpha grew to 3 after the soft timeout; 4 and 8 are queried.
        let q = l.next_queries().unwrap();
        assert_eq!(q, vec![n(4), n(8)]);
        l.responded(n(4).addr, n(4).id, Some(b"t".to_vec()));
        // 2 is slow but closer than 4: still waited for.
        assert!(l.next_queries().unwrap().is_empty());
        l.dead(n(2).addr);
        // k = 2 closest non-failed (1 and 4) answered: done, though 8 is in flight.
        assert!(l.next_queries().is_none());
        let r = l.finish(5);
        assert_eq!(r.closest.len(), 2);
        assert_eq!(r.closest[0].node, n(1));
        assert_eq!(l.store_targets(), vec![(n(4), b"t".to_vec())]);
    }

    fn state(l: &Lookup, b: u8) -> CState {
        l.candidates
            .iter()
            .find(|c| c.node == n(b))
            .map(|c| c.state)
            .unwrap()
    }

    #[test]
    fn a_lost_query_is_sent_again_once_and_either_answer_counts() {
        let mut l = Lookup::new(LookupId(1), LookupKind::FindNode, Id20::ZERO, 2, 2, 0);
        for b in [8, 4, 2, 1] {
            l.add(n(b), 1, false);
        }
        assert_eq!(l.next_queries().unwrap(), vec![n(1), n(2)]);
        // 1 is the closest: its soft timeout asks for a retransmission.
        assert!(l.slow(n(1).addr));
        l.retransmitted(n(1).addr);
        assert_eq!(l.result.retransmits, 1);
        // The first query's hard timeout does not kill it: the second is outstanding.
        l.timed_out(n(1).addr);
        assert_eq!(state(&l, 1), CState::Slow);
        // Still waited for: the lookup cannot end without it.
        l.responded(n(2).addr, n(2).id, None);
        l.responded(n(4).addr, n(4).id, None);
        assert!(l.next_queries().is_some());
        l.responded(n(1).addr, n(1).id, None);
        assert_eq!(state(&l, 1), CState::Responded);
        // A late duplicate answer is not counted twice.
        l.responded(n(1).addr, n(1).id, None);
        assert_eq!(l.result.responses, 3);
        assert!(l.next_queries().is_none());
        assert_eq!(l.finish(1).closest[0].node, n(1));
    }

    #[test]
    fn dead_only_when_both_queries_timed_out() {
        let mut l = Lookup::new(LookupId(1), LookupKind::FindNode, Id20::ZERO, 2, 2, 0);
        for b in [4, 2, 1] {
            l.add(n(b), 1, false);
        }
        l.next_queries().unwrap();
        assert!(l.slow(n(1).addr));
        l.retransmitted(n(1).addr);
        // A second soft timeout of the same candidate sends nothing more.
        assert!(!l.slow(n(1).addr));
        l.timed_out(n(1).addr);
        assert_eq!(state(&l, 1), CState::Slow);
        l.timed_out(n(1).addr);
        assert_eq!(state(&l, 1), CState::Dead);
        // Without a retransmission one timeout is enough.
        assert!(l.slow(n(2).addr));
        l.timed_out(n(2).addr);
        assert_eq!(state(&l, 2), CState::Dead);
        assert_eq!(l.result.retransmits, 1);
        assert_eq!(l.result.responses, 0);
    }

    #[test]
    fn only_the_k_closest_live_candidates_are_sent_again() {
        let mut l = Lookup::new(LookupId(1), LookupKind::FindNode, Id20::ZERO, 1, 3, 0);
        for b in [4, 2, 1] {
            l.add(n(b), 1, false);
        }
        assert_eq!(l.next_queries().unwrap(), vec![n(1), n(2), n(4)]);
        // 4 is not among the k = 1 closest that may still answer.
        assert!(!l.slow(n(4).addr));
        // Once 1 and 2 are dead, 4 decides the result and is worth a second try.
        l.dead(n(1).addr);
        l.dead(n(2).addr);
        let mut l2 = l.clone();
        l2.candidates.iter_mut().for_each(|c| {
            if c.node == n(4) {
                c.state = CState::InFlight;
            }
        });
        assert!(l2.slow(n(4).addr));
    }

    #[test]
    fn an_error_reply_kills_at_once() {
        let mut l = Lookup::new(LookupId(1), LookupKind::FindNode, Id20::ZERO, 2, 2, 0);
        l.add(n(1), 1, false);
        l.next_queries().unwrap();
        assert!(l.slow(n(1).addr));
        l.retransmitted(n(1).addr);
        l.dead(n(1).addr);
        assert_eq!(state(&l, 1), CState::Dead);
        // The other query's timeout changes nothing; no answer was counted.
        l.timed_out(n(1).addr);
        assert_eq!(state(&l, 1), CState::Dead);
        assert_eq!(l.result.responses, 0);
        assert!(l.next_queries().is_none());
    }

    #[test]
    fn closer_nodes_are_queried_first_and_bounded() {
        let mut l = Lookup::new(LookupId(1), LookupKind::FindNode, Id20::ZERO, 8, 3, 0);
        for b in (1..=200u8).rev() {
            l.add(n(b), 2, false);
        }
        assert_eq!(l.candidates.len(), MAX_CANDIDATES);
        assert_eq!(l.candidates[0].node, n(1));
        assert!(l.candidates.windows(2).all(|w| w[0].dist <= w[1].dist));
    }
}
