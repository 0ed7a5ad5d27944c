//! Integration tests against the real opentracker (Debian's build) on
//! 127.0.0.1, over HTTP and UDP: two fake peers announce, the second sees the
//! first, scrape counts them, `stopped` removes them. Each test starts its own
//! opentracker on free ports and kills it by PID when done, even on failure.
//!
//! Debian's opentracker accepts only whitelisted info-hashes and refuses to
//! run as root, so it runs with `-u nobody` chrooted (`-d`) in a temporary
//! directory that holds the whitelist. If `/usr/bin/opentracker` is missing,
//! the tests say so and pass without checking anything.
use shoal_tracker::{
    spawn_announcer, AnnounceRequest, Announcer, AnnouncerConfig, ClientConfig, Event, HttpConfig,
    TrackerClient, UdpConfig,
};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const OPENTRACKER: &str = "/usr/bin/opentracker";

/// A running opentracker, killed by PID on drop.
struct Tracker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Tracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both TCP and UDP on 127.0.0.1 right now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let t = TcpListener::bind("127.0.0.1:0").expect("bind tcp");
        let port = t.local_addr().expect("addr").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

fn start_tracker(hashes: &[[u8; 20]]) -> Option<Tracker> {
    if !Path::new(OPENTRACKER).exists() {
        eprintln!("SKIPPED: {OPENTRACKER} is not installed (apt-get install opentracker)");
        return None;
    }
    let mut dir = tempfile::tempdir().expect("tempdir");
    let wl: String = hashes
        .iter()
        .map(|h| format!("{}\n", hex::encode(h)))
        .collect();
    std::fs::write(dir.path().join("whitelist"), wl).expect("write whitelist");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `nobody` must be able to enter the chroot and read the whitelist.
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    for _attempt in 0..5 {
        let port = free_port();
        let p = port.to_string();
        let child = Command::new(OPENTRACKER)
            .args([
                "-i",
                "127.0.0.1",
                "-p",
                &p,
                "-P",
                &p,
                "-u",
                "nobody",
                "-w",
                "whitelist",
            ])
            .arg("-d")
            .arg(dir.path())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn opentracker");
        let mut t = Tracker {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                wait_whitelist_loaded(port, hashes);
                return Some(t);
            }
            if let Ok(Some(status)) = t.child.try_wait() {
                eprintln!("opentracker exited early: {status}; retrying on another port");
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Tracker's Drop kills it; take the directory back for the next try.
        dir = std::mem::replace(&mut t._dir, tempfile::tempdir().expect("tempdir"));
    }
    panic!("opentracker did not start");
}

/// opentracker loads its whitelist in a background thread after it starts
/// listening: until then every hash is refused. Probe with a `stopped`
/// announce (which adds no peer) until each hash is accepted.
fn wait_whitelist_loaded(port: u16, hashes: &[[u8; 20]]) {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(10);
    for h in hashes {
        let ih: String = h.iter().map(|b| format!("%{b:02X}")).collect();
        loop {
            let mut body = Vec::new();
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let req = format!(
                    "GET /announce?info_hash={ih}&peer_id=probeprobeprobeprobe&port=1&left=0&event=stopped&compact=1 HTTP/1.0\r\n\r\n"
                );
                let _ = s.write_all(req.as_bytes());
                let _ = s.read_to_end(&mut body);
            }
            let text = String::from_utf8_lossy(&body);
            if text.contains("interval") && !text.contains("failure reason") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "opentracker never accepted the whitelist: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn client() -> TrackerClient {
    TrackerClient::new(ClientConfig {
        http: HttpConfig {
            timeout: Duration::from_secs(5),
            ..HttpConfig::default()
        },
        udp: UdpConfig {
            base_timeout: Duration::from_millis(500),
            max_retries: 3,
            ..UdpConfig::default()
        },
        udp_timeout: Duration::from_secs(10),
    })
    .expect("client")
}

fn request(info_hash: [u8; 20], id: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
    let mut r = AnnounceRequest::new(info_hash, [id; 20], port, left);
    r.event = event;
    r.key = u32::from(id) * 77;
    r.numwant = Some(50);
    r
}

/// Two peers announce; the second sees the first; scrape counts both; after
/// `stopped` the first is gone.
async fn two_peers(url: &str, info_hash: [u8; 20]) {
    let c = client();
    let a = c
        .announce(
            url,
            &request(info_hash, b'a', 40001, 1000, Event::Started),
            None,
        )
        .await
        .expect("first announce");
    assert!(a.interval > 0);
    let b = c
        .announce(
            url,
            &request(info_hash, b'b', 40002, 0, Event::Started),
            None,
        )
        .await
        .expect("second announce");
    let first: SocketAddr = "127.0.0.1:40001".parse().expect("addr");
    assert!(
        b.peers.contains(&first),
        "second peer sees the first: {:?}",
        b.peers
    );
    assert_eq!((b.complete, b.incomplete), (Some(1), Some(1)), "{b:?}");

    let ih = shoal_base::InfoHash(info_hash);
    let s = c.scrape(url, &[ih]).await.expect("scrape");
    let st = s.get(&ih).expect("scrape has our hash");
    assert_eq!((st.complete, st.incomplete), (1, 1), "{s:?}");

    c.announce(
        url,
        &request(info_hash, b'a', 40001, 1000, Event::Stopped),
        None,
    )
    .await
    .expect("stopped");
    let s = c.scrape(url, &[ih]).await.expect("scrape after stop");
    let st = s.get(&ih).expect("scrape has our hash");
    assert_eq!((st.complete, st.incomplete), (1, 0), "{s:?}");

    // A hash that is not whitelisted is refused: over HTTP with the
    // tracker's message; over UDP opentracker answers a bare 8-byte
    // announce header, which is malformed.
    let e = c
        .announce(
            url,
            &request([0x55; 20], b'c', 40003, 1, Event::Started),
            None,
        )
        .await
        .expect_err("not whitelisted");
    if url.starts_with("udp") {
        assert!(e.to_string().contains("malformed"), "{e}");
    } else {
        assert!(e.tracker_message().is_some(), "{e}");
    }
}

#[tokio::test]
async fn http_announce_and_scrape() {
    let hash = [0xa1; 20];
    let Some(t) = start_tracker(&[hash]) else {
        return;
    };
    let url = format!("http://127.0.0.1:{}/announce", t.port);
    tokio::time::timeout(Duration::from_secs(30), two_peers(&url, hash))
        .await
        .expect("test timed out");
}

#[tokio::test]
async fn udp_announce_and_scrape() {
    let hash = [0xb2; 20];
    let Some(t) = start_tracker(&[hash]) else {
        return;
    };
    let url = format!("udp://127.0.0.1:{}/announce", t.port);
    tokio::time::timeout(Duration::from_secs(30), two_peers(&url, hash))
        .await
        .expect("test timed out");
}

/// The announce task with a dead tier and a live one: peers arrive from the
/// live tracker, and stopping sends `stopped` there within the deadline.
#[tokio::test]
async fn announcer_task_with_a_dead_tier() {
    let hash = [0xc3; 20];
    let Some(t) = start_tracker(&[hash]) else {
        return;
    };
    let live = format!("http://127.0.0.1:{}/announce", t.port);
    // A UDP port with nobody behind it (bound, then released).
    let dead = format!("udp://127.0.0.1:{}", free_port());
    let c = client();
    // Another peer is already in the swarm.
    c.announce(&live, &request(hash, b'z', 40009, 0, Event::Started), None)
        .await
        .expect("seed announce");

    let ann = Announcer::new(
        vec![vec![dead.clone()], vec![live.clone()]],
        AnnouncerConfig::default(),
        &mut rand::thread_rng(),
        Instant::now(),
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(16);
    let handle = spawn_announcer(
        ann,
        c.clone(),
        move || request(hash, b'y', 40010, 500, Event::None),
        move |o| {
            let _ = tx.try_send(o);
        },
        Duration::from_secs(3),
    );
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let o = rx.recv().await.expect("task alive");
            if *o.url == *live {
                return o;
            }
        }
    })
    .await
    .expect("live tracker answered while the dead one hangs");
    assert_eq!(got.event, Event::Started);
    let peers = got.result.expect("announce ok").peers;
    assert!(
        peers.contains(&"127.0.0.1:40009".parse().expect("addr")),
        "{peers:?}"
    );

    let ih = shoal_base::InfoHash(hash);
    let s = c.scrape(&live, &[ih]).await.expect("scrape");
    assert_eq!(s.get(&ih).map(|s| s.incomplete), Some(1));
    let t0 = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), handle.stop())
        .await
        .expect("stop is bounded");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let s = c.scrape(&live, &[ih]).await.expect("scrape");
    assert_eq!(
        s.get(&ih).map(|s| s.incomplete),
        Some(0),
        "stopped reached the tracker"
    );
    drop(t);
}
