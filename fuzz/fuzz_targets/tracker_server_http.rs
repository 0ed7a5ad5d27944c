#![no_main]
//! Fuzz the tracker server's HTTP side: the request-target parser never
//! panics and stays within its bounds, and the whole responder (parse,
//! announce or scrape into a table, bencode the answer) answers anything
//! with a reply that a strict bencode decoder reads.
use libfuzzer_sys::fuzz_target;
use shoal_tracker_server::http::HttpTracker;
use shoal_tracker_server::query::{parse_request_target, TrackerQuery, MAX_SCRAPE_HASHES};
use shoal_tracker_server::ratelimit::RateLimiter;
use shoal_tracker_server::stats::Stats;
use shoal_tracker_server::{RateConfig, SwarmConfig, Swarms};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(TrackerQuery::Scrape(h)) = parse_request_target(target) {
        assert!(h.len() <= MAX_SCRAPE_HASHES);
    }
    let t = HttpTracker::new(
        Arc::new(Swarms::new(SwarmConfig::default(), 1)),
        Arc::new(RateLimiter::new(RateConfig::default())),
        Arc::new(Stats::default()),
    );
    for from in ["10.0.0.1:1", "[2001:db8::1]:2"] {
        let a = t.respond(1 << 34, from.parse().unwrap(), "GET", target);
        if a.content_type == "text/plain" && a.status == 200 {
            shoal_bencode::decode(&a.body, &shoal_bencode::Limits::default())
                .expect("tracker replies are bencode");
        }
    }
});
