//! Shared helpers for the interoperability tests: running shoal, the libtorrent
//! helper script and other clients with bounded time, and making test data.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True (and a note on stderr) when SHOAL_SKIP_INTEROP=1 asks to skip tests needing real clients.
pub fn skip_interop() -> bool {
    if std::env::var("SHOAL_SKIP_INTEROP").as_deref() == Ok("1") {
        eprintln!("SHOAL_SKIP_INTEROP=1: skipping a test that needs real clients");
        return true;
    }
    false
}

/// The shoal binary under test.
pub fn shoal_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shoal"))
}

/// Path of the libtorrent helper script.
pub fn lt_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/lt_tool.py")
}

/// Runs a command to completion with a time limit; kills it (by PID) on timeout.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {cmd:?}: {e} (is it installed? .ci/run installs it)")
        });
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "{cmd:?} did not finish in {limit:?}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a program that must succeed; returns its stdout.
pub fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run_bounded(Command::new(program).args(args), Duration::from_secs(180));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs shoal with `args`; must succeed. Returns stdout.
pub fn shoal_ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = run_bounded(
        Command::new(shoal_bin()).args(args),
        Duration::from_secs(180),
    );
    assert!(
        out.status.success(),
        "shoal {:?} failed: {}\n{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `shoal info --json FILE` parsed.
pub fn shoal_info_json(torrent: &Path) -> Value {
    let s = shoal_ok(&["info", "--json", torrent.to_str().unwrap()]);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("bad JSON from shoal info: {e}\n{s}"))
}

