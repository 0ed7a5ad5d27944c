#![no_main]
//! Fuzz the LSD (BEP 14) announce parser and the service fed arbitrary
//! datagrams: no panics; what parses re-encodes to an announce that parses
//! to the same port and hashes; peers are reported only for our torrents.
use libfuzzer_sys::fuzz_target;
use shoal_lsd::packet::{encode, parse, Group};
use shoal_lsd::{Event, Lsd, LsdConfig};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut lsd = Lsd::new(LsdConfig::default(), 1);
    lsd.add_torrent([0xab; 20].into(), false, Duration::ZERO);
    lsd.handle_datagram(Duration::ZERO, "10.0.0.1:6771".parse().unwrap(), data);
    while let Some(Event::Peer { info_hash, .. }) = lsd.poll_event() {
        assert_eq!(info_hash, [0xab; 20]);
    }
    let Ok(a) = parse(data) else {
        return;
    };
    let (out, n) = encode(Group::V6, a.port, a.cookie_value(), &a.info_hashes);
    let b = parse(&out).expect("re-encoded announce parses");
    assert_eq!(b.port, a.port);
    assert_eq!(b.info_hashes, a.info_hashes[..n]);
});
