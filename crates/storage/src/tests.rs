//! Tests of storage against a real filesystem (temporary directories):
//! round trips, checking, resume, file selection, errors and the disk actor.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::hash::sha1_of;
use crate::*;

/// A torrent made of `files` (`(path, len, pad)`), with pseudo-random content
/// (zeros in pad files) and the matching piece hashes.
pub(crate) fn torrent(
    piece_length: u64,
    files: &[(&str, u64, bool)],
    seed: u64,
) -> (StorageLayout, Vec<u8>) {
    let mut data = Vec::new();
    let mut x = seed | 1;
    for &(_, len, pad) in files {
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.push(if pad { 0 } else { x as u8 });
        }
    }
    let hashes = data
        .chunks(piece_length as usize)
        .map(|c| sha1_of([c]))
        .collect();
    let layout = StorageLayout {
        piece_length,
        total_length: data.len() as u64,
        files: files
            .iter()
            .map(|&(p, len, pad)| FileSpec {
                path: PathBuf::from(p),
                length: len,
                pad,
            })
            .collect(),
        piece_hashes: PieceHashes::V1(hashes),
    };
    (layout, data)
}

fn multi() -> (StorageLayout, Vec<u8>) {
    torrent(
        64,
        &[
            ("a.bin", 100, false),
            ("empty", 0, false),
            ("dir/b.bin", 10, false),
            (".pad/54", 54, true),
            ("dir/sub/c.bin", 300, false),
            ("d.bin", 7, false),
        ],
        7,
    )
}

fn open(layout: &StorageLayout, root: &Path) -> Storage {
    Storage::open(layout.clone(), root, StorageOptions::default()).unwrap()
}

fn piece_data(s: &Storage, data: &[u8], p: u32) -> Vec<u8> {
    let start = (u64::from(p) * s.map().layout().piece_length) as usize;
    let len = s.map().piece_len(p).unwrap() as usize;
    data[start..start + len].to_vec()
}

/// Writes every piece in blocks of `block` bytes.
fn write_all(s: &Storage, data: &[u8], block: usize) {
    for p in 0..s.map().piece_count() {
        let pd = piece_data(s, data, p);
        for (i, c) in pd.chunks(block).enumerate() {
            s.write(p, (i * block) as u64, c).unwrap();
        }
    }
}

fn no_progress(_: CheckProgress) {}

#[test]
fn round_trip_across_files_pads_and_empty_files() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = multi();
    let s = open(&layout, dir.path());
    s.create_empty_files().unwrap();
    write_all(&s, &data, 13);
    // Every file has exactly its bytes; pad files are not on disk.
    let mut pos = 0usize;
    for f in &layout.files {
        let want = &data[pos..pos + f.length as usize];
        if f.pad {
            assert!(!dir.path().join(&f.path).exists());
            assert!(want.iter().all(|&b| b == 0));
        } else {
            assert_eq!(
                std::fs::read(dir.path().join(&f.path)).unwrap(),
                want,
                "{:?}",
                f.path
            );
        }
        pos += f.length as usize;
    }
    for p in 0..s.map().piece_count() {
        let plen = s.map().piece_len(p).unwrap() as usize;
        let got = s.read_block(p, 3, plen - 3).unwrap();
        assert_eq!(got, piece_data(&s, &data, p)[3..]);
        assert!(s.verify_on_disk(p).unwrap());
    }
    assert!(s.read_block(0, 60, 10).is_err(), "block leaving the piece");
    // A hostile length is rejected before anything is allocated.
    assert!(matches!(
        s.read_block(0, 0, usize::MAX),
        Err(StorageError::Layout(LayoutError::BlockOutOfPiece { .. }))
    ));
}

