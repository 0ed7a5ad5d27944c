//! Shared helpers for the `shoal daemon` tests: a shoal tracker and a
//! daemon on loopback, and `transmission-remote` runs with bounded time.
#![allow(dead_code)]

use crate::interop_util::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `shoal tracker --http 127.0.0.1:0`; returns it and its announce URL.
pub fn shoal_tracker(logs: &Path) -> (Proc, String) {
    let mut cmd = Command::new(shoal_bin());
    cmd.args(["tracker", "--http", "127.0.0.1:0"]);
    let mut p = Proc::spawn("shoal-tracker", &mut cmd, logs);
    let url = wait_for("the tracker to listen", Duration::from_secs(30), || {
        if !p.running() {
            panic!("the tracker exited\n{}", p.logs());
        }
        p.err().lines().find_map(|l| {
            l.strip_prefix("tracker listening on ")
                .filter(|u| u.starts_with("http://"))
                .map(|u| format!("{}/announce", u.trim().trim_end_matches('/')))
        })
    });
    (p, url)
}

/// A running `shoal daemon` on loopback (no DHT), killed when dropped.
pub struct DaemonProc {
    /// The process.
    pub proc: Proc,
    /// `127.0.0.1:PORT` of its HTTP server.
    pub addr: String,
}

/// Starts `shoal daemon --http 127.0.0.1:0 --listen 127.0.0.1:0 --no-dht
/// --state-dir STATE --download-dir DL EXTRA...` and waits until it serves.
pub fn start_daemon(
    state: &Path,
    dl: &Path,
    extra: &[&str],
    logs: &Path,
    name: &str,
) -> DaemonProc {
    serve_daemon(&mut daemon_command(state, dl, extra), logs, name)
}

/// The command [`start_daemon`] runs.
pub fn daemon_command(state: &Path, dl: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(shoal_bin());
    cmd.args([
        "daemon",
        "--http",
        "127.0.0.1:0",
        "--listen",
        "127.0.0.1:0",
        "--no-dht",
    ])
    .arg("--state-dir")
    .arg(state)
    .arg("--download-dir")
    .arg(dl)
    .args(extra)
    .env("SHOAL_NO_DEFAULT_BOOTSTRAP", "1");
    cmd
}

/// Runs `cmd` (a daemon, maybe wrapped) and waits until it serves.
pub fn serve_daemon(cmd: &mut Command, logs: &Path, name: &str) -> DaemonProc {
    let mut p = Proc::spawn(name, cmd, logs);
    let addr = wait_for("the daemon to serve", Duration::from_secs(60), || {
        if !p.running() {
            panic!("the daemon exited\n{}", p.logs());
        }
        p.err().lines().find_map(|l| {
            l.strip_prefix("shoal daemon: http://")
                .and_then(|r| r.split('/').next())
                .map(str::to_owned)
        })
    });
    DaemonProc { proc: p, addr }
}

impl DaemonProc {
    /// Runs `transmission-remote ADDR ARGS...`; returns (success, stdout + stderr).
    pub fn remote(&self, args: &[&str]) -> (bool, String) {
        let out = run_bounded(
            Command::new("transmission-remote")
                .arg(&self.addr)
                .args(args),
            Duration::from_secs(30),
        );
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Like [`DaemonProc::remote`], panicking when it fails.
    pub fn remote_ok(&self, args: &[&str]) -> String {
        let (ok, text) = self.remote(args);
        assert!(
            ok,
            "transmission-remote {args:?} failed:\n{text}\n{}",
            self.proc.logs()
        );
        text
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.proc.child.id().to_string()])
            .status();
        let st = self.proc.wait(Duration::from_secs(30));
        assert!(
            st.success(),
            "the daemon exited with {st}\n{}",
            self.proc.logs()
        );
    }
}

/// One row of `transmission-remote -l`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The torrent id (without the `*` error mark).
    pub id: u64,
    /// "Done" percent.
    pub done: u32,
    /// The status column.
    pub status: String,
    /// The name.
    pub name: String,
}

/// Parses `transmission-remote -l` (fixed columns of 3.00: ID, Done, Have,
/// ETA, Up, Down, Ratio, Status, Name; the Sum line left out).
pub fn parse_list(text: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("ID"));
    let Some(header) = lines.next() else {
        return rows;
    };
    let status_at = header.find("Status").expect("a Status column");
    let name_at = header.find("Name").expect("a Name column");
    for l in lines {
        if l.starts_with("Sum:") || l.len() < name_at {
            continue;
        }
        let mut f = l.split_whitespace();
        let id = f.next().unwrap().trim_end_matches('*').parse().unwrap();
        let done = f.next().unwrap().trim_end_matches('%');
        let done = if done == "n/a" {
            0
        } else {
            done.parse().unwrap()
        };
        rows.push(Row {
            id,
            done,
            status: l[status_at..name_at].trim().to_owned(),
            name: l[name_at..].trim().to_owned(),
        });
    }
    rows
}

/// The value after `key:` in `transmission-remote -i` / `-si` / `-st` output
/// (the first such line).
pub fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim_start().strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
}
