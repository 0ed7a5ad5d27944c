//! LEDBAT yields: a measurement, not a pass/fail test (run it with
//! `cargo test -p shoal-utp --release --test ledbat_netns -- --ignored --nocapture`).
//!
//! In a network namespace the test creates (and always deletes), what
//! crosses the loopback (MTU 1500) goes through a 10 Mbit/s bottleneck (`tc
//! tbf` with up to 1 s of queue on an IFB device fed from the loopback's
//! ingress). A probe sends a small UDP datagram every 10 ms through the same
//! queue and records its one-way delay (one clock, one process), i.e. the
//! queueing delay. Scenarios, 20 s each, delay figures over the last 15 s:
//! shoal uTP alone, libtorrent uTP alone (the anchor, libtorrent 2.0 via
//! `/usr/bin/python3`, TCP off), then for TCP cubic and TCP BBR: TCP alone,
//! shoal uTP + TCP, libtorrent uTP + TCP. LEDBAT should keep the queue near its 100 ms target when alone and
//! leave the link to TCP when it is there.
#![cfg(target_os = "linux")]

mod netns;

use netns::Netns;
use shoal_utp::{UtpSocket, UtpSocketConfig};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECS: u64 = 20;
const SKIP: f64 = 5.0;

fn bottleneck(tag: &str) -> Option<Netns> {
    let ns = Netns::new(tag)?;
    // The queue must not be in the senders' own qdisc, or TCP Small Queues
    // (and the UDP send buffer) would throttle the senders before it fills:
    // what leaves the loopback (and no longer counts against a socket) is
    // redirected on ingress to an IFB device, whose tbf is the bottleneck.
    ns.ip(&["link", "set", "lo", "mtu", "1500"]).unwrap();
    ns.ip(&["link", "add", "ifb0", "type", "ifb"]).unwrap();
    ns.ip(&["link", "set", "ifb0", "up"]).unwrap();
    ns.tc(&["qdisc", "add", "dev", "lo", "handle", "ffff:", "ingress"])
        .unwrap();
    ns.tc(&[
        "filter", "add", "dev", "lo", "parent", "ffff:", "protocol", "all", "u32", "match", "u32",
        "0", "0", "action", "mirred", "egress", "redirect", "dev", "ifb0",
    ])
    .unwrap();
    ns.tc(&[
        "qdisc", "add", "dev", "ifb0", "root", "tbf", "rate", "10mbit", "burst", "15kb", "limit",
        "1250000",
    ])
    .unwrap();
    Some(ns)
}

/// One-way delays (ms) of 10 ms probes, with their time since start (s).
struct Probe {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(f64, f64)>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Probe {
    fn start(ns: &Netns, t0: Instant) -> Probe {
        let tx = ns.udp();
        let rx = ns.udp();
        tx.set_nonblocking(false).unwrap();
        rx.set_nonblocking(false).unwrap();
        rx.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let to = rx.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let s1 = stop.clone();
        let sender = std::thread::spawn(move || {
            while !s1.load(Ordering::Relaxed) {
                let ns = t0.elapsed().as_nanos() as u64;
                let _ = tx.send_to(&ns.to_be_bytes(), to);
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let (s2, out) = (stop.clone(), samples.clone());
        let receiver = std::thread::spawn(move || {
            let mut b = [0u8; 64];
            while !s2.load(Ordering::Relaxed) {
                if let Ok((8, _)) = rx.recv_from(&mut b) {
                    let sent = u64::from_be_bytes(b[..8].try_into().unwrap());
                    let now = t0.elapsed().as_nanos() as u64;
                    let d = now.saturating_sub(sent) as f64 / 1e6;
                    out.lock().unwrap().push((sent as f64 / 1e9, d));
                }
            }
        });
        Probe {
            stop,
            samples,
            threads: vec![sender, receiver],
        }
    }

    /// (median, 90th percentile, samples) of the delays after `SKIP` s.
    fn finish(self) -> (f64, f64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let mut d: Vec<f64> = self
            .samples
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t >= SKIP)
            .map(|(_, d)| *d)
            .collect();
        d.sort_by(f64::total_cmp);
        if d.is_empty() {
            return (f64::NAN, f64::NAN, 0);
        }
        (d[d.len() / 2], d[d.len() * 9 / 10], d.len())
    }
}

/// A TCP flow inside the namespace until `stop`; returns bytes received.
/// The receiver's buffer is fixed at 4 MiB (no autotuning), so the window
/// never limits the sender below the 1 s queue: the flow fills the queue
/// until it loses, as a bulk TCP transfer over a slow link does.
/// `cc` is the sender's congestion control (`cubic` fills the queue until it
/// loses; `bbr`, this kernel's default, keeps it short).
fn tcp_flow(ns: &Netns, stop: Arc<AtomicBool>, cc: &str) -> JoinHandle<u64> {
    let l = ns.tcp_listener();
    let size: libc::c_int = 4 << 20;
    // SAFETY: a valid socket and an int option of the right size.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&l),
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_RCVBUFFORCE: {}", std::io::Error::last_os_error());
    let mut out = ns.tcp_connect(l.local_addr().unwrap());
    // SAFETY: a valid socket and a byte string of the given length.
    let r = unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&out),
            libc::IPPROTO_TCP,
            libc::TCP_CONGESTION,
            cc.as_ptr().cast(),
            cc.len() as libc::socklen_t,
        )
    };
    assert_eq!(
        r,
        0,
        "TCP_CONGESTION {cc}: {}",
        std::io::Error::last_os_error()
    );
    let (mut inn, _) = l.accept().unwrap();
    let s = stop.clone();
    std::thread::spawn(move || {
        let buf = vec![7u8; 1 << 16];
        while !s.load(Ordering::Relaxed) {
            if out.write_all(&buf).is_err() {
                break;
            }
        }
    });
    inn.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            match inn.read(&mut buf) {
                Ok(0) => break,
                Ok(k) => n += k as u64,
                Err(_) => {}
            }
        }
        n
    })
}

