//! A peer that asks for much and then stops reading: once its connection
//! is over (here: the torrent is paused), the seeder's writer gets a short
//! grace to flush and then lets the socket go, instead of waiting on the
//! full socket for as long as the peer keeps it open.
use shoal_engine::Session;
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::util::{loopback, params, read_msg, wait};

const LIMIT: Duration = Duration::from_secs(30);

/// The TCP state (`/proc/net/tcp`'s `st`, 1 = established) of the IPv4
/// connection between local port `a` and remote port `b`; `None` once it
/// is gone.
fn tcp_state(a: u16, b: u16) -> Option<u8> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    table.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = |s: &str| u16::from_str_radix(s.rsplit(':').next()?, 16).ok();
        (port(f.get(1)?)? == a && port(f.get(2)?)? == b)
            .then(|| u8::from_str_radix(f.get(3)?, 16).ok())
            .flatten()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_stops_reading_does_not_keep_the_seeders_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("stall");
    std::fs::create_dir_all(&src).unwrap();
    let data: Vec<u8> = (0..16u32 << 20).map(|i| (i * 7 + i / 4093) as u8).collect();
    std::fs::write(src.join("big.bin"), &data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(256 << 10),
        version: Version::V1,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&src.join("big.bin"), &opts, &|_| {}).unwrap();
    let t = Arc::new(Torrent::from_bytes(&bytes).unwrap());
    let seeder = Session::start(loopback()).await.unwrap();
    let h = seeder.add(params(&t, &src, vec![])).await.unwrap();
    wait(&h, "the check", |s| s.is_complete()).await;
    let seed_port = seeder.local_addr().port();

    let (mut s, our_port) = tokio::time::timeout(LIMIT, async {
        // A small receive buffer, so the seeder's side fills up at once.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let mut s = sock.connect(seeder.local_addr()).await.unwrap();
        let hs = shoal_wire::Handshake {
            reserved: shoal_wire::Reserved::shoal(false),
            info_hash: t.info_hashes().primary(),
            peer_id: shoal_base::PeerId([7; 20]),
        };
        s.write_all(&hs.encode()).await.unwrap();
        let mut theirs = [0u8; 68];
        s.read_exact(&mut theirs).await.unwrap();
        s.write_all(&[0, 0, 0, 1, 2]).await.unwrap(); // interested
        while read_msg(&mut s).await.map(|m| m.0) != Some(1) {} // unchoke
                                                                // Every block of the file (1024 requests, 16 MiB), then no more reading.
        let mut reqs = Vec::new();
        for i in 0..1024u32 {
            let (piece, off) = (i / 16, (i % 16) * 16384);
            reqs.extend_from_slice(&[0, 0, 0, 13, 6]);
            for v in [piece, off, 16384] {
                reqs.extend_from_slice(&v.to_be_bytes());
            }
        }
        s.write_all(&reqs).await.unwrap();
        let port = s.local_addr().unwrap().port();
        (s, port)
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        tcp_state(seed_port, our_port),
        Some(1),
        "the seeder's side is connected, its output stuck"
    );
    h.pause().await.unwrap();
    // The connection's task ends at once; its writer has 2 s to flush.
    let end = tokio::time::Instant::now() + Duration::from_secs(10);
    while tcp_state(seed_port, our_port) == Some(1) {
        assert!(
            tokio::time::Instant::now() < end,
            "the seeder still holds the socket of a connection it closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = s.write_all(&[0, 0, 0, 0]).await;
    drop(s);
    seeder.shutdown().await;
}
