//! The drivers on real loopback sockets: HTTP keep-alive (several requests
//! on one connection), the bound on HTTP connections and request heads, the
//! UDP threads answering a connect with exactly 16 bytes, and shutdown.
//! Every test bounds its time.
use shoal_tracker_server::{Clock, SwarmConfig, Swarms, TrackerConfig, TrackerServer};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

async fn server(config: TrackerConfig) -> TrackerServer {
    let swarms = Arc::new(Swarms::new(SwarmConfig::default(), 1));
    TrackerServer::start(config, swarms, Clock::new())
        .await
        .expect("start")
}

fn lo() -> Option<SocketAddr> {
    Some("127.0.0.1:0".parse().expect("addr"))
}

/// Reads one response with a Content-Length; returns (head, body), or None
/// if the connection closed first.
fn response(s: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            while buf.len() < i + 4 + len {
                let n = s.read(&mut b).ok()?;
                if n == 0 {
                    return None;
                }
                buf.extend_from_slice(&b[..n]);
            }
            return Some((head, buf[i + 4..i + 4 + len].to_vec()));
        }
        match s.read(&mut b) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

fn announce_target(port: u16) -> String {
    format!(
        "/announce?info_hash={}&peer_id={}&port={port}&left=0&compact=1",
        "%AB".repeat(20),
        "p".repeat(20)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_keeps_connections_alive_and_bounds_them() {
    let srv = server(TrackerConfig {
        http: lo(),
        max_http_connections: 2,
        ..TrackerConfig::default()
    })
    .await;
    let addr = srv.http_addr().expect("http");
    tokio::task::spawn_blocking(move || {
        let mut a = TcpStream::connect(addr).expect("connect");
        a.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        for port in 1..=3u16 {
            write!(
                a,
                "GET {} HTTP/1.1\r\nHost: x\r\n\r\n",
                announce_target(port)
            )
            .expect("write");
            let (head, body) = response(&mut a).expect("a response on the same connection");
            assert!(head.starts_with("http/1.1 200"), "{head}");
            assert!(
                body.starts_with(b"d8:complete"),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        let mut b = TcpStream::connect(addr).expect("connect");
        b.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(b, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        assert!(response(&mut b).is_some());
        // Two connections are open: a third is closed without an answer.
        let mut c = TcpStream::connect(addr).expect("connect");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let _ = write!(c, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(response(&mut c).is_none(), "over the connection bound");
        // Once one closes, a new connection is served again.
        drop(b);
        let ok = (0..50).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            let mut d = TcpStream::connect(addr).expect("connect");
            d.set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            let _ = write!(d, "GET /stats HTTP/1.1\r\nHost: x\r\n\r\n");
            response(&mut d).is_some()
        });
        assert!(ok);
        // An oversized request head is refused, not buffered.
        let mut e = a;
        let big = format!(
            "GET /announce HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(64 * 1024)
        );
        let _ = e.write_all(big.as_bytes());
        match response(&mut e) {
            None => {}
            Some((head, _)) => assert!(!head.starts_with("http/1.1 200"), "{head}"),
        }
    })
    .await
    .expect("client");
    srv.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_threads_answer_and_stop() {
    let srv = server(TrackerConfig {
        udp: lo(),
        udp_threads: 2,
        ..TrackerConfig::default()
    })
    .await;
    let addr = srv.udp_addr().expect("udp");
    tokio::task::spawn_blocking(move || {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        s.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        let mut connect = 0x0417_2710_1980u64.to_be_bytes().to_vec();
        connect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 42]);
        let mut buf = [0u8; 256];
        let n = (0..5)
            .find_map(|_| {
                s.send_to(&connect, addr).ok()?;
                s.recv(&mut buf).ok()
            })
            .expect("a connect reply");
        assert_eq!(n, 16);
        assert_eq!(&buf[..8], &[0, 0, 0, 0, 0, 0, 0, 42]);
    })
    .await
    .expect("client");
    let t0 = std::time::Instant::now();
    srv.shutdown();
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "threads stop promptly"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_peers_over_both_transports() {
    use shoal_tracker::{AnnounceRequest, ClientConfig, Event, TrackerClient};
    let v6 = Some("[::1]:0".parse().expect("addr"));
    let srv = server(TrackerConfig {
        http: v6,
        udp: v6,
        ..TrackerConfig::default()
    })
    .await;
    let (http, udp) = (srv.http_url().expect("http"), srv.udp_url().expect("udp"));
    assert!(udp.starts_with("udp://[::1]:"), "{udp}");
    let c = TrackerClient::new(ClientConfig::default()).expect("client");
    let req = |id: u8, port: u16| {
        let mut r = AnnounceRequest::new([0x66; 20], [id; 20], port, 1);
        r.event = Event::Started;
        r
    };
    let run = async {
        let a = c
            .announce(&udp, &req(1, 1111), None)
            .await
            .expect("udp announce");
        assert!(a.peers.is_empty());
        // BEP 7: an HTTP client over IPv6 gets `peers6` and its external IP.
        let b = c
            .announce(&http, &req(2, 2222), None)
            .await
            .expect("http announce");
        assert_eq!(
            b.peers,
            vec!["[::1]:1111".parse::<SocketAddr>().expect("addr")]
        );
        assert_eq!(b.external_ip, Some("::1".parse().expect("ip")));
        // BEP 15 over IPv6: 18-byte peers.
        let d = c
            .announce(&udp, &req(3, 3333), None)
            .await
            .expect("udp announce");
        let mut peers = d.peers.clone();
        peers.sort();
        assert_eq!(
            peers,
            vec![
                "[::1]:1111".parse::<SocketAddr>().expect("addr"),
                "[::1]:2222".parse().expect("addr")
            ]
        );
    };
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("bounded");
    srv.shutdown();
}
