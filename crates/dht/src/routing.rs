//! The Kademlia routing table (BEP 5): buckets split around the own ID, node states,
//! replacement cache, IP/subnet diversity and BEP 42 admission.
//!
//! Bucket `i` (for `i < len - 1`) holds nodes sharing exactly `i` leading bits with the
//! own ID; the last bucket holds everything closer. Only the last bucket splits. Like
//! libtorrent's `extended_routing_table`, the four farthest buckets hold 16x, 8x, 4x and
//! 2x `k` entries: lookups then start much closer to the target (fewer hops), at a small
//! memory cost. Times are milliseconds on the caller's clock.
use crate::bep42;
use crate::compact::NodeInfo;
use crate::id::Id20;
use std::net::{IpAddr, SocketAddr};

/// A node is "good" for this long after it last answered us (BEP 5: 15 minutes).
pub const GOOD_MS: u64 = 15 * 60 * 1000;
/// A bucket untouched this long is refreshed (BEP 5: 15 minutes).
pub const REFRESH_MS: u64 = 15 * 60 * 1000;

/// How BEP 42 node-ID checks affect admission.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Bep42Policy {
    /// IDs are not checked.
    Ignore,
    /// Non-compliant nodes are admitted only into free slots and are evicted first.
    Prefer,
    /// Non-compliant nodes (from non-exempt addresses) are never admitted.
    Enforce,
}

/// Routing-table settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Bucket size `k` (8 in mainline).
    pub k: usize,
    /// Larger far buckets (16/8/4/2 x k), as libtorrent's `extended_routing_table`.
    pub extended: bool,
    /// Replacement-cache size per bucket.
    pub replacements: usize,
    /// Failed queries in a row after which a node is bad.
    pub max_fails: u8,
    /// Limit entries per IP (1) and per /24 or /64 subnet (2) in a bucket; exempt
    /// (loopback, private) addresses are only limited per exact address.
    pub restrict_ips: bool,
    /// BEP 42 admission policy.
    pub bep42: Bep42Policy,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            k: 8,
            extended: true,
            replacements: 8,
            max_fails: 2,
            restrict_ips: true,
            bep42: Bep42Policy::Prefer,
        }
    }
}

/// State of a routing-table entry (BEP 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    /// Answered us within 15 minutes (or answered once and queried us within 15 minutes).
    Good,
    /// No recent activity.
    Questionable,
    /// Failed several queries in a row.
    Bad,
}

/// One routing-table entry.
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The node.
    pub node: NodeInfo,
    /// When it last answered one of our queries (0 = never).
    pub last_response: u64,
    /// When it last queried us (0 = never).
    pub last_query: u64,
    /// Failed queries in a row.
    pub fails: u8,
    /// Its ID passes BEP 42 for its address.
    pub verified: bool,
}

impl Entry {
    /// The BEP 5 state at time `now`.
    pub fn state(&self, now: u64, max_fails: u8) -> NodeState {
        if self.fails >= max_fails {
            NodeState::Bad
        } else if self.last_response > 0
            && (now.saturating_sub(self.last_response) < GOOD_MS
                || now.saturating_sub(self.last_query) < GOOD_MS && self.last_query > 0)
        {
            NodeState::Good
        } else {
            NodeState::Questionable
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    entries: Vec<Entry>,
    replacements: Vec<Entry>,
    last_changed: u64,
}

/// What [`RoutingTable::insert`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Insert {
    /// The node was already there; its timestamps were updated.
    Updated,
    /// The node was added.
    Added,
    /// The node went to the replacement cache; `ping` is a questionable entry worth
    /// pinging so it can be replaced if it is gone.
    Cached {
        /// A questionable node to check, if any.
        ping: Option<NodeInfo>,
    },
    /// Refused (own ID, IP limits, BEP 42, wrong family, or no room).
    Rejected,
}

/// A Kademlia routing table for one address family.
#[derive(Clone, Debug)]
pub struct RoutingTable {
    own: Id20,
    cfg: RoutingConfig,
    buckets: Vec<Bucket>,
    v6: bool,
}

fn subnet(ip: IpAddr) -> [u8; 8] {
    let mut s = [0u8; 8];
    match ip {
        IpAddr::V4(v4) => s[..3].copy_from_slice(&v4.octets()[..3]),
        IpAddr::V6(v6) => s.copy_from_slice(&v6.octets()[..8]),
    }
    s
}

impl RoutingTable {
    /// An empty table around `own` for IPv4 (`v6 = false`) or IPv6 nodes.
    pub fn new(own: Id20, v6: bool, cfg: RoutingConfig) -> Self {
        RoutingTable {
            own,
            cfg,
            buckets: vec![Bucket::default()],
            v6,
        }
    }

