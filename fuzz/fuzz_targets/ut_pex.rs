#![no_main]
//! Fuzz BEP 11 `ut_pex` decoding: no panics, the per-list cap holds, and a
//! decoded message re-encodes to something that decodes the same.
use libfuzzer_sys::fuzz_target;
use shoal_wire::pex::MAX_PEX_PEERS;
use shoal_wire::PexMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = PexMessage::decode(data, MAX_PEX_PEERS) {
        assert!(m.added.len() <= 2 * MAX_PEX_PEERS);
        assert!(m.dropped.len() <= 2 * MAX_PEX_PEERS);
        let again = m.encode();
        assert_eq!(PexMessage::decode(&again, MAX_PEX_PEERS), Ok(m));
    }
});
