//! The generic BEP 10 extension hook between two sessions on loopback: both
//! advertise `x_test`, see each other as a peer for it and exchange
//! payloads both ways; a third session that does not advertise it is no
//! peer for it and cannot be sent to. Every test bounds its time and shuts
//! its sessions down.
use bytes::Bytes;
use rand::{RngCore, SeedableRng};
use shoal_engine::{
    AddTorrentParams, ExtPeer, ExtSendError, Extensions, Session, SessionConfig, TorrentHandle,
};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const NAME: &str = "x_test";

fn make_torrent(root: &Path) -> Arc<Torrent> {
    let dir = root.join("ext");
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = vec![0u8; 200_000];
    rand::rngs::StdRng::seed_from_u64(5).fill_bytes(&mut data);
    std::fs::write(dir.join("data.bin"), data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(64 * 1024),
        version: Version::V1,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

async fn session(extensions: Vec<&'static str>) -> Session {
    Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        enable_lsd: false,
        extensions,
        ..SessionConfig::default()
    })
    .await
    .unwrap()
}

async fn seed(s: &Session, t: &Arc<Torrent>, dir: &Path, peers: Vec<SocketAddr>) -> TorrentHandle {
    let mut p = AddTorrentParams::torrent(t.clone(), dir);
    p.peers = peers;
    s.add(p).await.unwrap()
}

async fn one_peer(ext: &Extensions) -> ExtPeer {
    tokio::time::timeout(LIMIT, async {
        loop {
            if let Some(p) = ext.peers(NAME).first() {
                return *p;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a peer with the extension")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_exchange_extension_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let t = make_torrent(tmp.path());
    let a = session(vec![NAME]).await;
    let b = session(vec![NAME, "x_other"]).await;
    let _ha = seed(&a, &t, tmp.path(), vec![]).await;
    let _hb = seed(&b, &t, tmp.path(), vec![a.local_addr()]).await;
    let (ea, eb) = (a.extensions().unwrap(), b.extensions().unwrap());
    let (mut ra, mut rb) = (ea.take_messages().unwrap(), eb.take_messages().unwrap());
    let b_seen_by_a = one_peer(&ea).await;
    let a_seen_by_b = one_peer(&eb).await;
    assert_eq!(a_seen_by_b.addr, a.local_addr());
    assert_eq!(a_seen_by_b.info_hash, t.info_hashes().v1.unwrap().0);
    // A does not speak x_other: B has no peer for it.
    assert!(eb.peers("x_other").is_empty());
    assert!(matches!(
        eb.send(a_seen_by_b, "x_other", Bytes::from_static(b"no")),
        Err(ExtSendError::NotNegotiated { .. })
    ));

    eb.send(a_seen_by_b, NAME, Bytes::from_static(b"ping"))
        .unwrap();
    let m = tokio::time::timeout(LIMIT, ra.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (m.peer, m.name, &m.payload[..]),
        (b_seen_by_a, NAME, &b"ping"[..])
    );
    ea.send(m.peer, NAME, Bytes::from_static(b"pong")).unwrap();
    let m = tokio::time::timeout(LIMIT, rb.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((m.peer, &m.payload[..]), (a_seen_by_b, &b"pong"[..]));

    // Once B is gone, A has no peer for the extension any more.
    b.shutdown().await;
    tokio::time::timeout(LIMIT, async {
        while !ea.peers(NAME).is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the peer is forgotten when its connection ends");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_the_extension_is_no_peer_for_it() {
    let tmp = tempfile::tempdir().unwrap();
    let t = make_torrent(tmp.path());
    let a = session(vec![NAME]).await;
    let plain = session(vec![]).await;
    assert!(plain.extensions().is_none());
    let ha = seed(&a, &t, tmp.path(), vec![]).await;
    let _hp = seed(&plain, &t, tmp.path(), vec![a.local_addr()]).await;
    tokio::time::timeout(LIMIT, ha.wait_for(|s| s.peers >= 1))
        .await
        .expect("connected");
    // Give the extension handshake time to arrive.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ea = a.extensions().unwrap();
    assert!(ea.peers(NAME).is_empty());
    let p = ExtPeer {
        addr: plain.local_addr(),
        info_hash: t.info_hashes().v1.unwrap(),
    };
    assert!(ea.send(p, NAME, Bytes::from_static(b"x")).is_err());
    plain.shutdown().await;
    a.shutdown().await;
}
