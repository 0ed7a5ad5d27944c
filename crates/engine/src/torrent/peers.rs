//! The torrent actor's peer set: addresses to dial (from `--peer`, the DHT,
//! trackers and peer exchange), connection limits and back-off, choking, and
//! the glue to the peer exchange core ([`crate::pex`]).
use super::{ban_key, AddrInfo, AddrState, PeerCmd, TorrentActor, MAX_KNOWN_ADDRS};
use crate::choker::PeerStats;
use crate::picker::PeerKey;
use crate::status::TorrentState;
use shoal_tracker::AnnounceOutcome;
use shoal_wire::{PeerConnection, PexMessage};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a candidate address came from (first source wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PeerSource {
    /// Given by the user or the DHT ([`crate::TorrentHandle::add_peers`]).
    Added,
    /// A tracker's announce response.
    Tracker,
    /// A connected peer's `ut_pex` message (BEP 11).
    Pex,
}

impl TorrentActor {
    pub(super) fn add_addrs(&mut self, addrs: Vec<SocketAddr>, source: PeerSource) {
        let now = Instant::now();
        for a in addrs {
            if self.addrs.len() >= MAX_KNOWN_ADDRS {
                break;
            }
            if a.port() == 0 || a.ip().is_unspecified() {
                continue;
            }
            self.addrs.entry(a).or_insert(AddrInfo {
                state: AddrState::Idle,
                source,
                failures: 0,
                retry_at: now,
            });
        }
    }

    /// A `ut_pex` message from `key`: usable addresses become candidates
    /// (dialled within the usual connection limits).
    pub(super) fn on_pex(&mut self, key: PeerKey, m: &PexMessage) {
        let from = self.peers.get(&key).map(|p| p.addr);
        let seeding = self.status.state == TorrentState::Seeding;
        match self.pex.on_message(key, Instant::now(), m, seeding) {
            Ok(addrs) => {
                tracing::debug!(peer = ?from, added = m.added.len(), used = addrs.len(),
                    dropped = m.dropped.len(), "ut_pex received");
                self.add_addrs(addrs, PeerSource::Pex);
            }
            Err(e) => tracing::debug!(peer = ?from, reason = %e, "ut_pex ignored"),
        }
    }

    /// Sends the `ut_pex` messages that are due.
    pub(super) fn send_pex(&mut self, now: Instant) {
        for (key, m) in self.pex.poll_transmit(now) {
            tracing::debug!(peer = ?self.peers.get(&key).map(|p| p.addr),
                added = m.added.len(), dropped = m.dropped.len(), "ut_pex sent");
            self.send(key, PeerCmd::Pex(m));
        }
    }
    pub(super) fn on_announce(&mut self, o: AnnounceOutcome) {
        match o.result {
            Ok(resp) => {
                tracing::debug!(url = %o.url, peers = resp.peers.len(), "announce ok");
                self.add_addrs(resp.peers, PeerSource::Tracker);
            }
            Err(e) => tracing::info!(url = %o.url, error = %e, "announce failed"),
        }
    }
    pub(super) fn rechoke(&mut self) {
        self.last_rechoke = Instant::now();
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
            })
            .collect();
        let seeding = self.status.state == TorrentState::Seeding;
        let unchoke = self
            .choker
            .rechoke(&stats, seeding, Instant::now(), &mut self.rng);
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            let should = unchoke.contains(&k);
            let Some(p) = self.peers.get_mut(&k) else {
                continue;
            };
            if should && p.am_choking {
                p.am_choking = false;
                self.send(k, PeerCmd::Unchoke);
            } else if !should && !p.am_choking {
                p.am_choking = true;
                self.send(k, PeerCmd::Choke);
            }
        }
    }
    pub(super) fn connect_more(&mut self) {
        if !matches!(
            self.status.state,
            TorrentState::Downloading | TorrentState::Seeding
        ) {
            return;
        }
        let now = Instant::now();
        let connecting = self.peers.values().filter(|p| p.peer_id.is_none()).count();
        let mut budget = self
            .limits
            .max_peers
            .saturating_sub(self.peers.len())
            .min(self.limits.max_connecting.saturating_sub(connecting));
        if budget == 0 {
            return;
        }
        // Seeds do not dial out to other seeds' addresses blindly, but a
        // seeder still dials (some clients only accept incoming peers).
        let connected: HashSet<SocketAddr> = self.peers.values().map(|p| p.addr).collect();
        let candidates: Vec<(SocketAddr, PeerSource)> = self
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
        for (addr, source) in candidates {
            if budget == 0 {
                break;
            }
            budget -= 1;
            if let Some(a) = self.addrs.get_mut(&addr) {
                a.state = AddrState::Connected;
            }
            let conn = PeerConnection::outgoing(
                self.conn_config(),
                self.info_hash,
                self.peer_id,
                Some(self.have.clone()),
                now,
            );
            if source == PeerSource::Pex {
                tracing::info!(peer = %addr, "connecting to a peer learned from peer exchange");
            } else {
                tracing::debug!(peer = %addr, ?source, "connecting");
            }
            let (key, task) = self.new_peer(addr, conn, true);
            self.key_addr.insert(key, addr);
            self.tasks
                .spawn(task.connect_and_run(self.limits.connect_timeout));
        }
    }
}
