#![no_main]
//! Fuzz the tracker's state file and allow list decoders: no panics, no
//! allocation beyond what the input can hold. The input is tried as is and
//! with a valid checksum appended, so the record parser is reached.
use libfuzzer_sys::fuzz_target;
use shoal_tracker_server::state::decode_state;
use shoal_tracker_server::AllowList;

fuzz_target!(|data: &[u8]| {
    let _ = AllowList::parse(data);
    let _ = decode_state(data, 1 << 24, 1_000, 3600, |_| true);
    let mut sealed = b"SHOALTRK\0\0\0\x01".to_vec();
    sealed.extend_from_slice(data);
    let crc = crc32c(&sealed);
    sealed.extend_from_slice(&crc.to_be_bytes());
    let mut peers = 0usize;
    let _ = decode_state(&sealed, 1 << 24, 1_000, 3600, |r| {
        peers += r.peers4.len() + r.peers6.len();
        true
    });
    assert!(peers <= sealed.len() / 11);
});

/// CRC-32C (Castagnoli), bitwise: the fuzz crate does not depend on `crc32c`.
fn crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
