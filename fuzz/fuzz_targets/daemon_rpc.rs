#![no_main]
//! Fuzz the Transmission RPC request decoder of `shoal daemon` (classic and
//! JSON-RPC 2.0 bodies, batches) and the typed argument accessors every
//! method uses: no panics, bounded batches, errors instead of surprises.
use libfuzzer_sys::fuzz_target;
use shoal_daemon::rpc::request::{decode, Call, Decoded, MAX_BATCH};
use shoal_daemon::rpc::keys::canon;

const KEYS: &[&str] = &[
    "ids", "fields", "download-dir", "metainfo", "filename", "paused", "labels",
    "files-unwanted", "priority-high", "seedRatioLimit", "seed_idle_mode",
    "peer-limit", "location", "trackerList", "delete-local-data", "format",
];

fn exercise(c: &Call) {
    assert_eq!(c.method_key, canon(&c.method));
    for k in KEYS {
        let _ = c.args.str(k);
        let _ = c.args.bool(k);
        let _ = c.args.u64(k);
        let _ = c.args.i64(k);
        let _ = c.args.f64(k);
        if let Ok(Some(v)) = c.args.strings(k) {
            assert!(v.len() <= shoal_daemon::rpc::request::MAX_LIST);
        }
        let _ = c.args.indices(k);
    }
}

fuzz_target!(|data: &[u8]| {
    match decode(data) {
        Ok(Decoded::One(Ok(c))) => exercise(&c),
        Ok(Decoded::Batch(calls)) => {
            assert!(!calls.is_empty() && calls.len() <= MAX_BATCH);
            for c in calls.iter().flatten() {
                exercise(c);
            }
        }
        Ok(Decoded::One(Err(_))) | Err(_) => {}
    }
});
