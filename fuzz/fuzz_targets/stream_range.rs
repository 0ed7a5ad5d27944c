#![no_main]
//! Fuzz the `Range` header parser of `shoal daemon`'s `/stream` endpoint:
//! no panics, and a range answered always lies inside the file and is not
//! empty.
use libfuzzer_sys::fuzz_target;
use shoal_daemon::stream::{parse_range, RangeAsk};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let len = u64::from_le_bytes(data[..8].try_into().unwrap()) >> (data[0] % 64);
    let Ok(value) = std::str::from_utf8(&data[8..]) else {
        return;
    };
    match parse_range(value, len) {
        RangeAsk::Part(r) => assert!(r.start < r.end && r.end <= len, "{value:?} {len}: {r:?}"),
        RangeAsk::Whole | RangeAsk::Unsatisfiable => {}
    }
});
