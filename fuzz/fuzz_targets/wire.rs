#![no_main]
//! Fuzz the peer wire codec and state machine: decoding arbitrary bytes never
//! panics, every decoded message re-encodes to the same bytes, and a connected
//! `PeerConnection` fed the same bytes (in two chunks) never panics either.
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use shoal_wire::{
    Bitfield, CodecLimits, ConnectionConfig, ExtensionHandshake, Handshake, Message, PeerConnection,
    PexMessage, Reserved,
};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    // codec: decode, re-encode, compare
    let limits = CodecLimits::default();
    let mut buf = BytesMut::from(data);
    let mut consumed = 0usize;
    while let Ok(Some(m)) = shoal_wire::message::decode(&mut buf, &limits) {
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(&out[..], &data[consumed..consumed + out.len()]);
        consumed += out.len();
        if let Message::Extended { id, payload } = &m {
            match id {
                0 => {
                    let _ = ExtensionHandshake::decode(payload, 16 << 20);
                }
                _ => {
                    let _ = PexMessage::decode(payload, 50);
                }
            }
        }
    }

    // state machine: a connected peer receiving the bytes
    let now = Instant::now();
    let ih = [7u8; 20];
    let num_pieces = data.first().map_or(0, |b| u32::from(*b));
    let mut c = PeerConnection::outgoing(
        ConnectionConfig::default(),
        ih,
        [1; 20],
        Some(Bitfield::new(num_pieces)),
        now,
    );
    let hs = Handshake { reserved: Reserved::shoal(true), info_hash: ih.into(), peer_id: shoal_wire::PeerId([2; 20]) };
    if c.handle_bytes(now, &hs.encode()).is_err() {
        return;
    }
    let split = data.len() / 2;
    let mut t = now;
    for chunk in [&data[..split], &data[split..]] {
        t += Duration::from_secs(1);
        if c.handle_bytes(t, chunk).is_err() {
            return;
        }
        while c.poll_event().is_some() {}
        while c.poll_transmit().is_some() {}
    }
    let _ = c.handle_timeout(t + Duration::from_secs(200));
});
