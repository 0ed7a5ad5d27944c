//! shoal-only swarm through the binary on loopback: `shoal seed` serves a
//! multi-file torrent, two `shoal download`s fetch it from the seeder and from
//! each other; one of them is killed (SIGKILL) part way and restarted, and
//! continues from what it had verified. Every process is killed on drop and
//! every wait is bounded.
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// A child process whose stderr lines arrive on a channel; killed on drop.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Proc {
    fn spawn(args: &[&str]) -> Proc {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Proc {
            child,
            lines: rx,
            seen: Vec::new(),
        }
    }

    /// Waits for a stderr line for which `f` returns a value.
    fn wait_line<T>(&mut self, mut f: impl FnMut(&str) -> Option<T>) -> T {
        let end = Instant::now() + LIMIT;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let r = f(&l);
                    self.seen.push(l);
                    if let Some(v) = r {
                        return v;
                    }
                }
                Err(_) => panic!("no expected line; stderr:\n{}", self.seen.join("\n")),
            }
        }
    }

    fn listen_addr(&mut self) -> SocketAddr {
        self.wait_line(|l| l.strip_prefix("listening on ").and_then(|a| a.parse().ok()))
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let end = Instant::now() + LIMIT;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.seen.push(l);
                }
                return st;
            }
            assert!(
                Instant::now() < end,
                "process did not exit:\n{}",
                self.seen.join("\n")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic pseudo-random bytes (xorshift).
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(n + 8);
    while v.len() < n {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.extend_from_slice(&seed.to_le_bytes());
    }
    v.truncate(n);
    v
}

fn make(root: &Path) -> (PathBuf, PathBuf) {
    let dir = root.join("src").join("payload");
    std::fs::create_dir_all(dir.join("deep")).unwrap();
    std::fs::write(dir.join("a.bin"), noise(3_000_017, 1)).unwrap();
    std::fs::write(dir.join("deep").join("b.bin"), noise(1_500_001, 2)).unwrap();
    std::fs::write(dir.join("c.txt"), noise(999, 3)).unwrap();
    let opts = shoal_metainfo::CreateOptions {
        piece_length: Some(32 * 1024),
        ..Default::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    let t = root.join("t.torrent");
    std::fs::write(&t, bytes).unwrap();
    (t, root.join("src"))
}

fn same(a: &Path, b: &Path) {
    for rel in ["payload/a.bin", "payload/deep/b.bin", "payload/c.txt"] {
        let x = std::fs::read(a.join(rel)).unwrap();
        let y = std::fs::read(b.join(rel)).unwrap_or_default();
        assert!(x == y, "{rel} differs");
    }
}

fn progress(l: &str) -> Option<f64> {
    l.strip_prefix("progress ")?.split('%').next()?.parse().ok()
}

#[test]
fn seed_two_leechers_and_kill_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let (torrent, src) = make(tmp.path());
    let t = torrent.to_str().unwrap();
    let mut seed = Proc::spawn(&[
        "seed",
        t,
        "--data",
        src.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    let seed_addr = seed.listen_addr().to_string();
    seed.wait_line(|l| l.contains("seeding").then_some(()));

    // Leecher 1, slowed down, killed part way.
    let d1 = tmp.path().join("d1");
    let d1s = d1.to_str().unwrap();
    let mut l1 = Proc::spawn(&[
        "download",
        t,
        "-o",
        d1s,
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &seed_addr,
        "--max-download-rate",
        "1000000",
    ]);
    l1.listen_addr();
    l1.wait_line(|l| progress(l).filter(|&p| p >= 25.0));
    let _ = l1.child.kill();
    l1.wait_exit();

    // Restarted with a fixed port, so leecher 2 can also fetch from it.
    let mut l1 = Proc::spawn(&[
        "download",
        t,
        "-o",
        d1s,
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &seed_addr,
        "--seed",
    ]);
    let l1_addr = l1.listen_addr().to_string();
    let resumed: u32 = l1.wait_line(|l| {
        l.strip_prefix("resuming: ")
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    });
    assert!(resumed > 0, "nothing kept across the kill");
    l1.wait_line(|l| l.contains("download complete").then_some(()));
    same(&src, &d1);

    let d2 = tmp.path().join("d2");
    let mut l2 = Proc::spawn(&[
        "download",
        t,
        "-o",
        d2.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--peer",
        &seed_addr,
        "--peer",
        &l1_addr,
    ]);
    let st = l2.wait_exit();
    assert!(st.success(), "leecher 2: {st}\n{}", l2.seen.join("\n"));
    same(&src, &d2);

    // SIGINT: clean exit 0 for the seeding downloader and the seeder.
    for p in [&mut l1, &mut seed] {
        let pid = p.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let st = p.wait_exit();
        assert!(st.success(), "exit on SIGINT: {st}\n{}", p.seen.join("\n"));
    }
}

#[test]
fn ipv6_seed_and_download() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (torrent, src) = make(tmp.path());
    let t = torrent.to_str().unwrap();
    let mut seed = Proc::spawn(&[
        "seed",
        t,
        "--data",
        src.to_str().unwrap(),
        "--listen",
        "[::1]:0",
        "--no-dht",
    ]);
    let seed_addr = seed.listen_addr();
    assert!(seed_addr.is_ipv6(), "{seed_addr}");
    seed.wait_line(|l| l.contains("seeding").then_some(()));
    let out = tmp.path().join("v6");
    let mut leech = Proc::spawn(&[
        "download",
        t,
        "-o",
        out.to_str().unwrap(),
        "--listen",
        "[::1]:0",
        "--peer",
        &seed_addr.to_string(),
        "--no-dht",
    ]);
    assert!(leech.listen_addr().is_ipv6());
    assert!(leech.wait_exit().success(), "{}", leech.seen.join("\n"));
    same(&src, &out);
}
