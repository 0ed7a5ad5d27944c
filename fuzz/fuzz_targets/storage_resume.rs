#![no_main]
//! Fuzz the resume-file decoder: no panics, and whatever decodes re-encodes
//! to bytes that decode to the same value.
use libfuzzer_sys::fuzz_target;
use shoal_storage::ResumeData;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = ResumeData::decode(data) {
        let again = r.encode();
        let back = ResumeData::decode(&again).expect("re-encoded resume data decodes");
        assert_eq!(back, r);
    }
});
