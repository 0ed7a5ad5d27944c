#![no_main]
//! Fuzz the DHT keyword index items (keyword slots and torrent records, as
//! read from any DHT node) and keyword normalisation of hostile text: no
//! panics, bounds hold, decoded items re-encode to the same.
use libfuzzer_sys::fuzz_target;
use shoal_search::kad::{decode_record, decode_slot, encode_slot, MAX_RECORD_NAME, MAX_SLOT_HASHES};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = decode_slot(data) {
        assert!(h.len() <= MAX_SLOT_HASHES);
        assert_eq!(decode_slot(&encode_slot(&h)), Ok(h));
    }
    if let Ok(r) = decode_record(data) {
        assert!(r.name.len() <= MAX_RECORD_NAME);
    }
    let text = String::from_utf8_lossy(data);
    let k = shoal_search::query_keywords(&text);
    assert!(k.len() <= shoal_search::keywords::MAX_QUERY_KEYWORDS);
    assert!(k.iter().all(|w| w.len() <= shoal_search::keywords::MAX_KEYWORD_BYTES));
});
