use super::*;

fn a(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn msg(added: &[(&str, u8)]) -> PexMessage {
    PexMessage {
        added: added.iter().map(|&(s, f)| (a(s), PexFlags(f))).collect(),
        dropped: vec![],
    }
}

fn core() -> PeerExchange {
    PeerExchange::new(PexConfig::default(), true, a("127.0.0.1:7000"))
}

/// A handshaken peer with `ut_pex`.
fn join(x: &mut PeerExchange, key: PeerKey, addr: &str, outgoing: bool, now: Instant) {
    x.add_peer(key, a(addr), outgoing);
    x.on_handshake(key);
    x.on_extensions(key, now, Some(6000 + key as u16), true, None);
}

#[test]
fn first_message_carries_the_set_then_deltas_at_the_interval() {
    let t0 = Instant::now();
    let mut x = core();
    join(&mut x, 1, "127.0.0.1:6001", true, t0);
    // Incoming: announced under the `p` port it told us, not its source port.
    join(&mut x, 2, "127.0.0.1:50000", false, t0);
    assert!(
        x.poll_transmit(t0).is_empty(),
        "nothing before the first delay"
    );
    let first = t0 + x.config().first_delay;
    assert_eq!(x.poll_timeout(), Some(first));
    let out = x.poll_transmit(first);
    assert_eq!(out.len(), 2);
    let (k1, m1) = &out[0];
    assert_eq!(*k1, 1);
    assert_eq!(m1.added, vec![(a("127.0.0.1:6002"), PexFlags(0))]);
    let (_, m2) = &out[1];
    assert_eq!(
        m2.added,
        vec![(a("127.0.0.1:6001"), PexFlags(PexFlags::REACHABLE))]
    );
    // A new peer and a seed change: sent only when the interval has passed.
    join(&mut x, 3, "127.0.0.1:6003", true, first);
    x.set_seed(1, true);
    let early = x.poll_transmit(first + Duration::from_secs(30));
    // Only the newcomer's first message is due.
    assert_eq!(early.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![3]);
    assert_eq!(early[0].1.added.len(), 2);
    let later = first + x.config().interval;
    let out = x.poll_transmit(later);
    let to2 = out.iter().find(|(k, _)| *k == 2).unwrap();
    assert_eq!(
        to2.1.added,
        vec![
            (
                a("127.0.0.1:6001"),
                PexFlags(PexFlags::REACHABLE | PexFlags::SEED)
            ),
            (a("127.0.0.1:6003"), PexFlags(PexFlags::REACHABLE)),
        ]
    );
    // A closed connection is announced as dropped.
    x.remove_peer(1);
    let out = x.poll_transmit(later + x.config().interval);
    let to2 = out.iter().find(|(k, _)| *k == 2).unwrap();
    assert_eq!(to2.1.dropped, vec![a("127.0.0.1:6001")]);
    assert!(to2.1.added.is_empty());
}

#[test]
fn unknown_listen_port_and_unhandshaken_peers_are_not_announced() {
    let t0 = Instant::now();
    let mut x = core();
    join(&mut x, 1, "127.0.0.1:6001", true, t0);
    // Incoming without `p`.
    x.add_peer(2, a("127.0.0.1:50000"), false);
    x.on_handshake(2);
    x.on_extensions(2, t0, None, true, None);
    // Dialled, handshake not done.
    x.add_peer(3, a("127.0.0.1:6003"), true);
    let out = x.poll_transmit(t0 + Duration::from_secs(10));
    // Peer 1 has nothing to learn; peer 2 learns peer 1.
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0, 2);
    assert_eq!(out[0].1.added.len(), 1);
}

#[test]
fn peers_without_ut_pex_get_nothing_and_disabled_core_is_silent() {
    let t0 = Instant::now();
    let mut x = core();
    join(&mut x, 1, "127.0.0.1:6001", true, t0);
    x.add_peer(2, a("127.0.0.1:6002"), true);
    x.on_handshake(2);
    x.on_extensions(2, t0, None, false, None);
    let out = x.poll_transmit(t0 + Duration::from_secs(10));
    assert_eq!(out.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![1]);

    let mut off = PeerExchange::new(PexConfig::default(), false, a("127.0.0.1:7000"));
    join(&mut off, 1, "127.0.0.1:6001", true, t0);
    join(&mut off, 2, "127.0.0.1:6002", true, t0);
    assert!(off.poll_transmit(t0 + Duration::from_secs(10)).is_empty());
    assert_eq!(off.poll_timeout(), None);
    assert_eq!(
        off.on_message(1, t0, &msg(&[("127.0.0.1:1", 0)]), false),
        Err(PexIgnored::Disabled)
    );
}

