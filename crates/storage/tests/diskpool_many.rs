//! A thousand torrents on one disk pool: blocks of every torrent written in
//! a scrambled order from several tasks; every piece verifies through its
//! torrent's sink; the process's thread count does not grow with the number
//! of torrents; the budget holds; closing every torrent leaves no file
//! handle open. One test in this file, so that nothing else runs in the
//! process while threads and descriptors are counted.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shoal_storage::hash::sha1_of;
use shoal_storage::{
    BlockOutcome, DiskEvent, DiskPool, DiskPoolConfig, EventSink, FileSpec, PieceHashes, Storage,
    StorageLayout, StorageOptions, TorrentDisk,
};

const TORRENTS: usize = 1000;
const PIECE: usize = 16 << 10;
const BLOCK: usize = 4 << 10;
const BUDGET: usize = 1 << 20;

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn threads() -> usize {
    count("/proc/self/task")
}

fn fds() -> usize {
    count("/proc/self/fd")
}

/// Torrent `i`: two files (the second in a subdirectory), 2 to 4 pieces.
fn torrent(i: usize) -> (StorageLayout, Vec<u8>) {
    let a = 5_000 + (i % 7) * 1_000;
    let b = 20_000 + (i % 5) * 7_000;
    let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let data: Vec<u8> = (0..a + b)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let hashes = data.chunks(PIECE).map(|c| sha1_of([c])).collect();
    let layout = StorageLayout {
        piece_length: PIECE as u64,
        total_length: data.len() as u64,
        files: vec![
            FileSpec {
                path: PathBuf::from(format!("t{i}/a.bin")),
                length: a as u64,
                pad: false,
            },
            FileSpec {
                path: PathBuf::from(format!("t{i}/d/b.bin")),
                length: b as u64,
                pad: false,
            },
        ],
        piece_hashes: PieceHashes::V1(hashes),
    };
    (layout, data)
}

#[test]
fn a_thousand_torrents_share_one_pool() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(300), run(dir.path().to_path_buf()))
            .await
            .expect("timed out");
    });
}

async fn run(root: PathBuf) {
    let fds_before = fds();
    let threads_before = threads();
    let pool = DiskPool::new(DiskPoolConfig {
        workers: 2,
        budget: BUDGET,
        ..DiskPoolConfig::default()
    })
    .unwrap();
    let threads_with_pool = threads();
    assert_eq!(threads_with_pool, threads_before + 2, "two workers");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, DiskEvent)>();
    let mut disks: Vec<TorrentDisk> = Vec::new();
    let mut all_data: Vec<Bytes> = Vec::new();
    let mut pieces_total = 0usize;
    let mut threads_after_10 = 0;
    for i in 0..TORRENTS {
        let (layout, data) = torrent(i);
        let n = data.len().div_ceil(PIECE);
        pieces_total += n;
        let opts = StorageOptions {
            name: format!("t{i}"),
            ..StorageOptions::default()
        };
        let storage = Arc::new(Storage::open(layout, &root, opts).unwrap());
        let tx = tx.clone();
        let sink: EventSink = Arc::new(move |e| {
            let _ = tx.send((i, e));
        });
        disks.push(pool.add_torrent(storage, &vec![false; n], sink).unwrap());
        all_data.push(Bytes::from(data));
        if i == 9 {
            threads_after_10 = threads();
        }
    }
    assert_eq!(threads(), threads_after_10, "registering spawns nothing");
    assert_eq!(pool.stats().torrents, TORRENTS);
    assert_eq!(pool.stats().open_files, 0, "registering opens nothing");
    // Every block of every torrent, in a scrambled order, over 8 tasks.
    let mut all: Vec<(usize, u32, u32)> = Vec::new();
    for (t, d) in all_data.iter().enumerate() {
        for off in (0..d.len()).step_by(BLOCK) {
            all.push((t, (off / PIECE) as u32, (off % PIECE) as u32));
        }
    }
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for i in (1..all.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        all.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let disks = Arc::new(disks);
    let all_data = Arc::new(all_data);
    let mut tasks = tokio::task::JoinSet::new();
    let per = all.len().div_ceil(8);
    for chunk in all.chunks(per).map(<[_]>::to_vec) {
        let disks = disks.clone();
        let data = all_data.clone();
        tasks.spawn(async move {
            let mut pending = std::collections::VecDeque::new();
            for (t, piece, off) in chunk {
                let d = &data[t];
                let start = piece as usize * PIECE + off as usize;
                let block = d.slice(start..(start + BLOCK).min(d.len()));
                let q = disks[t]
                    .queue_blocks(vec![(piece, off, block)])
                    .await
                    .unwrap();
                pending.push_back(q);
                if pending.len() > 4 {
                    let o = pending.pop_front().unwrap().outcomes().await.unwrap();
                    assert!(matches!(
                        o[0],
                        Ok(BlockOutcome::Accepted | BlockOutcome::Completed)
                    ));
                }
            }
            for q in pending {
                q.outcomes().await.unwrap()[0].as_ref().unwrap();
            }
        });
    }
    let mut peak_threads = threads();
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
        peak_threads = peak_threads.max(threads());
    }
    // Every piece's verdict, through its own torrent's sink.
    let mut got: HashMap<usize, Vec<u32>> = HashMap::new();
    for _ in 0..pieces_total {
        let (t, e) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("verdicts timed out")
            .unwrap();
        match e {
            DiskEvent::PieceVerified(p) => got.entry(t).or_default().push(p),
            e => panic!("torrent {t}: {e:?}"),
        }
    }
    for (t, d) in all_data.iter().enumerate() {
        let mut v = got.remove(&t).unwrap_or_default();
        v.sort_unstable();
        let n = d.len().div_ceil(PIECE) as u32;
        assert_eq!(v, (0..n).collect::<Vec<_>>(), "torrent {t}");
    }
    let st = pool.stats();
    eprintln!(
        "threads: {threads_before} before the pool, {threads_with_pool} with it, \
         {threads_after_10} after 10 torrents, peak {peak_threads} with {TORRENTS}; {st:?}"
    );
    // The workers, plus the direct writer if the filesystem allows it, and
    // the thread it starts for the second of two writes sent together.
    assert!(
        peak_threads <= threads_with_pool + 2,
        "{peak_threads} threads"
    );
    assert!(
        st.peak_budget_used <= BUDGET && st.peak_budget_used > 0,
        "{st:?}"
    );
    assert_eq!(st.pieces_verified as usize, pieces_total);
    assert!(st.open_files <= DiskPoolConfig::default().max_open_files);
    assert!(st.pieces_hashed_by_worker.iter().all(|&c| c > 0), "{st:?}");
    // Closing every torrent leaves no state, budget nor handle behind.
    for d in disks.iter() {
        d.close().await.unwrap();
    }
    let st = pool.stats();
    assert_eq!(
        (
            st.torrents,
            st.worker_states,
            st.partial_pieces,
            st.budget_used,
            st.open_files
        ),
        (0, 0, 0, 0, 0),
        "{st:?}"
    );
    assert_eq!(fds(), fds_before, "file handles left open");
    // Every byte is where it belongs.
    for (t, d) in all_data.iter().enumerate() {
        let a = std::fs::read(root.join(format!("t{t}/a.bin"))).unwrap();
        let b = std::fs::read(root.join(format!("t{t}/d/b.bin"))).unwrap();
        assert_eq!([a, b].concat(), d[..], "torrent {t}");
    }
    drop(disks);
    drop(pool);
    assert_eq!(threads(), threads_before, "the pool's threads ended");
}