/// A shoal uTP flow for `SECS`; returns bytes received.
async fn utp_flow(ns: &Netns) -> u64 {
    let sock = |ns: &Netns| {
        let udp = tokio::net::UdpSocket::from_std(ns.udp()).unwrap();
        UtpSocket::from_socket(udp, UtpSocketConfig::default(), None)
    };
    let server = sock(ns);
    let client = sock(ns);
    let addr = server.local_addr();
    let recv = tokio::spawn(async move {
        let (mut s, _) = server.accept().await.unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut n = 0u64;
        let end = tokio::time::Instant::now() + Duration::from_secs(SECS);
        while let Ok(Ok(k)) = tokio::time::timeout_at(end, s.read(&mut buf)).await {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    let mut c = client.connect(addr).await.unwrap();
    let buf = vec![9u8; 1 << 16];
    let end = tokio::time::Instant::now() + Duration::from_secs(SECS);
    while tokio::time::timeout_at(end, c.write_all(&buf))
        .await
        .is_ok()
    {}
    let n = recv.await.unwrap();
    if let Some(s) = c.stats() {
        println!("  shoal sender: {s:?}");
    }
    n
}

/// libtorrent uTP seed → leech for `SECS`; returns bytes downloaded.
fn lt_flow(ns: &Netns, on_ready: impl FnOnce()) -> u64 {
    let dir = std::env::temp_dir().join(format!("shoal-ledbat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lt_pair.py");
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns.name(), "/usr/bin/python3", script])
        .arg(&dir)
        .arg((64u64 << 20).to_string())
        .arg(SECS.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready", "libtorrent said {line:?}");
    on_ready();
    line.clear();
    out.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f.get(3), Some(&"1"), "libtorrent's peer is uTP: {line:?}");
    f[1].parse().unwrap()
}

fn mbit(bytes: u64) -> f64 {
    bytes as f64 * 8.0 / SECS as f64 / 1e6
}

fn have_libtorrent() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
#[ignore = "a 150 s measurement; run by hand with --ignored --nocapture"]
fn ledbat_yields_to_tcp_and_keeps_its_delay_target() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lt = have_libtorrent();
    let mut rows = Vec::new();
    let report = |name: &str, p: (f64, f64, usize), utp: Option<u64>, tcp: Option<u64>| {
        let f = |b: Option<u64>| b.map_or("-".to_string(), |b| format!("{:.2}", mbit(b)));
        format!(
            "{name:<26} delay median {:>7.1} ms  p90 {:>7.1} ms ({} probes)  uTP {:>6} Mbit/s  TCP {:>6} Mbit/s",
            p.0,
            p.1,
            p.2,
            f(utp),
            f(tcp)
        )
    };
    // 1. shoal uTP alone.
    if let Some(ns) = bottleneck("ledbat1") {
        let t0 = Instant::now();
        let probe = Probe::start(&ns, t0);
        let n = rt.block_on(utp_flow(&ns));
        rows.push(report("shoal uTP alone", probe.finish(), Some(n), None));
    } else {
        return;
    }
    // 2. libtorrent uTP alone.
    if lt {
        let ns = bottleneck("ledbat2").unwrap();
        let mut probe = None;
        let n = lt_flow(&ns, || probe = Some(Probe::start(&ns, Instant::now())));
        rows.push(report(
            "libtorrent uTP alone",
            probe.unwrap().finish(),
            Some(n),
            None,
        ));
    }
    for cc in ["cubic", "bbr"] {
        // TCP alone.
        {
            let ns = bottleneck("ledbat3").unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let probe = Probe::start(&ns, Instant::now());
            let tcp = tcp_flow(&ns, stop.clone(), cc);
            std::thread::sleep(Duration::from_secs(SECS));
            stop.store(true, Ordering::Relaxed);
            let p = probe.finish();
            let name = format!("TCP {cc} alone");
            rows.push(report(&name, p, None, Some(tcp.join().unwrap())));
        }
        // shoal uTP + TCP.
        {
            let ns = bottleneck("ledbat4").unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let probe = Probe::start(&ns, Instant::now());
            let tcp = tcp_flow(&ns, stop.clone(), cc);
            let n = rt.block_on(utp_flow(&ns));
            stop.store(true, Ordering::Relaxed);
            let p = probe.finish();
            let name = format!("shoal uTP + TCP {cc}");
            rows.push(report(&name, p, Some(n), Some(tcp.join().unwrap())));
        }
        // libtorrent uTP + TCP.
        if lt {
            let ns = bottleneck("ledbat5").unwrap();
            let stop = Arc::new(AtomicBool::new(false));
            let mut started = None;
            let n = lt_flow(&ns, || {
                started = Some((
                    Probe::start(&ns, Instant::now()),
                    tcp_flow(&ns, stop.clone(), cc),
                ))
            });
            stop.store(true, Ordering::Relaxed);
            let (probe, tcp) = started.unwrap();
            let p = probe.finish();
            let name = format!("libtorrent uTP + TCP {cc}");
            rows.push(report(&name, p, Some(n), Some(tcp.join().unwrap())));
        }
    }
    println!("\nbottleneck 10 Mbit/s, tbf queue up to 1 s, {SECS} s per run:");
    for r in rows {
        println!("{r}");
    }
}