    /// The own ID the buckets are split around.
    pub fn own_id(&self) -> Id20 {
        self.own
    }

    /// Settings in use.
    pub fn config(&self) -> &RoutingConfig {
        &self.cfg
    }

    fn capacity(&self, bucket: usize) -> usize {
        if self.cfg.extended && bucket < 4 {
            self.cfg.k << (4 - bucket)
        } else {
            self.cfg.k
        }
    }

    fn bucket_of(&self, id: &Id20) -> usize {
        self.own.common_prefix_len(id).min(self.buckets.len() - 1)
    }

    /// Number of buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Number of entries (not counting replacement caches).
    pub fn len(&self) -> usize {
        self.buckets.iter().map(|b| b.entries.len()).sum()
    }

    /// True when the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.buckets.iter().all(|b| b.entries.is_empty())
    }

    /// Looks up the entry for `id`.
    pub fn get(&self, id: &Id20) -> Option<&Entry> {
        self.buckets[self.bucket_of(id)]
            .entries
            .iter()
            .find(|e| e.node.id == *id)
    }

    fn admissible(&self, b: &Bucket, node: &NodeInfo, verified: bool) -> bool {
        if node.id == self.own || node.addr.is_ipv6() != self.v6 || node.addr.port() == 0 {
            return false;
        }
        let ip = node.addr.ip();
        let exempt = bep42::is_exempt(ip);
        if self.cfg.bep42 == Bep42Policy::Enforce && !verified && !exempt {
            return false;
        }
        if !self.cfg.restrict_ips {
            return true;
        }
        let all = b.entries.iter().chain(b.replacements.iter());
        if exempt {
            return !all.clone().any(|e| e.node.addr == node.addr);
        }
        let sn = subnet(ip);
        let mut same_subnet = 0;
        for e in all {
            if e.node.addr.ip() == ip {
                return false;
            }
            if subnet(e.node.addr.ip()) == sn {
                same_subnet += 1;
            }
        }
        same_subnet < 2
    }

    /// Records that `node` was heard from at `now`: `responded` when it answered our
    /// query (with `rtt`), otherwise it queried us. Nodes that only query are added
    /// only into free slots and stay questionable until they answer.
    pub fn insert(&mut self, node: NodeInfo, now: u64, responded: bool) -> Insert {
        let now = now.max(1);
        let verified = bep42::is_valid(&node.id, node.addr.ip());
        loop {
            let bi = self.bucket_of(&node.id);
            let cap = self.capacity(bi);
            let max_fails = self.cfg.max_fails;
            let is_last = bi == self.buckets.len() - 1;
            let b = &mut self.buckets[bi];
            if let Some(e) = b.entries.iter_mut().find(|e| e.node.id == node.id) {
                if e.node.addr != node.addr {
                    // Same ID from another address: keep the known one unless it is bad.
                    if e.state(now, max_fails) != NodeState::Bad || !responded {
                        return Insert::Rejected;
                    }
                    e.node.addr = node.addr;
                }
                if responded {
                    e.last_response = now;
                    e.fails = 0;
                } else {
                    e.last_query = now;
                }
                b.last_changed = now;
                return Insert::Updated;
            }
            let b = &self.buckets[bi];
            if !self.admissible(b, &node, verified) {
                return Insert::Rejected;
            }
            let entry = Entry {
                node,
                last_response: if responded { now } else { 0 },
                last_query: if responded { 0 } else { now },
                fails: 0,
                verified,
            };
            let b = &mut self.buckets[bi];
            if b.entries.len() < cap {
                b.entries.push(entry);
                b.last_changed = now;
                return Insert::Added;
            }
            if is_last && self.buckets.len() < 160 && self.split() {
                continue;
            }
            if !responded {
                return Insert::Rejected;
            }
            let b = &mut self.buckets[bi];
            // Replace a bad node, or an unverified one by a verified one (BEP 42 prefer).
            let prefer = self.cfg.bep42 == Bep42Policy::Prefer;
            if let Some(i) = b
                .entries
                .iter()
                .position(|e| e.state(now, max_fails) == NodeState::Bad)
                .or_else(|| {
                    (prefer && verified)
                        .then(|| b.entries.iter().position(|e| !e.verified))
                        .flatten()
                })
            {
                b.entries[i] = entry;
                b.last_changed = now;
                return Insert::Added;
            }
            let ping = b
                .entries
                .iter()
                .filter(|e| e.state(now, max_fails) == NodeState::Questionable)
                .min_by_key(|e| e.last_response.max(e.last_query))
                .map(|e| e.node);
            if let Some(r) = b.replacements.iter_mut().find(|e| e.node.id == node.id) {
                *r = entry;
            } else {
                if b.replacements.len() >= self.cfg.replacements {
                    b.replacements.remove(0);
                }
                b.replacements.push(entry);
            }
            return Insert::Cached { ping };
        }
    }