#[test]
fn open_files_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<(String, u64, bool)> = (0..40).map(|i| (format!("f{i}"), 10, false)).collect();
    let refs: Vec<(&str, u64, bool)> = files.iter().map(|(p, l, b)| (p.as_str(), *l, *b)).collect();
    let (layout, data) = torrent(32, &refs, 3);
    let opts = StorageOptions {
        max_open_files: 4,
        ..StorageOptions::default()
    };
    let s = Storage::open(layout, dir.path(), opts).unwrap();
    write_all(&s, &data, 32);
    assert!(s.open_files() <= 4);
    assert!(s.check(&no_progress).unwrap().iter().all(|&v| v));
    assert!(s.open_files() <= 4);
}

#[test]
fn check_partially_present_data() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = multi();
    let s = open(&layout, dir.path());
    assert!(
        s.check(&no_progress).unwrap().iter().all(|&v| !v),
        "nothing on disk"
    );
    write_all(&s, &data, 64);
    let calls = std::sync::atomic::AtomicU64::new(0);
    let all = s
        .check(&|p: CheckProgress| {
            assert!(p.pieces_done <= p.pieces_total);
            calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        })
        .unwrap();
    assert!(all.iter().all(|&v| v));
    assert!(calls.into_inner() > 0);

    // Remove d.bin, cut c.bin short, flip one byte of a.bin.
    std::fs::remove_file(dir.path().join("d.bin")).unwrap();
    let c = dir.path().join("dir/sub/c.bin");
    let f = std::fs::OpenOptions::new().write(true).open(&c).unwrap();
    f.set_len(200).unwrap();
    drop(f);
    let mut a = std::fs::read(dir.path().join("a.bin")).unwrap();
    a[70] ^= 1;
    std::fs::write(dir.path().join("a.bin"), &a).unwrap();

    let s = open(&layout, dir.path()); // fresh handles
    let got = s.check(&no_progress).unwrap();
    let map = s.map();
    let c_start = map.file_start(4).unwrap();
    let expected: Vec<bool> = (0..map.piece_count())
        .map(|p| {
            let lo = u64::from(p) * 64;
            let hi = lo + map.piece_len(p).unwrap();
            let corrupt = lo <= 70 && 70 < hi;
            let short = hi > c_start + 200; // bytes c.bin no longer has, or d.bin
            !corrupt && !short
        })
        .collect();
    assert_eq!(got, expected);
    assert!(got.iter().any(|&v| v) && got.iter().any(|&v| !v));
}

#[test]
fn longer_file_is_checked_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(16, &[("x", 40, false)], 9);
    let mut long = data.clone();
    long.extend_from_slice(b"trailing junk");
    std::fs::write(dir.path().join("x"), &long).unwrap();
    let s = open(&layout, dir.path());
    assert!(s.check(&no_progress).unwrap().iter().all(|&v| v));
    write_all(&s, &data, 16);
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), long);
}

#[test]
fn resume_round_trip_and_invalidation() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = multi();
    let s = open(&layout, dir.path());
    let first = s.resume_or_check(&no_progress).unwrap();
    assert!(first.fallback_reason.is_some());
    assert_eq!(first.pieces_checked, u64::from(s.map().piece_count()));
    write_all(&s, &data, 64);
    let mut verified = s.check(&no_progress).unwrap();
    verified[1] = false; // pretend piece 1 was not verified yet
    s.save_resume(&verified).unwrap();

    // Unchanged files: no hashing, bitfield from the resume file.
    let s = open(&layout, dir.path());
    let r = s.resume_or_check(&no_progress).unwrap();
    assert_eq!(r.pieces_checked, 0);
    assert_eq!(r.verified, verified);

    // d.bin changed: only the pieces touching it are re-hashed.
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(dir.path().join("d.bin"), b"XXXXXXX").unwrap();
    let r = s.resume_or_check(&no_progress).unwrap();
    let d_pieces = s.map().pieces_of_file(5);
    assert_eq!(r.pieces_checked, u64::from(d_pieces.end - d_pieces.start));
    for p in 0..s.map().piece_count() {
        let expect = if d_pieces.contains(&p) {
            false
        } else {
            verified[p as usize]
        };
        assert_eq!(r.verified[p as usize], expect, "piece {p}");
    }

    // A corrupt resume file means a full check.
    std::fs::write(s.resume_path(), b"d7:versioni1e").unwrap();
    let r = s.resume_or_check(&no_progress).unwrap();
    assert_eq!(r.pieces_checked, u64::from(s.map().piece_count()));
    // A resume file for another layout is not trusted either.
    let (other, _) = torrent(32, &[("a.bin", 100, false)], 1);
    let o = open(&other, dir.path());
    o.save_resume(&[true; 4]).unwrap();
    assert!(s.load_resume().is_err());
}

