//! Helpers for the `shoal tracker` tests: start it on free loopback ports
//! and talk to it with small raw clients (HTTP GET, BEP 15 datagrams).
#![allow(dead_code)]

use crate::interop_util::*;
use shoal_tracker::http_url::{announce_url, scrape_request_url};
use shoal_tracker::udp_codec::{Request, Response};
use shoal_tracker::{
    parse_announce_reply, parse_scrape_reply, AnnounceRequest, AnnounceResponse, ReplyLimits,
    ScrapeStats,
};
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A running `shoal tracker` and its announce URLs.
pub struct Tracker {
    pub proc: Proc,
    pub http: SocketAddr,
    pub udp: SocketAddr,
}

/// Starts `shoal tracker` on free loopback ports with `extra` options.
pub fn start_tracker(dir: &Path, name: &str, extra: &[&str]) -> Tracker {
    let mut cmd = Command::new(shoal_bin());
    cmd.args(["tracker", "--http", "127.0.0.1:0", "--udp", "127.0.0.1:0"])
        .args(extra);
    let mut proc = Proc::spawn(name, &mut cmd, dir);
    let (http, udp) = wait_for("the tracker to listen", Duration::from_secs(30), || {
        if !proc.running() {
            panic!("tracker exited early\n{}", proc.logs());
        }
        let err = proc.err();
        Some((listening(&err, "http")?, listening(&err, "udp")?))
    });
    Tracker { proc, http, udp }
}

/// Reads the `tracker listening on SCHEME://ADDR/` lines a process
/// printed (`shoal tracker`, or `shoal daemon` with a built-in tracker).
pub fn listening(err: &str, scheme: &str) -> Option<SocketAddr> {
    err.lines().find_map(|l| {
        l.split(&format!("tracker listening on {scheme}://"))
            .nth(1)
            .and_then(|r| r.split('/').next())
            .and_then(|a| a.parse::<SocketAddr>().ok())
    })
}

pub fn target_of(path: &str, query: Option<&str>) -> String {
    format!("{path}?{}", query.unwrap_or(""))
}

pub fn http_announce(t: &Tracker, r: &AnnounceRequest) -> AnnounceResponse {
    let u = announce_url(&format!("http://{}/announce", t.http), r, None).unwrap();
    parse_announce_reply(
        &http_get(t.http, &target_of(u.path(), u.query())),
        &ReplyLimits::default(),
    )
    .expect("announce reply")
}

pub fn http_scrape(t: &Tracker, h: &shoal_base::InfoHash) -> Option<ScrapeStats> {
    let u = scrape_request_url(&format!("http://{}/announce", t.http), &[*h]).unwrap();
    let s = parse_scrape_reply(
        &http_get(t.http, &target_of(u.path(), u.query())),
        &ReplyLimits::default(),
    )
    .expect("scrape reply");
    s.get(h).copied()
}

/// A BEP 15 exchange: connect, then `make(connection_id)`; returns the reply.
pub fn udp_exchange(to: SocketAddr, make: impl Fn(u64) -> Request) -> Response {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 2048];
    let mut ask = |req: &Request| {
        for _ in 0..5 {
            s.send_to(&req.encode(), to).unwrap();
            if let Ok(n) = s.recv(&mut buf) {
                return Response::decode(&buf[..n], false, 1000).expect("a reply");
            }
        }
        panic!("no UDP reply from {to}");
    };
    let cid = match ask(&Request::Connect { transaction_id: 1 }) {
        Response::Connect { connection_id, .. } => connection_id,
        r => panic!("connect: {r:?}"),
    };
    ask(&make(cid))
}

pub fn udp_scrape(t: &Tracker, h: &shoal_base::InfoHash) -> ScrapeStats {
    match udp_exchange(t.udp, |cid| Request::Scrape {
        connection_id: cid,
        transaction_id: 2,
        info_hashes: vec![*h],
    }) {
        Response::Scrape { stats, .. } => stats[0],
        r => panic!("scrape: {r:?}"),
    }
}
