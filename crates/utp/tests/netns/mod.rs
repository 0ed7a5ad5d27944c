//! A network namespace for one test, with `tc` on its loopback: created by
//! [`Netns::new`], always deleted by `Drop` (also when the test panics).
//! Sockets are opened inside it from a thread that joined it (`setns` is per
//! thread), and keep working from any thread afterwards. Everything stays on
//! 127.0.0.1 inside the namespace. Needs root: [`Netns::new`] returns `None`
//! (with a note) otherwise.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// A network namespace, deleted on drop.
pub struct Netns {
    name: String,
}

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", args[0]))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates a namespace with its loopback up, or `None` (with a note) when
    /// not root or without `ip`/`tc`.
    pub fn new(tag: &str) -> Option<Netns> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("skipping: network namespaces need root");
            return None;
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "shoal-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        if let Err(e) = run(&["ip", "netns", "add", &name]) {
            eprintln!("skipping: cannot create a network namespace: {e}");
            return None;
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]).expect("loopback up");
        Some(ns)
    }

    /// The namespace's name (for `ip netns exec`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS…`.
    pub fn ip(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["ip", "-n", &self.name];
        v.extend_from_slice(args);
        run(&v)
    }

    /// `ip netns exec NAME tc ARGS…`.
    pub fn tc(&self, args: &[&str]) -> Result<(), String> {
        let mut v = vec!["ip", "netns", "exec", &self.name, "tc"];
        v.extend_from_slice(args);
        run(&v)
    }

    /// Runs `f` on a thread inside the namespace.
    pub fn within<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("namespace file");
            // SAFETY: a valid namespace fd; only this thread changes namespace.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread inside the namespace")
    }

    /// A non-blocking UDP socket on 127.0.0.1 inside the namespace.
    pub fn udp(&self) -> UdpSocket {
        self.within(|| {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
    }

    /// A TCP listener on 127.0.0.1 inside the namespace.
    pub fn tcp_listener(&self) -> TcpListener {
        self.within(|| TcpListener::bind("127.0.0.1:0").expect("bind tcp"))
    }

    /// A TCP connection to `addr`, opened inside the namespace.
    pub fn tcp_connect(&self, addr: SocketAddr) -> TcpStream {
        self.within(move || TcpStream::connect(addr).expect("tcp connect"))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = run(&["ip", "netns", "del", &self.name]) {
            eprintln!("could not delete network namespace {}: {e}", self.name);
        }
    }
}