#[test]
fn unwanted_files_use_parts_file() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(
        64,
        &[("a", 100, false), ("b", 100, false), ("c", 100, false)],
        11,
    );
    let s = open(&layout, dir.path());
    s.set_file_wanted(1, false).unwrap();
    // The picker fetches the pieces of a and c, which include b's boundaries.
    let mut pieces: Vec<u32> = s.map().pieces_of_file(0).collect();
    pieces.extend(s.map().pieces_of_file(2));
    pieces.dedup();
    for &p in &pieces {
        s.write(p, 0, &piece_data(&s, &data, p)).unwrap();
    }
    assert!(
        !dir.path().join("b").exists(),
        "unwanted file never created"
    );
    assert!(s.parts_path().exists());
    for &p in &pieces {
        assert!(
            s.verify_on_disk(p).unwrap(),
            "boundary piece {p} verifiable"
        );
    }
    let mut out = vec![false; s.map().piece_count() as usize];
    s.check_pieces(&pieces, &mut out, &no_progress).unwrap();
    assert!(pieces.iter().all(|&p| out[p as usize]));
    assert_eq!(std::fs::read(dir.path().join("a")).unwrap(), &data[..100]);
    assert_eq!(std::fs::read(dir.path().join("c")).unwrap(), &data[200..]);

    // Selecting b later moves its boundary bytes into it.
    s.set_file_wanted(1, true).unwrap();
    let b = std::fs::read(dir.path().join("b")).unwrap();
    assert_eq!(b.len(), 100);
    let first = s.map().pieces_of_file(1).start;
    let a_end_in_piece = (100 - u64::from(first) * 64) as usize; // b's bytes in its first piece
    let head = 64 - a_end_in_piece % 64;
    assert_eq!(&b[..head], &data[100..100 + head]);
    for &p in &pieces {
        assert!(s.verify_on_disk(p).unwrap(), "piece {p} still verifiable");
    }
}

#[test]
fn path_escape_rejected() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["../escape", "/etc/x", "a/../../x"] {
        let (layout, _) = torrent(16, &[(bad, 10, false)], 1);
        let err =
            Storage::open(layout, dir.path().join("root"), StorageOptions::default()).unwrap_err();
        assert!(
            matches!(err, StorageError::Layout(LayoutError::UnsafePath { .. })),
            "{bad}: {err}"
        );
    }
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn write_errors_surface_without_data_loss() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(16, &[("ok", 20, false), ("blocked", 20, false)], 5);
    // A directory where a file should be: opening it for writing fails.
    std::fs::create_dir_all(dir.path().join("blocked")).unwrap();
    std::fs::write(dir.path().join("ok"), b"precious existing bytes!").unwrap();
    let s = open(&layout, dir.path());
    let err = s.write(2, 0, &piece_data(&s, &data, 2)).unwrap_err();
    assert!(err.should_pause(), "{err}");
    assert!(err.to_string().contains("blocked"), "{err}");
    // The other file was not truncated.
    assert!(std::fs::read(dir.path().join("ok"))
        .unwrap()
        .starts_with(b"precious"));
}

