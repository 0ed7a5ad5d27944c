//! The torrent actor's peer set: addresses to dial (from `--peer`,
//! trackers), connection limits and back-off, and choking.
use super::{ban_key, AddrInfo, AddrState, PeerCmd, TorrentActor, MAX_KNOWN_ADDRS};
use crate::choker::PeerStats;
use crate::picker::PeerKey;
use crate::status::TorrentState;
use shoal_tracker::AnnounceOutcome;
use shoal_wire::PeerConnection;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Instant;

impl TorrentActor {
    pub(super) fn add_addrs(&mut self, addrs: Vec<SocketAddr>) {
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
                failures: 0,
                retry_at: now,
            });
        }
    }
    pub(super) fn on_announce(&mut self, o: AnnounceOutcome) {
        match o.result {
            Ok(resp) => {
                tracing::debug!(url = %o.url, peers = resp.peers.len(), "announce ok");
                self.add_addrs(resp.peers);
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
        let candidates: Vec<SocketAddr> = self
            .addrs
            .iter()
            .filter(|(a, i)| {
                i.state == AddrState::Idle
                    && i.retry_at <= now
                    && !self.banned.contains(&ban_key(**a))
                    && !connected.contains(a)
            })
            .map(|(a, _)| *a)
            .collect();
        for addr in candidates {
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
            let (key, task) = self.new_peer(addr, conn);
            self.key_addr.insert(key, addr);
            self.tasks
                .spawn(task.connect_and_run(self.limits.connect_timeout));
        }
    }
}
