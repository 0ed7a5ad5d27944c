#![no_main]
//! Fuzz the HTTP tracker reply parsers (announce and scrape): no panics, and
//! whatever parses re-encodes to a reply that parses to the same values.
use libfuzzer_sys::fuzz_target;
use shoal_tracker::http_reply::{encode_announce_reply, encode_scrape_reply};
use shoal_tracker::{parse_announce_reply, parse_scrape_reply, ReplyLimits};

fuzz_target!(|data: &[u8]| {
    let limits = ReplyLimits::default();
    if let Ok(mut r) = parse_announce_reply(data, &limits) {
        // The encoder writes IPv4 peers (`peers`) before IPv6 (`peers6`).
        r.peers.sort_by_key(|p| p.is_ipv6());
        let back = parse_announce_reply(&encode_announce_reply(&r), &limits)
            .expect("re-encoded announce reply parses");
        assert_eq!(back, r);
    }
    if let Ok(mut s) = parse_scrape_reply(data, &limits) {
        let mut back = parse_scrape_reply(&encode_scrape_reply(&s), &limits)
            .expect("re-encoded scrape reply parses");
        s.files.sort_by_key(|(h, _)| *h);
        back.files.sort_by_key(|(h, _)| *h);
        assert_eq!(back, s);
    }
});
