#![no_main]
//! Fuzz the uTP packet decoder: no panics; what decodes re-encodes to a
//! packet that decodes the same (header, SACK mask padded to whole words,
//! payload).
use libfuzzer_sys::fuzz_target;
use shoal_utp::packet::{is_utp, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::decode(data) else {
        return;
    };
    assert!(is_utp(data));
    let sacked: Vec<u16> = p.sacked().collect();
    let mask = p.sack.map(|m| {
        let mut m = m.to_vec();
        m.resize(m.len().div_ceil(4) * 4, 0);
        m.truncate(252);
        m
    });
    let mut out = Vec::new();
    Packet::encode(&p.header, mask.as_deref(), p.payload, &mut out);
    let q = Packet::decode(&out).expect("re-encoded packet decodes");
    assert_eq!(q.header.ty, p.header.ty);
    assert_eq!(q.header.seq_nr, p.header.seq_nr);
    assert_eq!(q.header.ack_nr, p.header.ack_nr);
    assert_eq!(q.payload, p.payload);
    let again: Vec<u16> = q.sacked().collect();
    assert!(again.starts_with(&sacked) || mask.as_ref().is_some_and(|m| m.len() == 252));
});