    /// Splits the last bucket; false when nothing would move (cannot help).
    fn split(&mut self) -> bool {
        let last = self.buckets.len() - 1;
        let mut old = std::mem::take(&mut self.buckets[last]);
        let mut next = Bucket {
            last_changed: old.last_changed,
            ..Bucket::default()
        };
        let own = self.own;
        let (stay, go): (Vec<Entry>, Vec<Entry>) = old
            .entries
            .drain(..)
            .partition(|e| own.common_prefix_len(&e.node.id) == last);
        let (rstay, rgo): (Vec<Entry>, Vec<Entry>) = old
            .replacements
            .drain(..)
            .partition(|e| own.common_prefix_len(&e.node.id) == last);
        old.entries = stay;
        old.replacements = rstay;
        next.entries = go;
        next.replacements = rgo;
        self.buckets[last] = old;
        self.buckets.push(next);
        // Fill the (possibly shrunk) old bucket from its replacements.
        let cap = self.capacity(last);
        let b = &mut self.buckets[last];
        while b.entries.len() < cap {
            match b.replacements.pop() {
                Some(r) => b.entries.push(r),
                None => break,
            }
        }
        true
    }

    /// Records a failed query to `id`; a node that becomes bad is replaced from the
    /// replacement cache when one is available. Returns true when it was removed.
    pub fn failed(&mut self, id: &Id20) -> bool {
        let bi = self.bucket_of(id);
        let max_fails = self.cfg.max_fails;
        let b = &mut self.buckets[bi];
        let Some(i) = b.entries.iter().position(|e| e.node.id == *id) else {
            return false;
        };
        b.entries[i].fails = b.entries[i].fails.saturating_add(1);
        if b.entries[i].fails >= max_fails {
            if let Some(r) = b.replacements.pop() {
                b.entries[i] = r;
                return true;
            }
        }
        false
    }

    /// Removes `id` outright (for example after it answered with a different ID).
    pub fn remove(&mut self, id: &Id20) -> bool {
        let bi = self.bucket_of(id);
        let b = &mut self.buckets[bi];
        let before = b.entries.len();
        b.entries.retain(|e| e.node.id != *id);
        if b.entries.len() < before {
            if let Some(r) = b.replacements.pop() {
                b.entries.push(r);
            }
            return true;
        }
        false
    }

    /// The up to `n` non-bad entries closest to `target`, closest first.
    pub fn closest(&self, target: &Id20, n: usize) -> Vec<NodeInfo> {
        let mf = self.cfg.max_fails;
        let mut all: Vec<(Id20, NodeInfo)> = self
            .buckets
            .iter()
            .flat_map(|b| b.entries.iter())
            .filter(|e| e.fails < mf)
            .map(|e| (e.node.id.distance(target), e.node))
            .collect();
        if all.len() > n && n > 0 {
            all.select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
            all.truncate(n);
        }
        all.sort_unstable_by_key(|a| a.0);
        all.truncate(n);
        all.into_iter().map(|(_, n)| n).collect()
    }

