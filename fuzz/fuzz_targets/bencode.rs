#![no_main]
//! Fuzz the bencode decoder: no panics, and whatever decodes re-encodes to a value that decodes the same.
use libfuzzer_sys::fuzz_target;
use shoal_bencode::{decode, encode, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data, &Limits::default()) {
        let again = encode(&v);
        let back = decode(&again, &Limits::default()).expect("re-encoded value decodes");
        assert_eq!(back, v);
    }
});
