//! The HTTP tracker's answers, sans-IO: a method, a request target, the
//! client's address and the time in; a status, a content type and a body
//! out. Announce (BEP 3, 7, 23, 24) and scrape (BEP 48) replies are bencoded
//! here directly from the compact peer bytes; `/` and `/stats` give the HTML
//! statistics page, `/metrics` the Prometheus text. The hyper driver lives
//! in [`crate::server`].
//!
//! A peer is stored at the connection's source address with its announced
//! port; `ip` and `ipv6` parameters are ignored (as opentracker does by
//! default), so nobody can list a third party's address. Replies carry peers
//! of both families (`peers`, `peers6`), the requester's own family first.
use crate::clock::secs;
use crate::peers::{canonical_ip, pack, unpack};
use crate::query::{endpoint, parse_request_target, TrackerQuery};
use crate::ratelimit::{RateLimiter, Verdict};
use crate::stats::{Stats, Transport};
use crate::swarm::{AnnounceReply, PeerAnnounce, Swarms};
use shoal_tracker::http_reply::{encode_failure_reply, encode_scrape_reply};
use shoal_tracker::ScrapeResponse;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// An HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: Vec<u8>,
}

const BENCODE: &str = "text/plain";

fn ok(content_type: &'static str, body: Vec<u8>) -> HttpAnswer {
    HttpAnswer {
        status: 200,
        content_type,
        body,
    }
}

/// Answers HTTP tracker requests from a shared [`Swarms`].
#[derive(Debug, Clone)]
pub struct HttpTracker {
    swarms: Arc<Swarms>,
    limiter: Arc<RateLimiter>,
    stats: Arc<Stats>,
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    let _ = write!(out, "{}:", b.len());
    out.extend_from_slice(b);
}

fn int(out: &mut Vec<u8>, key: &[u8], v: u32) {
    bytes(out, key);
    let _ = write!(out, "i{v}e");
}

/// Bencodes an announce reply. Keys in sorted order; compact `peers` and
/// `peers6`, or (not `compact`) one `peers` list of `ip`/`port` dicts.
pub fn encode_announce(
    r: &AnnounceReply,
    interval: u32,
    min_interval: u32,
    external_ip: IpAddr,
    compact: bool,
) -> Vec<u8> {
    let mut o = Vec::with_capacity(96 + r.peers4.len() + r.peers6.len());
    o.push(b'd');
    int(&mut o, b"complete", r.complete);
    bytes(&mut o, b"external ip");
    match external_ip {
        IpAddr::V4(ip) => bytes(&mut o, &ip.octets()),
        IpAddr::V6(ip) => bytes(&mut o, &ip.octets()),
    }
    int(&mut o, b"incomplete", r.incomplete);
    int(&mut o, b"interval", interval);
    int(&mut o, b"min interval", min_interval);
    bytes(&mut o, b"peers");
    if compact {
        bytes(&mut o, &r.peers4);
        if !r.peers6.is_empty() {
            bytes(&mut o, b"peers6");
            bytes(&mut o, &r.peers6);
        }
    } else {
        o.push(b'l');
        let all = r.peers4.chunks(6).chain(r.peers6.chunks(18));
        for a in all.filter_map(unpack) {
            o.push(b'd');
            bytes(&mut o, b"ip");
            bytes(&mut o, a.ip().to_string().as_bytes());
            int(&mut o, b"port", u32::from(a.port()));
            o.push(b'e');
        }
        o.push(b'e');
    }
    o.push(b'e');
    o
}

impl HttpTracker {
    /// A handler over `swarms`.
    pub fn new(swarms: Arc<Swarms>, limiter: Arc<RateLimiter>, stats: Arc<Stats>) -> Self {
        HttpTracker {
            swarms,
            limiter,
            stats,
        }
    }

    /// Answers one request from `remote` at tracker time `now_ms`.
    pub fn respond(
        &self,
        now_ms: u64,
        remote: SocketAddr,
        method: &str,
        target: &str,
    ) -> HttpAnswer {
        let path = target.split('?').next().unwrap_or("");
        match path {
            "/" | "/stats" if method == "GET" => {
                return ok(
                    "text/html; charset=utf-8",
                    self.stats.html(&self.swarms.totals()).into_bytes(),
                )
            }
            "/metrics" if method == "GET" => {
                return ok(
                    "text/plain; version=0.0.4",
                    self.stats.prometheus(&self.swarms.totals()).into_bytes(),
                )
            }
            _ => {}
        }
        if endpoint(path).is_none() {
            return HttpAnswer {
                status: 404,
                content_type: "text/plain",
                body: b"not found\n".to_vec(),
            };
        }
        if method != "GET" {
            return HttpAnswer {
                status: 405,
                content_type: "text/plain",
                body: b"use GET\n".to_vec(),
            };
        }
        let q = match parse_request_target(target) {
            Ok(q) => q,
            Err(e) => {
                self.stats.bad_request(Transport::Http);
                return ok(BENCODE, encode_failure_reply(&e.to_string()));
            }
        };
        match self.limiter.check(now_ms, remote.ip()) {
            Verdict::Allow => {}
            Verdict::AllowUntracked => self.stats.rate_untracked(),
            Verdict::Deny => {
                self.stats.rate_limited(Transport::Http);
                return ok(
                    BENCODE,
                    encode_failure_reply("too many requests, slow down"),
                );
            }
        }
        match q {
            TrackerQuery::Announce(req) => {
                let ip = canonical_ip(remote.ip());
                let a = PeerAnnounce {
                    info_hash: req.info_hash,
                    addr: pack(SocketAddr::new(ip, req.port)),
                    seeder: req.left == 0,
                    event: req.event,
                    numwant: req.numwant,
                };
                let mut reply = AnnounceReply::default();
                match self.swarms.announce(secs(now_ms), &a, true, &mut reply) {
                    Ok(()) => {
                        self.stats.announce(Transport::Http);
                        let c = self.swarms.config();
                        ok(
                            BENCODE,
                            encode_announce(&reply, c.interval, c.min_interval, ip, req.compact),
                        )
                    }
                    Err(e) => {
                        self.stats.refused(Transport::Http);
                        ok(BENCODE, encode_failure_reply(&e.to_string()))
                    }
                }
            }
            TrackerQuery::Scrape(hashes) if hashes.is_empty() => {
                self.stats.bad_request(Transport::Http);
                ok(BENCODE, encode_failure_reply("full scrape not supported"))
            }
            TrackerQuery::Scrape(hashes) => {
                self.stats.scrape(Transport::Http);
                let files = hashes
                    .iter()
                    .filter_map(|h| self.swarms.scrape(h).map(|s| (*h, s)))
                    .collect();
                ok(
                    BENCODE,
                    encode_scrape_reply(&ScrapeResponse {
                        files,
                        min_request_interval: None,
                    }),
                )
            }
        }
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