#[test]
fn disk_full_is_reported() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(16, &[("full", 32, false)], 5);
    // Writes to /dev/full fail with ENOSPC, like a full filesystem.
    std::os::unix::fs::symlink("/dev/full", dir.path().join("full")).unwrap();
    let s = open(&layout, dir.path());
    let err = s.write(0, 0, &piece_data(&s, &data, 0)).unwrap_err();
    assert!(err.is_disk_full(), "{err}");
    assert!(err.should_pause());
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn disk_actor_verifies_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // 64 pieces of 4 KiB, blocks of 512 B, budget 8 KiB: far less than the
    // data, so the actor must apply backpressure and flush partial pieces.
    let files: Vec<(String, u64, bool)> = (0..5)
        .map(|i| (format!("f{i}"), 50_000 + i, false))
        .collect();
    let refs: Vec<(&str, u64, bool)> = files.iter().map(|(p, l, b)| (p.as_str(), *l, *b)).collect();
    let (layout, data) = torrent(4096, &refs, 21);
    let s = Arc::new(open(&layout, dir.path()));
    let n = s.map().piece_count();
    let budget = 8192;
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let disk = Disk::spawn(
                s.clone(),
                vec![false; n as usize],
                DiskConfig {
                    write_budget: budget,
                    queue_len: 8,
                },
            )
            .unwrap();
            let data = Bytes::from(data.clone());
            // Four writers interleave blocks of different pieces.
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..4u32 {
                let disk = disk.clone();
                let data = data.clone();
                tasks.spawn(async move {
                    let mut verified = Vec::new();
                    // Odd writers send each piece's blocks last first, so
                    // they wait in memory, get flushed and are read back.
                    let mut offsets: Vec<u32> = (0..4096u32).step_by(512).collect();
                    if w % 2 == 1 {
                        offsets.reverse();
                    }
                    for off in offsets {
                        for p in (w..n).step_by(4) {
                            let start = u64::from(p) * 4096 + u64::from(off);
                            if start >= data.len() as u64 {
                                continue;
                            }
                            let end = (start + 512)
                                .min(u64::from(p + 1) * 4096)
                                .min(data.len() as u64);
                            let block = data.slice(start as usize..end as usize);
                            match disk.write_block(p, off, block).await.unwrap() {
                                WriteOutcome::PieceVerified(i) => verified.push(i),
                                WriteOutcome::Buffered => {}
                                o => panic!("unexpected {o:?}"),
                            }
                        }
                    }
                    verified
                });
            }
            let mut all = Vec::new();
            while let Some(r) = tasks.join_next().await {
                all.extend(r.unwrap());
            }
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>());
            let st = disk.stats().await.unwrap();
            assert!(st.peak_buffered_bytes <= budget, "{st:?}");
            assert!(st.peak_buffered_bytes > 0);
            assert!(
                st.blocks_flushed > 0,
                "budget pressure should flush: {st:?}"
            );
            assert_eq!(st.buffered_bytes, 0);
            assert_eq!(st.pieces_verified, u64::from(n));
            // A late duplicate of a verified piece is ignored.
            assert_eq!(
                disk.write_block(0, 0, Bytes::from_static(&[0xff; 16]))
                    .await
                    .unwrap(),
                WriteOutcome::Ignored
            );
            disk.shutdown().await.unwrap();
            assert!(matches!(disk.stats().await, Err(DiskError::Closed)));
        })
        .await
        .unwrap();
    });
    assert!(s.check(&no_progress).unwrap().iter().all(|&v| v));
    for (i, f) in files.iter().enumerate() {
        let start = s.map().file_start(i).unwrap() as usize;
        assert_eq!(
            std::fs::read(dir.path().join(&f.0)).unwrap(),
            &data[start..start + f.1 as usize]
        );
    }
}

