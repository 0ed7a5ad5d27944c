#![no_main]
//! Fuzz the daemon's `/api/v1/search` query string: no panics, and what is
//! accepted is within the bounds (query bytes and words, timeout, limit,
//! trackers).
use libfuzzer_sys::fuzz_target;
use shoal_daemon::search::{
    parse_request, MAX_QUERY_BYTES, MAX_QUERY_WORDS, MAX_TIMEOUT, MAX_TRACKERS, MIN_TIMEOUT,
};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = parse_request(raw) {
        assert!(r.query.len() <= MAX_QUERY_BYTES);
        assert!(r.query.split_whitespace().count() <= MAX_QUERY_WORDS);
        assert!(!shoal_search::query_keywords(&r.query).is_empty());
        assert!(r.timeout >= MIN_TIMEOUT && r.timeout <= MAX_TIMEOUT);
        assert!(r.limit >= 1);
        assert!(r.trackers.len() <= MAX_TRACKERS);
    }
});
