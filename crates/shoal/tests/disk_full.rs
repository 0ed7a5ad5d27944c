//! A download onto a filesystem that fills up: shoal stops with a clear
//! "disk full" error and a non-zero exit (no crash, no hang), keeps what it
//! had verified, and once there is room again a restart completes the
//! download without fetching the verified pieces again.
//!
//! The full filesystem is a small tmpfs the test mounts itself (root only;
//! skipped otherwise) and unmounts on the way out.
mod interop_util;

use interop_util::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A tmpfs mounted at a directory, unmounted on drop.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let st = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(st.success(), "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn shoal(args: &[&str]) -> Command {
    let mut c = Command::new(shoal_bin());
    c.args(args).args(["--no-dht"]);
    c
}

#[test]
fn disk_full_stops_cleanly_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&tmp.path().join("small"), "3m") else {
        eprintln!("cannot mount a tmpfs here (not root?); skipped");
        return;
    };
    let data = make_dataset(tmp.path(), "payload", 8);
    let torrent = tmp.path().join("p.torrent");
    shoal_ok(&[
        "create",
        data.to_str().unwrap(),
        "-o",
        torrent.to_str().unwrap(),
        "--piece-size",
        "64K",
    ]);
    let t = torrent.to_str().unwrap();
    let mut seed = Proc::spawn(
        "seed",
        &mut shoal(&[
            "seed",
            t,
            "--data",
            tmp.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ]),
        tmp.path(),
    );
    let port = shoal_listen_port(&mut seed);
    let peer = format!("127.0.0.1:{port}");
    let out = fs.0.to_str().unwrap().to_string();

    // 8 MiB into 3 MiB: the download must stop with a disk-full error.
    let mut leech = Proc::spawn(
        "leech1",
        &mut shoal(&[
            "download",
            t,
            "-o",
            &out,
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &peer,
        ]),
        tmp.path(),
    );
    let st = leech.wait(Duration::from_secs(60));
    assert!(
        !st.success(),
        "a full disk cannot complete\n{}",
        leech.logs()
    );
    let err = leech.err().to_lowercase();
    assert!(
        err.contains("no space left") || err.contains("disk full") || err.contains("disk is full"),
        "no clear disk-full message\n{}",
        leech.logs()
    );
    assert!(!err.contains("panicked"), "{}", leech.logs());

    // Room again: the restart keeps what was verified and completes.
    fs.resize("64m");
    let mut leech = Proc::spawn(
        "leech2",
        &mut shoal(&[
            "download",
            t,
            "-o",
            &out,
            "--listen",
            "127.0.0.1:0",
            "--peer",
            &peer,
        ]),
        tmp.path(),
    );
    let st = leech.wait(Duration::from_secs(60));
    assert!(st.success(), "{}", leech.logs());
    let resumed: u64 = leech
        .err()
        .lines()
        .find_map(|l| {
            l.strip_prefix("resuming: ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0);
    assert!(resumed > 0, "nothing verified was kept\n{}", leech.logs());
    assert_same_tree(&data, &fs.0.join("payload"));
    seed.interrupt();
    let _ = seed.wait(Duration::from_secs(20));
}
