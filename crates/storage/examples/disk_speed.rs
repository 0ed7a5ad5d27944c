//! Measures the disk actor: blocks in, hashed and verified pieces out.
//!
//! `cargo run --release -p shoal-storage --example disk_speed -- [MiB] [dir]`
//! (defaults: 512 MiB, /tmp). 1 MiB pieces, 16 KiB blocks, 32 MiB budget,
//! 8 concurrent writers (like 8 peer connections).
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use shoal_storage::hash::sha1_of;
use shoal_storage::{
    Disk, DiskConfig, FileSpec, PieceHashes, Storage, StorageLayout, StorageOptions, WriteOutcome,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).map_or(Ok(512), |s| s.parse())?;
    let base = args.get(2).cloned().unwrap_or_else(|| "/tmp".into());
    let dir = tempfile::tempdir_in(base)?;
    const PL: usize = 1 << 20;
    const BLOCK: usize = 16 << 10;
    // One random piece reused everywhere keeps generation cheap; every
    // piece has the same hash.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let piece: Vec<u8> = (0..PL)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let h = sha1_of([&piece[..]]);
    let n = mib as usize;
    let layout = StorageLayout {
        piece_length: PL as u64,
        total_length: (n * PL) as u64,
        files: (0..4)
            .map(|i| FileSpec {
                path: format!("f{i}").into(),
                length: (n * PL / 4) as u64,
                pad: false,
            })
            .collect(),
        piece_hashes: PieceHashes::V1(vec![h; n]),
    };
    let storage = Arc::new(Storage::open(
        layout,
        dir.path(),
        StorageOptions::default(),
    )?);
    let piece = Bytes::from(piece);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let disk = Disk::spawn(storage, vec![false; n], DiskConfig::default())?;
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for w in 0..8 {
            let disk = disk.clone();
            let piece = piece.clone();
            set.spawn(async move {
                // Keep reading "the socket" while earlier blocks are processed;
                // collect outcomes as they come.
                let mut pending = std::collections::VecDeque::new();
                let mut ok = 0u32;
                for p in (w..n).step_by(8) {
                    for off in (0..PL).step_by(BLOCK) {
                        let slice = piece.slice(off..off + BLOCK);
                        pending.push_back(disk.queue_block(p as u32, off as u32, slice).await?);
                        while pending.len() > 64 {
                            if let Some(pw) = pending.pop_front() {
                                ok += u32::from(matches!(pw.outcome().await?, WriteOutcome::PieceVerified(_)));
                            }
                        }
                    }
                }
                for pw in pending {
                    ok += u32::from(matches!(pw.outcome().await?, WriteOutcome::PieceVerified(_)));
                }
                Ok::<u32, shoal_storage::DiskError>(ok)
            });
        }
        let mut verified = 0;
        while let Some(r) = set.join_next().await {
            verified += r??;
        }
        let secs = t.elapsed().as_secs_f64();
        let st = disk.stats().await?;
        disk.shutdown().await?;
        println!(
            "{mib} MiB through the disk actor: {:.0} MiB/s ({secs:.2} s), {verified}/{n} verified, peak buffered {} KiB of {} KiB, {} blocks flushed early",
            mib as f64 / secs,
            st.peak_buffered_bytes >> 10,
            st.budget >> 10,
            st.blocks_flushed
        );
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
