#![no_main]
//! Fuzz the UDP tracker codec (BEP 15) and session: no panics; decoded
//! packets re-encode to packets that decode the same; a session fed
//! arbitrary datagrams never panics.
use libfuzzer_sys::fuzz_target;
use shoal_tracker::udp_codec::{Request, Response};
use shoal_tracker::{AnnounceRequest, UdpConfig, UdpSession};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    for v6 in [false, true] {
        if let Ok(r) = Response::decode(data, v6, 1000) {
            let back = Response::decode(&r.encode(), v6, 1000).expect("re-encoded response decodes");
            assert_eq!(back, r);
        }
    }
    if let Ok(r) = Request::decode(data) {
        let back = Request::decode(&r.encode()).expect("re-encoded request decodes");
        assert_eq!(back, r);
    }
    // A session in its connect step, then fed the datagram (with the
    // transaction id patched in, so the body is actually parsed).
    let now = Instant::now();
    let mut s = UdpSession::new(UdpConfig::default(), data.first().is_some_and(|b| b & 1 == 1), 1);
    if s.start_announce(now, AnnounceRequest::new([1; 20], [2; 20], 1, 1)).is_ok() {
        if let Some(sent) = s.poll_transmit() {
            let mut d = data.to_vec();
            if let (Some(dst), Some(src)) = (d.get_mut(4..8), sent.get(12..16)) {
                dst.copy_from_slice(src);
            }
            s.handle_datagram(now, &d);
            let _ = s.poll_transmit();
            s.handle_datagram(now + Duration::from_secs(1), data);
            s.handle_timeout(now + Duration::from_secs(3600));
            let _ = s.poll_result();
        }
    }
});
