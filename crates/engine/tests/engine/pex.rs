//! Peer exchange (BEP 11) between shoal nodes on loopback: a node that only
//! knows a middleman finds the seed through the middleman's `ut_pex` message
//! and downloads from it; for a private torrent (BEP 27) it does not.
//! Every test bounds its time and shuts its sessions down.
use rand::{RngCore, SeedableRng};
use shoal_engine::{
    AddTorrentParams, FileSelection, Session, SessionConfig, TorrentHandle, TorrentState,
};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const PEX_INTERVAL: Duration = Duration::from_millis(500);

/// A torrent of `dir/{big.bin (len bytes), empty}`: selecting only the
/// empty file wants no piece at all.
fn make_torrent(root: &Path, len: usize, private: bool) -> Arc<Torrent> {
    let dir = root.join("pex");
    std::fs::create_dir_all(&dir).unwrap();
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(11).fill_bytes(&mut data);
    std::fs::write(dir.join("big.bin"), data).unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    let opts = CreateOptions {
        piece_length: Some(64 * 1024),
        version: Version::V1,
        private,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

fn cfg() -> SessionConfig {
    SessionConfig {
        pex_interval: PEX_INTERVAL,
        ..crate::util::loopback()
    }
}

async fn add(
    s: &mut Session,
    t: &Arc<Torrent>,
    dir: &Path,
    selection: FileSelection,
    peers: Vec<SocketAddr>,
) -> TorrentHandle {
    let mut p = AddTorrentParams::torrent(t.clone(), dir);
    p.selection = selection;
    p.peers = peers;
    let h = s.add(p).await.unwrap();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        h.wait_for(|s| s.state != shoal_engine::TorrentState::Checking),
    )
    .await
    .unwrap();
    h
}

fn empty_index(t: &Torrent) -> usize {
    t.files()
        .iter()
        .position(|f| f.length == 0 && !f.pad)
        .unwrap()
}

/// A seeds; B wants nothing (it has no piece to give) and knows A; C knows
/// only B. Returns the three sessions and handles.
async fn swarm(
    root: &Path,
    t: &Arc<Torrent>,
) -> (Vec<Session>, TorrentHandle, TorrentHandle, TorrentHandle) {
    let src = root.join("src");
    let mut a = Session::start(cfg()).await.unwrap();
    let ha = add(&mut a, t, &src, FileSelection::All, vec![]).await;
    assert_eq!(ha.status().state, TorrentState::Seeding);
    let mut b = Session::start(cfg()).await.unwrap();
    let only_empty = FileSelection::Indices(vec![empty_index(t)]);
    let hb = add(&mut b, t, &root.join("b"), only_empty, vec![a.local_addr()]).await;
    tokio::time::timeout(LIMIT, hb.wait_for(|s| s.peers >= 1))
        .await
        .expect("B connects to A");
    let mut c = Session::start(cfg()).await.unwrap();
    let hc = add(
        &mut c,
        t,
        &root.join("c"),
        FileSelection::All,
        vec![b.local_addr()],
    )
    .await;
    (vec![a, b, c], ha, hb, hc)
}

async fn shutdown(sessions: Vec<Session>) {
    tokio::time::timeout(LIMIT, async {
        for s in sessions {
            s.shutdown().await;
        }
    })
    .await
    .expect("shutdown in time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_finds_the_seed_through_pex_and_downloads_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let len = 1 << 20;
    let t = make_torrent(&tmp.path().join("src"), len, false);
    let (sessions, ha, hb, hc) = swarm(tmp.path(), &t).await;
    let s = match tokio::time::timeout(LIMIT, hc.wait_for(|s| s.is_complete())).await {
        Ok(s) => s,
        Err(_) => panic!("C did not complete: {:?}", hc.status()),
    };
    assert!(s.is_complete(), "{s:?}");
    assert!(s.downloaded >= len as u64, "{s:?}");
    let got = std::fs::read(tmp.path().join("c/pex/big.bin")).unwrap();
    let want = std::fs::read(tmp.path().join("src/pex/big.bin")).unwrap();
    assert!(got == want, "C's copy differs");
    // B had nothing to give: every byte C got came from A, whose address C
    // only learned from B's ut_pex message.
    assert_eq!(hb.status().pieces_have, 0);
    // Upload counters arrive with the peer's periodic stats.
    let a = tokio::time::timeout(LIMIT, ha.wait_for(|s| s.uploaded >= len as u64))
        .await
        .expect("A reports its upload");
    assert!(a.uploaded >= len as u64, "{a:?}");
    assert_eq!(hb.status().uploaded, 0);
    shutdown(sessions).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_torrent_does_not_exchange_peers() {
    let tmp = tempfile::tempdir().unwrap();
    let t = make_torrent(&tmp.path().join("src"), 256 * 1024, true);
    assert!(t.is_private());
    let (sessions, ha, _hb, hc) = swarm(tmp.path(), &t).await;
    tokio::time::timeout(LIMIT, hc.wait_for(|s| s.peers >= 1))
        .await
        .expect("C connects to B");
    // Many PEX intervals: C must still know only B, and A must not see C.
    tokio::time::sleep(PEX_INTERVAL * 8).await;
    let c = hc.status();
    assert_eq!(c.peers, 1, "{c:?}");
    assert_eq!(c.downloaded, 0, "{c:?}");
    assert_eq!(ha.status().peers, 1, "A sees only B: {:?}", ha.status());
    shutdown(sessions).await;
}

/// A peer that offers `ut_metadata` but never answers, and names `seed` in a
/// `ut_pex` message right after the extension handshake.
async fn pex_only_peer(info_hash: [u8; 20], metadata_size: u64, seed: SocketAddr) -> SocketAddr {
    use shoal_wire::{ConnectionConfig, Event, HandshakePrefix, PeerConnection};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let mut prefix = [0u8; 48];
        if s.read_exact(&mut prefix).await.is_err() {
            return;
        }
        let Ok(Some(prefix)) = HandshakePrefix::parse(&prefix) else {
            return;
        };
        assert_eq!(prefix.info_hash, info_hash);
        let mut config = ConnectionConfig::default();
        config.extension_handshake.metadata_size = Some(metadata_size);
        let now = std::time::Instant::now();
        let mut conn =
            PeerConnection::incoming(config, prefix, shoal_base::PeerId([7; 20]), None, now);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            while let Some(out) = conn.poll_transmit() {
                if s.write_all(&out).await.is_err() {
                    return;
                }
            }
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let now = std::time::Instant::now();
            if conn.handle_bytes(now, &buf[..n]).is_err() {
                return;
            }
            while let Some(ev) = conn.poll_event() {
                if let Event::ExtensionHandshake(_) = ev {
                    let m = shoal_wire::PexMessage {
                        added: vec![(seed, shoal_wire::PexFlags(shoal_wire::PexFlags::SEED))],
                        dropped: vec![],
                    };
                    conn.send_pex(now, &m).unwrap();
                }
            }
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_fetch_uses_peers_from_pex() {
    use shoal_engine::metadata::{fetch_metadata, MetadataFetchConfig, MetadataTarget};
    let tmp = tempfile::tempdir().unwrap();
    let t = make_torrent(&tmp.path().join("src"), 256 * 1024, false);
    let mut a = Session::start(cfg()).await.unwrap();
    add(
        &mut a,
        &t,
        &tmp.path().join("src"),
        FileSelection::All,
        vec![],
    )
    .await;
    let ih = t.info_hashes().primary().0;
    let liar = pex_only_peer(ih, t.info_bytes().len() as u64, a.local_addr()).await;
    let target = MetadataTarget {
        info_hash: shoal_base::InfoHash(ih),
        hash: shoal_wire::MetadataHash::V1(shoal_base::InfoHash(ih)),
    };
    let (_more_tx, mut more) = tokio::sync::mpsc::channel(1);
    let config = MetadataFetchConfig {
        overall_timeout: LIMIT,
        ..MetadataFetchConfig::default()
    };
    let got = fetch_metadata(target, config, vec![liar], &mut more, |_| {})
        .await
        .expect("metadata through the peer named by ut_pex");
    assert_eq!(&got.info[..], t.info_bytes());
    assert_eq!(got.from, a.local_addr());
    assert_eq!(got.candidates, vec![liar, a.local_addr()]);
    shutdown(vec![a]).await;
}
