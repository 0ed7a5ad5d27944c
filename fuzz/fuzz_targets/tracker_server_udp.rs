#![no_main]
//! Fuzz the tracker server's UDP side: any datagram, proven or not, never
//! panics; an answer to an unproven request is never larger than the
//! request; BEP 41 options parse within their bound.
use libfuzzer_sys::fuzz_target;
use shoal_tracker_server::ratelimit::RateLimiter;
use shoal_tracker_server::stats::Stats;
use shoal_tracker_server::swarm::AnnounceReply;
use shoal_tracker_server::udp::{parse_url_data, Handled, UdpTracker, MAX_URL_DATA};
use shoal_tracker_server::{RateConfig, SwarmConfig, Swarms};
use std::net::SocketAddr;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    if let Ok(u) = parse_url_data(data) {
        assert!(u.url.len() <= MAX_URL_DATA);
    }
    let t = UdpTracker::new(
        Arc::new(Swarms::new(SwarmConfig::default(), 1)),
        [3; 16],
        Arc::new(RateLimiter::new(RateConfig::default())),
        Arc::new(Stats::default()),
    );
    let from: SocketAddr = "10.0.0.1:7".parse().unwrap();
    let now = 1u64 << 34;
    let (mut scratch, mut out) = (AnnounceReply::default(), Vec::new());
    // Unproven: whatever comes back is no larger than what came in.
    if t.handle(now, from, data, &mut scratch, &mut out) == Handled::Reply {
        assert!(out.len() <= data.len().max(16), "{} > {}", out.len(), data.len());
    }
    // Proven: patch a real connection id in and handle it again.
    let connect = [0, 0, 4, 23, 39, 16, 25, 128, 0, 0, 0, 0, 0, 0, 0, 1];
    t.handle(now, from, &connect, &mut scratch, &mut out);
    if out.len() == 16 && data.len() >= 16 {
        let mut d = data.to_vec();
        d[..8].copy_from_slice(&out[8..16]);
        t.handle(now, from, &d, &mut scratch, &mut out);
    }
});
