//! uTP over the deterministic simulator: delivery under loss, reordering,
//! duplication and delay (property tests), determinism, LEDBAT at a
//! bottleneck, path MTU discovery, timeouts and SYN-flood limits.
use proptest::prelude::*;
use shoal_utp::sim::{transfer, Fate, LinkConfig, Network, TransferConfig};
use shoal_utp::{ConnectionError, EndpointConfig, ReadError, State};
use std::sync::Arc;
use std::time::Duration;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn lossy(loss: f64, dup: f64, reorder: f64, jitter_ms: u64, delay_ms: u64) -> LinkConfig {
    LinkConfig {
        delay: ms(delay_ms),
        jitter: ms(jitter_ms),
        loss,
        duplicate: dup,
        reorder,
        reorder_delay: ms(delay_ms / 2 + 3),
        ..LinkConfig::default()
    }
}

/// Connection settings that never give up, so the properties test delivery
/// and not the give-up policy.
fn patient() -> EndpointConfig {
    let mut cfg = EndpointConfig::default();
    cfg.connection.max_timeouts = 1000;
    cfg.connection.max_syn_transmissions = 1000;
    cfg.connection.half_open_timeout = Duration::from_secs(3600);
    cfg.connection.max_rto = Duration::from_secs(4);
    // Stay long enough to re-acknowledge any retransmission of the peer.
    cfg.connection.linger = Duration::from_secs(120);
    cfg
}

