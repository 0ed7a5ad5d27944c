//! Benchmark: many idle seeding torrents in one session (no peers).
//!
//! `cargo run --release -p shoal-engine --example idle_seeds -- [N] [DIR]`
//! writes N small torrents' data under DIR (default: a temporary directory),
//! adds them all to one session, waits until every one is seeding, then
//! prints one JSON line: the time to add and check them, the process's RSS
//! and peak RSS, its threads, and the RSS per torrent. `bench/idle.sh` runs
//! it. Talks to no network (listens on 127.0.0.1, no DHT, no trackers).
use shoal_engine::{AddTorrentParams, Session, SessionConfig, TorrentState};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn status_kib(key: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let tmp;
    let dir = match args.next() {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temporary directory");
            tmp.path().to_path_buf()
        }
    };
    // Torrents made up front (as a daemon would load them), not counted.
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        version: Version::V1,
        ..CreateOptions::default()
    };
    let mut torrents = Vec::with_capacity(n);
    for i in 0..n {
        let name = format!("t{i:05}");
        let path = dir.join(&name);
        let data: Vec<u8> = (0..(4096 + i % 4096)).map(|j| (i + j) as u8).collect();
        std::fs::write(&path, &data).expect("writing data");
        let bytes = shoal_metainfo::create(&path, &opts, &|_| {}).expect("creating a torrent");
        torrents.push(Arc::new(Torrent::from_bytes(&bytes).expect("parsing")));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let before_kib = status_kib("VmRSS:");
        let session = Session::start(SessionConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            ..SessionConfig::default()
        })
        .await
        .expect("session");
        let t0 = Instant::now();
        let mut handles = Vec::with_capacity(n);
        for t in torrents.drain(..) {
            let h = session
                .add(AddTorrentParams::torrent(t, &dir))
                .await
                .expect("add");
            handles.push(h);
        }
        let added = t0.elapsed();
        for h in &handles {
            h.wait_for(|s| s.state != TorrentState::Checking).await;
        }
        let checked = t0.elapsed();
        let seeding = handles
            .iter()
            .filter(|h| h.status().state == TorrentState::Seeding)
            .count();
        // Let everything settle, then measure the idle state.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let t1 = Instant::now();
        let snap = session.snapshot();
        let snapshot_ms = t1.elapsed().as_secs_f64() * 1e3;
        let rss = status_kib("VmRSS:");
        let hwm = status_kib("VmHWM:");
        let per = (rss.saturating_sub(before_kib) as f64 * 1024.0) / n as f64;
        println!(
            "{{\"torrents\":{n},\"seeding\":{seeding},\"add_s\":{:.2},\"checked_s\":{:.2},\
\"rss_mib\":{:.1},\"peak_rss_mib\":{:.1},\"bytes_per_torrent\":{:.0},\"threads\":{},\
\"snapshot_ms\":{:.1},\"snapshot_len\":{}}}",
            added.as_secs_f64(),
            checked.as_secs_f64(),
            rss as f64 / 1024.0,
            hwm as f64 / 1024.0,
            per,
            threads(),
            snapshot_ms,
            snap.len()
        );
        session.shutdown().await;
    });
}
