#![no_main]
//! Fuzz the KRPC decoder: no panics, and whatever decodes re-encodes to a message that
//! decodes the same.
use libfuzzer_sys::fuzz_target;
use shoal_dht::krpc::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        let again = m.encode();
        let back = Message::decode(&again).expect("re-encoded message decodes");
        assert_eq!(back, m);
    }
});
