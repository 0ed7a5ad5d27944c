//! The core's peer set: candidate addresses (from the user, the DHT,
//! trackers and peer exchange), dialling within limits with back-off,
//! incoming connections, handshakes, piece availability, interest and
//! choking, and the glue to the peer exchange core ([`crate::pex`]).
use super::{
    ban_key, Action, AddrInfo, AddrState, Peer, PeerCmd, TorrentCore, MAX_KNOWN_ADDRS,
    MAX_PEX_SOURCES, RECHOKE_INTERVAL,
};
use crate::choker::PeerStats;
use crate::peer_close::PeerClose;
use crate::picker::PeerKey;
use crate::status::TorrentState;
use shoal_wire::{Bitfield, PexMessage};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Where a candidate address came from (first source wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerSource {
    /// Given by the user or the DHT.
    Added,
    /// A tracker's announce response.
    Tracker,
    /// A connected peer's `ut_pex` message (BEP 11).
    Pex,
}

impl TorrentCore {
    /// New candidate addresses (bounded; unusable ones skipped).
    pub(crate) fn add_addrs(&mut self, now: Instant, addrs: Vec<SocketAddr>, source: PeerSource) {
        self.add_addrs_from(now, addrs, source, None);
    }

    fn add_addrs_from(
        &mut self,
        now: Instant,
        addrs: Vec<SocketAddr>,
        source: PeerSource,
        pex_from: Option<PeerKey>,
    ) {
        for a in addrs {
            if a.port() == 0 || a.ip().is_unspecified() {
                continue;
            }
            if !self.addrs.contains_key(&a) && self.addrs.len() >= MAX_KNOWN_ADDRS {
                continue;
            }
            let info = self.addrs.entry(a).or_insert(AddrInfo {
                state: AddrState::Idle,
                source,
                direct: false,
                pex_from: Vec::new(),
                failures: 0,
                retry_at: now,
            });
            match pex_from {
                Some(k) => {
                    if !info.pex_from.contains(&k) && info.pex_from.len() < MAX_PEX_SOURCES {
                        info.pex_from.push(k);
                    }
                }
                None => info.direct = true,
            }
        }
        self.status.known_peers = self.addrs.len();
    }

    /// BEP 11 `dropped` from `key`: `key` no longer names these; a candidate
    /// only PEX named, and no other connection still names, is forgotten
    /// (unless we are connected to it).
    fn drop_pex(&mut self, key: PeerKey, addrs: &[SocketAddr]) {
        for a in addrs {
            let Some(info) = self.addrs.get_mut(a) else {
                continue;
            };
            info.pex_from.retain(|&k| k != key);
            if !info.direct && info.pex_from.is_empty() && info.state == AddrState::Idle {
                self.addrs.remove(a);
            }
        }
        self.status.known_peers = self.addrs.len();
    }

    /// A connection from `addr` arrived for this torrent: its key, or `None`
    /// when it is refused (banned, full, paused).
    pub(crate) fn accept_incoming(&mut self, addr: SocketAddr) -> Option<PeerKey> {
        if self.banned.contains(&ban_key(addr))
            || self.peers.len() >= self.limits.max_peers
            || !self.active()
        {
            return None;
        }
        Some(self.register(addr, false, crate::info::PeerOrigin::Incoming))
    }

    /// An outgoing connection the driver set up by itself (an in-memory
    /// stream in tests): its key.
    pub(crate) fn attach_outgoing(&mut self, addr: SocketAddr) -> PeerKey {
        self.register(addr, true, crate::info::PeerOrigin::Added)
    }

    fn register(
        &mut self,
        addr: SocketAddr,
        outgoing: bool,
        origin: crate::info::PeerOrigin,
    ) -> PeerKey {
        let key = self.new_key();
        self.pex.add_peer(key, addr, outgoing);
        let reveal = self.new_reveal();
        self.peers.insert(
            key,
            Peer {
                addr,
                has: Bitfield::new(self.picker.num_pieces()),
                seed: false,
                peer_id: None,
                choking_us: true,
                interested_in_us: false,
                am_interested: false,
                am_choking: true,
                in_flight: HashSet::new(),
                pipeline_cap: shoal_wire::connection::DEFAULT_REQQ,
                down_rate: 0,
                recent_down_rate: 0,
                slow_start: super::SlowStart::new(),
                up_rate: 0,
                snubbed: false,
                interesting: 0,
                closing: false,
                origin,
                encrypted: false,
                utp: false,
                reveal,
            },
        );
        key
    }

    /// A peer finished its handshake. A seeder with a free upload slot
    /// unchokes it at once (see [`crate::choker`]), saving it a round trip
    /// once it turns interested.
    pub(super) fn on_handshake(&mut self, now: Instant, key: PeerKey, peer_id: shoal_base::PeerId) {
        let dup = self
            .peers
            .iter()
            .any(|(&k, p)| k != key && p.peer_id == Some(peer_id));
        if peer_id == self.peer_id {
            if let Some(a) = self.key_addr.get(&key).and_then(|a| self.addrs.get_mut(a)) {
                a.state = AddrState::Never;
            }
            self.close_peer(key);
        } else if dup {
            self.close_peer(key);
        } else if let Some(p) = self.peers.get_mut(&key) {
            p.peer_id = Some(peer_id);
            self.status.peers += 1;
            self.pex.on_handshake(key);
            self.reveal_more(key);
            if self.status.state == TorrentState::Seeding {
                self.refill_unchokes(now);
            }
        }
    }

    pub(super) fn on_bitfield(&mut self, key: PeerKey, bf: Bitfield) {
        self.drop_availability(key);
        if bf.len() != self.picker.num_pieces() {
            self.close_peer(key);
            return;
        }
        let full = bf.is_full();
        if full {
            self.picker.add_seed();
        } else {
            for i in bf.iter_ones() {
                self.picker.add_availability(i);
            }
        }
        self.pex.set_seed(key, full);
        let interesting = bf.iter_ones().filter(|&i| self.wanted(i)).count() as u32;
        if let Some(p) = self.peers.get_mut(&key) {
            p.has = bf;
            p.seed = full;
            p.interesting = interesting;
        }
        self.update_interest(key);
        self.fill(key);
        if full {
            self.end_super_seeding();
        } else {
            self.reveal_more(key);
        }
    }

    pub(super) fn on_have(&mut self, key: PeerKey, i: u32) {
        let wanted = self.wanted(i);
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        if p.has.set(i).unwrap_or(false) {
            if !p.seed {
                self.picker.add_availability(i);
            }
            let full = p.has.is_full();
            if full {
                // Announced with the seed flag from now on (BEP 11).
                self.pex.set_seed(key, true);
            }
            if wanted {
                p.interesting += 1;
                self.update_interest(key);
                self.fill(key);
            }
            if full {
                self.end_super_seeding();
            } else if self.was_shown(key, i) {
                self.reveal_more(key);
            }
        }
    }

    /// Tells `key` whether we are interested, when that changed.
    pub(super) fn update_interest(&mut self, key: PeerKey) {
        let downloading = self.status.state == TorrentState::Downloading;
        let Some(p) = self.peers.get_mut(&key) else {
            return;
        };
        let want = p.interesting > 0 && downloading;
        if want != p.am_interested {
            p.am_interested = want;
            self.send(key, PeerCmd::Interested(want));
        }
    }

    pub(super) fn drop_availability(&mut self, key: PeerKey) {
        let Some(p) = self.peers.get(&key) else {
            return;
        };
        if p.seed {
            self.picker.remove_seed();
        } else {
            for i in p.has.iter_ones() {
                self.picker.remove_availability(i);
            }
        }
    }

    pub(super) fn on_closed(&mut self, now: Instant, key: PeerKey, reason: &PeerClose) {
        self.pex.remove_peer(key);
        self.forget_metadata_source(key);
        self.requeue_layers_of(key);
        self.drop_availability(key);
        self.picker.release_peer(key);
        self.release_reveals(key);
        let Some(p) = self.peers.remove(&key) else {
            return;
        };
        tracing::debug!(peer = %p.addr, %reason, "peer closed");
        if p.peer_id.is_some() {
            self.status.peers = self.status.peers.saturating_sub(1);
        }
        if let Some(addr) = self.key_addr.remove(&key) {
            if let Some(a) = self.addrs.get_mut(&addr) {
                if a.state != AddrState::Never {
                    a.state = AddrState::Idle;
                    if p.peer_id.is_some() {
                        // A connection that worked: 4 s before the next.
                        a.failures = 1;
                    }
                    a.failures += 1;
                    // 2 s after a first failed dial (a peer whose client was
                    // still starting), doubling up to 256 s.
                    let backoff = Duration::from_secs(1u64 << a.failures.min(8));
                    a.retry_at = now + backoff;
                }
            }
        }
        if !p.am_choking {
            self.refill_unchokes(now);
        }
        // Its blocks are free again: hand them to the others.
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            self.fill(k);
        }
    }

    /// A `ut_pex` message from `key`: usable addresses become candidates
    /// (dialled within the usual connection limits).
    pub(super) fn on_pex(&mut self, now: Instant, key: PeerKey, m: &PexMessage) {
        let from = self.peers.get(&key).map(|p| p.addr);
        let seeding = self.status.state == TorrentState::Seeding;
        match self.pex.on_message(key, now, m, seeding) {
            Ok(addrs) => {
                tracing::debug!(peer = ?from, added = m.added.len(), used = addrs.len(),
                    dropped = m.dropped.len(), "ut_pex received");
                let dropped = self.pex.dropped(key, m);
                self.drop_pex(key, &dropped);
                self.add_addrs_from(now, addrs, PeerSource::Pex, Some(key));
            }
            Err(e) => tracing::debug!(peer = ?from, reason = %e, "ut_pex ignored"),
        }
    }

    /// Queues the `ut_pex` messages that are due.
    pub(super) fn send_pex(&mut self, now: Instant) {
        for (key, m) in self.pex.poll_transmit(now) {
            tracing::debug!(peer = ?self.peers.get(&key).map(|p| p.addr),
                added = m.added.len(), dropped = m.dropped.len(), "ut_pex sent");
            self.send(key, PeerCmd::Pex(m));
        }
    }

    /// Decides who we upload to (tit-for-tat plus an optimistic slot).
    pub(super) fn rechoke(&mut self, now: Instant) {
        self.next_rechoke = now + RECHOKE_INTERVAL;
        self.apply_choke(now, false);
    }

    /// Between rechokes: the unchoked peers that still want data keep their
    /// slots; free slots go to the best of the others.
    pub(super) fn refill_unchokes(&mut self, now: Instant) {
        self.apply_choke(now, true);
    }

    fn apply_choke(&mut self, now: Instant, keep_current: bool) {
        let seeding = self.status.state == TorrentState::Seeding;
        let stats: Vec<PeerStats> = self
            .peers
            .iter()
            .filter(|(_, p)| p.peer_id.is_some() && !p.closing)
            .map(|(&k, p)| PeerStats {
                key: k,
                interested: p.interested_in_us,
                download_rate: p.down_rate,
                upload_rate: p.up_rate,
                snubbed: p.snubbed,
                // Not while super-seeding: such a peer is shown pieces one by
                // one, and an unchoke reveals more.
                may_want: seeding
                    && !p.interested_in_us
                    && !p.seed
                    && p.reveal.is_none()
                    && self.have.has_any_missing_from(&p.has),
                unchoked: !p.am_choking,
            })
            .collect();
        let unchoke = if keep_current {
            let current: Vec<PeerKey> = self
                .peers
                .iter()
                .filter(|(_, p)| !p.am_choking)
                .map(|(&k, _)| k)
                .collect();
            self.choker
                .refill(&stats, &current, seeding, now, &mut self.rng)
        } else {
            self.choker.rechoke(&stats, seeding, now, &mut self.rng)
        };
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            let should = unchoke.contains(&k);
            let Some(p) = self.peers.get_mut(&k) else {
                continue;
            };
            if should && p.am_choking {
                p.am_choking = false;
                self.send(k, PeerCmd::Unchoke);
                self.reveal_more(k);
            } else if !should && !p.am_choking {
                p.am_choking = true;
                self.send(k, PeerCmd::Choke);
                self.release_reveals(k);
            }
        }
    }

    /// Dials idle candidates within the connection limits.
    pub(super) fn connect_more(&mut self, now: Instant) {
        if !self.active() {
            return;
        }
        let connecting = self.peers.values().filter(|p| p.peer_id.is_none()).count();
        let mut budget = self
            .limits
            .max_peers
            .saturating_sub(self.peers.len())
            .min(self.limits.max_connecting.saturating_sub(connecting));
        if budget == 0 {
            return;
        }
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let mut candidates: Vec<(SocketAddr, PeerSource)> = self
            .addrs
            .iter()
            .filter(|(a, i)| {
                i.state == AddrState::Idle
                    && i.retry_at <= now
                    && !self.banned.contains(&ban_key(**a))
                    && !connected.contains(a)
            })
            .map(|(a, i)| (*a, i.source))
            .collect();
        // HashMap order is random per process: sort so a seeded core is
        // deterministic.
        candidates.sort_unstable_by_key(|(a, _)| *a);
        for (addr, source) in candidates {
            if budget == 0 {
                break;
            }
            budget -= 1;
            if let Some(a) = self.addrs.get_mut(&addr) {
                a.state = AddrState::Connected;
            }
            if source == PeerSource::Pex {
                tracing::info!(peer = %addr, "connecting to a peer learned from peer exchange");
            } else {
                tracing::debug!(peer = %addr, ?source, "connecting");
            }
            let origin = match source {
                PeerSource::Added => crate::info::PeerOrigin::Added,
                PeerSource::Tracker => crate::info::PeerOrigin::Tracker,
                PeerSource::Pex => crate::info::PeerOrigin::Pex,
            };
            let key = self.register(addr, true, origin);
            self.key_addr.insert(key, addr);
            self.actions.push_back(Action::Connect { key, addr });
        }
    }
}
