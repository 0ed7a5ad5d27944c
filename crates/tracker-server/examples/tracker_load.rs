//! Load generator for tracker benchmarks (`bench/tracker.sh`): fills a
//! tracker with N torrents × P peers over UDP, then measures announces per
//! second over UDP (many sockets, a window of requests in flight each) or
//! HTTP (keep-alive connections; reconnects if the tracker closes them).
//! Talks to loopback only: every socket binds a source address 127.1.x.y, so
//! that S sources look like S clients, and peer (t, p) always announces from
//! source (t·P + p) mod S with port 10000 + p, so re-announces never grow
//! the swarms.
//!
//! ```text
//! tracker_load hashes FILE --torrents N            write the info-hashes (hex, one a line)
//! tracker_load fill ADDR --torrents N --peers P    announce every peer once over UDP
//! tracker_load udp ADDR --torrents N --peers P --secs S
//! tracker_load http ADDR --torrents N --peers P --secs S
//! ```
//! Each run prints one JSON line: requests answered, errors, seconds, rate.
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SOURCES: usize = 64;
const WINDOW: usize = 32;

fn info_hash(i: u64) -> [u8; 20] {
    let mut h = [0u8; 20];
    let mut x = i.wrapping_add(0x5EED);
    for c in h.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        c.copy_from_slice(&z.to_be_bytes()[..c.len()]);
    }
    h
}

fn source(k: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 1, (k / 250) as u8, (k % 250 + 1) as u8)
}

struct Opts {
    addr: SocketAddr,
    torrents: u64,
    peers: u64,
    secs: f64,
    threads: usize,
}

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift PRNG per worker.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// The (torrent, peer) of the j-th peer owned by source k.
fn owned(o: &Opts, k: usize, j: u64) -> (u64, u64) {
    let idx = j * SOURCES as u64 + k as u64;
    (idx / o.peers, idx % o.peers)
}

fn owned_count(o: &Opts, k: usize) -> u64 {
    let total = o.torrents * o.peers;
    (total + SOURCES as u64 - 1 - k as u64) / SOURCES as u64
}

fn udp_announce(buf: &mut Vec<u8>, cid: u64, tid: u32, t: u64, p: u64) {
    buf.clear();
    buf.extend_from_slice(&cid.to_be_bytes());
    buf.extend_from_slice(&1u32.to_be_bytes());
    buf.extend_from_slice(&tid.to_be_bytes());
    buf.extend_from_slice(&info_hash(t));
    let mut pid = [b'-'; 20];
    pid[..8].copy_from_slice(b"-LD0001-");
    pid[8..16].copy_from_slice(&(t * 1000 + p).to_be_bytes());
    buf.extend_from_slice(&pid);
    buf.extend_from_slice(&0u64.to_be_bytes()); // downloaded
    buf.extend_from_slice(&u64::from(p != 0).to_be_bytes()); // left: peer 0 seeds
    buf.extend_from_slice(&0u64.to_be_bytes()); // uploaded
    buf.extend_from_slice(&0u32.to_be_bytes()); // event none
    buf.extend_from_slice(&0u32.to_be_bytes()); // ip
    buf.extend_from_slice(&(tid ^ 0x55).to_be_bytes()); // key
    buf.extend_from_slice(&50u32.to_be_bytes()); // numwant
    buf.extend_from_slice(&(10_000 + p as u16).to_be_bytes());
}

fn udp_connect(sock: &UdpSocket) -> Option<u64> {
    let mut req = Vec::with_capacity(16);
    req.extend_from_slice(&0x0417_2710_1980u64.to_be_bytes());
    req.extend_from_slice(&0u32.to_be_bytes());
    req.extend_from_slice(&7u32.to_be_bytes());
    let mut buf = [0u8; 64];
    for _ in 0..20 {
        sock.send(&req).ok()?;
        if let Ok(n) = sock.recv(&mut buf) {
            if n >= 16 && buf[..4] == [0, 0, 0, 0] && buf[4..8] == 7u32.to_be_bytes() {
                return Some(u64::from_be_bytes(buf[8..16].try_into().ok()?));
            }
        }
    }
    None
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    err: AtomicU64,
    lost: AtomicU64,
}

