use super::*;
use crate::layout::storage_layout;
use bytes::Bytes;
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_storage::hash_proof::FileTree;
use shoal_wire::{HandshakePrefix, Reserved};

const PIECE: u64 = 16 * 1024;

/// A v2-only torrent with a 600-piece file (two requests), a 3-piece file,
/// a one-piece file and a tiny one; returns (full torrent, bare torrent).
fn torrents() -> (Torrent, Torrent) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lay");
    std::fs::create_dir_all(&src).unwrap();
    let sizes = [
        ("a.bin", 600 * PIECE - 5),
        ("b.bin", 3 * PIECE),
        ("c.bin", PIECE),
        ("d.bin", 10),
    ];
    for (i, (name, len)) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..*len)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(i as u8))
            .collect();
        std::fs::write(src.join(name), data).unwrap();
    }
    let opts = CreateOptions {
        piece_length: Some(PIECE),
        version: Version::V2,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&src, &opts, &|_| {}).unwrap();
    let full = Torrent::from_bytes(&bytes).unwrap();
    let bare = Torrent::from_info_bytes(full.info_bytes(), &Default::default()).unwrap();
    (full, bare)
}

/// The tree of every file of `full` by pieces root.
fn trees(full: &Torrent) -> Vec<([u8; 32], FileTree)> {
    (0..full.files().len())
        .filter_map(|i| {
            let layer = full.piece_layer(i)?;
            let root = full.files().get(i)?.pieces_root?;
            Some((root, FileTree::from_piece_layer(layer, 0)))
        })
        .collect()
}

/// The honest answer to `r`.
fn answer(trees: &[([u8; 32], FileTree)], r: &HashRequest) -> Vec<u8> {
    let (_, t) = trees
        .iter()
        .find(|(root, _)| *root == r.pieces_root)
        .unwrap();
    t.hashes(r.base_layer, r.index, r.length, r.proof_layers)
        .unwrap()
        .concat()
}

#[test]
fn plans_chunks_and_assembles_layers_that_attach() {
    let (full, mut bare) = torrents();
    assert!(matches!(
        storage_layout(&bare),
        Err(crate::AddTorrentError::V2Only)
    ));
    let trees = trees(&full);
    let mut asm = LayerAssembler::new(&bare, 10_000).unwrap();
    // a.bin: 600 pieces in two requests of 512; b.bin: one request of 4.
    assert_eq!(asm.queued(), 3);
    let mut lengths = Vec::new();
    while let Some(r) = asm.next_request() {
        lengths.push((r.index, r.length, r.proof_layers));
        let a = answer(&trees, &r);
        asm.on_hashes(&r, &a).unwrap();
    }
    assert_eq!(lengths, vec![(0, 512, 9), (512, 512, 9), (0, 4, 1)]);
    assert!(asm.is_complete());
    for (i, layer) in asm.into_layers() {
        assert_eq!(Some(layer.as_slice()), full.piece_layer(i));
        bare.attach_piece_layer(i, layer).unwrap();
    }
    assert!((0..bare.files().len()).all(|i| !bare.needs_piece_layer(i)));
    assert_eq!(
        storage_layout(&bare).unwrap().piece_hashes,
        storage_layout(&full).unwrap().piece_hashes
    );
}

