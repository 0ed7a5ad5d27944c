#![no_main]
//! Fuzz the magnet parser: no panics, and what parses prints and parses back equal.
use libfuzzer_sys::fuzz_target;
use shoal_metainfo::Magnet;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    if let Ok(m) = Magnet::parse(&s) {
        let uri = m.to_uri();
        // Escaping can make the printed form longer than the limit.
        if uri.len() <= shoal_metainfo::limits::MAX_MAGNET_LEN {
            let back = Magnet::parse(&uri).expect("printed magnet parses");
            assert_eq!(back, m);
        }
    }
});
