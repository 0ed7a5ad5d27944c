#![no_main]
//! Fuzz BEP 9 `ut_metadata` decoding and the metadata assembler: no panics;
//! decoded messages re-encode to something that decodes the same.
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use shoal_wire::{MetadataAssembler, MetadataHash, MetadataMessage};

fuzz_target!(|data: &[u8]| {
    let max = 16u64 << 20;
    let payload = Bytes::copy_from_slice(data);
    if let Ok(m) = MetadataMessage::decode(&payload, max) {
        let again = m.encode();
        assert_eq!(MetadataMessage::decode(&again, max), Ok(m.clone()));
        if let MetadataMessage::Data { piece, total_size, data } = m {
            if let Ok(mut a) = MetadataAssembler::new(MetadataHash::V1([0; 20].into()), total_size, max) {
                let _ = a.on_data(piece, data);
                let _ = a.next_request(std::time::Instant::now());
            }
        }
    }
});
