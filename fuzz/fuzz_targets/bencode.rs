#![no_main]
//! Fuzz the bencode decoder: no panics; whatever decodes re-encodes to a value
//! that decodes the same; `decode_prefix` (the lenient entry point, which
//! ignores what follows the value) agrees with `decode` on the prefix it reports.
use libfuzzer_sys::fuzz_target;
use shoal_bencode::{decode, decode_prefix, encode, Limits};

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode(data, &Limits::default()) {
        let again = encode(&v);
        let back = decode(&again, &Limits::default()).expect("re-encoded value decodes");
        assert_eq!(back, v);
    }
    if let Ok((v, end)) = decode_prefix(data, &Limits::default()) {
        assert!(end > 0 && end <= data.len());
        let whole = decode(&data[..end], &Limits::default()).expect("the prefix decodes alone");
        assert_eq!(whole, v);
    }
});
