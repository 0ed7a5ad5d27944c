//! Reading a file while it downloads, as a media player does: a read in the
//! middle of a file nobody selected fetches the pieces under it (and the
//! file's ends) first, returns the seeder's bytes, and leaves the rest of
//! the file alone; closing the reader gives the pieces back; a read whose
//! piece cannot arrive times out instead of returning zeros. Every test
//! bounds its time and shuts its sessions down.
use rand::{RngCore, SeedableRng};
use shoal_engine::layout::FileSelection;
use shoal_engine::{AddTorrentParams, ReadError, Session, TorrentState};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::util::{loopback, WAIT_LIMIT as LIMIT};
const PIECE: u64 = 64 * 1024;

/// A torrent of `sizes` random files under `root/name`.
fn make_torrent(root: &Path, name: &str, sizes: &[usize]) -> Arc<Torrent> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let mut data = vec![0u8; n];
        rng.fill_bytes(&mut data);
        std::fs::write(dir.join(format!("f{i}.bin")), data).unwrap();
    }
    let opts = CreateOptions {
        piece_length: Some(PIECE),
        version: Version::V1,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

/// The index of file `name` in the torrent.
fn file_index(t: &Torrent, name: &str) -> usize {
    t.files()
        .iter()
        .position(|f| f.path.ends_with(name))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_fetches_what_it_reads_first_and_only_that() {
    tokio::time::timeout(LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        // f0: one piece; f1: 64 pieces; f2: 16 pieces.
        let t = make_torrent(&src, "movie", &[64 * 1024, 4 << 20, 1 << 20]);
        let seeder = Session::start(loopback()).await.unwrap();
        let sh = seeder
            .add(AddTorrentParams::torrent(t.clone(), &src))
            .await
            .unwrap();
        sh.wait_for(|s| s.state == TorrentState::Seeding).await;

        let leech = Session::start(loopback()).await.unwrap();
        let dst = tmp.path().join("dst");
        let f0 = file_index(&t, "f0.bin");
        let f1 = file_index(&t, "f1.bin");
        let mut p = AddTorrentParams::torrent(t.clone(), &dst);
        p.selection = FileSelection::Indices(vec![f0]);
        p.peers = vec![seeder.local_addr()];
        let h = leech.add(p).await.unwrap();
        h.wait_for(|s| s.state == TorrentState::Seeding).await;

        let want = std::fs::read(src.join("movie").join("f1.bin")).unwrap();
        let mut r = h.open_file(f1).unwrap();
        assert_eq!(r.len(), want.len() as u64);
        // The middle of a file that is not selected.
        let at = 2u64 << 20;
        let got = r.read_at(at, 100_000, LIMIT).await.unwrap();
        assert!(!got.is_empty());
        assert_eq!(&got[..], &want[at as usize..at as usize + got.len()]);
        // A read across the end stops at the end; past it, nothing.
        let tail = r
            .read_at(want.len() as u64 - 10, 1000, LIMIT)
            .await
            .unwrap();
        assert_eq!(&tail[..], &want[want.len() - 10..]);
        assert!(r
            .read_at(want.len() as u64, 10, LIMIT)
            .await
            .unwrap()
            .is_empty());

        // Only the pieces around the reader came, not the whole file.
        let have = h.pieces().await.unwrap();
        let start = t.files().iter().take(f1).map(|f| f.length).sum::<u64>() / PIECE;
        let in_f1 = (start..start + 64).filter(|&p| have.get(p as u32)).count();
        assert!(
            (1..=24).contains(&in_f1),
            "{in_f1} of the 64 pieces of the file came"
        );

        // Closed: the file is not wanted any more, the torrent seeds again.
        drop(r);
        h.wait_for(|s| s.state == TorrentState::Seeding).await;
        leech.shutdown().await;
        seeder.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_with_no_peer_times_out_and_never_returns_zeros() {
    tokio::time::timeout(LIMIT, async {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        let t = make_torrent(&src, "alone", &[300_000]);
        let s = Session::start(loopback()).await.unwrap();
        let h = s
            .add(AddTorrentParams::torrent(t.clone(), tmp.path().join("dst")))
            .await
            .unwrap();
        h.wait_for(|s| s.state == TorrentState::Downloading).await;
        let mut r = h.open_file(0).unwrap();
        let e = r
            .read_at(70_000, 1000, Duration::from_millis(500))
            .await
            .unwrap_err();
        assert!(matches!(e, ReadError::Timeout { piece: 1, .. }), "{e}");
        assert!(matches!(
            h.open_file(5).unwrap_err(),
            ReadError::NoSuchFile { index: 5 }
        ));
        s.shutdown().await;
    })
    .await
    .expect("bounded");
}
