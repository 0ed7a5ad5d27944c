//! Tests of BEP 52 (v2-only) piece verification: per-piece merkle roots,
//! single-piece files checked against their pieces root, multi-file layouts
//! aligned by pad files, and agreement with torrents made by the metainfo
//! creator (an independent implementation of the tree).

use std::path::{Path, PathBuf};

use shoal_metainfo::merkle::{block_hash, piece_layer_from_leaves, root_of_data, BLOCK_SIZE};
use shoal_metainfo::{CreateOptions, Torrent};

use crate::hash::{v2_piece_root, verify_v2};
use crate::*;

const B: u64 = BLOCK_SIZE as u64;

fn bytes(len: u64, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A v2 layout of `files` (`(path, len)`), aligned with pad files like the
/// metainfo parser does, plus the piece-space data (pads are zeros) and each
/// file's content.
pub(crate) fn v2_torrent(piece_length: u64, files: &[(&str, u64)]) -> (StorageLayout, Vec<u8>) {
    let last = files.iter().rposition(|f| f.1 > 0).unwrap_or(0);
    let mut specs = Vec::new();
    let mut data = Vec::new();
    let mut roots = Vec::new();
    let mut layers: Vec<Option<Vec<[u8; 32]>>> = Vec::new();
    for (i, &(p, len)) in files.iter().enumerate() {
        let content = bytes(len, 11 + i as u64);
        let leaves: Vec<[u8; 32]> = content.chunks(BLOCK_SIZE).map(block_hash).collect();
        roots.push(root_of_data(&content));
        layers.push((len > piece_length).then(|| piece_layer_from_leaves(&leaves, piece_length)));
        data.extend_from_slice(&content);
        specs.push(FileSpec {
            path: PathBuf::from(p),
            length: len,
            pad: false,
        });
        let rem = len % piece_length;
        if i < last && len > 0 && rem != 0 {
            let n = piece_length - rem;
            data.resize(data.len() + n as usize, 0);
            specs.push(FileSpec {
                path: PathBuf::from(format!(".pad/{n}")),
                length: n,
                pad: true,
            });
            roots.push(None);
            layers.push(None);
        }
    }
    let hashes: Vec<Option<V2FileHashes<'_>>> = roots
        .iter()
        .zip(&layers)
        .map(|(r, l)| {
            r.map(|pieces_root| V2FileHashes {
                pieces_root,
                layer: l.as_deref(),
            })
        })
        .collect();
    let piece_hashes = PieceHashes::v2_from_files(piece_length, &specs, &hashes).unwrap();
    let layout = StorageLayout {
        piece_length,
        total_length: data.len() as u64,
        files: specs,
        piece_hashes,
    };
    (layout, data)
}

fn open(layout: &StorageLayout, root: &Path) -> Storage {
    Storage::open(layout.clone(), root, StorageOptions::default()).unwrap()
}

fn write_all(s: &Storage, data: &[u8]) {
    let pl = s.map().layout().piece_length as usize;
    for (p, chunk) in data.chunks(pl).enumerate() {
        s.write(p as u32, 0, chunk).unwrap();
    }
}

/// 4 blocks per piece; files: several pieces with a short tail, exactly one
/// piece, a single short block, empty, and a last multi-piece file.
fn mixed() -> (StorageLayout, Vec<u8>) {
    v2_torrent(
        4 * B,
        &[
            ("t/a.bin", 9 * B + 100),
            ("t/b.bin", 4 * B),
            ("t/c.txt", 300),
            ("t/empty", 0),
            ("t/d/e.bin", 2 * B + 1),
            ("t/z.bin", 6 * B),
        ],
    )
}

#[test]
fn every_piece_verifies_and_corruption_fails() {
    let (layout, data) = mixed();
    let map = PieceMap::new(layout.clone()).unwrap();
    // a: 3 pieces, b: 1, c: 1, e: 1, z: 2.
    assert_eq!(map.piece_count(), 8);
    for p in 0..map.piece_count() {
        let plen = map.piece_len(p).unwrap() as usize;
        let start = p as usize * layout.piece_length as usize;
        let piece = &data[start..start + plen];
        assert!(map.verify_piece(p, &[piece]), "piece {p}");
        // Split at odd places: leaves straddle chunks.
        let (x, y) = piece.split_at(plen / 3 + 1);
        let (y, z) = y.split_at(y.len() / 2);
        assert!(map.verify_piece(p, &[x, &[], y, z]), "piece {p} chunked");
        // Flip one byte of file data: fails.
        let entry = *map.piece_hash_v2(p).unwrap();
        let mut bad = piece.to_vec();
        let at = (entry.data_len as usize - 1).min(5 * p as usize % plen);
        bad[at] ^= 0x40;
        assert!(!map.verify_piece(p, &[&bad]), "piece {p} corrupted at {at}");
        // Truncated data fails.
        assert!(!map.verify_piece(p, &[&piece[..entry.data_len as usize - 1]]));
        // Another piece's hash does not match.
        let other = (p + 1) % map.piece_count();
        assert!(!map.verify_piece(other, &[piece]), "piece {p} as {other}");
    }
}

#[test]
fn last_piece_of_file_pads_with_zero_leaves() {
    let (layout, data) = mixed();
    let map = PieceMap::new(layout).unwrap();
    // Piece 2 is a.bin's tail: 1 block + 100 bytes, then 2 blocks of padding.
    let e = *map.piece_hash_v2(2).unwrap();
    assert_eq!((e.data_len, e.leaves), (B + 100, 4));
    let tail = &data[8 * B as usize..(9 * B + 100) as usize];
    let l0 = block_hash(&tail[..BLOCK_SIZE]);
    let l1 = block_hash(&tail[BLOCK_SIZE..]);
    let h = shoal_metainfo::merkle::hash_pair;
    let expect = h(&h(&l0, &l1), &h(&[0; 32], &[0; 32]));
    assert_eq!(e.root, expect);
    assert_eq!(v2_piece_root(e.data_len, e.leaves, [tail]), Some(expect));
    // Padding bytes after the data are ignored (they never reach disk).
    let mut padded = tail.to_vec();
    padded.resize(4 * BLOCK_SIZE, 0xff);
    assert!(verify_v2(&e, [&padded[..]]));
    // Fewer leaves (a wrong tree shape) gives another root.
    assert_ne!(v2_piece_root(e.data_len, 2, [tail]), Some(expect));
}

#[test]
fn single_piece_files_use_their_pieces_root() {
    let (layout, data) = mixed();
    let map = PieceMap::new(layout).unwrap();
    // c.txt: 300 bytes, one leaf: root is the leaf hash itself.
    let c = *map.piece_hash_v2(4).unwrap();
    assert_eq!((c.data_len, c.leaves), (300, 1));
    let c_data = &data[16 * B as usize..16 * B as usize + 300];
    assert_eq!(c.root, block_hash(c_data));
    // e.bin: 3 blocks in a 4-block piece: tree of 4 leaves = next power of two.
    let e = *map.piece_hash_v2(5).unwrap();
    assert_eq!((e.data_len, e.leaves), (2 * B + 1, 4));
    // b.bin: exactly one piece.
    let b = *map.piece_hash_v2(3).unwrap();
    assert_eq!((b.data_len, b.leaves), (4 * B, 4));
}

#[test]
fn small_single_file_torrent() {
    // One file of 2 blocks + 7 bytes, in a 16-block piece: 4 leaves, not 16.
    let (layout, data) = v2_torrent(16 * B, &[("one.bin", 2 * B + 7)]);
    let map = PieceMap::new(layout).unwrap();
    assert_eq!(map.piece_count(), 1);
    let e = *map.piece_hash_v2(0).unwrap();
    assert_eq!((e.data_len, e.leaves), (2 * B + 7, 4));
    assert_eq!(Some(e.root), root_of_data(&data));
    assert!(map.verify_piece(0, &[&data]));
    let mut bad = data.clone();
    bad[2 * BLOCK_SIZE + 6] ^= 1;
    assert!(!map.verify_piece(0, &[&bad]));
}

#[test]
fn multi_file_write_check_and_no_pad_files_on_disk() {
    let (layout, data) = mixed();
    let dir = tempfile::tempdir().unwrap();
    let s = open(&layout, dir.path());
    assert_eq!(s.check(&|_| {}).unwrap(), vec![false; 8]);
    write_all(&s, &data);
    for p in 0..s.map().piece_count() {
        assert!(s.verify_on_disk(p).unwrap(), "piece {p}");
    }
    assert!(s.check(&|_| {}).unwrap().iter().all(|&v| v));
    s.sync_all().unwrap();
    // Real files hold exactly their bytes; the alignment pads are nowhere.
    let mut off = 0usize;
    for f in &layout.files {
        if !f.pad {
            let on_disk = std::fs::read(dir.path().join(&f.path)).unwrap_or_default();
            assert_eq!(on_disk, &data[off..off + f.length as usize], "{:?}", f.path);
        }
        off += f.length as usize;
    }
    assert!(!dir.path().join(".pad").exists());
    assert!(!dir.path().join("t/.pad").exists());
    // Corrupt one byte of d/e.bin on disk: only its piece fails.
    let e_path = dir.path().join("t/d/e.bin");
    let mut e = std::fs::read(&e_path).unwrap();
    e[B as usize] ^= 0x80;
    std::fs::write(&e_path, e).unwrap();
    let s = open(&layout, dir.path());
    let got = s.check(&|_| {}).unwrap();
    let want: Vec<bool> = (0..8).map(|p| p != 5).collect();
    assert_eq!(got, want);
}

#[test]
fn layout_validation() {
    let (layout, _) = mixed();
    let specs = layout.files.clone();
    // Missing hashes for a non-empty file.
    let none: Vec<Option<V2FileHashes<'_>>> = vec![None; specs.len()];
    assert!(matches!(
        PieceHashes::v2_from_files(4 * B, &specs, &none),
        Err(LayoutError::V2MissingHashes { index: 0 })
    ));
    // Piece length must be a power of two >= 16 KiB.
    assert!(matches!(
        PieceHashes::v2_from_files(3 * B, &specs, &none),
        Err(LayoutError::V2PieceLength { .. })
    ));
    // A file that does not start on a piece boundary (pad removed).
    let mut unaligned = specs.clone();
    unaligned.insert(
        0,
        FileSpec {
            path: ".pad/1".into(),
            length: 1,
            pad: true,
        },
    );
    assert!(matches!(
        PieceHashes::v2_from_files(4 * B, &unaligned, &none),
        Err(LayoutError::V2Unaligned { index: 1, .. })
    ));
    // A piece layer that does not hash to the pieces root.
    let content = bytes(9 * B + 100, 11);
    let leaves: Vec<[u8; 32]> = content.chunks(BLOCK_SIZE).map(block_hash).collect();
    let mut layer = piece_layer_from_leaves(&leaves, 4 * B);
    layer[1][0] ^= 1;
    let one = [FileSpec {
        path: "a".into(),
        length: content.len() as u64,
        pad: false,
    }];
    let hashes = [Some(V2FileHashes {
        pieces_root: root_of_data(&content).unwrap(),
        layer: Some(&layer),
    })];
    assert!(matches!(
        PieceHashes::v2_from_files(4 * B, &one, &hashes),
        Err(LayoutError::V2BadLayer { index: 0 })
    ));
    // Inconsistent hand-made entries are refused by PieceMap.
    let mut l = layout.clone();
    if let PieceHashes::V2(v) = &mut l.piece_hashes {
        v[4].leaves = 3;
    }
    assert!(matches!(
        PieceMap::new(l),
        Err(LayoutError::V2BadPiece { piece: 4 })
    ));
    let mut l = layout;
    if let PieceHashes::V2(v) = &mut l.piece_hashes {
        v[7].data_len = 5 * B;
    }
    assert!(matches!(
        PieceMap::new(l),
        Err(LayoutError::V2BadPiece { piece: 7 })
    ));
}

/// The hashes the metainfo creator writes (its own streaming tree code)
/// verify the same data here, for several piece lengths and file shapes.
#[test]
fn agrees_with_the_metainfo_creator() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let sizes = [
        ("a.bin", 5 * B + 3),
        ("b.bin", 1),
        ("c.bin", 0),
        ("sub/d.bin", 2 * B),
        ("sub/e.bin", 33 * B + 4096),
    ];
    for (i, (p, len)) in sizes.iter().enumerate() {
        let path = src.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes(*len, 100 + i as u64)).unwrap();
    }
    for pl in [B, 2 * B, 4 * B, 16 * B] {
        let opts = CreateOptions {
            piece_length: Some(pl),
            version: shoal_metainfo::create::Version::V2,
            ..CreateOptions::default()
        };
        let bytes = shoal_metainfo::create(&src, &opts, &|_| {}).unwrap();
        let t = Torrent::from_bytes(&bytes).unwrap();
        let files: Vec<FileSpec> = t
            .files()
            .iter()
            .map(|f| FileSpec {
                path: f.path.clone(),
                length: f.length,
                pad: f.pad,
            })
            .collect();
        let hashes: Vec<Option<V2FileHashes<'_>>> = t
            .files()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                f.pieces_root.map(|pieces_root| V2FileHashes {
                    pieces_root,
                    layer: t.piece_layer(i),
                })
            })
            .collect();
        let piece_hashes = PieceHashes::v2_from_files(pl, &files, &hashes).unwrap();
        let layout = StorageLayout {
            piece_length: pl,
            total_length: t.total_length(),
            files,
            piece_hashes,
        };
        // Storage lays the torrent out under its name directory: point it at
        // the parent of `src` (named like the torrent).
        let s = open(&layout, dir.path());
        let ok = s.check(&|_| {}).unwrap();
        assert_eq!(ok.len() as u32, t.piece_count());
        assert!(ok.iter().all(|&v| v), "piece length {pl}: {ok:?}");
    }
}