#[test]
fn received_addresses_are_filtered() {
    let t0 = Instant::now();
    let mut x = core();
    join(&mut x, 1, "127.0.0.1:6001", true, t0);
    let m = msg(&[
        ("127.0.0.1:7000", 0), // ourselves
        ("127.0.0.1:6001", 0), // the sender
        ("127.0.0.1:0", 0),
        ("0.0.0.0:5", 0),
        ("224.0.0.1:5", 0),
        ("127.0.0.1:6100", 0),
        ("127.0.0.1:6100", 0), // duplicate
        ("127.0.0.1:6101", PexFlags::SEED),
        ("10.1.2.3:6881", 0),
        ("10.1.2.3:6882", 0), // same IP, not loopback
    ]);
    let got = x.on_message(1, t0, &m, false).unwrap();
    assert_eq!(
        got,
        vec![a("127.0.0.1:6100"), a("127.0.0.1:6101"), a("10.1.2.3:6881")]
    );
    // As a seed, other seeds are useless.
    let mut y = core();
    join(&mut y, 1, "127.0.0.1:6001", true, t0);
    let got = y.on_message(1, t0, &m, true).unwrap();
    assert!(!got.contains(&a("127.0.0.1:6101")));
}

#[test]
fn public_peer_cannot_point_us_at_local_addresses() {
    let t0 = Instant::now();
    let mut x = PeerExchange::new(PexConfig::default(), true, a("0.0.0.0:7000"));
    join(&mut x, 1, "203.0.113.5:6881", true, t0);
    let m = msg(&[
        ("127.0.0.1:80", 0),
        ("192.168.1.2:80", 0),
        ("[fe80::1]:80", 0),
        ("[fd00::1]:80", 0),
        ("198.51.100.7:6881", 0),
        ("[2001:db8::1]:6881", 0),
    ]);
    let got = x.on_message(1, t0, &m, false).unwrap();
    assert_eq!(got, vec![a("198.51.100.7:6881"), a("[2001:db8::1]:6881")]);
}

#[test]
fn own_address_via_yourip_is_skipped() {
    let t0 = Instant::now();
    let mut x = PeerExchange::new(PexConfig::default(), true, a("0.0.0.0:7000"));
    x.add_peer(1, a("203.0.113.5:6881"), true);
    x.on_handshake(1);
    x.on_extensions(1, t0, None, true, Some("198.51.100.9".parse().unwrap()));
    assert!(x.is_own(a("198.51.100.9:7000")));
    assert!(x.is_own(a("127.0.0.1:7000")));
    assert!(!x.is_own(a("198.51.100.9:7001")));
    let got = x
        .on_message(1, t0, &msg(&[("198.51.100.9:7000", 0)]), false)
        .unwrap();
    assert!(got.is_empty());
}

#[test]
fn floods_and_oversized_messages_are_bounded() {
    let t0 = Instant::now();
    let cfg = PexConfig {
        max_added_per_peer: 120,
        ..PexConfig::default()
    };
    let mut x = PeerExchange::new(cfg, true, a("127.0.0.1:7000"));
    join(&mut x, 1, "127.0.0.1:6001", true, t0);
    let big = PexMessage {
        added: (0..100u16)
            .map(|i| (SocketAddr::from(([127, 0, 0, 1], 10_000 + i)), PexFlags(0)))
            .collect(),
        dropped: vec![],
    };
    assert_eq!(x.on_message(1, t0, &big, false).unwrap().len(), 50);
    // A second message within the interval is ignored.
    let soon = t0 + Duration::from_secs(10);
    assert!(matches!(
        x.on_message(1, soon, &big, false),
        Err(PexIgnored::TooSoon { .. })
    ));
    let t1 = t0 + x.config().min_receive_interval;
    assert_eq!(x.on_message(1, t1, &big, false).unwrap().len(), 50);
    let t2 = t1 + x.config().min_receive_interval;
    // Only 20 left of the per-connection allowance.
    assert_eq!(x.on_message(1, t2, &big, false).unwrap().len(), 20);
    let t3 = t2 + x.config().min_receive_interval;
    assert_eq!(
        x.on_message(1, t3, &big, false),
        Err(PexIgnored::Exhausted(120))
    );
    assert_eq!(
        x.on_message(9, t3, &big, false),
        Err(PexIgnored::UnknownPeer)
    );
}

