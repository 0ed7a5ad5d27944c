//! Throughput of writing and hashing 1 GiB of one torrent's blocks: the
//! disk pool with 1 and 2 workers, and the one-thread `Disk` actor for
//! reference, on the temporary directory's filesystem and on /dev/shm.
//! A measurement, not a check (ignored by default; run in release):
//!
//! ```sh
//! cargo test --release -p shoal-storage --test diskpool_speed -- --ignored --nocapture
//! ```
//!
//! `SHOAL_BENCH_MIB` changes the size (default 1024), `SHOAL_BENCH_DIRS` the
//! directories (colon-separated), `SHOAL_BENCH_RUNS` the contenders
//! (comma-separated among `actor,pool-1,pool-2`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shoal_storage::hash::sha1_of;
use shoal_storage::{
    Disk, DiskConfig, DiskEvent, DiskPool, DiskPoolConfig, EventSink, FileSpec, PieceHashes,
    Storage, StorageLayout, StorageOptions, WriteOutcome,
};

const PIECE: usize = 1 << 20;
const BLOCK: usize = 16 << 10;
/// Distinct pieces of content (the torrent repeats them).
const DISTINCT: usize = 64;
/// Peers feeding blocks at once.
const FEEDERS: u32 = 4;
/// Batches each feeder keeps in flight.
const IN_FLIGHT: usize = 4;

struct Content {
    pool: Bytes,
    pieces: u32,
}

impl Content {
    fn piece(&self, p: u32) -> Bytes {
        let start = (p as usize % DISTINCT) * PIECE;
        self.pool.slice(start..start + PIECE)
    }

    fn layout(&self) -> StorageLayout {
        let hashes: Vec<[u8; 20]> = (0..DISTINCT)
            .map(|i| sha1_of([&self.pool[i * PIECE..(i + 1) * PIECE]]))
            .collect();
        StorageLayout {
            piece_length: PIECE as u64,
            total_length: u64::from(self.pieces) * PIECE as u64,
            files: vec![FileSpec {
                path: PathBuf::from("big.bin"),
                length: u64::from(self.pieces) * PIECE as u64,
                pad: false,
            }],
            piece_hashes: PieceHashes::V1(
                (0..self.pieces as usize)
                    .map(|p| hashes[p % DISTINCT])
                    .collect(),
            ),
        }
    }

    /// A piece's blocks as one batch.
    fn batch(&self, p: u32) -> Vec<(u32, u32, Bytes)> {
        let d = self.piece(p);
        (0..PIECE)
            .step_by(BLOCK)
            .map(|o| (p, o as u32, d.slice(o..o + BLOCK)))
            .collect()
    }
}

/// CPU seconds (user + system) of the whole process so far.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

