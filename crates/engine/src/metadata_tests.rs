//! Loopback tests of the metadata fetcher against tiny in-test peers built on
//! `shoal_wire` that serve a correct or a corrupt info dictionary.
use super::*;
use sha1::{Digest, Sha1};
use shoal_wire::HandshakePrefix;
use tokio::net::TcpListener;

/// What an in-test peer serves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// The real dictionary.
    Good,
    /// The dictionary with one byte flipped in every piece.
    Corrupt,
    /// No `ut_metadata` in its extension handshake.
    Nothing,
}

/// An info dictionary of `len` bytes (not a valid torrent; only the hash matters).
fn fake_info(len: usize) -> Bytes {
    let body: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
    Bytes::from(body)
}

/// Serves connections on a loopback listener until the test ends.
async fn spawn_peer(info: Bytes, info_hash: [u8; 20], mode: Serve) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(serve_one(stream, info.clone(), info_hash, mode));
        }
    });
    addr
}

async fn serve_one(mut stream: TcpStream, info: Bytes, info_hash: [u8; 20], mode: Serve) {
    let mut prefix = [0u8; 48];
    if stream.read_exact(&mut prefix).await.is_err() {
        return;
    }
    let Ok(Some(prefix)) = HandshakePrefix::parse(&prefix) else {
        return;
    };
    if prefix.info_hash != info_hash {
        return;
    }
    let mut config = ConnectionConfig::default();
    if mode == Serve::Nothing {
        config.extension_handshake.m.clear();
    } else {
        config.extension_handshake.metadata_size = Some(info.len() as u64);
    }
    let mut conn = PeerConnection::incoming(
        config,
        prefix,
        shoal_base::PeerId([9; 20]),
        None,
        Instant::now(),
    );
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        while let Some(out) = conn.poll_transmit() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
        }
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if conn.handle_bytes(Instant::now(), &buf[..n]).is_err() {
            return;
        }
        while let Some(ev) = conn.poll_event() {
            if let Event::Metadata(MetadataMessage::Request { piece }) = ev {
                let msg = match MetadataMessage::data_for(&info, piece) {
                    Some(MetadataMessage::Data {
                        piece,
                        total_size,
                        data,
                    }) if mode == Serve::Corrupt => {
                        let mut d = data.to_vec();
                        if let Some(b) = d.first_mut() {
                            *b ^= 0xff;
                        }
                        MetadataMessage::Data {
                            piece,
                            total_size,
                            data: Bytes::from(d),
                        }
                    }
                    Some(m) => m,
                    None => MetadataMessage::Reject { piece },
                };
                let _ = conn.send_metadata(Instant::now(), &msg);
            }
        }
    }
}

fn target_for(info: &Bytes) -> MetadataTarget {
    let h: [u8; 20] = Sha1::digest(info).into();
    MetadataTarget {
        info_hash: shoal_base::InfoHash(h),
        hash: MetadataHash::V1(shoal_base::InfoHash(h)),
    }
}

fn quick_config() -> MetadataFetchConfig {
    MetadataFetchConfig {
        peer_timeout: Duration::from_secs(5),
        overall_timeout: Duration::from_secs(20),
        ..MetadataFetchConfig::default()
    }
}

#[tokio::test]
async fn corrupt_peer_is_dropped_and_good_peer_serves() {
    // 40 KiB: three metadata pieces, the last one short.
    let info = fake_info(40 * 1024 + 123);
    let t = target_for(&info);
    let bad = spawn_peer(info.clone(), t.info_hash.0, Serve::Corrupt).await;
    let none = spawn_peer(info.clone(), t.info_hash.0, Serve::Nothing).await;
    let good = spawn_peer(info.clone(), t.info_hash.0, Serve::Good).await;
    let (tx, mut rx) = mpsc::channel(4);
    // The good peer only arrives later, as from a DHT lookup.
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        tx.send(vec![good]).await.unwrap();
        tx
    });
    let mut seen = Vec::new();
    let got = fetch_metadata(t, quick_config(), vec![bad, none], &mut rx, |p| {
        seen.push(p)
    })
    .await
    .unwrap();
    let _ = late.await;
    assert_eq!(got.info, info);
    assert_eq!(got.from, good);
    assert_eq!(got.candidates, vec![bad, none, good]);
    let last = seen.last().unwrap();
    assert_eq!(last.known, 3);
    assert!(
        seen.iter().any(|p| p.failed >= 2),
        "both bad peers fail first: {:?}",
        seen.iter().map(|p| p.failed).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn only_corrupt_peers_means_no_metadata() {
    let info = fake_info(20_000);
    let t = target_for(&info);
    let bad = spawn_peer(info.clone(), t.info_hash.0, Serve::Corrupt).await;
    let (tx, mut rx) = mpsc::channel(1);
    drop(tx);
    let err = fetch_metadata(t, quick_config(), vec![bad], &mut rx, |_| {})
        .await
        .unwrap_err();
    match err {
        FetchMetadataError::NoPeers { failed, last_error } => {
            assert_eq!(failed, 1);
            assert!(last_error.unwrap().contains("hash mismatch"));
        }
        e => panic!("unexpected {e}"),
    }
}

#[tokio::test]
async fn overall_timeout_is_reported() {
    let info = fake_info(100);
    let t = target_for(&info);
    // A listener that accepts and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let _keep = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let (_tx, mut rx) = mpsc::channel(1);
    let cfg = MetadataFetchConfig {
        overall_timeout: Duration::from_millis(500),
        ..quick_config()
    };
    let err = fetch_metadata(t, cfg, vec![addr], &mut rx, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchMetadataError::TimedOut { tried: 1, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_metadata_is_refused() {
    let info = fake_info(50_000);
    let t = target_for(&info);
    let good = spawn_peer(info.clone(), t.info_hash.0, Serve::Good).await;
    let cfg = MetadataFetchConfig {
        max_metadata_size: 10_000,
        ..quick_config()
    };
    let err = fetch_from_peer(good, t, &cfg).await.unwrap_err();
    // The wire layer refuses the size in the extension handshake, or the assembler does.
    assert!(
        matches!(
            err,
            PeerMetadataError::BadMetadata { .. } | PeerMetadataError::Protocol { .. }
        ),
        "{err}"
    );
}
