//! Swarm tests on loopback and in-memory streams: seeding, downloading from
//! several peers, restart without refetching, smart ban of a corrupt peer,
//! MSE/PE policies between sessions.
//! Every test bounds its time and shuts its sessions down.
use rand::{Rng, RngCore, SeedableRng};
use shoal_engine::{
    AddTorrentParams, EncryptionPolicy, FileSelection, Session, SessionConfig, TorrentHandle,
    TorrentState,
};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::util::{loopback, read_msg, same_files};

const LIMIT: Duration = Duration::from_secs(30);

/// Writes random files under `root/name/` and makes a torrent of them.
fn make_torrent(
    root: &Path,
    name: &str,
    sizes: &[usize],
    piece: u64,
    version: Version,
) -> Arc<Torrent> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(sizes.len() as u64 * 7 + piece);
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let mut data = vec![0u8; n];
        rng.fill_bytes(&mut data);
        let p = if i % 2 == 0 {
            dir.join(format!("f{i}.bin"))
        } else {
            dir.join("sub").join(format!("f{i}.dat"))
        };
        std::fs::write(p, data).unwrap();
    }
    let opts = CreateOptions {
        piece_length: Some(piece),
        version,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

fn params(t: &Arc<Torrent>, dir: &Path, peers: Vec<SocketAddr>) -> AddTorrentParams {
    let mut p = AddTorrentParams::torrent(t.clone(), dir);
    p.selection = FileSelection::All;
    p.peers = peers;
    p
}

/// Adds a torrent and waits for its check to end.
async fn add(s: &mut Session, p: AddTorrentParams) -> TorrentHandle {
    let h = s.add(p).await.unwrap();
    tokio::time::timeout(LIMIT, h.wait_for(|s| s.state != TorrentState::Checking))
        .await
        .unwrap();
    h
}

async fn wait_complete(h: &TorrentHandle) {
    let s = match tokio::time::timeout(LIMIT, h.wait_for(|s| s.is_complete())).await {
        Ok(s) => s,
        Err(_) => panic!("download timed out: {:?}", h.status()),
    };
    assert!(s.is_complete(), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_and_two_leechers_over_loopback() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(
        &src,
        "multi",
        &[700_001, 1_234_567, 3, 0, 555_555],
        64 * 1024,
        Version::Hybrid,
    );
    let mut seeder = Session::start(loopback()).await.unwrap();
    let sh = add(&mut seeder, params(&t, &src, vec![])).await;
    assert_eq!(sh.status().state, TorrentState::Seeding);
    let seed_addr = seeder.local_addr();

    let mut l1 = Session::start(loopback()).await.unwrap();
    let mut l2 = Session::start(loopback()).await.unwrap();
    let d1 = tmp.path().join("d1");
    let d2 = tmp.path().join("d2");
    let h1 = add(&mut l1, params(&t, &d1, vec![seed_addr])).await;
    let h2 = add(&mut l2, params(&t, &d2, vec![seed_addr, l1.local_addr()])).await;
    wait_complete(&h1).await;
    wait_complete(&h2).await;
    same_files(&t, &src, &d1);
    same_files(&t, &src, &d2);
    let (s1, s2) = (h1.status(), h2.status());
    assert!(s1.downloaded >= s1.wanted_bytes - 1 && s2.downloaded >= s2.wanted_bytes - 1);
    // The zero-length file exists too.
    let empty = t.files().iter().find(|f| f.length == 0 && !f.pad).unwrap();
    assert!(d1.join(&empty.path).exists());
    // The seeder's data was in the page cache: its blocks (pad zeros
    // included, it is a hybrid torrent) went out with sendfile.
    if sendfile_possible(&src) {
        assert!(
            seeder.disk_stats().file_blocks > 0,
            "{:?}",
            seeder.disk_stats()
        );
    }
    tokio::time::timeout(LIMIT, async {
        l1.shutdown().await;
        l2.shutdown().await;
        seeder.shutdown().await;
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_pair_and_file_selection() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(
        &src,
        "sel",
        &[100_000, 300_000, 50_000],
        32 * 1024,
        Version::V1,
    );
    let mut seeder = Session::start(loopback()).await.unwrap();
    let sh = add(&mut seeder, params(&t, &src, vec![])).await;
    let mut leech = Session::start(loopback()).await.unwrap();
    let dst = tmp.path().join("dst");
    let mut p = params(&t, &dst, vec![]);
    p.selection = FileSelection::Indices(vec![2]);
    let lh = add(&mut leech, p).await;
    let (a, b) = tokio::io::duplex(256 * 1024);
    let fake: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let lh2 = lh.clone();
    tokio::spawn(async move { lh2.connect_stream(a, fake).await });
    sh.accept_stream(b, fake).await;
    wait_complete(&lh).await;
    let s = lh.status();
    assert!(s.wanted_bytes < t.total_length());
    // The selected file is complete, the first (unselected, not touching
    // its pieces) file is absent.
    let f2 = &t.files()[2];
    assert_eq!(
        std::fs::read(dst.join(&f2.path)).unwrap(),
        std::fs::read(src.join(&f2.path)).unwrap()
    );
    assert!(!dst.join(&t.files()[0].path).exists());
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_does_not_refetch_verified_pieces() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "resume", &[3 << 20, 1 << 20], 64 * 1024, Version::V1);
    let mut seeder = Session::start(loopback()).await.unwrap();
    add(&mut seeder, params(&t, &src, vec![])).await;
    let dst = tmp.path().join("dst");
    // Slow first run, stopped near half way.
    let mut l1 = Session::start(SessionConfig {
        max_download_rate: Some(1 << 20),
        ..loopback()
    })
    .await
    .unwrap();
    let h = add(&mut l1, params(&t, &dst, vec![seeder.local_addr()])).await;
    let half = tokio::time::timeout(LIMIT, h.wait_for(|s| s.progress() >= 0.4))
        .await
        .unwrap();
    assert!(!half.is_complete());
    l1.shutdown().await;
    let before = h.status();
    let have_bytes = before.verified_wanted_bytes;
    assert!(have_bytes > 0);

    let mut l2 = Session::start(loopback()).await.unwrap();
    let h2 = add(&mut l2, params(&t, &dst, vec![seeder.local_addr()])).await;
    let start = h2.status();
    assert!(
        start.verified_wanted_bytes >= have_bytes,
        "{start:?} vs {before:?}"
    );
    wait_complete(&h2).await;
    let after = h2.status();
    let missing = after.wanted_bytes - have_bytes;
    assert!(
        after.downloaded <= missing,
        "refetched: downloaded {} but only {} were missing",
        after.downloaded,
        missing
    );
    same_files(&t, &src, &dst);
    l2.shutdown().await;
    seeder.shutdown().await;
}

/// A file's space is reserved at its first write (direct writes into
/// reserved space run two at a time), unless the session asks for sparse
/// files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_reserved_at_their_first_write_unless_sparse() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let len = 8 << 20;
    let t = make_torrent(&src, "alloc", &[len], 64 * 1024, Version::V1);
    let mut seeder = Session::start(loopback()).await.unwrap();
    add(&mut seeder, params(&t, &src, vec![])).await;
    for preallocate in [true, false] {
        let dst = tmp.path().join(format!("dst-{preallocate}"));
        // 1 MiB/s: the download takes 8 s, the check comes after a piece.
        let mut l = Session::start(SessionConfig {
            max_download_rate: Some(1 << 20),
            preallocate,
            ..loopback()
        })
        .await
        .unwrap();
        let h = add(&mut l, params(&t, &dst, vec![seeder.local_addr()])).await;
        tokio::time::timeout(LIMIT, h.wait_for(|s| s.verified_wanted_bytes > 0))
            .await
            .unwrap();
        let m = std::fs::metadata(dst.join("alloc/f0.bin")).unwrap();
        assert_eq!(m.len(), len as u64);
        let allocated = m.blocks() * 512;
        assert!(!h.status().is_complete());
        if preallocate {
            assert!(allocated >= len as u64, "{allocated} bytes reserved");
        } else {
            assert!(allocated < len as u64 / 2, "{allocated} bytes, sparse");
        }
        l.shutdown().await;
    }
    seeder.shutdown().await;
}

/// A peer that claims every piece and answers each request with garbage.
/// It speaks plain BitTorrent only, so a leecher that tries MSE first must
/// fall back to a second, plain connection.
async fn hostile_peer(t: Arc<Torrent>) -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let end = tokio::time::Instant::now() + LIMIT;
        while let Ok(Ok((s, _))) = tokio::time::timeout_at(end, l.accept()).await {
            tokio::spawn(hostile_conn(t.clone(), s, end));
        }
    });
    addr
}

