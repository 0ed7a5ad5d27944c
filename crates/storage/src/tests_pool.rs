//! Tests of the disk pool's data path: verdicts through the sink, bounded
//! memory with flushing, hashing spread over workers, v2 pieces, failures,
//! reads through the read cache, re-hashing and closing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::hash::sha1_of;
use crate::tests::torrent;
use crate::*;

pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A sink that forwards events to a channel.
pub(crate) fn sink() -> (EventSink, mpsc::UnboundedReceiver<DiskEvent>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: EventSink = Arc::new(move |e| {
        let _ = tx.send(e);
    });
    (sink, rx)
}

/// The next `n` events (bounded wait).
pub(crate) async fn events(
    rx: &mut mpsc::UnboundedReceiver<DiskEvent>,
    n: usize,
) -> Vec<DiskEvent> {
    let mut out = Vec::new();
    while out.len() < n {
        let e = tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("event timed out")
            .expect("sink closed");
        out.push(e);
    }
    out
}

/// Pieces verified in `evs`, sorted; panics on any other event.
pub(crate) fn verified(evs: &[DiskEvent]) -> Vec<u32> {
    let mut v: Vec<u32> = evs
        .iter()
        .map(|e| match e {
            DiskEvent::PieceVerified(p) => *p,
            e => panic!("unexpected {e:?}"),
        })
        .collect();
    v.sort_unstable();
    v
}

/// `(piece, offset, data)` blocks of `block` bytes of piece `p`.
pub(crate) fn blocks(data: &Bytes, pl: usize, p: u32, block: usize) -> Vec<(u32, u32, Bytes)> {
    let start = p as usize * pl;
    let end = (start + pl).min(data.len());
    (start..end)
        .step_by(block)
        .map(|o| (p, (o - start) as u32, data.slice(o..(o + block).min(end))))
        .collect()
}

/// Queues `bl` and returns the outcomes.
pub(crate) async fn put(disk: &TorrentDisk, bl: Vec<(u32, u32, Bytes)>) -> Vec<BlockOutcome> {
    disk.queue_blocks(bl)
        .await
        .unwrap()
        .outcomes()
        .await
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect()
}

pub(crate) fn open(layout: &StorageLayout, root: &Path) -> Arc<Storage> {
    Arc::new(Storage::open(layout.clone(), root, StorageOptions::default()).unwrap())
}

fn config(workers: usize, budget: usize) -> DiskPoolConfig {
    DiskPoolConfig {
        workers,
        budget,
        ..DiskPoolConfig::default()
    }
}

