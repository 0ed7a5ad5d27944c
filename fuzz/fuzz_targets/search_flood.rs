#![no_main]
//! Fuzz the `shoal_search` flooding messages: no panics, the bounds hold, and
//! a decoded message re-encodes to something that decodes the same.
use libfuzzer_sys::fuzz_target;
use shoal_search::flood::msg::{MAX_NAME_BYTES, MAX_QUERY_BYTES, MAX_RESULTS_PER_MSG};
use shoal_search::flood::{FloodMsg, MAX_TTL};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = FloodMsg::decode(data) {
        match &m {
            FloodMsg::Query { ttl, query, .. } => {
                assert!(*ttl <= MAX_TTL && query.len() <= MAX_QUERY_BYTES);
            }
            FloodMsg::Results { results, .. } => {
                assert!(results.len() <= MAX_RESULTS_PER_MSG);
                assert!(results.iter().all(|r| r.name.len() <= MAX_NAME_BYTES));
            }
        }
        assert_eq!(FloodMsg::decode(&m.encode()), Ok(m));
    }
});