#[test]
fn disk_actor_hashes_in_order_blocks_without_holding_pieces() {
    let dir = tempfile::tempdir().unwrap();
    // Two 1 MiB pieces sent block by block in order: each block is hashed on
    // arrival and written in runs, so memory never holds a whole piece.
    let (layout, data) = torrent(1 << 20, &[("big", 2 << 20, false)], 7);
    let s = Arc::new(open(&layout, dir.path()));
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let disk = Disk::spawn(s.clone(), vec![false; 2], DiskConfig::default()).unwrap();
            let data = Bytes::from(data.clone());
            let mut outcomes = Vec::new();
            for p in 0..2u32 {
                for off in (0..1u32 << 20).step_by(16 << 10) {
                    let start = (p as usize) << 20 | off as usize;
                    let block = data.slice(start..start + (16 << 10));
                    outcomes.push(disk.write_block(p, off, block).await.unwrap());
                }
            }
            assert_eq!(outcomes[63], WriteOutcome::PieceVerified(0));
            assert_eq!(outcomes[127], WriteOutcome::PieceVerified(1));
            let st = disk.stats().await.unwrap();
            assert!(st.peak_buffered_bytes <= 300 << 10, "{st:?}");
            assert_eq!((st.blocks_flushed, st.pieces_verified), (0, 2), "{st:?}");
            disk.shutdown().await.unwrap();
        })
        .await
        .unwrap();
    });
    assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), data);
}

#[test]
fn disk_actor_takes_batches_of_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(1024, &[("x", 3000, false)], 5);
    let s = Arc::new(open(&layout, dir.path()));
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let disk = Disk::spawn(
                s.clone(),
                vec![false; 3],
                DiskConfig {
                    write_budget: 4096,
                    queue_len: 4,
                },
            )
            .unwrap();
            let data = Bytes::from(data.clone());
            assert!(disk
                .queue_blocks(Vec::new())
                .await
                .unwrap()
                .outcomes()
                .await
                .unwrap()
                .is_empty());
            // Piece 0 whole, the start of piece 1, an empty block, piece 2
            // (952 bytes) last block first: more than a quarter of the
            // budget, so it travels in several groups.
            let batch = vec![
                (0, 0, data.slice(0..512)),
                (0, 512, data.slice(512..1024)),
                (1, 0, data.slice(1024..1536)),
                (1, 600, Bytes::new()),
                (2, 512, data.slice(2560..3000)),
                (2, 0, data.slice(2048..2560)),
            ];
            let out = disk
                .queue_blocks(batch)
                .await
                .unwrap()
                .outcomes()
                .await
                .unwrap();
            assert_eq!(out.len(), 6);
            assert_eq!(out[0].as_ref().unwrap(), &WriteOutcome::Buffered);
            assert_eq!(out[1].as_ref().unwrap(), &WriteOutcome::PieceVerified(0));
            assert_eq!(out[2].as_ref().unwrap(), &WriteOutcome::Buffered);
            assert!(matches!(out[3], Err(DiskError::BadBlock { .. })));
            assert_eq!(out[4].as_ref().unwrap(), &WriteOutcome::Buffered);
            assert_eq!(out[5].as_ref().unwrap(), &WriteOutcome::PieceVerified(2));
            let out = disk
                .queue_blocks(vec![(1, 512, data.slice(1536..2048))])
                .await
                .unwrap()
                .outcomes()
                .await
                .unwrap();
            assert_eq!(out[0].as_ref().unwrap(), &WriteOutcome::PieceVerified(1));
            disk.shutdown().await.unwrap();
        })
        .await
        .unwrap();
    });
    assert_eq!(std::fs::read(dir.path().join("x")).unwrap(), data);
}