/// CPU seconds of each live disk thread (`shoal-disk*`, `shoal-writer`).
/// On a loaded machine wall time says little; the busiest thread's CPU
/// time is the run's critical path, what a free core per thread would give.
fn disk_threads() -> Vec<(String, f64)> {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let comm = comm.trim();
        if !comm.starts_with("shoal-") {
            continue;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3, utime 14.
        let rest = stat.rsplit_once(')').map_or("", |r| r.1);
        let f: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        let (Some(u), Some(s)) = (f.get(10), f.get(11)) else {
            continue;
        };
        out.push((comm.to_owned(), (u + s) / hz));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn show_threads(t: &[(String, f64)]) {
    let list: Vec<String> = t.iter().map(|(n, c)| format!("{n} {c:.2}")).collect();
    let busiest = t.iter().map(|x| x.1).fold(0.0, f64::max);
    eprintln!(
        "    disk threads' CPU s: {}; busiest {busiest:.2}",
        list.join(", ")
    );
}

fn storage(c: &Content, dir: &Path) -> Arc<Storage> {
    Arc::new(Storage::open(c.layout(), dir, StorageOptions::default()).unwrap())
}

/// Seconds to write and verify every piece through a pool of `workers`.
async fn pool_run(c: &Arc<Content>, dir: &Path, workers: usize) -> f64 {
    let pool = DiskPool::new(DiskPoolConfig {
        workers,
        ..DiskPoolConfig::default()
    })
    .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let all = Arc::new(tokio::sync::Notify::new());
    let (d2, a2, n) = (done.clone(), all.clone(), c.pieces as usize);
    let sink: EventSink = Arc::new(move |e| {
        assert!(matches!(e, DiskEvent::PieceVerified(_)), "{e:?}");
        if d2.fetch_add(1, Ordering::SeqCst) + 1 == n {
            a2.notify_one();
        }
    });
    let disk = pool
        .add_torrent(storage(c, dir), &vec![false; n], sink)
        .unwrap();
    let t0 = Instant::now();
    let mut feeders = tokio::task::JoinSet::new();
    for f in 0..FEEDERS {
        let (disk, c) = (disk.clone(), c.clone());
        feeders.spawn(async move {
            let mut pending = std::collections::VecDeque::new();
            for p in (f..c.pieces).step_by(FEEDERS as usize) {
                pending.push_back(disk.queue_blocks(c.batch(p)).await.unwrap());
                if pending.len() >= IN_FLIGHT {
                    pending.pop_front().unwrap().outcomes().await.unwrap();
                }
            }
            for q in pending {
                q.outcomes().await.unwrap();
            }
        });
    }
    while let Some(r) = feeders.join_next().await {
        r.unwrap();
    }
    all.notified().await;
    let secs = t0.elapsed().as_secs_f64();
    show_threads(&disk_threads());
    let st = pool.stats();
    disk.close().await.unwrap();
    eprintln!(
        "    pieces hashed by worker {:?}, peak budget {} MiB",
        st.pieces_hashed_by_worker,
        st.peak_budget_used >> 20
    );
    secs
}

/// Seconds to write and verify every piece through the one-thread actor.
async fn actor_run(c: &Arc<Content>, dir: &Path) -> f64 {
    let n = c.pieces as usize;
    let disk = Disk::spawn(storage(c, dir), vec![false; n], DiskConfig::default()).unwrap();
    let t0 = Instant::now();
    let mut feeders = tokio::task::JoinSet::new();
    for f in 0..FEEDERS {
        let (disk, c) = (disk.clone(), c.clone());
        feeders.spawn(async move {
            let mut pending = std::collections::VecDeque::new();
            let mut ok = 0usize;
            let count = |o: Vec<Result<WriteOutcome, _>>| {
                o.iter()
                    .filter(|r| matches!(r, Ok(WriteOutcome::PieceVerified(_))))
                    .count()
            };
            for p in (f..c.pieces).step_by(FEEDERS as usize) {
                pending.push_back(disk.queue_blocks(c.batch(p)).await.unwrap());
                if pending.len() >= IN_FLIGHT {
                    ok += count(pending.pop_front().unwrap().outcomes().await.unwrap());
                }
            }
            for q in pending {
                ok += count(q.outcomes().await.unwrap());
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(r) = feeders.join_next().await {
        ok += r.unwrap();
    }
    assert_eq!(ok, n);
    let secs = t0.elapsed().as_secs_f64();
    show_threads(&disk_threads());
    disk.shutdown().await.unwrap();
    secs
}

#[test]
#[ignore = "measurement: run with --release -- --ignored --nocapture"]
fn write_and_hash_one_gib() {
    let mib: u32 = std::env::var("SHOAL_BENCH_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dirs: Vec<PathBuf> = match std::env::var("SHOAL_BENCH_DIRS") {
        Ok(v) => v.split(':').map(PathBuf::from).collect(),
        Err(_) => [std::env::temp_dir(), PathBuf::from("/dev/shm")]
            .into_iter()
            .filter(|d| d.is_dir())
            .collect(),
    };
    let runs: Vec<String> = std::env::var("SHOAL_BENCH_RUNS")
        .unwrap_or_else(|_| "actor,pool-1,pool-2".into())
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let pool: Vec<u8> = (0..DISTINCT * PIECE)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let c = Arc::new(Content {
        pool: Bytes::from(pool),
        pieces: mib,
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(600), async {
            for dir in &dirs {
                eprintln!("{mib} MiB, 1 MiB pieces, 16 KiB blocks, under {dir:?}:");
                for run in &runs {
                    let run = run.as_str();
                    let tmp = tempfile::tempdir_in(dir).unwrap();
                    let cpu0 = cpu_secs();
                    let secs = match run {
                        "actor" => actor_run(&c, tmp.path()).await,
                        "pool-1" => pool_run(&c, tmp.path(), 1).await,
                        _ => pool_run(&c, tmp.path(), 2).await,
                    };
                    let cpu = cpu_secs() - cpu0;
                    eprintln!(
                        "  {run:7} {secs:6.3} s  {:6.0} MiB/s  {:5.2} CPU s/GiB",
                        f64::from(mib) / secs,
                        cpu * 1024.0 / f64::from(mib)
                    );
                }
            }
        })
        .await
        .expect("timed out");
    });
}
