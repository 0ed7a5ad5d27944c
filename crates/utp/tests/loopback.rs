//! The tokio driver over real UDP sockets on loopback.
use shoal_utp::{UtpSocket, UtpSocketConfig};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;

fn any() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

#[tokio::test]
async fn streams_both_ways_then_eof() {
    timeout(Duration::from_secs(60), async {
        let server = UtpSocket::bind(any(), UtpSocketConfig::default())
            .await
            .unwrap();
        let client = UtpSocket::bind(any(), UtpSocketConfig::default())
            .await
            .unwrap();
        let addr = server.local_addr();
        let up = pattern(1, 8 << 20);
        let down = pattern(2, 3 << 20);
        let (up2, down2) = (up.clone(), down.clone());
        let srv = tokio::spawn(async move {
            let (mut s, peer) = server.accept().await.unwrap();
            assert_eq!(peer.ip(), addr.ip());
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
            assert!(got == up2, "server got {} bytes", got.len());
            s.stats().unwrap()
        });
        let mut c = client.connect(addr).await.unwrap();
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
        assert!(got == down, "client got {} bytes", got.len());
        let stats = c.stats().unwrap();
        let server_stats = srv.await.unwrap();
        assert_eq!(server_stats.bytes_received, up.len() as u64);
        assert!(stats.bytes_received >= down.len() as u64);
        assert!(
            stats.packet_size > 1220,
            "MTU probing ran: {}",
            stats.packet_size
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn many_connections_share_one_socket() {
    timeout(Duration::from_secs(60), async {
        let server = UtpSocket::bind(any(), UtpSocketConfig::default())
            .await
            .unwrap();
        let client = UtpSocket::bind(any(), UtpSocketConfig::default())
            .await
            .unwrap();
        let addr = server.local_addr();
        let srv = tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..20 {
                let (mut s, _) = server.accept().await.unwrap();
                tasks.push(tokio::spawn(async move {
                    // Echo with a prefix.
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).await.unwrap();
                    s.write_all(b"echo:").await.unwrap();
                    s.write_all(&buf).await.unwrap();
                    s.shutdown().await.unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
        let mut tasks = Vec::new();
        for i in 0..20u8 {
            let client = client.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = client.connect(addr).await.unwrap();
                let msg = pattern(i, 1000 + i as usize * 5000);
                s.write_all(&msg).await.unwrap();
                s.shutdown().await.unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).await.unwrap();
                assert_eq!(&back[..5], b"echo:");
                assert!(back[5..] == msg[..]);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        srv.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn other_datagrams_are_handed_on() {
    timeout(Duration::from_secs(30), async {
        let (server, mut other) = UtpSocket::bind_shared(any(), UtpSocketConfig::default())
            .await
            .unwrap();
        let addr = server.local_addr();
        let client = UtpSocket::bind(any(), UtpSocketConfig::default())
            .await
            .unwrap();
        // A DHT ping and a UDP tracker connect request to the same port.
        let plain = tokio::net::UdpSocket::bind(any()).await.unwrap();
        let ping = b"d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe".to_vec();
        let connect = [
            0u8, 0, 4, 0x17, 0x27, 0x10, 0x19, 0x80, 0, 0, 0, 0, 1, 2, 3, 4,
        ];
        plain.send_to(&ping, addr).await.unwrap();
        plain.send_to(&connect, addr).await.unwrap();
        let a = other.recv().await.unwrap();
        let b = other.recv().await.unwrap();
        assert_eq!(a.from, plain.local_addr().unwrap());
        assert_eq!(&a.data[..], &ping[..]);
        assert_eq!(&b.data[..], &connect[..]);
        // The other protocol answers through the same socket.
        server.udp().send_to(b"d1:y1:re", a.from).await.unwrap();
        let mut buf = [0u8; 64];
        let (n, from) = plain.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"d1:y1:re"[..], addr));
        // And uTP still works on it.
        let srv = tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).await.unwrap();
            v
        });
        let mut c = client.connect(addr).await.unwrap();
        c.write_all(b"over the shared port").await.unwrap();
        c.shutdown().await.unwrap();
        assert_eq!(srv.await.unwrap(), b"over the shared port");
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails() {
    let mut cfg = UtpSocketConfig::default();
    cfg.endpoint.connection.initial_rto = Duration::from_millis(100);
    cfg.endpoint.connection.max_syn_transmissions = 2;
    let client = UtpSocket::bind(any(), cfg).await.unwrap();
    let closed = {
        let s = std::net::UdpSocket::bind(any()).unwrap();
        s.local_addr().unwrap()
    };
    let err = timeout(Duration::from_secs(5), client.connect(closed))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::TimedOut);
}

#[tokio::test]
async fn the_driver_stops_and_frees_the_port() {
    let server = UtpSocket::bind(any(), UtpSocketConfig::default())
        .await
        .unwrap();
    let client = UtpSocket::bind(any(), UtpSocketConfig::default())
        .await
        .unwrap();
    let addr = server.local_addr();
    let srv = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.unwrap();
        let mut v = Vec::new();
        s.read_to_end(&mut v).await.unwrap();
        v.len()
    });
    let mut c = client.connect(addr).await.unwrap();
    c.write_all(&[5; 100_000]).await.unwrap();
    c.shutdown().await.unwrap();
    assert_eq!(srv.await.unwrap(), 100_000);
    drop(c);
    let client_addr = client.local_addr();
    drop(client);
    // Both drivers end (their sockets close) within the drain time.
    let rebind = async {
        loop {
            if std::net::UdpSocket::bind(addr).is_ok()
                && std::net::UdpSocket::bind(client_addr).is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(Duration::from_secs(5), rebind).await.unwrap();
}

#[tokio::test]
async fn loopback_throughput_without_gso() {
    // Batched receives, one datagram per send.
    let cfg = UtpSocketConfig {
        gso_segments: 1,
        ..UtpSocketConfig::default()
    };
    throughput(cfg).await;
}

#[tokio::test]
async fn loopback_throughput_with_gso() {
    // The default: runs of up to 64 datagrams per send to a peer that reads
    // them as GRO buffers.
    throughput(UtpSocketConfig::default()).await;
}

#[tokio::test]
async fn loopback_throughput_one_datagram_per_call() {
    // The portable path: no recvmmsg, GSO or GRO.
    let cfg = UtpSocketConfig {
        batch_io: false,
        ..UtpSocketConfig::default()
    };
    throughput(cfg).await;
}

/// Whether this machine's UDP sockets read with GRO (what a shoal endpoint
/// then says in its handshake).
fn platform_reads_coalesced() -> bool {
    let s = std::net::UdpSocket::bind(any()).unwrap();
    quinn_udp::UdpSocketState::new(quinn_udp::UdpSockRef::from(&s))
        .is_ok_and(|st| st.gro_segments() > 1)
}

#[tokio::test]
async fn gso_runs_go_only_to_peers_that_said_they_read_coalesced() {
    timeout(Duration::from_secs(20), async {
        let gro = platform_reads_coalesced();
        // (server batched, client batched) -> what each learns of the other.
        for (srv_batch, cli_batch) in [(true, true), (true, false), (false, true)] {
            let cfg = |batch_io| UtpSocketConfig {
                batch_io,
                ..UtpSocketConfig::default()
            };
            let server = UtpSocket::bind(any(), cfg(srv_batch)).await.unwrap();
            let client = UtpSocket::bind(any(), cfg(cli_batch)).await.unwrap();
            let addr = server.local_addr();
            let accept = tokio::spawn(async move {
                let (mut s, _) = server.accept().await.unwrap();
                let mut buf = vec![0u8; 300_000];
                s.read_exact(&mut buf).await.unwrap();
                s.write_all(&buf).await.unwrap();
                s.shutdown().await.unwrap();
                let stats = s.stats().unwrap();
                (buf, stats, server)
            });
            let mut c = client.connect(addr).await.unwrap();
            let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
            c.write_all(&data).await.unwrap();
            let mut back = vec![0u8; data.len()];
            c.read_exact(&mut back).await.unwrap();
            let (got, srv_stats, _server) = accept.await.unwrap();
            assert_eq!(got, data);
            assert_eq!(back, data, "every byte back, GSO runs or not");
            let cli_stats = c.stats().unwrap();
            let case = format!("server batched {srv_batch}, client batched {cli_batch}, GRO {gro}");
            assert_eq!(cli_stats.peer_coalesces, gro && srv_batch, "{case}");
            assert_eq!(srv_stats.peer_coalesces, gro && cli_batch, "{case}");
        }
    })
    .await
    .unwrap();
}

async fn throughput(cfg: UtpSocketConfig) {
    // Not a benchmark (see bench/): a floor that catches a broken fast path.
    timeout(Duration::from_secs(60), async {
        let server = UtpSocket::bind(any(), cfg.clone()).await.unwrap();
        let client = UtpSocket::bind(any(), cfg.clone()).await.unwrap();
        let addr = server.local_addr();
        let total = 64usize << 20;
        let srv = tokio::spawn(async move {
            let (mut s, _) = server.accept().await.unwrap();
            let mut buf = vec![0u8; 1 << 16];
            let mut n = 0;
            loop {
                let r = s.read(&mut buf).await.unwrap();
                if r == 0 {
                    break;
                }
                n += r;
            }
            n
        });
        let start = std::time::Instant::now();
        let mut c = client.connect(addr).await.unwrap();
        let chunk = vec![9u8; 1 << 16];
        let mut sent = 0;
        while sent < total {
            c.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        c.shutdown().await.unwrap();
        assert_eq!(srv.await.unwrap(), total);
        let secs = start.elapsed().as_secs_f64();
        let rate = total as f64 / secs / (1 << 20) as f64;
        println!(
            "batch_io {} gso {}: {rate:.1} MiB/s, {:?}",
            cfg.batch_io,
            cfg.gso_segments,
            c.stats().unwrap()
        );
        assert!(rate > 5.0, "{rate} MiB/s");
    })
    .await
    .unwrap();
}
