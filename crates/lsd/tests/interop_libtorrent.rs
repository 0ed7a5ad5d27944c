//! LSD wire interop with libtorrent 2.0 (`/usr/bin/python3`, LSD on): in a
//! network namespace the test creates and always deletes, a veth pair
//! (10.99.0.1 for libtorrent, 10.99.0.2 for us; nothing leaves the
//! namespace). We hear libtorrent's announce and turn it into a peer with
//! [`Lsd`]; libtorrent hears ours and connects to our TCP port with a
//! BitTorrent handshake for the torrent. Skipped (with a note) when not root
//! or without libtorrent.
#![cfg(target_os = "linux")]

use shoal_lsd::{packet::Group, Event, Lsd, LsdConfig};
use std::io::{BufRead, BufReader, Read};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Netns(String);

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

impl Netns {
    fn ip(&self, args: &[&str]) {
        let mut v = vec!["ip", "-n", &self.0];
        v.extend_from_slice(args);
        run(&v).unwrap();
    }

    fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const LT: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const US: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 2);

#[test]
fn announces_both_ways_with_libtorrent() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipping: network namespaces need root");
        return;
    }
    let lt_ok = Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success());
    if !lt_ok {
        eprintln!("skipping: python3-libtorrent not available");
        return;
    }
    let name = format!("shoal-lsd-{}", std::process::id());
    run(&["ip", "netns", "add", &name]).unwrap();
    let ns = Netns(name);
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&[
        "link", "add", "lsd-a", "type", "veth", "peer", "name", "lsd-b",
    ]);
    ns.ip(&["addr", "add", "10.99.0.1/24", "dev", "lsd-a"]);
    ns.ip(&["addr", "add", "10.99.0.2/24", "dev", "lsd-b"]);
    ns.ip(&["link", "set", "lsd-a", "up"]);
    ns.ip(&["link", "set", "lsd-b", "up"]);

    // Our LSD socket and BitTorrent listener, before libtorrent starts (it
    // announces a new torrent at once).
    let (udp, tcp) = ns.within(|| {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_reuse_address(true).unwrap();
        let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, 6771));
        s.bind(&any.into()).unwrap();
        s.join_multicast_v4(&shoal_lsd::packet::GROUP_V4, &US)
            .unwrap();
        s.set_multicast_if_v4(&US).unwrap();
        s.set_multicast_loop_v4(true).unwrap();
        let udp: UdpSocket = s.into();
        udp.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let tcp = TcpListener::bind(SocketAddrV4::new(US, 0)).unwrap();
        tcp.set_nonblocking(true).unwrap();
        (udp, tcp)
    });
    let our_port = tcp.local_addr().unwrap().port();

    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lt_lsd.py");
    let mut child = Kill(
        Command::new("ip")
            .args(["netns", "exec", &ns.0, "/usr/bin/python3", script])
            .arg(dir.path())
            .arg(LT.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.len(), 2, "libtorrent said {line:?}");
    let ih: [u8; 20] = hex::decode(f[0]).unwrap().try_into().unwrap();
    let lt_port: u16 = f[1].parse().unwrap();

    // Announce every 2 s (the test's rate limit) until both sides are done.
    let cfg = LsdConfig {
        interval: Duration::from_secs(2),
        window: Duration::from_secs(2),
        v6: false,
        ..LsdConfig::default()
    };
    let mut lsd = Lsd::new(cfg, 0x5ea1_c0de);
    lsd.set_port(our_port);
    assert!(lsd.add_torrent(shoal_base::InfoHash(ih), false, Duration::ZERO));
    let t0 = Instant::now();
    let mut heard = None;
    let mut connected = None;
    let mut buf = [0u8; 2048];
    while heard.is_none() || connected.is_none() {
        let now = t0.elapsed();
        assert!(
            now < Duration::from_secs(30),
            "heard libtorrent: {heard:?}, libtorrent connected: {connected:?}, {:?}",
            lsd.stats()
        );
        if lsd.poll_timeout().is_some_and(|t| t <= now) {
            lsd.handle_timeout(now);
        }
        while let Some(t) = lsd.poll_transmit() {
            assert_eq!(t.group, Group::V4);
            udp.send_to(&t.payload, t.group.addr()).unwrap();
        }
        if let Ok((n, from)) = udp.recv_from(&mut buf) {
            lsd.handle_datagram(t0.elapsed(), from, &buf[..n]);
        }
        while let Some(Event::Peer { info_hash, addr }) = lsd.poll_event() {
            assert_eq!(info_hash, ih);
            heard = Some(addr);
        }
        if connected.is_none() {
            if let Ok((mut s, from)) = tcp.accept() {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let mut hs = [0u8; 48];
                s.read_exact(&mut hs).unwrap();
                assert_eq!(&hs[..20], b"\x13BitTorrent protocol");
                assert_eq!(
                    hs[28..48],
                    ih,
                    "libtorrent connects for the announced torrent"
                );
                connected = Some(from);
            }
        }
    }
    assert_eq!(heard, Some(SocketAddr::from((LT, lt_port))));
    // (Its source address is whichever local one the kernel picks: both
    // veth ends are in this one namespace.)
    assert!(
        lsd.stats().own > 0,
        "our own announces came back and were ignored"
    );
    println!("{:?}", lsd.stats());
}