#[test]
fn pool_verifies_with_bounded_memory_and_flushes() {
    let dir = tempfile::tempdir().unwrap();
    // 64 pieces of 4 KiB, blocks of 512 B, budget 8 KiB: far less than the
    // data, so the pool applies backpressure and flushes partial pieces.
    let files: Vec<(String, u64, bool)> = (0..5)
        .map(|i| (format!("f{i}"), 50_000 + i, false))
        .collect();
    let refs: Vec<(&str, u64, bool)> = files.iter().map(|(p, l, b)| (p.as_str(), *l, *b)).collect();
    let (layout, data) = torrent(4096, &refs, 21);
    let s = open(&layout, dir.path());
    let n = s.map().piece_count();
    let budget = 8192;
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let pool = DiskPool::new(config(2, budget)).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool
                .add_torrent(s.clone(), &vec![false; n as usize], sink)
                .unwrap();
            let data = Bytes::from(data.clone());
            let mut tasks = tokio::task::JoinSet::new();
            for w in 0..4u32 {
                let disk = disk.clone();
                let data = data.clone();
                tasks.spawn(async move {
                    // Odd writers send each piece's blocks last first, so
                    // they wait in memory, get flushed and are read back.
                    let mut offsets: Vec<u32> = (0..4096u32).step_by(512).collect();
                    if w % 2 == 1 {
                        offsets.reverse();
                    }
                    let mut pending = std::collections::VecDeque::new();
                    for off in offsets {
                        for p in (w..n).step_by(4) {
                            let start = u64::from(p) * 4096 + u64::from(off);
                            if start >= data.len() as u64 {
                                continue;
                            }
                            let end = (start + 512)
                                .min(u64::from(p + 1) * 4096)
                                .min(data.len() as u64);
                            let b = data.slice(start as usize..end as usize);
                            // A few batches in flight, like a peer driver.
                            pending.push_back(disk.queue_blocks(vec![(p, off, b)]).await.unwrap());
                            if pending.len() > 3 {
                                let o = pending.pop_front().unwrap().outcomes().await.unwrap();
                                assert!(matches!(
                                    o[0],
                                    Ok(BlockOutcome::Accepted | BlockOutcome::Completed)
                                ));
                            }
                        }
                    }
                    for q in pending {
                        q.outcomes().await.unwrap()[0].as_ref().unwrap();
                    }
                });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
            let evs = events(&mut rx, n as usize).await;
            assert_eq!(verified(&evs), (0..n).collect::<Vec<_>>());
            let st = pool.stats();
            assert!(st.peak_budget_used <= budget, "{st:?}");
            assert!(st.peak_budget_used > 0);
            assert!(
                st.blocks_flushed > 0,
                "budget pressure should flush: {st:?}"
            );
            assert_eq!((st.budget_used, st.partial_pieces), (0, 0), "{st:?}");
            assert_eq!(st.pieces_verified, u64::from(n));
            assert_eq!(st.worker_states, 0, "no partial piece: no state");
            // A late duplicate of a verified piece is ignored.
            let o = put(&disk, vec![(0, 0, Bytes::from_static(&[0xff; 16]))]).await;
            assert_eq!(o, [BlockOutcome::Ignored]);
            disk.close().await.unwrap();
            assert!(matches!(
                disk.queue_blocks(vec![(0, 0, data.slice(..16))]).await,
                Err(DiskError::Closed)
            ));
            assert_eq!(pool.stats().torrents, 0);
        })
        .await
        .unwrap();
    });
    assert!(s.check(&|_| {}).unwrap().iter().all(|&v| v));
    for (i, f) in files.iter().enumerate() {
        let start = s.map().file_start(i).unwrap() as usize;
        assert_eq!(
            std::fs::read(dir.path().join(&f.0)).unwrap(),
            &data[start..start + f.1 as usize]
        );
    }
}

#[test]
fn one_torrent_hashes_on_every_worker() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(64 << 10, &[("big", 4 << 20, false)], 9);
    let s = open(&layout, dir.path());
    let n = s.map().piece_count();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let pool = DiskPool::new(config(2, 8 << 20)).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool
                .add_torrent(s.clone(), &vec![false; n as usize], sink)
                .unwrap();
            let data = Bytes::from(data.clone());
            for p in 0..n {
                put(&disk, blocks(&data, 64 << 10, p, 16 << 10)).await;
            }
            assert_eq!(
                verified(&events(&mut rx, n as usize).await).len(),
                n as usize
            );
            let by_worker = pool.stats().pieces_hashed_by_worker;
            assert_eq!(by_worker.iter().sum::<u64>(), u64::from(n));
            assert!(
                by_worker.iter().all(|&c| c > 0),
                "every worker hashed pieces of the one torrent: {by_worker:?}"
            );
            disk.close().await.unwrap();
        })
        .await
        .unwrap();
    });
    assert_eq!(std::fs::read(dir.path().join("big")).unwrap(), data);
}

