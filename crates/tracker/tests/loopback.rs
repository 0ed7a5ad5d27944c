//! Driver tests on 127.0.0.1 against shoal's tracker server and small
//! misbehaving fakes: UDP loss and retransmission with real sockets, HTTP
//! body cap, HTTP timeout, failure reason with an error status. Every test
//! bounds its time; all tasks end with the runtime.
use shoal_tracker::udp_codec::{Request, Response};
use shoal_tracker::{
    spawn_announcer, AnnounceRequest, Announcer, AnnouncerConfig, ClientConfig, Event, HttpConfig,
    ReplyError, TrackerClient, TrackerError, UdpConfig, UdpTrackerClient,
};
use shoal_tracker_server::{Clock, SwarmConfig, Swarms, TrackerConfig, TrackerServer};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

const LIMIT: Duration = Duration::from_secs(20);

fn fast_udp() -> UdpConfig {
    UdpConfig {
        base_timeout: Duration::from_millis(100),
        max_retries: 3,
        ..UdpConfig::default()
    }
}

fn client(http_timeout: Duration) -> TrackerClient {
    TrackerClient::new(ClientConfig {
        http: HttpConfig {
            timeout: http_timeout,
            ..HttpConfig::default()
        },
        udp: fast_udp(),
        udp_timeout: Duration::from_secs(5),
    })
    .expect("client")
}

fn req(id: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
    let mut r = AnnounceRequest::new([0x42; 20], [id; 20], port, left);
    r.event = event;
    r
}

async fn local_server() -> TrackerServer {
    let lo: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let config = TrackerConfig {
        http: Some(lo),
        udp: Some(lo),
        ..TrackerConfig::default()
    };
    let swarms = std::sync::Arc::new(Swarms::new(SwarmConfig::default(), 1));
    TrackerServer::start(config, swarms, Clock::new())
        .await
        .expect("server")
}