/// The disk actor verifies v2 pieces as they complete (pad blocks of the
/// last piece of a file included), fails a corrupted one, then accepts it.
#[test]
fn disk_actor_verifies_v2_pieces() {
    use bytes::Bytes;
    use std::sync::Arc;
    use std::time::Duration;
    let (layout, data) = mixed();
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(open(&layout, dir.path()));
    let n = s.map().piece_count();
    let pl = layout.piece_length as usize;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let disk =
                Disk::spawn(s.clone(), vec![false; n as usize], DiskConfig::default()).unwrap();
            let data = Bytes::from(data.clone());
            // Piece 4 (c.txt + padding) first with one flipped byte.
            let mut bad = data.slice(4 * pl..5 * pl).to_vec();
            bad[10] ^= 1;
            let bad = Bytes::from(bad);
            let mut last = None;
            for off in (0..pl).step_by(BLOCK_SIZE) {
                let b = bad.slice(off..off + BLOCK_SIZE);
                last = Some(disk.write_block(4, off as u32, b).await.unwrap());
            }
            assert_eq!(last, Some(WriteOutcome::PieceFailed(4)));
            for p in 0..n {
                let start = p as usize * pl;
                let end = (start + pl).min(data.len());
                let mut outcome = None;
                for off in (start..end).step_by(BLOCK_SIZE) {
                    let b = data.slice(off..(off + BLOCK_SIZE).min(end));
                    outcome = Some(disk.write_block(p, (off - start) as u32, b).await.unwrap());
                }
                assert_eq!(outcome, Some(WriteOutcome::PieceVerified(p)), "piece {p}");
            }
            disk.shutdown().await.unwrap();
        })
        .await
        .unwrap();
    });
    assert!(s.check(&|_| {}).unwrap().iter().all(|&v| v));
    assert!(!dir.path().join(".pad").exists());
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// The piece root does not depend on how the piece is cut into
        /// chunks, equals the reference tree over the data, and ignores bytes
        /// past `data_len`; one flipped data byte changes it.
        #[test]
        fn root_is_chunking_invariant(
            len in 1u64..(4 * B + 1),
            cuts in proptest::collection::vec(0usize..(4 * BLOCK_SIZE + 1), 0..6),
            tail in 0usize..100,
            flip in any::<proptest::sample::Index>(),
        ) {
            let data = bytes(len, len);
            let leaves: Vec<[u8; 32]> = data.chunks(BLOCK_SIZE).map(block_hash).collect();
            let expect = shoal_metainfo::merkle::merkle_root(&leaves, 4);
            let mut padded = data.clone();
            padded.resize(padded.len() + tail, 0xaa);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (padded.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&padded[at..c]);
                at = c;
            }
            chunks.push(&padded[at..]);
            prop_assert_eq!(v2_piece_root(len, 4, chunks.iter().copied()), Some(expect));
            prop_assert_eq!(v2_piece_root(len + tail as u64 + 1, 4, chunks.iter().copied()), None);
            let mut bad = data.clone();
            bad[flip.index(data.len())] ^= 1;
            prop_assert_ne!(v2_piece_root(len, 4, [&bad[..]]), Some(expect));
        }
    }
}