#[test]
fn disk_actor_reports_hash_failure_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(1024, &[("x", 3000, false)], 33);
    let s = Arc::new(open(&layout, dir.path()));
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let disk = Disk::spawn(s.clone(), vec![false; 3], DiskConfig::default()).unwrap();
            let piece = Bytes::from(data[1024..2048].to_vec());
            let mut bad = piece.to_vec();
            bad[700] ^= 0x40;
            let bad = Bytes::from(bad);
            assert_eq!(
                disk.write_block(1, 0, bad.slice(..512)).await.unwrap(),
                WriteOutcome::Buffered
            );
            assert_eq!(
                disk.write_block(1, 0, bad.slice(..512)).await.unwrap(),
                WriteOutcome::Duplicate
            );
            assert!(matches!(
                disk.write_block(1, 256, bad.slice(..512)).await,
                Err(DiskError::BadBlock { .. })
            ));
            assert!(
                matches!(
                    disk.write_block(2, 900, bad.slice(..100)).await,
                    Err(DiskError::BadBlock { .. })
                ),
                "piece 2 is 952 bytes"
            );
            assert_eq!(
                disk.write_block(1, 512, bad.slice(512..)).await.unwrap(),
                WriteOutcome::PieceFailed(1)
            );
            assert!(!s.verify_on_disk(1).unwrap(), "failed data does not verify");
            // Re-fetched good data verifies.
            assert_eq!(
                disk.write_block(1, 512, piece.slice(512..)).await.unwrap(),
                WriteOutcome::Buffered
            );
            assert_eq!(
                disk.write_block(1, 0, piece.slice(..512)).await.unwrap(),
                WriteOutcome::PieceVerified(1)
            );
            assert_eq!(
                disk.read_block(1, 100, 50).await.unwrap(),
                &data[1124..1174]
            );
            let st = disk.stats().await.unwrap();
            assert_eq!((st.pieces_failed, st.pieces_verified), (1, 1));
            disk.save_resume(vec![false, true, false]).await.unwrap();
            disk.shutdown().await.unwrap();
        })
        .await
        .unwrap();
    });
    let r = s.resume_or_check(&no_progress).unwrap();
    assert_eq!(r.verified, vec![false, true, false]);
    assert_eq!(r.pieces_checked, 0);
}

#[test]
fn disk_actor_surfaces_write_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(64, &[("blocked", 64, false)], 2);
    std::fs::create_dir_all(dir.path().join("blocked")).unwrap();
    let s = Arc::new(open(&layout, dir.path()));
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let disk = Disk::spawn(s.clone(), vec![false], DiskConfig::default()).unwrap();
            let err = disk
                .write_block(0, 0, Bytes::from(data.clone()))
                .await
                .unwrap_err();
            match err {
                DiskError::Storage(e) => assert!(e.should_pause(), "{e}"),
                e => panic!("unexpected {e}"),
            }
            // The piece can be tried again once the problem is fixed.
            std::fs::remove_dir(dir.path().join("blocked")).unwrap();
            assert_eq!(
                disk.write_block(0, 0, Bytes::from(data.clone()))
                    .await
                    .unwrap(),
                WriteOutcome::PieceVerified(0)
            );
            disk.shutdown().await.unwrap();
        })
        .await
        .unwrap();
    });
}

