//! Connections between simulated peers, as `PeerTask` and `PeerConnection`
//! run them: dialling, the handshake and bitfield, closing, the messages on
//! an established connection, and the cores' commands to their peers.
use super::super::link::{
    ephemeral, latency, peer_id, Conn, ConnId, Ctl, End, Side, PIPELINE_LIMIT,
};
use super::{Ev, World};
use crate::peer::{PeerCmd, PeerMsg};
use crate::picker::{Block, PeerKey};
use crate::sim::Behaviour;
use std::net::SocketAddr;

impl World<'_> {
    pub(super) fn dial(&mut self, n: usize, key: PeerKey, addr: SocketAddr) {
        let c = self.conns.len();
        let target = self.by_addr.get(&addr).copied().filter(|&j| j != n);
        let lat = match target {
            Some(j) => latency(self.cfg.seed, n, j, self.cfg.latency_ms),
            None => u64::from(self.cfg.latency_ms.1) * 1000,
        };
        let now = self.instant();
        let mut far = End::new(target.unwrap_or(usize::MAX), None, now);
        // Nobody is at the other end of a dial to an unknown address.
        far.alive = target.is_some();
        self.conns.push(Conn {
            ends: [End::new(n, Some(key), now), far],
            latency: lat,
            open: true,
        });
        self.nodes[n].conns.insert(key, (c, 0));
        match target {
            Some(_) => self.schedule(self.now + lat, Ev::Syn(c)),
            None => {
                let msg = Ctl::Eof("connect: no such peer");
                self.schedule(
                    self.now + 2 * lat,
                    Ev::Ctl {
                        conn: c,
                        to: 0,
                        msg,
                    },
                );
            }
        }
    }

    pub(super) fn on_syn(&mut self, c: ConnId) {
        if !self.conns[c].open {
            return;
        }
        let j = self.conns[c].ends[1].node;
        let msg = if self.nodes[j].core.is_some() {
            Ctl::SynAck
        } else {
            Ctl::Eof("connect: refused")
        };
        self.send(c, 1, msg);
    }

    /// Closes side `s` of `c`: its core hears `reason` (after a last stats
    /// report), the other side hears the close after the latency.
    pub(super) fn close_end(&mut self, c: ConnId, s: Side, reason: &'static str) {
        let conn = &mut self.conns[c];
        conn.open = false;
        let other_alive = conn.ends[1 - s].alive;
        let end = &mut conn.ends[s];
        if !end.alive {
            return;
        }
        end.alive = false;
        end.to_serve.clear();
        end.requests.clear();
        let (n, key, uploaded) = (end.node, end.key, std::mem::take(&mut end.unreported));
        if let Some(key) = key.filter(|_| self.nodes[n].core.is_some()) {
            self.nodes[n].conns.remove(&key);
            let stats = PeerMsg::Stats {
                down_rate: 0,
                recent_down_rate: 0,
                up_rate: 0,
                uploaded,
                snubbed: false,
            };
            let closed = PeerMsg::Closed {
                reason: crate::peer_close::PeerClose::Simulated(reason),
            };
            for msg in [stats, closed] {
                self.schedule(self.now, Ev::Msg { node: n, key, msg });
            }
        }
        if other_alive {
            self.send(c, s, Ctl::Eof("peer closed the connection"));
        }
    }

    pub(super) fn on_ctl(&mut self, c: ConnId, to: Side, msg: Ctl) {
        if let Ctl::Eof(reason) = msg {
            self.close_end(c, to, reason);
            return;
        }
        let n = self.conns[c].ends[to].node;
        if !self.conns[c].open
            || !self.conns[c].ends[to].alive
            || self.nodes.get(n).is_none_or(|x| x.core.is_none())
        {
            return;
        }
        let key = self.conns[c].ends[to].key;
        let from = self.conns[c].ends[1 - to].node;
        match msg {
            Ctl::Eof(_) => {}
            Ctl::SynAck => {
                if let Some(key) = key {
                    self.feed(n, key, PeerMsg::TcpConnected);
                    self.conns[c].ends[0].shook = true;
                    let bf = self.have_of(n, key);
                    self.send(c, 0, Ctl::Handshake(bf));
                }
            }
            Ctl::Handshake(bf) => {
                let key = match key {
                    Some(k) => k,
                    None => {
                        let addr = ephemeral(self.nodes[from].addr, c);
                        let accepted = self.nodes[n]
                            .core
                            .as_mut()
                            .and_then(|core| core.accept_incoming(addr));
                        let Some(k) = accepted else {
                            self.close_end(c, to, "refused");
                            return;
                        };
                        self.nodes[n].conns.insert(k, (c, to));
                        let end = &mut self.conns[c].ends[to];
                        end.key = Some(k);
                        end.shook = true;
                        let ours = self.have_of(n, k);
                        self.send(c, to, Ctl::Handshake(ours));
                        k
                    }
                };
                self.conns[c].ends[to].connected = true;
                let peer_id = peer_id(from);
                self.feed(
                    n,
                    key,
                    PeerMsg::Handshake {
                        peer_id,
                        encrypted: false,
                        utp: false,
                    },
                );
                self.feed(n, key, PeerMsg::PipelineLimit(PIPELINE_LIMIT));
                self.feed(n, key, PeerMsg::Bitfield(bf));
            }
            msg => {
                let Some(key) = key else {
                    return;
                };
                self.on_message(n, key, c, to, msg);
            }
        }
    }

    /// A message on an established connection.
    pub(super) fn on_message(&mut self, n: usize, key: PeerKey, c: ConnId, to: Side, msg: Ctl) {
        match msg {
            Ctl::Have(p) => self.feed(n, key, PeerMsg::Have(p)),
            Ctl::Choke => {
                self.conns[c].ends[to].peer_choking = true;
                self.feed(n, key, PeerMsg::Choked);
            }
            Ctl::Unchoke => {
                self.conns[c].ends[to].peer_choking = false;
                self.feed(n, key, PeerMsg::Unchoked);
            }
            Ctl::Interested(i) => self.feed(n, key, PeerMsg::Interest(i)),
            Ctl::Request(blocks) => self.on_requests(n, c, to, blocks),
            Ctl::Reject(blocks) => {
                let end = &mut self.conns[c].ends[to];
                let failed: Vec<Block> = blocks
                    .into_iter()
                    .filter(|b| end.requests.remove(b).is_some())
                    .collect();
                if end.requests.is_empty() {
                    end.waiting_since = None;
                }
                if !failed.is_empty() {
                    self.feed(n, key, PeerMsg::RequestsFailed(failed));
                }
            }
            Ctl::Cancel(b) => self.conns[c].ends[to].to_serve.retain(|x| *x != b),
            Ctl::SynAck | Ctl::Handshake(_) | Ctl::Eof(_) => {}
        }
    }

    /// The pieces peer `n` announces to its connection `key`.
    pub(super) fn have_of(&self, n: usize, key: PeerKey) -> shoal_wire::Bitfield {
        match &self.nodes[n].core {
            Some(core) => core.announce_to(key),
            None => shoal_wire::Bitfield::new(self.num_pieces),
        }
    }

    /// A command of core `n` to its connection `key`, as `PeerTask` and
    /// `PeerConnection` carry it out.
    pub(super) fn peer_cmd(&mut self, n: usize, key: PeerKey, cmd: PeerCmd) {
        let Some(&(c, s)) = self.nodes[n].conns.get(&key) else {
            return;
        };
        if !self.conns[c].open {
            return;
        }
        let free_rider = self.nodes[n].spec.behaviour == Behaviour::FreeRider;
        let now = self.now;
        let end = &mut self.conns[c].ends[s];
        match cmd {
            PeerCmd::Request(blocks) => {
                let mut ok = Vec::new();
                let mut failed = Vec::new();
                for b in blocks {
                    let refused = !end.connected
                        || end.peer_choking
                        || end.requests.contains_key(&b)
                        || end.requests.len() >= PIPELINE_LIMIT as usize;
                    if refused {
                        failed.push(b);
                    } else {
                        if end.requests.is_empty() {
                            end.waiting_since = Some(now);
                        }
                        end.requests.insert(b, now);
                        ok.push(b);
                    }
                }
                if !ok.is_empty() {
                    self.send(c, s, Ctl::Request(ok));
                }
                if !failed.is_empty() {
                    let msg = PeerMsg::RequestsFailed(failed);
                    self.schedule(now, Ev::Msg { node: n, key, msg });
                }
            }
            // Simulated torrents start with their metadata and layers:
            // the core never asks for them.
            PeerCmd::RequestMetadata(_) | PeerCmd::RequestHashes(_) | PeerCmd::SetPieces(_) => {}
            PeerCmd::Cancel(b) => {
                if end.cancel(&b) {
                    self.send(c, s, Ctl::Cancel(b));
                }
            }
            PeerCmd::Have(p) => {
                if end.shook {
                    self.send(c, s, Ctl::Have(p));
                }
            }
            PeerCmd::Choke => {
                if end.connected && !end.am_choking {
                    end.am_choking = true;
                    let rejected: Vec<Block> = end.to_serve.drain(..).collect();
                    self.send(c, s, Ctl::Choke);
                    if !rejected.is_empty() {
                        self.send(c, s, Ctl::Reject(rejected));
                    }
                }
            }
            PeerCmd::Unchoke => {
                if end.connected && end.am_choking && !free_rider {
                    end.am_choking = false;
                    self.send(c, s, Ctl::Unchoke);
                }
            }
            PeerCmd::Interested(i) => {
                if end.connected {
                    self.send(c, s, Ctl::Interested(i));
                }
            }
            PeerCmd::Pex(_) => {}
        }
    }
}
