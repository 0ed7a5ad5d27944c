//! shoal uTP stream to shoal uTP stream over real UDP sockets through an
//! impaired path: delay with jitter (so reordering), loss and duplication.
//!
//! - `tc netem` on the loopback of a network namespace the test creates and
//!   always deletes; skipped (with a note) when not root or when the kernel
//!   has no `sch_netem` (as on the Firecracker VMs this is developed on);
//! - the same impairments from a UDP relay in the test (seeded), which runs
//!   everywhere.
#![cfg(target_os = "linux")]

mod netns;

use netns::Netns;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use shoal_utp::ConnectionStats;
use shoal_utp::{UtpSocket, UtpSocketConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(29).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

fn socket(ns: &Netns) -> UtpSocket {
    let udp = tokio::net::UdpSocket::from_std(ns.udp()).unwrap();
    UtpSocket::from_socket(udp, UtpSocketConfig::default(), None)
}

/// Sends `up` from a client on `client` to a server on `server` (dialled at
/// `dial`) and `down` back, both at once; checks every byte; returns both
/// connections' counters.
async fn transfer(
    client: UtpSocket,
    server: UtpSocket,
    dial: SocketAddr,
) -> (ConnectionStats, ConnectionStats) {
    let up = pattern(3, 3 << 20);
    let down = pattern(4, 1 << 20);
    let (up2, down2) = (up.clone(), down.clone());
    let started = Instant::now();
    let run = async {
        let srv = tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let (mut r, mut w) = tokio::io::split(&mut s);
            let writer = async {
                w.write_all(&down2).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let reader = async {
                let mut got = Vec::new();
                r.read_to_end(&mut got).await.unwrap();
                got
            };
            let (_, got) = tokio::join!(writer, reader);
            assert!(got == up2, "server got {} bytes, not the same", got.len());
            s.stats().unwrap()
        });
        let mut c = client.connect(dial).await.unwrap();
        let (mut r, mut w) = tokio::io::split(&mut c);
        let writer = async {
            w.write_all(&up).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let reader = async {
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            got
        };
        let (_, got) = tokio::join!(writer, reader);
        assert!(got == down, "client got {} bytes, not the same", got.len());
        (c.stats().unwrap(), srv.await.unwrap())
    };
    let (cs, ss) = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("transfer through the impaired path timed out");
    println!(
        "{} + {} bytes in {:?}\nclient {cs:?}\nserver {ss:?}",
        up.len(),
        down.len(),
        started.elapsed()
    );
    (cs, ss)
}

/// The impairments were really in the path: the RTT is at least twice
/// 30 - 10 ms, losses were repaired, duplicates were seen.
fn check_impaired(cs: &ConnectionStats, ss: &ConnectionStats) {
    let rtt = cs.rtt.expect("an RTT sample");
    assert!(rtt >= Duration::from_millis(40), "rtt {rtt:?}");
    assert!(
        cs.retransmits + cs.fast_retransmits + ss.retransmits + ss.fast_retransmits > 0,
        "2% loss but nothing was sent twice: {cs:?} {ss:?}"
    );
    assert!(ss.duplicates + cs.duplicates > 0, "1% duplication unseen");
}

#[tokio::test]
async fn streams_through_netem_delay_loss_reorder_duplication() {
    let Some(ns) = Netns::new("utp-netem") else {
        return;
    };
    // Every packet crosses the namespace's loopback once: 30 ms ± 10 ms one
    // way (jitter reorders), 2% loss, 1% duplication.
    let netem = ns.tc(&[
        "qdisc",
        "add",
        "dev",
        "lo",
        "root",
        "netem",
        "delay",
        "30ms",
        "10ms",
        "loss",
        "2%",
        "duplicate",
        "1%",
        "limit",
        "10000",
    ]);
    if let Err(e) = netem {
        eprintln!("skipping: no netem in this kernel ({e})");
        return;
    }
    let server = socket(&ns);
    let client = socket(&ns);
    let addr = server.local_addr();
    let (cs, ss) = transfer(client, server, addr).await;
    check_impaired(&cs, &ss);
}

/// A UDP relay between one client and `server`: each datagram is dropped
/// with probability 2%, sent twice with 1%, and delayed 30 ms ± 10 ms
/// (uniform, so datagrams overtake each other). Seeded.
async fn relay(server: SocketAddr, seed: u64) -> SocketAddr {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut client: Option<SocketAddr> = None;
        let mut buf = vec![0u8; 65536];
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let to = if from == server {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                server
            };
            if rng.gen_bool(0.02) {
                continue;
            }
            let copies = if rng.gen_bool(0.01) { 2 } else { 1 };
            for _ in 0..copies {
                let delay = Duration::from_micros(rng.gen_range(20_000..40_000));
                let (sock, data) = (sock.clone(), buf[..n].to_vec());
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = sock.send_to(&data, to).await;
                });
            }
        }
    });
    addr
}

#[tokio::test]
async fn streams_through_a_relay_with_delay_loss_reorder_duplication() {
    let bind = || async {
        UtpSocket::bind("127.0.0.1:0".parse().unwrap(), UtpSocketConfig::default())
            .await
            .unwrap()
    };
    let server = bind().await;
    let client = bind().await;
    let via = relay(server.local_addr(), 7).await;
    let (cs, ss) = transfer(client, server, via).await;
    check_impaired(&cs, &ss);
}