#[test]
fn preallocation_reserves_space() {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(1 << 16, &[("big", 1 << 20, false)], 4);
    let opts = StorageOptions {
        allocation: Allocation::Preallocate,
        ..StorageOptions::default()
    };
    let s = Storage::open(layout.clone(), dir.path().join("p"), opts).unwrap();
    s.write(0, 0, &piece_data(&s, &data, 0)).unwrap();
    let m = std::fs::metadata(dir.path().join("p/big")).unwrap();
    assert_eq!(m.len(), 1 << 20);
    // Sparse: only the written piece occupies blocks.
    let sparse = StorageOptions {
        allocation: Allocation::Sparse,
        ..StorageOptions::default()
    };
    let s2 = Storage::open(layout, dir.path().join("s"), sparse).unwrap();
    s2.write(0, 0, &piece_data(&s2, &data, 0)).unwrap();
    let m2 = std::fs::metadata(dir.path().join("s/big")).unwrap();
    assert_eq!(m2.len(), 1 << 20);
    assert!(
        m.blocks() > m2.blocks(),
        "{} vs {}",
        m.blocks(),
        m2.blocks()
    );
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Any layout, any block split, any file selection: what is written
        /// (plainly or vectored) reads back, lands in the right files, and
        /// nothing is created for pad or unwanted files.
        #[test]
        fn storage_round_trip(
            pl in 1u64..100,
            specs in proptest::collection::vec((0u64..300, any::<bool>(), any::<bool>()), 1..8),
            block in 1usize..50,
            seed in any::<u64>(),
        ) {
            let names: Vec<String> = (0..specs.len()).map(|i| format!("d{}/f{i}", i % 2)).collect();
            let files: Vec<(&str, u64, bool)> = specs.iter().zip(&names)
                .map(|(&(l, pad, _), n)| (n.as_str(), l, pad)).collect();
            let total: u64 = files.iter().map(|f| f.1).sum();
            prop_assume!(total > 0);
            let (layout, data) = torrent(pl, &files, seed);
            let dir = tempfile::tempdir().unwrap();
            let s = open(&layout, dir.path());
            for (i, &(_, _, unwanted)) in specs.iter().enumerate() {
                if unwanted {
                    s.set_file_wanted(i, false).unwrap();
                }
            }
            for p in 0..s.map().piece_count() {
                let pd = piece_data(&s, &data, p);
                if p % 2 == 0 {
                    for (i, c) in pd.chunks(block).enumerate() {
                        s.write(p, (i * block) as u64, c).unwrap();
                    }
                } else {
                    let bufs: Vec<&[u8]> = pd.chunks(block).collect();
                    s.write_vectored(p, 0, &bufs).unwrap();
                }
            }
            for p in 0..s.map().piece_count() {
                let mut buf = vec![0xAA; s.map().piece_len(p).unwrap() as usize];
                prop_assert!(s.read_into(p, 0, &mut buf).unwrap());
                prop_assert_eq!(&buf, &piece_data(&s, &data, p));
            }
            let mut pos = 0usize;
            for (i, &(_, pad, unwanted)) in specs.iter().enumerate() {
                let len = files[i].1 as usize;
                let path = dir.path().join(&names[i]);
                if pad || unwanted {
                    prop_assert!(!path.exists(), "{:?} created", path);
                } else if len > 0 {
                    prop_assert_eq!(std::fs::read(&path).unwrap(), &data[pos..pos + len]);
                }
                pos += len;
            }
        }
    }
}

#[test]
fn queued_blocks_resolve_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(256, &[("q", 1000, false)], 8);
    let s = Arc::new(open(&layout, dir.path()));
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let disk = Disk::spawn(s.clone(), vec![false; 4], DiskConfig::default()).unwrap();
            let data = Bytes::from(data.clone());
            let mut pending = Vec::new();
            for p in 0..4u32 {
                let start = p as usize * 256;
                let end = (start + 256).min(data.len());
                for off in (0..end - start).step_by(64) {
                    let block = data.slice(start + off..(start + off + 64).min(end));
                    pending.push((p, disk.queue_block(p, off as u32, block).await.unwrap()));
                }
            }
            let mut verified = Vec::new();
            for (p, pw) in pending {
                match pw.outcome().await.unwrap() {
                    WriteOutcome::PieceVerified(i) => {
                        assert_eq!(i, p);
                        verified.push(i);
                    }
                    o => assert_eq!(o, WriteOutcome::Buffered),
                }
            }
            assert_eq!(verified, vec![0, 1, 2, 3]);
            disk.shutdown().await.unwrap();
        })
        .await
        .unwrap();
    });
    assert_eq!(std::fs::read(dir.path().join("q")).unwrap().len(), 1000);
    assert!(s.check(&no_progress).unwrap().iter().all(|&v| v));
}