#[test]
fn reads_return_the_written_bytes_through_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(
        32 << 10,
        &[
            ("a", 40_000, false),
            ("d/b", 50_000, false),
            ("c", 8_000, false),
        ],
        3,
    );
    let s = open(&layout, dir.path());
    let n = s.map().piece_count();
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(60), async {
            let pool = DiskPool::new(config(2, 1 << 20)).unwrap();
            let (sink, mut rx) = sink();
            // Piece 2 is said verified (a stale resume file) but its file
            // `c` is missing.
            let disk = pool
                .add_torrent(s.clone(), &[false, false, true], sink)
                .unwrap();
            assert_eq!(n, 3);
            let data = Bytes::from(data.clone());
            for p in 0..2 {
                put(&disk, blocks(&data, 32 << 10, p, 16 << 10)).await;
            }
            assert_eq!(verified(&events(&mut rx, 2).await), [0, 1]);
            // Consecutive 16 KiB requests of piece 1: one disk read.
            let before = pool.stats();
            let mut held = Vec::new();
            for off in (0..32u32 << 10).step_by(16 << 10) {
                let got = disk.read(1, off, 16 << 10).await.unwrap();
                let start = (32 << 10) + off as usize;
                assert_eq!(got, data.slice(start..start + (16 << 10)));
                held.push(got);
            }
            let odd = disk.read(0, 7, 1000).await.unwrap();
            assert_eq!(odd, data.slice(7..1007));
            let after = pool.stats();
            assert_eq!(after.read_cache_misses - before.read_cache_misses, 2);
            assert_eq!(after.read_cache_hits - before.read_cache_hits, 1);
            assert_eq!(after.read_cache_bytes, 2 * (32 << 10));
            // Read data holds budget until dropped.
            assert_eq!(after.budget_used, 2 * (16 << 10) + 1000);
            drop((held, odd));
            assert_eq!(pool.stats().budget_used, 0);
            // Piece 2 is not on disk: an error, not zeros.
            assert!(matches!(
                disk.read(2, 0, 100).await,
                Err(DiskError::NotOnDisk { piece: 2 })
            ));
            assert!(matches!(
                disk.read(2, 30_000, 5_000).await,
                Err(DiskError::BadRead { .. })
            ));
            assert!(matches!(
                disk.read(9, 0, 1).await,
                Err(DiskError::BadRead { .. })
            ));
            assert!(matches!(
                disk.read(0, 0, 1 << 20).await,
                Err(DiskError::BadRead { .. })
            ));
            disk.close().await.unwrap();
            assert_eq!(
                pool.stats().read_cache_bytes,
                0,
                "closed: cache entries dropped"
            );
        })
        .await
        .unwrap();
    });
}

#[test]
fn hash_failure_recovery_and_bad_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(1024, &[("x", 3000, false)], 33);
    let s = open(&layout, dir.path());
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool.add_torrent(s.clone(), &[false; 3], sink).unwrap();
            let piece = Bytes::from(data[1024..2048].to_vec());
            let mut bad = piece.to_vec();
            bad[700] ^= 0x40;
            let bad = Bytes::from(bad);
            let out = disk
                .queue_blocks(vec![
                    (1, 0, bad.slice(..512)),
                    (1, 0, bad.slice(..512)),
                    (1, 256, bad.slice(..512)),
                    (2, 900, bad.slice(..100)),
                    (7, 0, bad.slice(..10)),
                    (1, 600, Bytes::new()),
                    (1, 512, bad.slice(512..)),
                ])
                .await
                .unwrap()
                .outcomes()
                .await
                .unwrap();
            assert_eq!(out[0].as_ref().unwrap(), &BlockOutcome::Accepted);
            assert_eq!(out[1].as_ref().unwrap(), &BlockOutcome::Duplicate);
            for o in &out[2..6] {
                assert!(matches!(o, Err(DiskError::BadBlock { .. })), "{o:?}");
            }
            assert_eq!(out[6].as_ref().unwrap(), &BlockOutcome::Completed);
            let ev = events(&mut rx, 1).await;
            assert!(matches!(ev[0], DiskEvent::PieceFailed(1)), "{ev:?}");
            // Its bad data is on disk but never served.
            assert!(matches!(
                disk.read(1, 0, 100).await,
                Err(DiskError::NotOnDisk { piece: 1 })
            ));
            // Re-fetched good data verifies.
            let o = put(
                &disk,
                vec![(1, 512, piece.slice(512..)), (1, 0, piece.slice(..512))],
            )
            .await;
            assert_eq!(o, [BlockOutcome::Accepted, BlockOutcome::Completed]);
            assert_eq!(verified(&events(&mut rx, 1).await), [1]);
            assert!(disk.is_verified(1) && !disk.is_verified(0));
            assert_eq!(disk.read(1, 100, 50).await.unwrap(), &data[1124..1174]);
            let st = pool.stats();
            assert_eq!((st.pieces_failed, st.pieces_verified), (1, 1));
            disk.save_resume(vec![false, true, false]).await.unwrap();
            disk.close().await.unwrap();
        })
        .await
        .unwrap();
    });
    let r = s.resume_or_check(&|_| {}).unwrap();
    assert_eq!(r.verified, vec![false, true, false]);
    assert_eq!(r.pieces_checked, 0);
}

