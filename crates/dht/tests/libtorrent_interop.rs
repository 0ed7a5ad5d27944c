//! Interoperability with libtorrent's DHT on loopback (Debian `python3-libtorrent`):
//! a torrent libtorrent announces is found by shoal's `get_peers`, and one shoal
//! announces is found by libtorrent; a BEP 44 immutable item put by libtorrent is read
//! by shoal and the reverse. Skipped when the bindings are not installed.
mod common;

use shoal_dht::Id20;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have_libtorrent() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Kills the child process when dropped (the test never leaves it behind).
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libtorrent_finds_us_and_we_find_it() {
    if !have_libtorrent() {
        eprintln!("skipped: python3-libtorrent is not installed");
        return;
    }
    let nodes = common::cluster(8, 3).await;
    let lt_hash = shoal_base::InfoHash([0x11; 20]);
    let our_hash = shoal_base::InfoHash([0x22; 20]);
    let our_port = 5555;
    // A free TCP/UDP port for libtorrent.
    let lt_port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap();
    nodes[3].announce(our_hash, Some(our_port)).await.unwrap();
    let (our_item, stored) = nodes[2].put_immutable(b"i42e".to_vec()).await.unwrap();
    assert!(stored > 0);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lt_dht.py");
    let child = Command::new("/usr/bin/python3")
        .arg(script)
        .arg(lt_port.to_string())
        .arg(nodes[0].local_addr().to_string())
        .arg(lt_hash.to_hex())
        .arg(our_hash.to_hex())
        .arg(our_item.to_hex())
        .arg("30")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let want = SocketAddr::from(([127, 0, 0, 1], lt_port));
    let start = Instant::now();
    let mut found = false;
    while start.elapsed() < Duration::from_secs(30) {
        let r = nodes[5].get_peers(lt_hash).await.unwrap();
        if r.peers.contains(&want) {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !found {
        for d in &nodes {
            eprintln!(
                "{:?} {:?}",
                d.counters().await.unwrap(),
                d.nodes().await.unwrap().len()
            );
        }
    }
    assert!(found, "shoal did not find libtorrent's announce");
    // libtorrent puts the immutable item "Hello World!" (bencoded 12:Hello World!).
    let lt_item = Id20::from_hex("e5f96f6f38320f0f33959cb4d3d656452117aadb").unwrap();
    let mut got = None;
    while got.is_none() && start.elapsed() < Duration::from_secs(30) {
        got = nodes[4].get_immutable(lt_item).await.unwrap();
        if got.is_none() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert_eq!(got.as_deref(), Some(&b"12:Hello World!"[..]));
    let stdout = child.0.stdout.take().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .take(2)
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let mut lines = tokio::time::timeout(Duration::from_secs(40), lines)
        .await
        .expect("libtorrent timed out")
        .unwrap();
    lines.sort();
    assert_eq!(
        lines,
        vec![format!("FOUND 127.0.0.1:{our_port}"), "ITEM 42".to_string()]
    );
    common::shutdown(&nodes).await;
}
