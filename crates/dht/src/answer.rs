//! Answering queries from other nodes: routing-table updates, tokens, the peer and
//! item stores, BEP 51 samples and KRPC errors; rate-limited per source.
use super::Node;
use crate::compact::NodeInfo;
use crate::id::Id20;
use crate::item::{Item, MutableFields};
use crate::krpc::{Body, ErrorMsg, Message, Query, QueryKind, Response, Want};
use std::net::SocketAddr;

impl Node {
    fn respond(&mut self, to: SocketAddr, tid: Vec<u8>, body: Body) {
        let msg = Message {
            tid,
            version: self.cfg.version.clone(),
            ip: Some(to),
            read_only: false,
            body,
        };
        self.transmit(to, &msg);
    }

    fn error(&mut self, to: SocketAddr, tid: Vec<u8>, code: i64, message: &str) {
        self.counters.errors_sent += 1;
        self.respond(
            to,
            tid,
            Body::Error(ErrorMsg {
                code,
                message: message.into(),
            }),
        );
    }

    pub(super) fn handle_query(
        &mut self,
        now: u64,
        from: SocketAddr,
        tid: Vec<u8>,
        ro: bool,
        q: Query,
    ) {
        if self.cfg.read_only {
            self.counters.dropped_queries += 1;
            return;
        }
        if !self.rate.allow(from, now) {
            self.counters.rate_limited += 1;
            return;
        }
        if q.id == self.id {
            self.counters.dropped_queries += 1;
            return;
        }
        if !ro {
            let node = NodeInfo {
                id: q.id,
                addr: from,
            };
            self.table_mut(from.is_ipv6()).insert(node, now, false);
        }
        self.counters.queries_answered += 1;
        let want = if q.want.v4 || q.want.v6 {
            q.want
        } else {
            Want {
                v4: from.is_ipv4(),
                v6: from.is_ipv6(),
            }
        };
        let k = self.cfg.routing.k;
        let mut r = Response {
            id: self.id,
            ..Response::default()
        };
        let nodes_for = |this: &Self, target: &Id20, r: &mut Response| {
            if want.v4 {
                r.nodes = this.v4.closest(target, k);
            }
            if want.v6 {
                r.nodes6 = this.v6.closest(target, k);
            }
        };
        match q.kind {
            QueryKind::Ping => {}
            QueryKind::FindNode { target } => nodes_for(self, &target, &mut r),
            QueryKind::GetPeers { info_hash } => {
                nodes_for(self, &info_hash, &mut r);
                r.token = Some(self.tokens.token_for(from.ip()).to_vec());
                r.values = self
                    .store
                    .peers(&info_hash, now, from.is_ipv6(), 50, &mut self.rng);
            }
            QueryKind::AnnouncePeer {
                info_hash,
                port,
                implied_port,
                token,
            } => {
                if !self.tokens.check(from.ip(), &token) {
                    return self.error(from, tid, 203, "bad token");
                }
                let port = if implied_port { from.port() } else { port };
                self.store
                    .add_peer(info_hash, SocketAddr::new(from.ip(), port), now);
            }
            QueryKind::Get { target, seq } => {
                nodes_for(self, &target, &mut r);
                r.token = Some(self.tokens.token_for(from.ip()).to_vec());
                if let Some(item) = self.store.get_item(&target, now) {
                    let newer = seq.is_none_or(|s| item.seq() > s);
                    if let Some(m) = &item.mutable {
                        r.k = Some(m.k);
                        r.sig = m.sig.as_slice().try_into().ok();
                        r.seq = Some(m.seq);
                    }
                    if newer {
                        r.v = Some(item.v.clone());
                    }
                }
            }
            QueryKind::Put(p) => {
                if !self.tokens.check(from.ip(), &p.token) {
                    return self.error(from, tid, 203, "bad token");
                }
                let item = match (p.k, p.sig, p.seq) {
                    (Some(k), Some(sig), Some(seq)) => Item {
                        v: p.v,
                        mutable: Some(MutableFields {
                            k,
                            sig: sig.to_vec(),
                            seq,
                            salt: p.salt,
                        }),
                    },
                    (None, None, None) => Item {
                        v: p.v,
                        mutable: None,
                    },
                    _ => return self.error(from, tid, 203, "incomplete mutable item"),
                };
                if let Err(e) = self.store.put_item(item, p.cas, now) {
                    self.counters.bad_items += 1;
                    return self.error(from, tid, e.code(), &e.to_string());
                }
            }
            QueryKind::SampleInfohashes { target } => {
                nodes_for(self, &target, &mut r);
                r.interval = Some(300);
                r.num = Some(self.store.hash_count() as i64);
                r.samples = Some(self.store.sample_hashes(20, &mut self.rng));
            }
            QueryKind::Unknown { .. } => return self.error(from, tid, 204, "method unknown"),
        }
        self.respond(from, tid, Body::Response(r));
    }
}