#[tokio::test]
async fn both_transports_share_one_swarm() {
    tokio::time::timeout(LIMIT, async {
        let srv = local_server().await;
        let (http, udp) = (srv.http_url().expect("http"), srv.udp_url().expect("udp"));
        let c = client(Duration::from_secs(5));
        let a = c
            .announce(&http, &req(1, 5001, 10, Event::Started), None)
            .await
            .expect("http announce");
        assert!(a.peers.is_empty());
        assert_eq!(a.external_ip, Some("127.0.0.1".parse().expect("ip")));
        let b = c
            .announce(&udp, &req(2, 5002, 0, Event::Started), None)
            .await
            .expect("udp announce");
        assert_eq!(
            b.peers,
            vec!["127.0.0.1:5001".parse::<SocketAddr>().expect("addr")]
        );
        let s = c
            .scrape(&http, &[shoal_base::InfoHash([0x42; 20])])
            .await
            .expect("http scrape");
        assert_eq!(
            s.get(&shoal_base::InfoHash([0x42; 20]))
                .map(|s| (s.complete, s.incomplete)),
            Some((1, 1))
        );
        let s = c
            .scrape(
                &udp,
                &[
                    shoal_base::InfoHash([0x42; 20]),
                    shoal_base::InfoHash([0x43; 20]),
                ],
            )
            .await
            .expect("udp scrape");
        assert_eq!(s.files.len(), 2);
        assert_eq!(
            s.get(&shoal_base::InfoHash([0x43; 20])).map(|s| s.complete),
            Some(0)
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn udp_retransmits_after_loss_and_reuses_connection_id() {
    tokio::time::timeout(LIMIT, async {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("udp://{}", sock.local_addr().expect("addr"));
        // A tracker that drops the first two datagrams it gets.
        let fake = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut seen = 0u32;
            let mut connects = 0u32;
            loop {
                let (n, from) = sock.recv_from(&mut buf).await.expect("recv");
                seen += 1;
                if seen <= 2 {
                    continue;
                }
                let resp = match Request::decode(&buf[..n]).expect("valid request") {
                    Request::Connect { transaction_id } => {
                        connects += 1;
                        Response::Connect {
                            transaction_id,
                            connection_id: 99,
                        }
                    }
                    Request::Announce {
                        connection_id,
                        transaction_id,
                        ..
                    } => {
                        assert_eq!(connection_id, 99);
                        Response::Announce {
                            transaction_id,
                            interval: 60,
                            leechers: connects,
                            seeders: seen,
                            peers: vec!["127.0.0.1:7".parse().expect("addr")],
                        }
                    }
                    Request::Scrape { .. } => unreachable!(),
                };
                sock.send_to(&resp.encode(), from).await.expect("send");
            }
        });
        let mut c = UdpTrackerClient::connect(&url, fast_udp())
            .await
            .expect("client");
        let t0 = Instant::now();
        let a = c
            .announce(&req(1, 1, 1, Event::Started))
            .await
            .expect("announce");
        // two lost connects: waited 100 ms + 200 ms before the third went out
        assert!(
            t0.elapsed() >= Duration::from_millis(300),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!((a.incomplete, a.complete), (Some(1), Some(4)));
        // within the minute: no second connect
        let a = c
            .announce(&req(1, 1, 1, Event::None))
            .await
            .expect("announce");
        assert_eq!((a.incomplete, a.complete), (Some(1), Some(5)));
        fake.abort();
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn udp_gives_up_after_the_retry_schedule() {
    tokio::time::timeout(LIMIT, async {
        // bound but silent
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("udp://{}", sock.local_addr().expect("addr"));
        let mut c = UdpTrackerClient::connect(&url, fast_udp())
            .await
            .expect("client");
        let t0 = Instant::now();
        let e = c
            .announce(&req(1, 1, 1, Event::Started))
            .await
            .expect_err("no answer");
        let took = t0.elapsed();
        assert!(
            e.to_string()
                .contains("did not answer the connect after 4 attempts"),
            "{e}"
        );
        // 100 + 200 + 400 + 800 ms
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
            "{took:?}"
        );
        drop(sock);
    })
    .await
    .expect("bounded");
}

/// A one-shot HTTP server that answers every request with `response`.
async fn fake_http(response: Vec<u8>, delay: Duration) -> String {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/announce", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(delay).await;
                let _ = s.write_all(&response).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn http_body_cap_timeout_and_error_status() {
    tokio::time::timeout(LIMIT, async {
        let c = client(Duration::from_secs(2));
        let r = req(1, 1, 1, Event::Started);

        let mut big = b"HTTP/1.1 200 OK\r\nContent-Length: 3145728\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', 3 << 20));
        let url = fake_http(big, Duration::ZERO).await;
        match c.announce(&url, &r, None).await {
            Err(TrackerError::Reply {
                source: ReplyError::TooLarge { len, limit },
                ..
            }) => {
                assert_eq!(limit, 2 << 20);
                assert!(len > limit && len < limit + (1 << 20), "{len}");
            }
            other => panic!("{other:?}"),
        }

        let url = fake_http(b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), Duration::from_secs(30)).await;
        let t0 = Instant::now();
        let e = c.announce(&url, &r, None).await.expect_err("times out");
        assert!(t0.elapsed() < Duration::from_secs(4), "{e}");

        let body = b"d14:failure reason6:bannede";
        let mut resp = format!(
            "HTTP/1.1 403 Forbidden\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        resp.extend_from_slice(body);
        let url = fake_http(resp, Duration::ZERO).await;
        let e = c.announce(&url, &r, None).await.expect_err("refused");
        assert_eq!(e.tracker_message(), Some("banned"));

        let url = fake_http(
            b"HTTP/1.1 500 Oops\r\nContent-Length: 2\r\n\r\nno".to_vec(),
            Duration::ZERO,
        )
        .await;
        let e = c.announce(&url, &r, None).await.expect_err("500");
        assert!(
            matches!(e, TrackerError::HttpStatus { status: 500, .. }),
            "{e}"
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn announcer_task_events_against_local_tracker() {
    tokio::time::timeout(LIMIT, async {
        let srv = local_server().await;
        let (http, udp) = (srv.http_url().expect("http"), srv.udp_url().expect("udp"));
        let c = client(Duration::from_secs(5));
        let ann = Announcer::new(
            vec![vec![http.clone()], vec![udp.clone()]],
            AnnouncerConfig::default(),
            &mut rand::thread_rng(),
            Instant::now(),
        );
        let (tx, mut rx) = tokio::sync::mpsc::channel(16);
        // A leecher until it completes.
        let left = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(10));
        let l = left.clone();
        let h = spawn_announcer(
            ann,
            c.clone(),
            move || {
                req(
                    9,
                    9000,
                    l.load(std::sync::atomic::Ordering::Relaxed),
                    Event::None,
                )
            },
            move |o| {
                let _ = tx.try_send(o);
            },
            Duration::from_secs(2),
        );
        let mut started = Vec::new();
        while started.len() < 2 {
            let o = rx.recv().await.expect("outcome");
            assert!(o.result.is_ok(), "{:?}", o.result);
            assert_eq!(o.event, Event::Started);
            started.push(o.url.to_string());
        }
        started.sort();
        let mut want = vec![http.clone(), udp.clone()];
        want.sort();
        assert_eq!(started, want, "both tiers announced in parallel");
        left.store(0, std::sync::atomic::Ordering::Relaxed);
        h.completed().await;
        for _ in 0..2 {
            let o = rx.recv().await.expect("outcome");
            assert_eq!(o.event, Event::Completed);
        }
        // Both tiers are one table here: one peer, one download.
        let s = c
            .scrape(&http, &[shoal_base::InfoHash([0x42; 20])])
            .await
            .expect("scrape");
        assert_eq!(
            s.get(&shoal_base::InfoHash([0x42; 20]))
                .map(|s| (s.complete, s.downloaded)),
            Some((1, 1))
        );
        h.stop().await;
        let s = c
            .scrape(&http, &[shoal_base::InfoHash([0x42; 20])])
            .await
            .expect("scrape");
        assert_eq!(
            s.get(&shoal_base::InfoHash([0x42; 20])).map(|s| s.complete),
            Some(0)
        );
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn https_is_supported() {
    tokio::time::timeout(LIMIT, async {
        // A closed port: the error must be a connection error, not "scheme not supported".
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        drop(l);
        let c = client(Duration::from_secs(2));
        let url = format!("https://127.0.0.1:{port}/announce");
        match c.announce(&url, &req(1, 1, 1, Event::Started), None).await {
            Err(TrackerError::Http { source, .. }) => assert!(source.is_connect(), "{source:?}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.announce("wss://x/announce", &req(1, 1, 1, Event::Started), None)
                .await,
            Err(TrackerError::Url(_))
        ));
    })
    .await
    .expect("bounded");
}