/// UDP: each worker drives its share of the sources; `fill` announces every
/// owned peer once, otherwise random owned peers until `stop`.
fn udp_worker(o: &Opts, ks: Vec<usize>, fill: bool, stop: &AtomicBool, c: &Counts, seed: u64) {
    let mut socks = Vec::new();
    for &k in &ks {
        let s = UdpSocket::bind((source(k), 0)).expect("bind a 127.1.x.y source");
        s.connect(o.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let cid = udp_connect(&s).expect("tracker answers connect");
        socks.push((k, s, cid, Instant::now(), 0u64));
    }
    let mut rng = Rng(seed | 1);
    let mut buf = Vec::with_capacity(128);
    let mut rbuf = [0u8; 2048];
    let mut tid = 0u32;
    loop {
        let mut active = false;
        for (k, s, cid, at, next) in socks.iter_mut() {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if at.elapsed() > Duration::from_secs(50) {
                *cid = udp_connect(s).expect("reconnect");
                *at = Instant::now();
            }
            let n_owned = owned_count(o, *k);
            let mut sent = 0;
            for _ in 0..WINDOW {
                let j = if fill {
                    if *next >= n_owned {
                        break;
                    }
                    *next += 1;
                    *next - 1
                } else {
                    rng.below(n_owned)
                };
                let (t, p) = owned(o, *k, j);
                tid = tid.wrapping_add(1);
                udp_announce(&mut buf, *cid, tid, t, p);
                if s.send(&buf).is_ok() {
                    sent += 1;
                }
            }
            active |= sent > 0;
            for _ in 0..sent {
                match s.recv(&mut rbuf) {
                    Ok(n) if n >= 20 && rbuf[..4] == [0, 0, 0, 1] => {
                        c.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {
                        c.err.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        c.lost.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                }
            }
        }
        if !active {
            return;
        }
    }
}

fn pct(out: &mut String, b: &[u8]) {
    for x in b {
        out.push_str(&format!("%{x:02X}"));
    }
}

fn http_request(addr: SocketAddr, t: u64, p: u64) -> Vec<u8> {
    let mut q = String::from("GET /announce?info_hash=");
    pct(&mut q, &info_hash(t));
    q.push_str("&peer_id=-LD0001-");
    pct(&mut q, &(t * 1000 + p).to_be_bytes());
    q.push_str("----");
    q.push_str(&format!(
        "&port={}&uploaded=0&downloaded=0&left={}&compact=1&numwant=50 HTTP/1.1\r\nHost: {addr}\r\n\r\n",
        10_000 + p,
        u64::from(p != 0)
    ));
    q.into_bytes()
}

fn http_connect(addr: SocketAddr, k: usize) -> std::io::Result<TcpStream> {
    use socket2::{Domain, SockAddr, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    sock.bind(&SockAddr::from(SocketAddr::from((source(k), 0))))?;
    sock.connect(&SockAddr::from(addr))?;
    let s: TcpStream = sock.into();
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    Ok(s)
}

/// Reads one HTTP response; returns (status ok, connection kept open).
fn read_response(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(bool, bool)> {
    buf.clear();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok());
    let close = head.contains("connection: close") || head.starts_with("http/1.0");
    let Some(len) = len else {
        // No length: the body ends with the connection.
        while s.read(&mut chunk)? > 0 {}
        let ok = head.starts_with("http/1.1 200") || head.starts_with("http/1.0 200");
        return Ok((ok, false));
    };
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = &buf[head_end..head_end + len];
    let ok = head.contains(" 200") && !body.windows(14).any(|w| w == b"failure reason");
    Ok((ok, !close))
}

fn http_worker(o: &Opts, ks: Vec<usize>, stop: &AtomicBool, c: &Counts, seed: u64) {
    let mut rng = Rng(seed | 1);
    // (source, connection, responses it carried)
    let mut conns: Vec<(usize, Option<TcpStream>, u32)> =
        ks.into_iter().map(|k| (k, None, 0)).collect();
    // Some trackers (opentracker) answer HTTP/1.1 without `Connection: close`
    // and close anyway: once seen, open a fresh connection per request.
    let mut server_closes = false;
    let mut buf = Vec::with_capacity(8192);
    while !stop.load(Ordering::Relaxed) {
        // One request in flight per connection: send on all, then read all.
        let mut pending = Vec::new();
        for (i, (k, conn, served)) in conns.iter_mut().enumerate() {
            if conn.is_none() {
                match http_connect(o.addr, *k) {
                    Ok(s) => {
                        *conn = Some(s);
                        *served = 0;
                    }
                    Err(_) => {
                        c.err.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            let (t, p) = owned(o, *k, rng.below(owned_count(o, *k)));
            let req = http_request(o.addr, t, p);
            if let Some(s) = conn.as_mut() {
                if s.write_all(&req).is_ok() {
                    pending.push(i);
                } else {
                    *conn = None;
                }
            }
        }
        for i in pending {
            let (_, conn, served) = &mut conns[i];
            let Some(s) = conn.as_mut() else { continue };
            match read_response(s, &mut buf) {
                Ok((ok, keep)) => {
                    if ok {
                        c.ok.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.err.fetch_add(1, Ordering::Relaxed);
                    }
                    *served += 1;
                    if !keep || server_closes {
                        *conn = None;
                    }
                }
                Err(_) => {
                    if *served > 0 {
                        server_closes = true;
                    }
                    c.lost.fetch_add(1, Ordering::Relaxed);
                    *conn = None;
                }
            }
        }
    }
}

fn run(o: Opts, mode: &str) {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(Counts::default());
    let o = Arc::new(o);
    let start = Instant::now();
    let mut workers = Vec::new();
    for w in 0..o.threads {
        let ks: Vec<usize> = (0..SOURCES).filter(|k| k % o.threads == w).collect();
        let (o, stop, counts, mode) = (o.clone(), stop.clone(), counts.clone(), mode.to_string());
        workers.push(std::thread::spawn(move || match mode.as_str() {
            "http" => http_worker(&o, ks, &stop, &counts, 77 + w as u64),
            m => udp_worker(&o, ks, m == "fill", &stop, &counts, 77 + w as u64),
        }));
    }
    if mode != "fill" {
        std::thread::sleep(Duration::from_secs_f64(o.secs));
        stop.store(true, Ordering::Relaxed);
    }
    for w in workers {
        let _ = w.join();
    }
    let secs = start.elapsed().as_secs_f64();
    let ok = counts.ok.load(Ordering::Relaxed);
    println!(
        "{{\"mode\":\"{mode}\",\"answered\":{ok},\"errors\":{},\"lost\":{},\"secs\":{secs:.3},\"rate\":{:.0}}}",
        counts.err.load(Ordering::Relaxed),
        counts.lost.load(Ordering::Relaxed),
        ok as f64 / secs
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let torrents = arg(&args, "--torrents", 100_000u64);
    if mode == "hashes" {
        let path = args.get(2).expect("hashes FILE");
        let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
        for t in 0..torrents {
            let h: String = info_hash(t).iter().map(|b| format!("{b:02x}")).collect();
            writeln!(f, "{h}").expect("write");
        }
        return;
    }
    if !matches!(mode, "fill" | "udp" | "http") {
        eprintln!("usage: tracker_load (hashes FILE | fill ADDR | udp ADDR | http ADDR) [--torrents N] [--peers P] [--secs S] [--threads T]");
        std::process::exit(2);
    }
    let addr: SocketAddr = args.get(2).and_then(|a| a.parse().ok()).expect("ADDR:PORT");
    assert!(addr.ip().is_loopback(), "loopback only");
    let o = Opts {
        addr,
        torrents,
        peers: arg(&args, "--peers", 10u64),
        secs: arg(&args, "--secs", 10.0f64),
        threads: arg(&args, "--threads", 2usize).clamp(1, SOURCES),
    };
    run(o, mode);
}