#[test]
fn v2_pieces_verify_through_the_pool() {
    use shoal_metainfo::merkle::BLOCK_SIZE;
    let (layout, data) = crate::tests_v2::mixed();
    let dir = tempfile::tempdir().unwrap();
    let s = open(&layout, dir.path());
    let n = s.map().piece_count();
    let pl = layout.piece_length as usize;
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            // A tiny budget: v2 pieces wait whole, so some get flushed and
            // are hashed from disk.
            let pool = DiskPool::new(config(2, 4 * BLOCK_SIZE)).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool
                .add_torrent(s.clone(), &vec![false; n as usize], sink)
                .unwrap();
            let data = Bytes::from(data.clone());
            let mut bad = data.slice(4 * pl..5 * pl).to_vec();
            bad[10] ^= 1;
            let bad = Bytes::from(bad);
            let bl: Vec<_> = (0..pl)
                .step_by(BLOCK_SIZE)
                .map(|o| (4, o as u32, bad.slice(o..o + BLOCK_SIZE)))
                .collect();
            put(&disk, bl).await;
            assert!(matches!(
                events(&mut rx, 1).await[0],
                DiskEvent::PieceFailed(4)
            ));
            let mut tasks = tokio::task::JoinSet::new();
            for p in 0..n {
                let disk = disk.clone();
                let mut bl = blocks(&data, pl, p, BLOCK_SIZE);
                bl.reverse();
                tasks.spawn(async move { put(&disk, bl).await });
            }
            while let Some(r) = tasks.join_next().await {
                r.unwrap();
            }
            assert_eq!(
                verified(&events(&mut rx, n as usize).await),
                (0..n).collect::<Vec<_>>()
            );
            for p in 0..n {
                assert!(disk.hash_piece(p).await.unwrap(), "piece {p}");
            }
            disk.close().await.unwrap();
        })
        .await
        .unwrap();
    });
    assert!(s.check(&|_| {}).unwrap().iter().all(|&v| v));
    assert!(!dir.path().join(".pad").exists());
}

#[test]
fn rehash_and_block_digests_read_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(64 << 10, &[("f", 100_000, false)], 12);
    let s = open(&layout, dir.path());
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool.add_torrent(s.clone(), &[false, false], sink).unwrap();
            let data = Bytes::from(data.clone());
            for p in 0..2 {
                put(&disk, blocks(&data, 64 << 10, p, 16 << 10)).await;
            }
            assert_eq!(verified(&events(&mut rx, 2).await), [0, 1]);
            let want: Vec<[u8; 20]> = data[64 << 10..]
                .chunks(16 << 10)
                .map(|c| sha1_of([c]))
                .collect();
            assert_eq!(disk.block_digests(1).await.unwrap(), want);
            assert!(disk.hash_piece(1).await.unwrap());
            // Cache piece 1, then corrupt it on disk behind the pool's back.
            assert_eq!(disk.read(1, 0, 10).await.unwrap(), data.slice(65536..65546));
            {
                use std::os::unix::fs::FileExt;
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(dir.path().join("f"))
                    .unwrap();
                f.write_all_at(&[0xAB; 10], 65536).unwrap();
            }
            let cached = pool.stats().read_cache_bytes;
            assert!(!disk.hash_piece(1).await.unwrap());
            assert!(!disk.is_verified(1));
            // The cached copy is gone, the piece is not served, its blocks
            // are taken again.
            assert_eq!(pool.stats().read_cache_bytes, cached - (100_000 - 65536));
            assert!(matches!(
                disk.read(1, 0, 10).await,
                Err(DiskError::NotOnDisk { piece: 1 })
            ));
            let o = put(&disk, vec![(1, 0, data.slice(65536..65536 + 16384))]).await;
            assert_eq!(o, [BlockOutcome::Accepted]);
            assert!(disk.hash_piece(0).await.unwrap());
            assert!(matches!(
                disk.block_digests(5).await,
                Err(DiskError::BadRead { .. })
            ));
            disk.close().await.unwrap();
        })
        .await
        .unwrap();
    });
}

