//! Measures `Storage::check` throughput on a large file.
//!
//! `cargo run --release -p shoal-storage --example check_speed -- [MiB] [piece KiB] [dir]`
//! (defaults: 1024 MiB, 1024 KiB pieces, /tmp). Reports a warm (page cache)
//! run and a cold run after `posix_fadvise(DONTNEED)` on the data file.
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Instant;

use rayon::prelude::*;
use shoal_storage::hash::sha1_of;
use shoal_storage::{FileSpec, PieceHashes, Storage, StorageLayout, StorageOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).map_or(Ok(1024), |s| s.parse())?;
    let piece_kib: u64 = args.get(2).map_or(Ok(1024), |s| s.parse())?;
    let base = PathBuf::from(args.get(3).map_or("/tmp", String::as_str));
    let dir = tempfile::tempdir_in(base)?;
    let total = mib << 20;
    let pl = piece_kib << 10;
    let path = dir.path().join("data.bin");
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(&path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for w in chunk.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&chunk)?;
    }
    let f = f.into_inner()?;
    f.sync_all()?;
    let data = std::fs::read(&path)?;
    let t = Instant::now();
    let hashes: Vec<[u8; 20]> = data.par_chunks(pl as usize).map(|c| sha1_of([c])).collect();
    let par_hash = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for c in data.chunks(pl as usize).take(256) {
        std::hint::black_box(sha1_of([c]));
    }
    let one_core = (256 * pl).min(total) as f64 / t.elapsed().as_secs_f64() / (1u64 << 20) as f64;
    drop(data);
    let layout = StorageLayout {
        piece_length: pl,
        total_length: total,
        files: vec![FileSpec {
            path: "data.bin".into(),
            length: total,
            pad: false,
        }],
        piece_hashes: PieceHashes::V1(hashes),
    };
    let s = Storage::open(layout, dir.path(), StorageOptions::default())?;
    let t = Instant::now();
    let warm = s.check(&|_| {})?;
    let warm_s = t.elapsed().as_secs_f64();
    assert!(warm.iter().all(|&v| v), "warm check failed");
    // SAFETY: plain syscall on a valid descriptor.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let s = Storage::open(
        s.map().layout().clone(),
        dir.path(),
        StorageOptions::default(),
    )?;
    let t = Instant::now();
    let cold = s.check(&|_| {})?;
    let cold_s = t.elapsed().as_secs_f64();
    assert!(cold.iter().all(|&v| v), "cold check failed");
    let m = mib as f64;
    println!(
        "{mib} MiB, {piece_kib} KiB pieces, {} threads: check warm {:.0} MiB/s ({warm_s:.2} s), cold {:.0} MiB/s ({cold_s:.2} s); in-memory parallel hash {:.0} MiB/s; one core {:.0} MiB/s",
        rayon::current_num_threads(),
        m / warm_s,
        m / cold_s,
        m / par_hash,
        one_core,
    );
    Ok(())
}