#[test]
fn with_interval_scales_the_receive_limit() {
    let c = PexConfig::with_interval(Duration::from_millis(400));
    assert_eq!(c.first_delay, Duration::from_millis(400));
    assert_eq!(c.min_receive_interval, Duration::from_millis(300));
    let d = PexConfig::default();
    assert_eq!(d.interval, Duration::from_secs(60));
    assert_eq!(d.min_receive_interval, Duration::from_secs(45));
    assert_eq!(d.first_delay, Duration::from_secs(2));
}

/// The wire layer hands `ut_pex` messages up decoded, and a malformed one is
/// dropped without closing the connection.
#[test]
fn wire_delivers_pex_and_ignores_malformed_pex() {
    use shoal_wire::{Bitfield, ConnectionConfig, Event, HandshakePrefix, PeerConnection};
    let now = Instant::now();
    let mut us = PeerConnection::outgoing(
        ConnectionConfig::default(),
        [1; 20],
        [2; 20],
        Some(Bitfield::new(8)),
        now,
    );
    let hello = us.poll_transmit().unwrap();
    let prefix = HandshakePrefix::parse(&hello[..48]).unwrap().unwrap();
    let mut them = PeerConnection::incoming(
        ConnectionConfig::default(),
        prefix,
        shoal_base::PeerId([3; 20]),
        Some(Bitfield::full(8)),
        now,
    );
    them.handle_bytes(now, &hello[48..]).unwrap();
    let pump = |from: &mut PeerConnection, to: &mut PeerConnection| {
        while let Some(b) = from.poll_transmit() {
            to.handle_bytes(now, &b).unwrap();
        }
    };
    pump(&mut them, &mut us);
    pump(&mut us, &mut them);
    while us.poll_event().is_some() {}
    while them.poll_event().is_some() {}
    them.send_extended(
        now,
        "ut_pex",
        bytes::Bytes::from_static(b"d5:added5:abcdee"),
    )
    .unwrap();
    them.send_extended(now, "ut_pex", bytes::Bytes::from_static(b"garbage"))
        .unwrap();
    them.send_pex(now, &msg(&[("127.0.0.1:6001", 2)])).unwrap();
    pump(&mut them, &mut us);
    let evs: Vec<Event> = std::iter::from_fn(|| us.poll_event()).collect();
    let pex: Vec<&PexMessage> = evs
        .iter()
        .filter_map(|e| match e {
            Event::Pex(m) => Some(m),
            _ => None,
        })
        .collect();
    assert_eq!(pex, vec![&msg(&[("127.0.0.1:6001", 2)])]);
}

#[test]
fn peers_over_utp_carry_the_utp_flag() {
    let t0 = Instant::now();
    let mut x = core();
    join(&mut x, 1, "127.0.0.1:6001", true, t0);
    x.set_utp(1);
    join(&mut x, 2, "127.0.0.1:6002", true, t0);
    let out = x.poll_transmit(t0 + x.config().first_delay);
    let to2 = out.iter().find(|(k, _)| *k == 2).unwrap();
    assert_eq!(
        to2.1.added,
        vec![(
            a("127.0.0.1:6001"),
            PexFlags(PexFlags::REACHABLE | PexFlags::UTP)
        )]
    );
    let to1 = out.iter().find(|(k, _)| *k == 1).unwrap();
    assert_eq!(
        to1.1.added,
        vec![(a("127.0.0.1:6002"), PexFlags(PexFlags::REACHABLE))]
    );
}