/// Runs the libtorrent helper script (Debian's python3 has the bindings) and parses its JSON.
pub fn lt_tool(args: &[&str]) -> Value {
    let out = run_bounded(
        Command::new("/usr/bin/python3").arg(lt_script()).args(args),
        Duration::from_secs(180),
    );
    assert!(
        out.status.success(),
        "lt_tool {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("lt_tool prints JSON")
}

/// Writes `len` pseudo-random bytes (xorshift from `seed`) to `path`, creating parents.
pub fn write_random(path: &Path, len: u64, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut left = len;
    let mut buf = [0u8; 8192];
    while left > 0 {
        for chunk in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = left.min(buf.len() as u64) as usize;
        f.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    f.flush().unwrap();
}

/// A child process killed (by PID) and reaped when dropped, so a failing test
/// never leaves clients running. Its stdout and stderr go to files.
pub struct Proc {
    /// The process.
    pub child: std::process::Child,
    /// What it is, for messages.
    pub name: String,
    /// File receiving its stdout.
    pub stdout: PathBuf,
    /// File receiving its stderr.
    pub stderr: PathBuf,
}

impl Proc {
    /// Starts `cmd` with output captured under `dir` as `<name>.out` / `<name>.err`.
    pub fn spawn(name: &str, cmd: &mut Command, dir: &Path) -> Proc {
        let stdout = dir.join(format!("{name}.out"));
        let stderr = dir.join(format!("{name}.err"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {name} {cmd:?}: {e} (installed? .ci/run installs it)")
            });
        Proc {
            child,
            name: name.to_string(),
            stdout,
            stderr,
        }
    }

    /// Its stdout so far.
    pub fn out(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Its stderr so far.
    pub fn err(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Both outputs, for failure messages (the last 4 KB of each).
    pub fn logs(&self) -> String {
        let tail = |s: String| s[s.len().saturating_sub(4096)..].to_string();
        format!(
            "--- {} stdout\n{}\n--- {} stderr\n{}",
            self.name,
            tail(self.out()),
            self.name,
            tail(self.err())
        )
    }

    /// Waits for it to exit within `limit`; kills it and panics otherwise.
    pub fn wait(&mut self, limit: Duration) -> std::process::ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st;
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("{} did not finish in {limit:?}\n{}", self.name, self.logs());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while it runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGINT (Ctrl-C), as a user would.
    pub fn interrupt(&self) {
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
    }

    /// Sends SIGKILL: the process dies at once without cleanup.
    pub fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `f` every 50 ms until it returns `Some`, or panics with `what` after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let u = std::net::UdpSocket::bind(l.local_addr().unwrap());
    let port = l.local_addr().unwrap().port();
    drop(u);
    port
}

/// opentracker on 127.0.0.1 (HTTP and UDP on the same port), whitelisting the given info-hashes.
pub struct OpenTracker {
    /// The process.
    pub proc: Proc,
    /// Its port (TCP and UDP).
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl OpenTracker {
    /// Starts opentracker on `port` (Debian's build needs a whitelist, and drops root to `nobody`).
    pub fn start(port: u16, info_hashes_hex: &[&str]) -> OpenTracker {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("whitelist"),
            info_hashes_hex.join("\n") + "\n",
        )
        .unwrap();
        let mut perms = std::fs::metadata(dir.path()).unwrap().permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(dir.path(), perms).unwrap();
        {
            let mut cmd = Command::new("opentracker");
            cmd.current_dir(dir.path()).args([
                "-i",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-P",
                &port.to_string(),
                "-d",
                &dir.path().display().to_string(),
                "-w",
                "whitelist",
            ]);
            if unsafe_is_root() {
                cmd.args(["-u", "nobody"]);
            }
            let mut proc = Proc::spawn("opentracker", &mut cmd, dir.path());
            let up = (0..100).any(|_| {
                std::thread::sleep(Duration::from_millis(20));
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            });
            if up && proc.running() {
                return OpenTracker {
                    proc,
                    port,
                    _dir: dir,
                };
            }
            panic!("opentracker did not start on port {port}\n{}", proc.logs());
        }
    }

    /// The HTTP announce URL.
    pub fn http(&self) -> String {
        format!("http://127.0.0.1:{}/announce", self.port)
    }

    /// The UDP announce URL.
    pub fn udp(&self) -> String {
        format!("udp://127.0.0.1:{}/announce", self.port)
    }
}

fn unsafe_is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Lines of JSON a process printed on stdout.
pub fn json_lines(p: &Proc) -> Vec<Value> {
    p.out()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Starts the libtorrent helper in `seed` or `download` mode and waits for its listen port.
pub fn lt_swarm(
    mode: &str,
    name: &str,
    torrent: &Path,
    save: &Path,
    extra: &[&str],
    logs: &Path,
) -> (Proc, u16) {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(lt_script())
        .arg(mode)
        .arg(torrent)
        .arg(save)
        .args(extra);
    let mut p = Proc::spawn(name, &mut cmd, logs);
    let port = wait_for(
        &format!("{name} to listen"),
        Duration::from_secs(30),
        || {
            if !p.running() {
                panic!("{name} exited early\n{}", p.logs());
            }
            json_lines(&p)
                .iter()
                .find_map(|v| v["listening"].as_u64())
                .map(|x| x as u16)
        },
    );
    (p, port)
}

/// Starts a libtorrent seeder of `torrent` (data under `save`) and waits, up
/// to `limit`, until it reports seeding; returns it with its listen port.
pub fn lt_seeding(
    name: &str,
    torrent: &Path,
    save: &Path,
    extra: &[&str],
    logs: &Path,
    limit: Duration,
) -> (Proc, u16) {
    let (p, port) = lt_swarm("seed", name, torrent, save, extra, logs);
    wait_for("libtorrent to seed", limit, || {
        json_lines(&p)
            .iter()
            .find(|v| v["seeding"] == true)
            .map(|_| ())
    });
    (p, port)
}

/// Starts `shoal seed TORRENT --data PARENT --listen 127.0.0.1:0 EXTRA...` and
/// waits until it listens; returns it with its port.
pub fn shoal_seeding(torrent: &Path, parent: &Path, extra: &[&str], logs: &Path) -> (Proc, u16) {
    let mut cmd = Command::new(shoal_bin());
    cmd.arg("seed")
        .arg(torrent)
        .arg("--data")
        .arg(parent)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra);
    let mut p = Proc::spawn("shoal-seed", &mut cmd, logs);
    let port = shoal_listen_port(&mut p);
    (p, port)
}

/// Waits until shoal printed `listening on ADDR` on stderr; returns the port.
pub fn shoal_listen_port(p: &mut Proc) -> u16 {
    wait_for("shoal to listen", Duration::from_secs(60), || {
        if !p.running() {
            panic!("shoal exited early\n{}", p.logs());
        }
        p.err().lines().find_map(|l| {
            l.split("listening on ")
                .nth(1)
                .and_then(|a| a.trim().rsplit(':').next())
                .and_then(|port| {
                    port.trim_end_matches(|c: char| !c.is_ascii_digit())
                        .parse()
                        .ok()
                })
        })
    })
}

/// Asserts two directory trees hold the same regular files with the same bytes.
pub fn assert_same_tree(expected: &Path, actual: &Path) {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    let mut a = Vec::new();
    walk(expected, expected, &mut a);
    a.sort();
    for rel in &a {
        let want = std::fs::read(expected.join(rel)).unwrap();
        let got = std::fs::read(actual.join(rel))
            .unwrap_or_else(|e| panic!("{} missing in {}: {e}", rel.display(), actual.display()));
        assert!(
            want == got,
            "{} differs ({} vs {} bytes)",
            rel.display(),
            want.len(),
            got.len()
        );
    }
    assert!(!a.is_empty());
}

/// A multi-file data set of about `mib` MiB with awkward sizes, under `root/name`.
pub fn make_dataset(root: &Path, name: &str, mib: u64) -> PathBuf {
    let dir = root.join(name);
    let m = 1 << 20;
    let sizes = [
        ("big.bin", mib * m / 2 + 1),
        ("sub/part.bin", mib * m / 4 - 7),
        ("sub/deep/c.dat", mib * m / 8 + 12345),
        (
            "d.dat",
            mib * m - (mib * m / 2 + 1) - (mib * m / 4 - 7) - (mib * m / 8 + 12345) - 123,
        ),
        ("tiny.txt", 123),
    ];
    for (i, (p, len)) in sizes.iter().enumerate() {
        write_random(&dir.join(p), *len, 100 + i as u64);
    }
    dir
}

/// aria2c leeching `torrent` into `dir` with DHT/LPD/PEX off, exiting when done.
pub fn aria2(torrent: &Path, dir: &Path, port: u16) -> Command {
    let mut c = Command::new("aria2c");
    c.args([
        "--no-conf",
        &format!("--dir={}", dir.display()),
        "--seed-time=0",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        "--enable-peer-exchange=false",
        &format!("--listen-port={port}"),
        "--interface=127.0.0.1",
        "--disable-ipv6=true",
        "--console-log-level=warn",
        "--summary-interval=0",
        "--bt-stop-timeout=200",
        "--check-integrity=true",
    ])
    .arg(torrent);
    c
}

/// transmission-cli with DHT/LPD/PEX/uTP off; touches `<dir>/done` on completion.
pub fn transmission(torrent: &Path, dir: &Path, port: u16) -> Command {
    transmission_enc(torrent, dir, port, 1)
}

/// [`transmission`] with its `encryption` setting: 0 plaintext preferred,
/// 1 encryption preferred, 2 encryption required.
pub fn transmission_enc(torrent: &Path, dir: &Path, port: u16, encryption: u8) -> Command {
    let cfg = dir.join("cfg");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("settings.json"),
        format!(
            r#"{{"dht-enabled": false, "lpd-enabled": false, "pex-enabled": false,
"utp-enabled": false, "port-forwarding-enabled": false, "peer-port": {port},
"bind-address-ipv4": "127.0.0.1", "rpc-enabled": false, "ratio-limit-enabled": false,
"message-level": 1, "encryption": {encryption}}}"#
        ),
    )
    .unwrap();
    let script = dir.join("done.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\ntouch '{}'\n", dir.join("done").display()),
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    let out = dir.join("data");
    std::fs::create_dir_all(&out).unwrap();
    let mut c = Command::new("transmission-cli");
    c.arg("-g")
        .arg(&cfg)
        .arg("-w")
        .arg(&out)
        .arg("-p")
        .arg(port.to_string())
        .arg("-f")
        .arg(&script)
        .arg(torrent);
    c
}

/// One HTTP GET on a fresh connection; returns the body.
pub fn http_get(addr: std::net::SocketAddr, target: &str) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).expect("read");
    let at = all
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    all[at + 4..].to_vec()
}
