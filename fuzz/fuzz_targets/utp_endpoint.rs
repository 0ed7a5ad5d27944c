#![no_main]
//! Feed a uTP endpoint arbitrary datagrams, timer expiries and application
//! calls: it must never panic, and stays within its limits.
//!
//! Input: records of `[flags, len, len bytes]`. Flags: bit 0 patches the
//! connection id of a datagram to the outgoing connection's (so the fuzzer
//! reaches the state machine), bit 1 sends from a second address, bit 2
//! fires timers, bit 3 writes, bits 4-7 advance the clock (×50 ms).
use libfuzzer_sys::fuzz_target;
use shoal_utp::{Endpoint, EndpointConfig};
use std::net::SocketAddr;
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
    let mut cfg = EndpointConfig::default();
    cfg.max_connections = 16;
    cfg.connection.recv_buffer = 64 << 10;
    cfg.connection.send_buffer = 64 << 10;
    let mut ep = Endpoint::new(cfg, 1);
    let peer: SocketAddr = "10.0.0.2:6881".parse().unwrap();
    let other: SocketAddr = "10.0.0.3:6881".parse().unwrap();
    let Ok(h) = ep.connect(Duration::ZERO, peer) else {
        return;
    };
    let recv_id = ep.connection(h).map(|c| c.recv_id()).unwrap_or(0);
    let mut now = Duration::ZERO;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut rest = data;
    while let [flags, len, tail @ ..] = rest {
        let n = (*len as usize).min(tail.len());
        let (d, r) = tail.split_at(n);
        rest = r;
        let mut d = d.to_vec();
        if flags & 1 != 0 && d.len() >= 4 {
            d[2..4].copy_from_slice(&recv_id.to_be_bytes());
        }
        now += Duration::from_millis((flags >> 4) as u64 * 50);
        let from = if flags & 2 != 0 { other } else { peer };
        if shoal_utp::is_utp(&d) {
            ep.handle(now, from, &d);
        }
        if flags & 4 != 0 {
            ep.handle_timeout(now);
        }
        if flags & 8 != 0 {
            let _ = ep.write(h, now, &d);
        }
        let _ = ep.read(h, now, &mut buf);
        while let Some(a) = ep.accept() {
            let _ = ep.read(a, now, &mut buf);
            ep.release(a, now);
        }
        for _ in 0..256 {
            out.clear();
            match ep.poll_transmit(now, &mut out) {
                Some(t) => assert!(t.len <= 1500 && t.len == out.len()),
                None => break,
            }
        }
        while ep.poll_event().is_some() {}
        assert!(ep.stats().connections <= 16);
    }
});