#[test]
fn flush_writes_partial_pieces_which_then_complete() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(64 << 10, &[("f", 128 << 10, false)], 5);
    let s = open(&layout, dir.path());
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool.add_torrent(s.clone(), &[false, false], sink).unwrap();
            let data = Bytes::from(data.clone());
            let mut bl = blocks(&data, 64 << 10, 0, 16 << 10);
            let first = bl.remove(0);
            // Blocks past the hashed prefix wait in memory ...
            put(&disk, bl).await;
            assert_eq!(pool.stats().budget_used, 48 << 10);
            assert_eq!(pool.stats().worker_states, 1);
            // ... until a flush writes them.
            disk.flush().await.unwrap();
            let st = pool.stats();
            assert_eq!(
                (st.budget_used, st.blocks_flushed, st.partial_pieces),
                (0, 3, 1)
            );
            let mut on_disk = vec![0u8; 16 << 10];
            assert!(s.read_into(0, 16 << 10, &mut on_disk).unwrap());
            assert_eq!(on_disk, data[16 << 10..32 << 10]);
            // The first block completes the piece, hashed with the flushed
            // blocks read back.
            assert_eq!(put(&disk, vec![first]).await, [BlockOutcome::Completed]);
            assert_eq!(verified(&events(&mut rx, 1).await), [0]);
            assert_eq!(pool.stats().worker_states, 0);
            disk.close().await.unwrap();
            assert_eq!(s.open_files(), 0);
        })
        .await
        .unwrap();
    });
}

#[test]
fn file_selection_and_registration_through_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(
        64,
        &[("a", 100, false), ("empty", 0, false), ("b", 60, false)],
        8,
    );
    let s = open(&layout, dir.path());
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (sink, mut rx) = sink();
            let disk = pool
                .add_torrent(s.clone(), &[true, false, false], sink.clone())
                .unwrap();
            assert!(matches!(
                pool.add_torrent(s.clone(), &[], sink),
                Err(DiskError::AlreadyAttached)
            ));
            // Piece 0 was verified at registration: its blocks are ignored.
            let data = Bytes::from(data.clone());
            assert_eq!(
                put(&disk, blocks(&data, 64, 0, 64)).await,
                [BlockOutcome::Ignored]
            );
            disk.set_file_wanted(2, false).await.unwrap();
            for p in 1..3 {
                put(&disk, blocks(&data, 64, p, 64)).await;
            }
            assert_eq!(verified(&events(&mut rx, 2).await), [1, 2]);
            assert!(
                !dir.path().join("b").exists(),
                "unwanted: in the parts file"
            );
            assert!(s.parts_path().exists());
            disk.set_file_wanted(2, true).await.unwrap();
            assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), &data[100..]);
            assert!(dir.path().join("empty").exists(), "created on registration");
            disk.close().await.unwrap();
            disk.close().await.unwrap(); // again: nothing to do
            assert!(matches!(disk.flush().await, Err(DiskError::Closed)));
        })
        .await
        .unwrap();
    });
}

#[test]
fn dropping_every_handle_closes_the_torrent() {
    let dir = tempfile::tempdir().unwrap();
    let (layout, data) = torrent(64 << 10, &[("f", 128 << 10, false)], 6);
    let s = open(&layout, dir.path());
    rt().block_on(async {
        tokio::time::timeout(Duration::from_secs(30), async {
            let pool = DiskPool::new(DiskPoolConfig::default()).unwrap();
            let (sink, _rx) = sink();
            let disk = pool.add_torrent(s.clone(), &[false, false], sink).unwrap();
            let data = Bytes::from(data.clone());
            let mut bl = blocks(&data, 64 << 10, 0, 16 << 10);
            bl.remove(0);
            put(&disk, bl).await;
            assert_eq!((pool.stats().torrents, pool.stats().worker_states), (1, 1));
            drop(disk);
            // The close runs in the background: wait for it.
            for _ in 0..200 {
                let st = pool.stats();
                if st.torrents == 0 && st.worker_states == 0 && st.budget_used == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let st = pool.stats();
            assert_eq!(
                (st.torrents, st.worker_states, st.budget_used),
                (0, 0, 0),
                "{st:?}"
            );
            assert_eq!(st.blocks_flushed, 3, "buffered data written on close");
            assert_eq!(s.open_files(), 0);
        })
        .await
        .unwrap();
    });
}
