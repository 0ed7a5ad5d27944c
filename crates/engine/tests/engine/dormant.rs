//! Dormant torrents as a remote peer drives them: a seed with no peers
//! drops its transfer state (counted by `SessionStats::dormant`), keeps
//! its status, and wakes for a fresh peer that connects by info-hash and
//! downloads it fully — twice, going dormant in between — and for a pause
//! and a resume, without any state change showing outside; a recheck wakes
//! it too. Restored torrents wait for their check parked.
use rand::{RngCore, SeedableRng};
use shoal_engine::{
    AddTorrentParams, Session, SessionConfig, SessionEvent, TorrentHandle, TorrentState,
};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::util::{loopback, wait, MemPersist, WAIT_LIMIT as LIMIT};

fn make_torrent(root: &Path, sizes: &[usize], piece: u64) -> Arc<Torrent> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let dir = root.join("dormant");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let mut data = vec![0u8; n];
        rng.fill_bytes(&mut data);
        std::fs::write(dir.join(format!("f{i}.bin")), data).unwrap();
    }
    let opts = CreateOptions {
        piece_length: Some(piece),
        version: Version::Hybrid,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

fn cfg() -> SessionConfig {
    SessionConfig {
        enable_lsd: false,
        ..loopback()
    }
}

/// Waits until the session counts `n` dormant torrents.
async fn wait_dormant(s: &Session, n: usize, what: &str) {
    let r = tokio::time::timeout(LIMIT, async {
        while s.stats().dormant != n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(r.is_ok(), "{what}: {} dormant, not {n}", s.stats().dormant);
}

/// Waits until fewer than `bound` more tasks than `before` are alive; how
/// many are when it gives up.
async fn few_tasks(before: usize, bound: usize) -> Result<(), usize> {
    let rt = tokio::runtime::Handle::current();
    let alive = || rt.metrics().num_alive_tasks().saturating_sub(before);
    let r = tokio::time::timeout(LIMIT, async {
        while alive() >= bound {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    r.map_err(|_| alive())
}

/// Adds `n` one-piece seeds (16 KiB files of sizes `first`, `first + 1`,
/// ... under `root`), each with these extra trackers.
async fn add_seeds(
    seeder: &Session,
    root: &Path,
    first: usize,
    n: usize,
    trackers: &[String],
) -> Vec<TorrentHandle> {
    let mut handles = Vec::new();
    for i in 0..n {
        let dir = root.join(format!("t{i}"));
        let t = make_torrent(&dir, &[first + i], 16 * 1024);
        let mut p = AddTorrentParams::torrent(t, &dir);
        p.extra_trackers = trackers.to_vec();
        handles.push(seeder.add(p).await.unwrap());
    }
    handles
}

/// A fresh session downloads `t` from `seed` (it connects, so the seed
/// takes it as an incoming connection found by info-hash).
async fn download_from(t: &Arc<Torrent>, src: &Path, dst: &Path, seed: std::net::SocketAddr) {
    let leech = Session::start(cfg()).await.unwrap();
    let mut p = AddTorrentParams::torrent(t.clone(), dst);
    p.peers = vec![seed];
    let h = leech.add(p).await.unwrap();
    wait(&h, "the download", |s| s.is_complete()).await;
    assert_eq!(leech.stats().dormant, 0, "the leech downloaded: awake");
    for f in t.files().iter().filter(|f| !f.pad) {
        let a = std::fs::read(src.join(&f.path)).unwrap();
        let b = std::fs::read(dst.join(&f.path)).unwrap();
        assert!(a == b, "{} differs", f.path.display());
    }
    tokio::time::timeout(LIMIT, leech.shutdown()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dormant_seed_wakes_for_a_peer_and_sleeps_again() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, &[300_001, 1_000_000, 5], 32 * 1024);
    let seeder = Session::start(SessionConfig {
        dormant_after: Some(Duration::from_millis(300)),
        ..cfg()
    })
    .await
    .unwrap();
    let mut events = seeder.subscribe();
    let h = seeder
        .add(AddTorrentParams::torrent(t.clone(), &src))
        .await
        .unwrap();
    wait(&h, "the seed's check", |s| s.state == TorrentState::Seeding).await;
    // No peer ever came: dormant at once, and it still shows as seeding.
    wait_dormant(&seeder, 1, "a seed with nothing to do").await;
    let s = h.status();
    assert_eq!(s.state, TorrentState::Seeding);
    assert!(s.is_complete() && s.peers == 0, "{s:?}");
    assert!(h.peers().await.unwrap().is_empty());
    assert_eq!(h.pieces().await.unwrap().count_ones(), s.pieces);
    assert_eq!(seeder.stats().dormant, 1, "queries answered while dormant");

    download_from(&t, &src, &tmp.path().join("d1"), seeder.local_addr()).await;
    let up1 = h.status().uploaded;
    assert!(up1 > 0, "the seed counted what it sent");
    // The peer left: dormant again once idle for `dormant_after`.
    wait_dormant(&seeder, 1, "the seed after its peer left").await;
    assert_eq!(h.status().state, TorrentState::Seeding);
    assert_eq!(
        h.status().uploaded,
        up1,
        "the counters outlive the transfer state"
    );

    // Woken again by another fresh peer.
    download_from(&t, &src, &tmp.path().join("d2"), seeder.local_addr()).await;
    assert!(h.status().uploaded > up1);
    wait_dormant(&seeder, 1, "the seed after its second peer left").await;

    // A pause and a resume wake it; it sleeps again in either state.
    h.pause().await.unwrap();
    wait(&h, "the pause", |s| s.state == TorrentState::Paused).await;
    wait_dormant(&seeder, 1, "the paused seed").await;
    h.resume().await.unwrap();
    wait(&h, "the resume", |s| s.state == TorrentState::Seeding).await;
    wait_dormant(&seeder, 1, "the resumed seed").await;

    // Outside, the waking and sleeping showed no state change but the pause.
    let mut states = Vec::new();
    while let Ok(e) = events.try_recv() {
        match e {
            SessionEvent::StateChanged { state, .. } => states.push(state),
            SessionEvent::Completed { .. } => panic!("a seed does not complete again"),
            _ => {}
        }
    }
    assert_eq!(
        states,
        [
            TorrentState::Seeding,
            TorrentState::Paused,
            TorrentState::Seeding
        ]
    );
    tokio::time::timeout(LIMIT, seeder.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recheck_wakes_a_dormant_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, &[200_000], 16 * 1024);
    let seeder = Session::start(cfg()).await.unwrap();
    let h = seeder
        .add(AddTorrentParams::torrent(t.clone(), &src))
        .await
        .unwrap();
    wait(&h, "the seed's check", |s| s.state == TorrentState::Seeding).await;
    wait_dormant(&seeder, 1, "the seed").await;
    // The status may pass through Checking faster than a watcher looks:
    // the event stream shows every state.
    let mut events = seeder.subscribe();
    h.recheck().await.unwrap();
    let mut states = Vec::new();
    tokio::time::timeout(LIMIT, async {
        while states.last() != Some(&TorrentState::Seeding) || states.len() < 2 {
            if let Ok(SessionEvent::StateChanged { state, .. }) = events.recv().await {
                states.push(state);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no recheck seen: {states:?}"));
    assert_eq!(states[0], TorrentState::Checking, "{states:?}");
    wait_dormant(&seeder, 1, "the rechecked seed").await;
    assert!(h.status().is_complete());
    tokio::time::timeout(LIMIT, seeder.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_torrents_hold_no_task_and_wake_on_a_command() {
    let tmp = tempfile::tempdir().unwrap();
    let seeder = Session::start(cfg()).await.unwrap();
    let rt = tokio::runtime::Handle::current();
    let before = rt.metrics().num_alive_tasks();
    const N: usize = 20;
    let handles = add_seeds(&seeder, tmp.path(), 20_000, N, &[]).await;
    for h in &handles {
        wait(h, "the seed's check", |s| s.state == TorrentState::Seeding).await;
    }
    wait_dormant(&seeder, N, "seeds with nothing to do").await;
    // Their tasks ended: each left its state to its command queue.
    if let Err(n) = few_tasks(before, N / 2).await {
        panic!("{n} tasks more than before, for {N} dormant torrents");
    }
    // A command wakes each (answered dormant), and each parks again.
    for h in &handles {
        let s = h.status();
        assert_eq!(s.state, TorrentState::Seeding);
        assert_eq!(h.pieces().await.unwrap().count_ones(), s.pieces);
        h.set_labels(vec!["x".into()]).await.unwrap();
        assert_eq!(h.meta().labels, ["x"]);
    }
    assert_eq!(seeder.stats().dormant, N, "still dormant after the queries");
    // A removal wakes one to its end; a pause wakes one to a transfer.
    seeder.remove(handles[0].id(), false).await.unwrap();
    handles[1].pause().await.unwrap();
    wait(&handles[1], "the pause", |s| {
        s.state == TorrentState::Paused
    })
    .await;
    wait_dormant(&seeder, N - 1, "the rest").await;
    // Shutdown reaches every parked one.
    tokio::time::timeout(LIMIT, seeder.shutdown())
        .await
        .unwrap();
    for h in &handles[1..] {
        assert_eq!(h.status().state, TorrentState::Stopped);
    }
}

/// Restored torrents wait for their check turn parked: a session restoring
/// many seeds never holds a task for each, a command to one still waiting
/// is answered, a removal skips its turn, and every other one checks (its
/// resume data trusted) and seeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_torrents_wait_for_their_check_parked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Arc::new(MemPersist::default());
    let s1 = Session::start_with(cfg(), store.clone()).await.unwrap();
    const N: usize = 200;
    for i in 0..N {
        let dir = tmp.path().join(format!("t{i}"));
        let t = make_torrent(&dir, &[1_000 + i], 16 * 1024);
        s1.add(AddTorrentParams::torrent(t, &dir)).await.unwrap();
    }
    for h in s1.torrents() {
        wait(&h, "the first check", |s| s.state == TorrentState::Seeding).await;
    }
    s1.shutdown().await;

    let rt = tokio::runtime::Handle::current();
    let before = rt.metrics().num_alive_tasks();
    // The most tasks alive at once while the session restores and checks.
    let most = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (most, done, rt) = (most.clone(), done.clone(), rt.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let n = rt.metrics().num_alive_tasks().saturating_sub(before);
                most.fetch_max(n, Ordering::Relaxed);
                std::thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let s2 = Session::start_with(cfg(), store.clone()).await.unwrap();
    let all = s2.torrents();
    assert_eq!(all.len(), N);
    // The last restored waits for its turn still: answered all the same.
    let (last, gone) = (&all[N - 1], &all[N - 2]);
    assert!(last.pieces().await.is_ok());
    s2.remove(gone.id(), false).await.unwrap();
    for h in s2.torrents() {
        wait(&h, "the restored seed", |s| {
            s.state == TorrentState::Seeding
        })
        .await;
        assert_eq!(h.status().pieces_checked_at_start, 0, "{:?}", h.status());
    }
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    assert_eq!(s2.torrents().len(), N - 1);
    wait_dormant(&s2, N - 1, "the restored seeds").await;
    tokio::time::timeout(LIMIT, s2.shutdown()).await.unwrap();
    let most = most.load(Ordering::Relaxed);
    assert!(
        most < N / 4,
        "{most} tasks alive at once for {N} torrents restored"
    );
}

/// A dormant seed with a tracker parks too: the session's announce service
/// announces for it and hands the tracker's answers over as commands, so
/// the session holds no task per torrent; an answer reaches the parked
/// torrent and shows in its tracker list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dormant_seeds_with_a_tracker_park_and_hear_it() {
    use shoal_tracker::udp_codec::{Request, Response};
    let tmp = tempfile::tempdir().unwrap();
    let tracker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let at = tracker.local_addr().unwrap();
    // Answers every announce: no peers, and a count to recognise.
    let serve = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        loop {
            let Ok((n, from)) = tracker.recv_from(&mut buf).await else {
                return;
            };
            let reply = match Request::decode(&buf[..n]) {
                Ok(Request::Connect { transaction_id }) => Response::Connect {
                    transaction_id,
                    connection_id: 0x5eed,
                },
                Ok(Request::Announce { transaction_id, .. }) => Response::Announce {
                    transaction_id,
                    interval: 1800,
                    leechers: 0,
                    seeders: 7,
                    peers: Vec::new(),
                },
                _ => continue,
            };
            let _ = tracker.send_to(&reply.encode(), from).await;
        }
    });
    let seeder = Session::start(cfg()).await.unwrap();
    let rt = tokio::runtime::Handle::current();
    let before = rt.metrics().num_alive_tasks();
    const N: usize = 20;
    let trackers = [format!("udp://{at}/announce")];
    let handles = add_seeds(&seeder, tmp.path(), 30_000, N, &trackers).await;
    // Each heard its tracker (the announce service keeps what it said; an
    // answer without peers does not wake the parked task).
    for h in &handles {
        let r = tokio::time::timeout(LIMIT, async {
            loop {
                let t = h.trackers().await.unwrap();
                if t.first().is_some_and(|t| t.announces_ok > 0) {
                    return t;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("an answer from the tracker");
        assert_eq!(r[0].seeders, Some(7), "{r:?}");
    }
    wait_dormant(&seeder, N, "seeds with a tracker").await;
    // No task per torrent: neither its own nor an announcer's.
    let r = few_tasks(before, N / 2).await;
    assert!(
        handles
            .iter()
            .all(|h| h.status().state == TorrentState::Seeding),
        "still seeding"
    );
    tokio::time::timeout(LIMIT, seeder.shutdown())
        .await
        .unwrap();
    serve.abort();
    if let Err(n) = r {
        panic!("{n} tasks more than before, for {N} dormant torrents with a tracker");
    }
}