    /// Every entry, bucket by bucket.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// Random targets, one per bucket not changed since `now - REFRESH_MS`, for a
    /// refresh lookup (`find_node`); marks those buckets as refreshed.
    pub fn refresh_targets<R: rand::Rng + ?Sized>(&mut self, now: u64, rng: &mut R) -> Vec<Id20> {
        let mut out = Vec::new();
        let n = self.buckets.len();
        for (i, b) in self.buckets.iter_mut().enumerate() {
            if now.saturating_sub(b.last_changed) >= REFRESH_MS {
                b.last_changed = now;
                let t = self.own.random_with_prefix(i, rng);
                // Inside bucket i (i < n - 1) the bit after the prefix differs.
                out.push(if i + 1 < n {
                    t.with_bit(i, !self.own.bit(i))
                } else {
                    t
                });
            }
        }
        out
    }

    /// Questionable entries not heard from for 15 minutes: worth a ping.
    pub fn stale(&self, now: u64, max: usize) -> Vec<NodeInfo> {
        self.entries()
            .filter(|e| e.state(now, self.cfg.max_fails) == NodeState::Questionable)
            .filter(|e| now.saturating_sub(e.last_response.max(e.last_query)) >= GOOD_MS)
            .take(max)
            .map(|e| e.node)
            .collect()
    }

    /// Addresses of every entry, to save the table (see [`crate::persist`]).
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.entries().map(|e| e.node).collect()
    }

    /// Heap bytes used by the table, approximately (for memory budgets).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self
                .buckets
                .iter()
                .map(|b| {
                    (b.entries.capacity() + b.replacements.capacity())
                        * std::mem::size_of::<Entry>()
                })
                .sum::<usize>()
    }
}

