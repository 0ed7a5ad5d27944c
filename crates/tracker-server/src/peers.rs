//! Compact peer storage: one swarm's peers of one address family as a vector
//! sorted by packed address (6 bytes for IPv4, 18 for IPv6: address then
//! big-endian port, the BEP 23 / BEP 7 wire form), each with a seeder flag
//! and the time of its last announce. An IPv4 entry takes 12 bytes, an IPv6
//! entry 24; lookups are binary searches, replies copy the packed bytes.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A peer address in its packed wire form: `N` is 6 (IPv4) or 18 (IPv6).
pub type Packed<const N: usize> = [u8; N];

/// Packs a socket address; an IPv4-mapped IPv6 address packs as IPv4.
pub fn pack(addr: SocketAddr) -> PackedAddr {
    let port = addr.port().to_be_bytes();
    match canonical_ip(addr.ip()) {
        IpAddr::V4(ip) => {
            let o = ip.octets();
            PackedAddr::V4([o[0], o[1], o[2], o[3], port[0], port[1]])
        }
        IpAddr::V6(ip) => {
            let mut p = [0u8; 18];
            p[..16].copy_from_slice(&ip.octets());
            p[16..].copy_from_slice(&port);
            PackedAddr::V6(p)
        }
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from a dual-stack socket)
/// as the IPv4 address it is; every other address unchanged.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Unpacks a 6- or 18-byte packed address.
pub fn unpack(p: &[u8]) -> Option<SocketAddr> {
    match p.len() {
        6 => Some(SocketAddr::new(
            Ipv4Addr::new(p[0], p[1], p[2], p[3]).into(),
            u16::from_be_bytes([p[4], p[5]]),
        )),
        18 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&p[..16]);
            Some(SocketAddr::new(
                Ipv6Addr::from(a).into(),
                u16::from_be_bytes([p[16], p[17]]),
            ))
        }
        _ => None,
    }
}

/// A packed address of either family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PackedAddr {
    /// 4 address bytes and 2 port bytes.
    V4(Packed<6>),
    /// 16 address bytes and 2 port bytes.
    V6(Packed<18>),
}

/// One stored peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<const N: usize> {
    /// Its packed address (the sort key).
    pub addr: Packed<N>,
    /// It announced `left=0`.
    pub seeder: bool,
    /// Tracker time (seconds) of its last announce.
    pub seen: u32,
}

/// What an insert or update did, so the caller can keep its counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    /// A new peer was stored.
    Added,
    /// A known peer was refreshed; `was_seeder` is its previous flag.
    Updated {
        /// Its seeder flag before this announce.
        was_seeder: bool,
    },
    /// A new peer was not stored: the list is at its bound.
    Full,
}

/// The peers of one family of one swarm, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct PeerList<const N: usize> {
    entries: Vec<Entry<N>>,
}

impl<const N: usize> PeerList<N> {
    /// Number of peers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The peers in address order.
    pub fn entries(&self) -> &[Entry<N>] {
        &self.entries
    }

    fn find(&self, addr: &Packed<N>) -> Result<usize, usize> {
        self.entries.binary_search_by(|e| e.addr.cmp(addr))
    }

    /// Stores or refreshes `addr`; a new peer is stored only while the list
    /// holds fewer than `max` and `may_grow` is true.
    pub fn upsert(
        &mut self,
        addr: Packed<N>,
        seeder: bool,
        now: u32,
        max: usize,
        may_grow: bool,
    ) -> Upsert {
        match self.find(&addr) {
            Ok(i) => {
                let e = &mut self.entries[i];
                let was_seeder = e.seeder;
                e.seeder = seeder;
                e.seen = now;
                Upsert::Updated { was_seeder }
            }
            Err(i) => {
                if self.entries.len() >= max || !may_grow {
                    return Upsert::Full;
                }
                if self.entries.len() == self.entries.capacity() {
                    // Grow by a quarter (at least 2) instead of doubling:
                    // most swarms are small and long-lived.
                    let extra = (self.entries.len() / 4).max(2);
                    self.entries.reserve_exact(extra);
                }
                self.entries.insert(
                    i,
                    Entry {
                        addr,
                        seeder,
                        seen: now,
                    },
                );
                Upsert::Added
            }
        }
    }

    /// Removes `addr`; returns its seeder flag if it was there.
    pub fn remove(&mut self, addr: &Packed<N>) -> Option<bool> {
        let i = self.find(addr).ok()?;
        let e = self.entries.remove(i);
        self.shrink();
        Some(e.seeder)
    }