#[test]
fn bad_hashes_are_refused_and_requeued() {
    let (full, bare) = torrents();
    let trees = trees(&full);
    let mut asm = LayerAssembler::new(&bare, 10_000).unwrap();
    let r = asm.next_request().unwrap();
    let mut a = answer(&trees, &r);
    // A wrong piece hash, then a wrong uncle.
    for at in [100 * 32 + 3, a.len() - 1] {
        let mut bad = a.clone();
        bad[at] ^= 0x40;
        assert!(matches!(
            asm.on_hashes(&r, &bad),
            Err(LayerAssemblyError::BadHashes {
                file_index: 0,
                index: 0,
                ..
            })
        ));
        assert_eq!(asm.in_flight(), 0);
        assert_eq!(asm.next_request(), Some(r));
    }
    // A truncated proof, a ragged payload, and an answer never asked for.
    assert!(asm.on_hashes(&r, &a[..a.len() - 32]).is_err());
    assert_eq!(asm.next_request(), Some(r));
    assert!(matches!(
        asm.on_hashes(&r, &a[..a.len() - 1]),
        Err(LayerAssemblyError::BadPayload { .. })
    ));
    assert_eq!(asm.next_request(), Some(r));
    let other = HashRequest { index: 1024, ..r };
    assert!(matches!(
        asm.on_hashes(&other, &a),
        Err(LayerAssemblyError::Unsolicited { .. })
    ));
    // Rejected: back in the queue.
    asm.on_reject(&r).unwrap();
    assert_eq!(asm.in_flight(), 0);
    while let Some(q) = asm.next_request() {
        a = answer(&trees, &q);
        asm.on_hashes(&q, &a).unwrap();
    }
    assert!(asm.is_complete());
}

#[test]
fn budget_is_enforced() {
    let (_, bare) = torrents();
    assert!(matches!(
        LayerAssembler::new(&bare, 100),
        Err(LayerAssemblyError::TooManyPieces { max: 100, .. })
    ));
}

/// A loopback peer serving hash requests from `trees`; `corrupt` flips a bit
/// in every answer.
async fn fake_peer(
    trees: Vec<([u8; 32], FileTree)>,
    corrupt: bool,
) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let Ok((mut s, _)) = l.accept().await else {
            return;
        };
        let mut head = [0u8; 48];
        if s.read_exact(&mut head).await.is_err() {
            return;
        }
        let Ok(Some(prefix)) = HandshakePrefix::parse(&head) else {
            return;
        };
        let mut cfg = ConnectionConfig {
            reserved: Reserved::shoal(false),
            ..ConnectionConfig::default()
        };
        cfg.reserved.set_v2(true);
        let mut c = PeerConnection::incoming(
            cfg,
            prefix,
            shoal_base::PeerId([7; 20]),
            None,
            Instant::now(),
        );
        let mut buf = vec![0u8; 4096];
        loop {
            while let Some(out) = c.poll_transmit() {
                if s.write_all(&out).await.is_err() {
                    return;
                }
            }
            let n = match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if c.handle_bytes(Instant::now(), &buf[..n]).is_err() {
                return;
            }
            while let Some(ev) = c.poll_event() {
                if let Event::HashRequest(r) = ev {
                    let mut a = answer(&trees, &r);
                    if corrupt {
                        a[5] ^= 1;
                    }
                    let _ = c.send_hashes(Instant::now(), r, Bytes::from(a));
                }
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_peer_with_bad_hashes_is_dropped_and_the_next_one_used() {
    let (full, mut bare) = torrents();
    let (bad, t1) = fake_peer(trees(&full), true).await;
    let (good, t2) = fake_peer(trees(&full), false).await;
    let ih = bare.info_hashes().v2.unwrap().truncated();
    let cfg = LayerFetchConfig {
        peer_idle_timeout: Duration::from_secs(5),
        overall_timeout: Duration::from_secs(20),
        ..LayerFetchConfig::default()
    };
    fetch_piece_layers(&mut bare, ih, &[bad, good], &cfg)
        .await
        .unwrap();
    assert_eq!(bare.piece_layer(0), full.piece_layer(0));
    assert_eq!(bare.piece_layer(1), full.piece_layer(1));
    assert!(storage_layout(&bare).is_ok());
    // Only the bad peer: the fetch fails naming it.
    let (_, mut bare2) = torrents();
    let (bad2, t3) = fake_peer(trees(&full), true).await;
    let e = fetch_piece_layers(&mut bare2, ih, &[bad2], &cfg)
        .await
        .unwrap_err();
    assert!(
        matches!(e, FetchLayersError::NoPeers { failed: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("does not match"), "{e}");
    for t in [t1, t2, t3] {
        t.abort();
    }
}