/// Whether `addr` belongs in the IPv6 table.
pub fn is_v6(addr: &SocketAddr) -> bool {
    addr.is_ipv6()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    fn node(id: Id20, i: u32) -> NodeInfo {
        let ip = std::net::Ipv4Addr::from(0x0100_0000 + i * 256);
        NodeInfo {
            id,
            addr: SocketAddr::new(ip.into(), 6881),
        }
    }

    fn cfg() -> RoutingConfig {
        RoutingConfig {
            bep42: Bep42Policy::Ignore,
            extended: false,
            ..RoutingConfig::default()
        }
    }

    #[test]
    fn splits_around_own_id() {
        let mut rng = SmallRng::seed_from_u64(3);
        let own = Id20::random(&mut rng);
        let mut t = RoutingTable::new(own, false, cfg());
        for i in 0..2000 {
            t.insert(node(Id20::random(&mut rng), i), 1000, true);
        }
        assert!(t.bucket_count() > 5, "buckets {}", t.bucket_count());
        for (bi, b) in t.buckets.iter().enumerate() {
            assert!(b.entries.len() <= 8);
            for e in &b.entries {
                let cpl = own.common_prefix_len(&e.node.id);
                if bi + 1 < t.bucket_count() {
                    assert_eq!(cpl, bi);
                } else {
                    assert!(cpl >= bi);
                }
            }
        }
        // Closest is sorted and really the closest known.
        let target = Id20::random(&mut rng);
        let c = t.closest(&target, 8);
        assert_eq!(c.len(), 8);
        let mut all: Vec<_> = t.nodes();
        all.sort_by_key(|n| n.id.distance(&target));
        assert_eq!(c, all[..8].to_vec());
    }

    #[test]
    fn extended_far_buckets() {
        let mut rng = SmallRng::seed_from_u64(4);
        let own = Id20::random(&mut rng);
        let mut t = RoutingTable::new(
            own,
            false,
            RoutingConfig {
                bep42: Bep42Policy::Ignore,
                ..RoutingConfig::default()
            },
        );
        for i in 0..5000 {
            t.insert(node(Id20::random(&mut rng), i), 1000, true);
        }
        assert_eq!(t.buckets[0].entries.len(), 128);
        assert_eq!(t.buckets[1].entries.len(), 64);
        assert_eq!(t.buckets[4].entries.len(), 8);
    }

    #[test]
    fn states_and_replacement() {
        let own = Id20::ZERO;
        let mut t = RoutingTable::new(own, false, cfg());
        // Fill bucket 0 (ids with top bit set) and keep it unsplittable by filling the
        // last bucket first: insert 8 nodes with top bit 1 and 8 with top bit 0.
        for i in 0..8u8 {
            let mut a = [0u8; 20];
            a[0] = 0x80 | i;
            t.insert(node(Id20(a), u32::from(i)), 10, true);
            let mut b = [0u8; 20];
            b[0] = 0x40 | i;
            t.insert(node(Id20(b), 100 + u32::from(i)), 10, true);
        }
        let mut extra = [0u8; 20];
        extra[0] = 0x90;
        let r = t.insert(node(Id20(extra), 500), 20, true);
        assert_eq!(r, Insert::Cached { ping: None });
        let e = *t.entries().next().unwrap();
        assert_eq!(e.state(20, 2), NodeState::Good);
        assert_eq!(e.state(20 + GOOD_MS, 2), NodeState::Questionable);
        // Two failures make the first node bad; it is replaced from the cache.
        let mut first = [0u8; 20];
        first[0] = 0x80;
        assert!(!t.failed(&Id20(first)));
        assert!(t.failed(&Id20(first)));
        assert!(t.get(&Id20(extra)).is_some());
        assert!(t.get(&Id20(first)).is_none());
        // Questionable nodes are offered for a ping when the bucket is full.
        let mut more = [0u8; 20];
        more[0] = 0xa0;
        match t.insert(node(Id20(more), 600), 20 + GOOD_MS, true) {
            Insert::Cached { ping: Some(_) } => {}
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ip_limits() {
        let mut t = RoutingTable::new(Id20::ZERO, false, cfg());
        let mut rng = SmallRng::seed_from_u64(5);
        let a: SocketAddr = "1.2.3.4:1".parse().unwrap();
        let b: SocketAddr = "1.2.3.4:2".parse().unwrap();
        let c: SocketAddr = "1.2.3.5:2".parse().unwrap();
        let d: SocketAddr = "1.2.3.6:2".parse().unwrap();
        let mut id = || {
            let mut i = Id20::random(&mut rng);
            i.0[0] |= 0x80;
            i
        };
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: a }, 5, true),
            Insert::Added
        );
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: b }, 5, true),
            Insert::Rejected
        );
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: c }, 5, true),
            Insert::Added
        );
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: d }, 5, true),
            Insert::Rejected
        );
        // Loopback: distinct ports are fine.
        let l1: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let l2: SocketAddr = "127.0.0.1:2".parse().unwrap();
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: l1 }, 5, true),
            Insert::Added
        );
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: l2 }, 5, true),
            Insert::Added
        );
        // Wrong family and own id are refused.
        let v6: SocketAddr = "[2001:db8::1]:1".parse().unwrap();
        assert_eq!(
            t.insert(NodeInfo { id: id(), addr: v6 }, 5, true),
            Insert::Rejected
        );
        assert_eq!(
            t.insert(
                NodeInfo {
                    id: Id20::ZERO,
                    addr: "9.9.9.9:1".parse().unwrap()
                },
                5,
                true
            ),
            Insert::Rejected
        );
    }

    #[test]
    fn bep42_enforce() {
        let mut t = RoutingTable::new(
            Id20::ZERO,
            false,
            RoutingConfig {
                bep42: Bep42Policy::Enforce,
                ..cfg()
            },
        );
        let mut rng = SmallRng::seed_from_u64(6);
        let ip: IpAddr = "8.8.8.8".parse().unwrap();
        let good = bep42::generate_id(ip, &mut rng);
        let mut bad = good;
        bad.0[0] ^= 0xff;
        let addr = SocketAddr::new(ip, 1);
        assert_eq!(
            t.insert(NodeInfo { id: bad, addr }, 5, true),
            Insert::Rejected
        );
        assert_eq!(
            t.insert(NodeInfo { id: good, addr }, 5, true),
            Insert::Added
        );
    }

    #[test]
    fn refresh_targets_fall_in_their_bucket() {
        let mut rng = SmallRng::seed_from_u64(8);
        let own = Id20::random(&mut rng);
        let mut t = RoutingTable::new(own, false, cfg());
        for i in 0..500 {
            t.insert(node(Id20::random(&mut rng), i), 1, true);
        }
        let targets = t.refresh_targets(REFRESH_MS + 10, &mut rng);
        assert_eq!(targets.len(), t.bucket_count());
        for (i, tg) in targets.iter().enumerate().take(t.bucket_count() - 1) {
            assert_eq!(own.common_prefix_len(tg), i);
        }
        assert!(t.refresh_targets(REFRESH_MS + 20, &mut rng).is_empty());
    }
}