    /// Removes peers last seen before `deadline`; returns (peers, seeders) removed.
    pub fn expire(&mut self, deadline: u32) -> (usize, usize) {
        let before = self.entries.len();
        let mut seeders = 0;
        self.entries.retain(|e| {
            let keep = e.seen >= deadline;
            if !keep && e.seeder {
                seeders += 1;
            }
            keep
        });
        let removed = before - self.entries.len();
        if removed > 0 {
            self.shrink();
        }
        (removed, seeders)
    }

    fn shrink(&mut self) {
        if self.entries.capacity() > 2 * self.entries.len() + 4 {
            self.entries.shrink_to_fit();
        }
    }

    /// Appends up to `want` packed addresses to `out`, starting at index
    /// `start` (mod len) and wrapping, skipping `skip` and, when
    /// `leechers_only`, seeders. Returns how many were appended.
    pub fn select(
        &self,
        start: usize,
        want: usize,
        skip: Option<&Packed<N>>,
        leechers_only: bool,
        out: &mut Vec<u8>,
    ) -> usize {
        let n = self.entries.len();
        if n == 0 || want == 0 {
            return 0;
        }
        let start = start % n;
        let mut taken = 0;
        for e in self.entries[start..]
            .iter()
            .chain(self.entries[..start].iter())
        {
            if taken >= want {
                break;
            }
            if (leechers_only && e.seeder) || skip == Some(&e.addr) {
                continue;
            }
            out.extend_from_slice(&e.addr);
            taken += 1;
        }
        taken
    }

    /// Builds a list from entries in any order; later duplicates are dropped.
    pub fn from_entries(mut entries: Vec<Entry<N>>) -> Self {
        entries.sort_by_key(|e| e.addr);
        entries.dedup_by(|a, b| a.addr == b.addr);
        entries.shrink_to_fit();
        PeerList { entries }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_compact() {
        assert_eq!(std::mem::size_of::<Entry<6>>(), 12);
        assert_eq!(std::mem::size_of::<Entry<18>>(), 24);
    }

    #[test]
    fn pack_unpack_and_mapped() {
        let a: SocketAddr = "[::ffff:10.0.0.1]:80".parse().unwrap();
        assert_eq!(pack(a), PackedAddr::V4([10, 0, 0, 1, 0, 80]));
        let b: SocketAddr = "[2001:db8::1]:6881".parse().unwrap();
        let PackedAddr::V6(p) = pack(b) else {
            panic!("v6 expected")
        };
        assert_eq!(unpack(&p), Some(b));
        assert_eq!(unpack(&[1, 2, 3]), None);
    }

    #[test]
    fn upsert_remove_expire_select() {
        let mut l = PeerList::<6>::default();
        for i in (0..10u8).rev() {
            assert_eq!(l.upsert([i; 6], i % 2 == 0, 10, 8, true), {
                if i >= 2 {
                    Upsert::Added
                } else {
                    Upsert::Full
                }
            });
        }
        assert_eq!(l.len(), 8);
        assert!(l.entries().windows(2).all(|w| w[0].addr < w[1].addr));
        assert_eq!(
            l.upsert([4; 6], false, 20, 8, false),
            Upsert::Updated { was_seeder: true }
        );
        assert_eq!(l.remove(&[5; 6]), Some(false));
        assert_eq!(l.remove(&[5; 6]), None);
        // Everything but [4;6] was seen at 10.
        assert_eq!(l.expire(15), (6, 3));
        assert_eq!(l.len(), 1);
        let mut out = Vec::new();
        assert_eq!(l.select(3, 5, None, false, &mut out), 1);
        assert_eq!(out, vec![4; 6]);
        out.clear();
        assert_eq!(l.select(0, 5, Some(&[4; 6]), false, &mut out), 0);
    }

    #[test]
    fn select_wraps_and_filters_seeders() {
        let l = PeerList::<6>::from_entries(
            (0..6u8)
                .map(|i| Entry {
                    addr: [i; 6],
                    seeder: i < 3,
                    seen: 0,
                })
                .collect(),
        );
        let mut out = Vec::new();
        assert_eq!(l.select(4, 3, None, false, &mut out), 3);
        assert_eq!(out, [[4u8; 6], [5; 6], [0; 6]].concat());
        out.clear();
        assert_eq!(l.select(1, 10, None, true, &mut out), 3);
        assert_eq!(out, [[3u8; 6], [4; 6], [5; 6]].concat());
    }
}