#[test]
fn clean_link_transfers_both_ways_and_cleans_up() {
    let r = transfer(&TransferConfig {
        a_to_b: 300_000,
        b_to_a: 200_000,
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    assert!(r.cleaned_up);
    assert_eq!(r.a.stats.retransmits + r.a.stats.fast_retransmits, 0);
    assert_eq!(r.a.received, 200_000);
    assert_eq!(r.b.received, 300_000);
}

#[test]
fn empty_streams_close_cleanly() {
    let r = transfer(&TransferConfig {
        a_to_b: 0,
        b_to_a: 0,
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    assert!(r.cleaned_up);
}

#[test]
fn same_seed_same_trace_other_seed_other_trace() {
    let cfg = TransferConfig {
        seed: 42,
        link_ab: lossy(0.1, 0.05, 0.1, 5, 20),
        link_ba: lossy(0.1, 0.05, 0.1, 5, 20),
        ..TransferConfig::default()
    };
    let one = transfer(&cfg);
    let two = transfer(&cfg);
    assert!(one.success());
    assert_eq!(one.trace_hash, two.trace_hash);
    assert_eq!(one.elapsed, two.elapsed);
    let other = transfer(&TransferConfig { seed: 43, ..cfg });
    assert_ne!(one.trace_hash, other.trace_hash);
}

#[test]
fn heavy_loss_recovers_with_fast_retransmits_and_timeouts() {
    let r = transfer(&TransferConfig {
        a_to_b: 400_000,
        link_ab: lossy(0.2, 0.0, 0.0, 0, 30),
        link_ba: lossy(0.2, 0.0, 0.0, 0, 30),
        endpoint: patient(),
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    assert!(r.a.stats.fast_retransmits > 0, "{:?}", r.a.stats);
    assert!(r.a.stats.timeouts > 0);
}

#[test]
fn selective_acks_repair_reordering() {
    // Every 10th packet held back 40 ms: the receiver sees gaps, sends SACKs;
    // packets are not lost, so nothing times out.
    let mut script = vec![Fate::Deliver; 10];
    script[3] = Fate::Delay(40);
    let link = LinkConfig {
        script: Some(Arc::from(script)),
        ..LinkConfig::default()
    };
    let r = transfer(&TransferConfig {
        a_to_b: 300_000,
        link_ab: link,
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    assert_eq!(r.a.stats.timeouts, 0, "{:?}", r.a.stats);
}

#[test]
fn three_duplicate_acks_trigger_one_fast_retransmit() {
    // Exactly one data packet lost early: recovered by fast retransmit
    // (duplicate or selective ACKs), not by the retransmission timer.
    let mut script = vec![Fate::Deliver; 2000];
    script[30] = Fate::Drop;
    let r = transfer(&TransferConfig {
        a_to_b: 400_000,
        b_to_a: 0,
        link_ab: LinkConfig {
            script: Some(Arc::from(script)),
            ..LinkConfig::default()
        },
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    assert_eq!(r.a.stats.fast_retransmits, 1, "{:?}", r.a.stats);
    assert_eq!(r.a.stats.retransmits, 0, "{:?}", r.a.stats);
}

#[test]
fn lost_syn_and_syn_ack_are_retried() {
    let r = transfer(&TransferConfig {
        link_ab: LinkConfig {
            script: Some(Arc::from([Fate::Drop, Fate::Deliver, Fate::Deliver])),
            ..LinkConfig::default()
        },
        link_ba: LinkConfig {
            script: Some(Arc::from(
                [vec![Fate::Drop], vec![Fate::Deliver; 10_000]].concat(),
            )),
            ..LinkConfig::default()
        },
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
}

#[test]
fn connecting_to_nobody_times_out() {
    let mut net = Network::new(7);
    let a = net.add_endpoint("10.0.0.1:1".parse().unwrap(), EndpointConfig::default());
    let h = net
        .endpoint(a)
        .connect(Duration::ZERO, "10.0.0.9:1".parse().unwrap())
        .unwrap();
    while net.step() {}
    let c = net.endpoint(a).connection(h).unwrap();
    assert_eq!(c.state(), State::Closed);
    assert_eq!(c.error(), Some(ConnectionError::ConnectTimedOut));
    // 1 s, then 2 s, then 4 s: three SYNs.
    assert_eq!(net.now(), Duration::from_secs(7));
    assert_eq!(net.stats().sent, 3);
}

#[test]
fn a_silent_peer_times_out_with_backoff() {
    let mut net = Network::new(8);
    let a = net.add_endpoint("10.0.0.1:1".parse().unwrap(), EndpointConfig::default());
    let b = net.add_endpoint("10.0.0.2:1".parse().unwrap(), EndpointConfig::default());
    let addr_b = net.addr(b);
    let h = net.endpoint(a).connect(Duration::ZERO, addr_b).unwrap();
    while net.endpoint(a).connection(h).unwrap().state() == State::SynSent {
        assert!(net.step());
    }
    // From now on every packet from a is lost.
    net.set_link(
        a,
        b,
        LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        },
    );
    let start = net.now();
    net.endpoint(a).write(h, start, &[1; 5000]).unwrap();
    while net.endpoint(a).connection(h).unwrap().state() != State::Closed {
        assert!(net.step());
    }
    let took = net.now() - start;
    let c = net.endpoint(a).connection(h).unwrap();
    assert_eq!(c.error(), Some(ConnectionError::TimedOut));
    // RTO 500 ms (the minimum), doubled five times: 0.5+1+2+4+8+16.
    assert!(
        took >= Duration::from_secs(15) && took <= Duration::from_secs(40),
        "{took:?}"
    );
    assert_eq!(c.stats().timeouts, 6);
}

#[test]
fn abort_resets_the_peer() {
    let mut net = Network::new(9);
    let a = net.add_endpoint("10.0.0.1:1".parse().unwrap(), EndpointConfig::default());
    let b = net.add_endpoint("10.0.0.2:1".parse().unwrap(), EndpointConfig::default());
    let addr_b = net.addr(b);
    let ha = net.endpoint(a).connect(Duration::ZERO, addr_b).unwrap();
    let mut hb = None;
    while hb.is_none() {
        assert!(net.step());
        hb = net.endpoint(b).accept();
    }
    let hb = hb.unwrap();
    while net.endpoint(a).connection(ha).unwrap().state() != State::Connected {
        assert!(net.step());
    }
    let now = net.now();
    net.endpoint(a).write(ha, now, b"hello").unwrap();
    for _ in 0..4 {
        net.step();
    }
    let now = net.now();
    net.endpoint(a).abort(ha, now);
    while net.endpoint(b).connection(hb).unwrap().state() != State::Closed {
        assert!(net.step());
    }
    let mut buf = [0u8; 16];
    let now = net.now();
    assert_eq!(
        net.endpoint(b).read(hb, now, &mut buf),
        Ok(5),
        "data before the reset is read"
    );
    assert_eq!(
        net.endpoint(b).read(hb, now, &mut buf),
        Err(ReadError::Closed(ConnectionError::Reset))
    );
}

#[test]
fn ledbat_keeps_the_bottleneck_queue_near_the_target() {
    // 1 MB/s bottleneck with a 1 MB (one second) queue: a loss-based sender
    // would fill it; LEDBAT keeps its own queueing delay near 100 ms.
    let link = LinkConfig {
        delay: ms(20),
        bandwidth: Some(1_000_000),
        queue: 1_000_000,
        ..LinkConfig::default()
    };
    let r = transfer(&TransferConfig {
        a_to_b: 30_000_000,
        b_to_a: 0,
        link_ab: link,
        link_ba: LinkConfig {
            delay: ms(20),
            ..LinkConfig::default()
        },
        time_limit: Duration::from_secs(120),
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    let steady: Vec<Duration> = r
        .net
        .queue_delay
        .iter()
        .filter(|(t, _)| *t > Duration::from_secs(10))
        .map(|(_, d)| *d)
        .collect();
    let mean = steady.iter().sum::<Duration>() / steady.len() as u32;
    let max = steady.iter().max().copied().unwrap_or_default();
    let secs = r.b.finished_at.unwrap().as_secs_f64();
    let rate = 30_000_000.0 / secs;
    println!(
        "queue delay mean {mean:?} max {max:?}, {rate:.0} B/s, drops {}",
        r.net.queue_drops
    );
    assert!(
        mean >= ms(60) && mean <= ms(130),
        "mean queueing delay {mean:?}"
    );
    assert!(max < ms(400), "max queueing delay {max:?}");
    assert!(rate > 850_000.0, "uses the link: {rate} B/s");
    assert_eq!(r.net.queue_drops, 0);
}

#[test]
fn path_mtu_is_found_by_probing() {
    let link = LinkConfig {
        mtu: Some(1400),
        ..LinkConfig::default()
    };
    let r = transfer(&TransferConfig {
        a_to_b: 2_000_000,
        link_ab: link.clone(),
        link_ba: link,
        ..TransferConfig::default()
    });
    assert!(r.success(), "{r:#?}");
    let size = r.a.stats.packet_size;
    assert!((1392..=1400).contains(&size), "packet size {size}");
    assert!(
        r.net.mtu_drops > 0 && r.net.mtu_drops < 10,
        "{}",
        r.net.mtu_drops
    );
    // Without a limit it climbs to the Ethernet ceiling.
    let open = transfer(&TransferConfig {
        a_to_b: 2_000_000,
        ..TransferConfig::default()
    });
    assert!(
        open.a.stats.packet_size >= 1464,
        "{}",
        open.a.stats.packet_size
    );
}

#[test]
fn syn_flood_is_bounded_and_real_peers_still_connect() {
    use shoal_utp::packet::{Header, Packet, PacketType};
    let cfg = EndpointConfig {
        max_half_open: 16,
        max_half_open_per_ip: 2,
        ..EndpointConfig::default()
    };
    let mut net = Network::new(11);
    let server = net.add_endpoint("10.0.0.2:6881".parse().unwrap(), cfg);
    let mut out = Vec::new();
    // 100 spoofed SYNs from 50 addresses, two ids each, three times over.
    for round in 0..3u16 {
        for i in 0..100u16 {
            out.clear();
            let h = Header {
                ty: PacketType::Syn,
                extension: 0,
                connection_id: 1000 + i % 2 * 7 + round * 100,
                timestamp_us: 1,
                timestamp_diff_us: 0,
                wnd_size: 1 << 20,
                seq_nr: 1,
                ack_nr: 0,
            };
            Packet::encode(&h, None, &[], &mut out);
            let from = format!("10.1.{}.{}:6881", i / 2 / 250, i / 2 % 250 + 1)
                .parse()
                .unwrap();
            net.endpoint(server).handle(Duration::ZERO, from, &out);
        }
    }
    let stats = net.endpoint(server).stats();
    assert_eq!(stats.half_open, 16);
    assert_eq!(stats.connections, 16);
    assert_eq!(stats.accepted, 16);
    assert_eq!(stats.refused, 300 - 16);
    // The half-open ones die at their first timeout; then a real peer connects.
    while !net.endpoint(server).is_empty() {
        assert!(net.step());
    }
    assert!(net.now() <= Duration::from_secs(6), "{:?}", net.now());
    let client = net.add_endpoint("10.0.0.1:6881".parse().unwrap(), EndpointConfig::default());
    let addr = net.addr(server);
    let now = net.now();
    let h = net.endpoint(client).connect(now, addr).unwrap();
    while net.endpoint(client).connection(h).unwrap().state() == State::SynSent {
        assert!(net.step());
    }
    assert_eq!(
        net.endpoint(client).connection(h).unwrap().state(),
        State::Connected
    );
    assert!(net.endpoint(server).accept().is_some());
}

#[test]
fn receive_window_is_respected_by_a_slow_reader() {
    // The receiver never reads: the sender stops at the window and waits.
    let mut cfg = EndpointConfig::default();
    cfg.connection.recv_buffer = 64 << 10;
    let mut net = Network::new(12);
    let a = net.add_endpoint("10.0.0.1:1".parse().unwrap(), cfg.clone());
    let b = net.add_endpoint("10.0.0.2:1".parse().unwrap(), cfg);
    let addr_b = net.addr(b);
    let ha = net.endpoint(a).connect(Duration::ZERO, addr_b).unwrap();
    let mut hb = None;
    while hb.is_none() || net.endpoint(a).connection(ha).unwrap().state() != State::Connected {
        assert!(net.step());
        hb = hb.or_else(|| net.endpoint(b).accept());
    }
    let hb = hb.unwrap();
    let now = net.now();
    assert_eq!(
        net.endpoint(a).write(ha, now, &vec![7u8; 500_000]),
        Ok(500_000)
    );
    let until = net.now() + Duration::from_secs(10);
    while net.now() < until && net.step() {}
    let buffered = net.endpoint(b).connection(hb).unwrap().readable_bytes();
    assert!(buffered <= 64 << 10 && buffered > 50 << 10, "{buffered}");
    assert_eq!(
        net.endpoint(a).connection(ha).unwrap().state(),
        State::Connected
    );
    // Reading opens the window and the rest follows.
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    let until = net.now() + Duration::from_secs(60);
    while got < 500_000 && net.now() < until {
        let now = net.now();
        while let Ok(n) = net.endpoint(b).read(hb, now, &mut buf) {
            assert!(buf[..n].iter().all(|b| *b == 7));
            got += n;
        }
        net.step();
    }
    assert_eq!(got, 500_000);
}

proptest! {

    /// Every byte arrives once and in order, both sides close cleanly and
    /// both endpoints forget the connection, under random loss,
    /// duplication, reordering and jitter, with receive buffers from 4 KiB
    /// (held-back packets fill the window) to 1 MiB.
    #[test]
    fn delivery_under_random_impairments(
        seed: u64,
        loss in 0.0f64..0.25,
        dup in 0.0f64..0.2,
        reorder in 0.0f64..0.3,
        jitter in 0u64..30,
        delay in 1u64..80,
        a_to_b in 0usize..150_000,
        b_to_a in 0usize..50_000,
        chunk in 1usize..40_000,
        recv_kib in 4usize..1024,
    ) {
        let mut endpoint = patient();
        endpoint.connection.recv_buffer = recv_kib << 10;
        let r = transfer(&TransferConfig {
            seed,
            a_to_b,
            b_to_a,
            link_ab: lossy(loss, dup, reorder, jitter, delay),
            link_ba: lossy(loss, dup, reorder, jitter, delay),
            endpoint,
            write_chunk: chunk,
            time_limit: Duration::from_secs(3000),
        });
        prop_assert!(r.success(), "{:#?}", r);
        prop_assert!(r.cleaned_up);
    }

    /// The same under any cyclic schedule of fates per packet.
    #[test]
    fn delivery_under_any_schedule(
        seed: u64,
        ab in schedule(),
        ba in schedule(),
        a_to_b in 0usize..100_000,
        b_to_a in 0usize..20_000,
    ) {
        let link = |s: Vec<Fate>| LinkConfig { script: Some(Arc::from(s)), ..LinkConfig::default() };
        let r = transfer(&TransferConfig {
            seed,
            a_to_b,
            b_to_a,
            link_ab: link(ab),
            link_ba: link(ba),
            endpoint: patient(),
            time_limit: Duration::from_secs(3000),
            ..TransferConfig::default()
        });
        prop_assert!(r.success(), "{:#?}", r);
        prop_assert!(r.cleaned_up);
    }
}

/// A cyclic schedule of which at most a third drops packets.
fn schedule() -> impl Strategy<Value = Vec<Fate>> {
    proptest::collection::vec(fate(), 1..64).prop_filter("mostly delivers", |s| {
        s.iter().filter(|f| **f == Fate::Drop).count() * 3 <= s.len()
    })
}

/// A packet's fate: mostly delivered, so that a schedule lets data through.
fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        6 => Just(Fate::Deliver),
        2 => Just(Fate::Drop),
        1 => Just(Fate::Duplicate),
        1 => (1u16..100).prop_map(Fate::Delay),
    ]
}

/// Connects a to b and returns both handles once connected.
fn connected_pair(
    net: &mut Network,
    cfg: EndpointConfig,
) -> (
    shoal_utp::sim::NodeId,
    shoal_utp::ConnectionHandle,
    shoal_utp::sim::NodeId,
    shoal_utp::ConnectionHandle,
) {
    let a = net.add_endpoint("10.0.0.1:1".parse().unwrap(), cfg.clone());
    let b = net.add_endpoint("10.0.0.2:1".parse().unwrap(), cfg);
    let addr_b = net.addr(b);
    let ha = net.endpoint(a).connect(Duration::ZERO, addr_b).unwrap();
    let mut hb = None;
    while hb.is_none() || net.endpoint(a).connection(ha).unwrap().state() != State::Connected {
        assert!(net.step());
        hb = hb.or_else(|| net.endpoint(b).accept());
    }
    (a, ha, b, hb.unwrap())
}

#[test]
fn nagle_coalesces_small_writes() {
    for nagle in [true, false] {
        let mut cfg = EndpointConfig::default();
        cfg.connection.nagle = nagle;
        let mut net = Network::new(13);
        let (a, ha, b, hb) = connected_pair(&mut net, cfg);
        let sent_before = net.endpoint(a).connection(ha).unwrap().stats().packets_sent;
        // 200 messages of 17 bytes, one per millisecond: one RTT is 20 ms.
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        for i in 0..200u8 {
            let now = net.now();
            net.endpoint(a).write(ha, now, &[i; 17]).unwrap();
            let until = now + Duration::from_millis(1);
            while net.now() < until && net.step_until(until) {}
            let now = net.now();
            while let Ok(n) = net.endpoint(b).read(hb, now, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        let until = net.now() + Duration::from_secs(1);
        while net.now() < until && net.step() {
            let now = net.now();
            while let Ok(n) = net.endpoint(b).read(hb, now, &mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        let expect: Vec<u8> = (0..200u8).flat_map(|i| [i; 17]).collect();
        assert_eq!(got, expect);
        let packets = net.endpoint(a).connection(ha).unwrap().stats().packets_sent - sent_before;
        if nagle {
            assert!(packets < 40, "nagle: {packets} packets");
        } else {
            assert!(packets >= 200, "no nagle: {packets} packets");
        }
    }
}

#[test]
fn a_closed_window_reopens_when_the_reader_reads() {
    // The receiver's window is two packets and it reads only every 2 s: the
    // sender stops at the window and resumes when reading reopens it (a
    // window update, or its own probe after a timeout).
    let mut cfg = EndpointConfig::default();
    cfg.connection.recv_buffer = 3000;
    let mut net = Network::new(14);
    let (a, ha, b, hb) = connected_pair(&mut net, cfg);
    let now = net.now();
    assert_eq!(net.endpoint(a).write(ha, now, &[3; 20_000]), Ok(20_000));
    let mut got = 0;
    let mut buf = [0u8; 1 << 14];
    let mut reads = 0;
    while got < 20_000 {
        // Read only every 2 s.
        let until = net.now() + Duration::from_secs(2);
        while net.now() < until && net.step_until(until) {}
        let now = net.now();
        while let Ok(n) = net.endpoint(b).read(hb, now, &mut buf) {
            got += n;
        }
        reads += 1;
        assert!(reads < 100, "stalled at {got}");
    }
    assert_eq!(
        net.endpoint(a).connection(ha).unwrap().state(),
        State::Connected
    );
}

#[test]
fn many_connections_on_one_endpoint_share_a_bottleneck() {
    let mut net = Network::new(15);
    let server = net.add_endpoint("10.0.0.2:1".parse().unwrap(), EndpointConfig::default());
    let client = net.add_endpoint("10.0.0.1:1".parse().unwrap(), EndpointConfig::default());
    net.set_link(
        client,
        server,
        LinkConfig {
            bandwidth: Some(2_000_000),
            queue: 500_000,
            ..LinkConfig::default()
        },
    );
    let addr = net.addr(server);
    let conns: Vec<_> = (0..8)
        .map(|_| net.endpoint(client).connect(Duration::ZERO, addr).unwrap())
        .collect();
    let mut accepted = Vec::new();
    let mut received = [0usize; 8];
    let mut buf = vec![0u8; 1 << 16];
    let per = 2_000_000;
    let mut written = [0usize; 8];
    while received.iter().sum::<usize>() < 8 * per {
        assert!(net.step());
        assert!(net.now() < Duration::from_secs(120));
        while let Some(h) = net.endpoint(server).accept() {
            accepted.push(h);
        }
        let now = net.now();
        for (i, h) in conns.iter().enumerate() {
            while written[i] < per {
                match net
                    .endpoint(client)
                    .write(*h, now, &buf[..(per - written[i]).min(1 << 16)])
                {
                    Ok(0) | Err(_) => break,
                    Ok(n) => written[i] += n,
                }
            }
        }
        for (i, h) in accepted.iter().enumerate() {
            while let Ok(n) = net.endpoint(server).read(*h, now, &mut buf) {
                if n == 0 {
                    break;
                }
                received[i] += n;
            }
        }
    }
    // Fair enough: each got its share in roughly the same time.
    let secs = net.now().as_secs_f64();
    assert!(secs < 12.0, "{secs} s for 16 MB at 2 MB/s");
}

/// Regression: with the receive buffer full of packets held behind a hole,
/// the packet that fills the hole must still be taken (it was refused as
/// "no room", and the connection waited for ever).
#[test]
fn a_full_reorder_buffer_still_takes_the_missing_packet() {
    let mut endpoint = patient();
    endpoint.connection.recv_buffer = 24 << 10;
    for seed in 0..8 {
        let r = transfer(&TransferConfig {
            seed,
            a_to_b: 400_000,
            b_to_a: 20_000,
            link_ab: lossy(0.05, 0.01, 0.0, 10, 30),
            link_ba: lossy(0.05, 0.01, 0.0, 10, 30),
            endpoint: endpoint.clone(),
            time_limit: Duration::from_secs(600),
            ..TransferConfig::default()
        });
        assert!(r.success(), "seed {seed}: {r:#?}");
    }
}