async fn hostile_conn(t: Arc<Torrent>, mut s: tokio::net::TcpStream, end: tokio::time::Instant) {
    use shoal_wire::{Bitfield, ConnectionConfig, Event, PeerConnection};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(prefix)) =
        tokio::time::timeout_at(end, shoal_wire::tokio_io::read_handshake_prefix(&mut s)).await
    else {
        return;
    };
    let now = std::time::Instant::now();
    let mut c = PeerConnection::incoming(
        ConnectionConfig::default(),
        prefix,
        shoal_base::PeerId(*b"-XX0000-hostilepeer!"),
        Some(Bitfield::full(t.piece_count())),
        now,
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut buf = vec![0u8; 65536];
    loop {
        while let Some(b) = c.poll_transmit() {
            if s.write_all(&b).await.is_err() {
                return;
            }
        }
        let n = match tokio::time::timeout_at(end, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        let now = std::time::Instant::now();
        if c.handle_bytes(now, &buf[..n]).is_err() {
            return;
        }
        while let Some(ev) = c.poll_event() {
            match ev {
                Event::Interested => {
                    let _ = c.unchoke(now);
                }
                Event::Request(r) => {
                    let mut junk = vec![0u8; r.length as usize];
                    rng.fill(&mut junk[..]);
                    let _ = c.send_piece(now, r.piece.0, r.offset, junk.into());
                }
                _ => {}
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_peer_is_banned_and_download_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "ban", &[2 << 20], 32 * 1024, Version::V1);
    let mut seeder = Session::start(SessionConfig {
        // Slow honest seeder, so the hostile peer gets requests too.
        max_upload_rate: Some(1 << 20),
        ..loopback()
    })
    .await
    .unwrap();
    add(&mut seeder, params(&t, &src, vec![])).await;
    let bad = hostile_peer(t.clone()).await;
    let mut leech = Session::start(loopback()).await.unwrap();
    let dst = tmp.path().join("dst");
    let h = add(&mut leech, params(&t, &dst, vec![bad, seeder.local_addr()])).await;
    wait_complete(&h).await;
    let s = h.status();
    assert!(s.pieces_failed > 0, "{s:?}");
    assert_eq!(s.banned, 1, "{s:?}");
    same_files(&t, &src, &dst);
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_peer_is_dropped_without_harm() {
    use tokio::io::AsyncWriteExt;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "junk", &[500_000], 32 * 1024, Version::V1);
    let mut seeder = Session::start(loopback()).await.unwrap();
    add(&mut seeder, params(&t, &src, vec![])).await;
    let addr = seeder.local_addr();
    // A valid handshake followed by a 1 GB length prefix, and plain junk.
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let hs = shoal_wire::Handshake {
        reserved: shoal_wire::Reserved::shoal(false),
        info_hash: shoal_base::InfoHash(t.info_hashes().primary().0),
        peer_id: shoal_base::PeerId([7; 20]),
    };
    s.write_all(&hs.encode()).await.unwrap();
    s.write_all(&1_000_000_000u32.to_be_bytes()).await.unwrap();
    let mut j = tokio::net::TcpStream::connect(addr).await.unwrap();
    j.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut leech = Session::start(loopback()).await.unwrap();
    let dst = tmp.path().join("dst");
    let h = add(&mut leech, params(&t, &dst, vec![addr])).await;
    wait_complete(&h).await;
    same_files(&t, &src, &dst);
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn choked_peer_gets_its_allowed_fast_pieces() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "fast", &[40 * 16384 + 77], 16384, Version::V1);
    let n = t.piece_count() as u32;
    // A super-seeded peer is offered no allowed-fast piece (it may fetch
    // only what it was shown). No upload slot: otherwise a free one unchokes
    // the peer before it asks.
    let mut seeder = Session::start(SessionConfig {
        super_seed: false,
        upload_slots: 0,
        ..loopback()
    })
    .await
    .unwrap();
    add(&mut seeder, params(&t, &src, vec![])).await;
    let ih = t.info_hashes().primary().0;
    let want = shoal_wire::fast::allowed_fast_set(
        10,
        n,
        &shoal_base::InfoHash(ih),
        std::net::Ipv4Addr::LOCALHOST,
    );
    assert_eq!(want.len(), 10);
    tokio::time::timeout(LIMIT, async {
        let mut s = tokio::net::TcpStream::connect(seeder.local_addr())
            .await
            .unwrap();
        let hs = shoal_wire::Handshake {
            reserved: shoal_wire::Reserved::shoal(false),
            info_hash: shoal_base::InfoHash(ih),
            peer_id: shoal_base::PeerId([9; 20]),
        };
        s.write_all(&hs.encode()).await.unwrap();
        let mut theirs = [0u8; 68];
        s.read_exact(&mut theirs).await.unwrap();
        // We never say interested, so we stay choked: every piece we get
        // must come from the allowed-fast set.
        let mut offered = Vec::new();
        let mut asked = false;
        loop {
            let Some((id, p)) = read_msg(&mut s).await else {
                continue;
            };
            match id {
                0x0E => {}                                // have all, first
                1 => panic!("unchoked without interest"), // unchoke
                0x11 => {
                    offered.push(u32::from_be_bytes(p[..4].try_into().unwrap()));
                    if offered.len() == want.len() && !asked {
                        let mut sorted = offered.clone();
                        sorted.sort_unstable();
                        let mut w = want.clone();
                        w.sort_unstable();
                        assert_eq!(sorted, w);
                        // Request a block of an allowed-fast piece while choked.
                        let mut req = vec![0, 0, 0, 13, 6];
                        req.extend_from_slice(&want[0].to_be_bytes());
                        req.extend_from_slice(&100u32.to_be_bytes());
                        req.extend_from_slice(&1000u32.to_be_bytes());
                        s.write_all(&req).await.unwrap();
                        asked = true;
                    }
                }
                7 => {
                    let piece = u32::from_be_bytes(p[..4].try_into().unwrap());
                    let off = u32::from_be_bytes(p[4..8].try_into().unwrap());
                    assert_eq!((piece, off, p.len() - 8), (want[0], 100, 1000));
                    let file = std::fs::read(src.join(&t.files()[0].path)).unwrap();
                    let start = piece as usize * 16384 + 100;
                    assert_eq!(&p[8..], &file[start..start + 1000]);
                    break;
                }
                0x10 => panic!("allowed-fast request rejected"),
                _ => {}
            }
        }
    })
    .await
    .unwrap();
    seeder.shutdown().await;
}

/// Waits (polling its peer list) until `h` has a connected peer, and
/// returns whether that peer's connection is RC4-encrypted.
async fn first_peer_encrypted(h: &TorrentHandle) -> bool {
    let end = tokio::time::Instant::now() + LIMIT;
    loop {
        let peers = h.peers().await.unwrap();
        if let Some(p) = peers.iter().find(|p| p.connected) {
            return p.encrypted;
        }
        assert!(tokio::time::Instant::now() < end, "no peer connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encryption_policies_between_sessions() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "mse", &[2 << 20], 32 * 1024, Version::V1);
    // Slow seeders, so the peer lists are sampled mid-transfer.
    let seeder_cfg = |encryption| SessionConfig {
        encryption,
        max_upload_rate: Some(2 << 20),
        ..loopback()
    };
    let mut rc4_seeder = Session::start(seeder_cfg(EncryptionPolicy::Require))
        .await
        .unwrap();
    add(&mut rc4_seeder, params(&t, &src, vec![])).await;
    let mut plain_seeder = Session::start(seeder_cfg(EncryptionPolicy::Disable))
        .await
        .unwrap();
    add(&mut plain_seeder, params(&t, &src, vec![])).await;

    // Default policy against a seeder requiring RC4: encrypted, both ends say so.
    let mut a = Session::start(loopback()).await.unwrap();
    let da = tmp.path().join("a");
    let ha = add(&mut a, params(&t, &da, vec![rc4_seeder.local_addr()])).await;
    assert!(first_peer_encrypted(&ha).await, "{:?}", ha.peers().await);
    let seeder_side = rc4_seeder.torrents().into_iter().next().unwrap();
    assert!(first_peer_encrypted(&seeder_side).await);
    wait_complete(&ha).await;
    same_files(&t, &src, &da);

    // Default policy against a plaintext-only seeder: MSE fails, the
    // plain reconnect downloads, unencrypted.
    let mut b = Session::start(loopback()).await.unwrap();
    let db = tmp.path().join("b");
    let hb = add(&mut b, params(&t, &db, vec![plain_seeder.local_addr()])).await;
    assert!(!first_peer_encrypted(&hb).await);
    wait_complete(&hb).await;
    same_files(&t, &src, &db);

    // Encryption disabled against a seeder requiring it: nothing flows.
    let mut c = Session::start(SessionConfig {
        encryption: EncryptionPolicy::Disable,
        ..loopback()
    })
    .await
    .unwrap();
    let hc = add(
        &mut c,
        params(&t, &tmp.path().join("c"), vec![rc4_seeder.local_addr()]),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let s = hc.status();
    assert_eq!((s.downloaded, s.peers), (0, 0), "{s:?}");

    // Uploads go from files with sendfile only where the payload is plain.
    assert_eq!(rc4_seeder.disk_stats().file_blocks, 0);
    if sendfile_possible(&src) {
        assert!(plain_seeder.disk_stats().file_blocks > 0);
    }
    for s in [a, b, c, rc4_seeder, plain_seeder] {
        s.shutdown().await;
    }
}

/// Whether this kernel tells which pages are cached (`cachestat`), which
/// sending blocks from files needs; probed on a file under `dir`.
fn sendfile_possible(dir: &Path) -> bool {
    let f = walk_first_file(dir);
    let ok = shoal_storage::file_block::residency_known(&std::fs::File::open(f).unwrap());
    if !ok {
        eprintln!("page residency unknown: uploads are read, not sent from files");
    }
    ok
}

fn walk_first_file(dir: &Path) -> std::path::PathBuf {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            return p;
        }
        if p.is_dir() {
            return walk_first_file(&p);
        }
    }
    panic!("no file under {}", dir.display());
}
