//! The session as a caller drives it: operations on a running torrent
//! (pause, resume, recheck, move, file selection, remove with its data),
//! the event stream and the snapshot, lookups by either hash of a hybrid
//! torrent, persistence across a restart, and 1,000 torrents added and
//! removed while a download runs without leaving tasks, threads or files
//! behind. Every test bounds its time and shuts its sessions down.
use rand::{RngCore, SeedableRng};
use shoal_engine::{Session, SessionConfig, SessionEvent, TorrentId, TorrentState};
use shoal_metainfo::create::{CreateOptions, Version};
use shoal_metainfo::Torrent;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::util::{loopback, params, same_files, wait, MemPersist, WAIT_LIMIT as LIMIT};

fn make_torrent(
    root: &Path,
    name: &str,
    sizes: &[usize],
    piece: u64,
    version: Version,
) -> Arc<Torrent> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(sizes.iter().sum::<usize>() as u64 + piece);
    let dir = root.join(name);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    for (i, &n) in sizes.iter().enumerate() {
        let mut data = vec![0u8; n];
        rng.fill_bytes(&mut data);
        let p = if i % 2 == 0 {
            dir.join(format!("f{i}.bin"))
        } else {
            dir.join("sub").join(format!("f{i}.dat"))
        };
        std::fs::write(p, data).unwrap();
    }
    let opts = CreateOptions {
        piece_length: Some(piece),
        version,
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&dir, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

/// Collects the events of one torrent until `until` arrives.
async fn events_until(
    rx: &mut tokio::sync::broadcast::Receiver<SessionEvent>,
    id: TorrentId,
    mut until: impl FnMut(&SessionEvent) -> bool,
) -> Vec<SessionEvent> {
    let mut out = Vec::new();
    let r = tokio::time::timeout(LIMIT, async {
        loop {
            match rx.recv().await {
                Ok(e) if e.id() == id => {
                    let done = until(&e);
                    out.push(e);
                    if done {
                        return;
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "events so far: {out:?}");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_on_a_torrent_and_its_events() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(
        &src,
        "ops",
        &[900_000, 300_001, 77],
        64 * 1024,
        Version::Hybrid,
    );
    let seeder = Session::start(loopback()).await.unwrap();
    let sh = seeder.add(params(&t, &src, vec![])).await.unwrap();
    wait(&sh, "the seed's check", |s| {
        s.state == TorrentState::Seeding
    })
    .await;

    let leech = Session::start(loopback()).await.unwrap();
    let mut events = leech.subscribe();
    let dst = tmp.path().join("dst");
    let mut p = params(&t, &dst, vec![seeder.local_addr()]);
    p.paused = true;
    // A tracker nobody answers at: its failures show.
    p.extra_trackers = vec!["http://127.0.0.1:1/announce".into()];
    let h = leech.add(p).await.unwrap();
    let id = h.id();
    // A duplicate is refused, by either hash.
    assert!(leech.add(params(&t, &dst, vec![])).await.is_err());
    // Found by the v1 hash, the truncated v2 hash and the full v2 hash.
    let hashes = t.info_hashes();
    let v2 = hashes.v2.unwrap();
    assert_eq!(leech.find(&hashes.v1.unwrap().0).unwrap().id(), id);
    assert_eq!(leech.find(&v2.truncated().0).unwrap().id(), id);
    assert_eq!(leech.find(&v2.0).unwrap().id(), id);
    wait(&h, "paused after the check", |s| {
        s.state == TorrentState::Paused
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.status().downloaded,
        0,
        "a paused torrent transfers nothing"
    );

    h.resume().await.unwrap();
    let seen = events_until(&mut events, id, |e| {
        matches!(e, SessionEvent::Completed { .. })
    })
    .await;
    assert!(matches!(seen[0], SessionEvent::Added { .. }), "{seen:?}");
    let states: Vec<TorrentState> = seen
        .iter()
        .filter_map(|e| match e {
            SessionEvent::StateChanged { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        // It starts in `Checking` (the `Added` event), then:
        vec![
            TorrentState::Paused,
            TorrentState::Downloading,
            TorrentState::Seeding
        ],
        "{seen:?}"
    );
    assert!(seen
        .iter()
        .any(|e| matches!(e, SessionEvent::Progress { .. })));
    same_files(&t, &src, &dst);
    // What the daemon's views read: peers, pieces, files, trackers.
    let peers = h.peers().await.unwrap();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0].addr, seeder.local_addr());
    assert!(peers[0].connected && peers[0].client.starts_with("shoal"));
    assert_eq!(peers[0].progress, 1.0);
    assert!(h.pieces().await.unwrap().is_full());
    let sizes: Vec<u64> = t.files().iter().map(|f| f.length).collect();
    assert_eq!(h.file_progress().await.unwrap(), sizes);
    let trackers = h.trackers().await.unwrap();
    assert_eq!(trackers.len(), 1);
    assert_eq!(trackers[0].url, "http://127.0.0.1:1/announce");
    let deadline = tokio::time::Instant::now() + LIMIT;
    while h.trackers().await.unwrap()[0].announces_failed == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the tracker's failure never showed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(h.trackers().await.unwrap()[0].last_error.is_some());
    let snap = leech.snapshot();
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0].name, "ops");
    assert!(snap[0].status.is_complete());

    // Recheck: back through checking to seeding, everything verified again.
    h.recheck().await.unwrap();
    wait(&h, "the recheck", |s| {
        s.state == TorrentState::Seeding && s.pieces_checked_at_start == u64::from(s.pieces)
    })
    .await;

    // Unselect the last file: still complete; select it again: still complete.
    let n = t.files().len();
    let last = t.files().iter().rposition(|f| !f.pad).unwrap();
    let mut prio = vec![1u8; n];
    prio[last] = 0;
    h.set_file_priorities(prio).await.unwrap();
    assert!(h.set_file_priorities(vec![1]).await.is_err());
    wait(&h, "seeding with a smaller selection", |s| {
        s.state == TorrentState::Seeding && s.wanted_bytes < t.total_length()
    })
    .await;
    h.set_file_priorities(vec![1; n]).await.unwrap();

    // Move the data: the files go, the torrent keeps seeding from the new place.
    let moved = tmp.path().join("moved");
    h.move_data(moved.clone()).await.unwrap();
    wait(&h, "seeding after the move", |s| {
        s.state == TorrentState::Seeding
    })
    .await;
    assert!(!dst.join("ops").exists());
    same_files(&t, &src, &moved);
    assert_eq!(h.meta().save_path, moved);
    assert_eq!(h.status().pieces_have, h.status().pieces);

    // Pause and remove with its data: the files are gone, the rest stays.
    std::fs::write(moved.join("keep.txt"), b"not the torrent's").unwrap();
    h.pause().await.unwrap();
    wait(&h, "paused", |s| s.state == TorrentState::Paused).await;
    leech.remove(id, true).await.unwrap();
    events_until(&mut events, id, |e| {
        matches!(e, SessionEvent::Removed { .. })
    })
    .await;
    assert!(!moved.join("ops").exists());
    assert!(moved.join("keep.txt").exists());
    assert!(leech.torrent(id).is_none());
    assert!(leech.snapshot().is_empty());
    assert!(leech.remove(id, false).await.is_err());
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persisted_torrents_come_back_with_their_settings_and_progress() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "keep", &[700_000, 20_000], 32 * 1024, Version::V1);
    let store = Arc::new(MemPersist::default());
    let s1 = Session::start_with(loopback(), store.clone())
        .await
        .unwrap();
    let mut p = params(&t, &src, vec![]);
    p.labels = vec!["tv".into()];
    let h = s1.add(p).await.unwrap();
    wait(&h, "the check", |s| s.state == TorrentState::Seeding).await;
    h.pause().await.unwrap();
    wait(&h, "paused", |s| s.state == TorrentState::Paused).await;
    s1.shutdown().await;
    let rec = store
        .torrents
        .lock()
        .unwrap()
        .get(&t.info_hashes())
        .cloned()
        .unwrap();
    assert!(rec.paused);
    assert_eq!(rec.labels, vec!["tv".to_string()]);
    let resume = store
        .resume
        .lock()
        .unwrap()
        .get(&t.info_hashes())
        .cloned()
        .unwrap();
    assert!(resume.data.verified.iter().all(|&v| v));

    // A new session on the same store: the torrent is back, paused, labelled,
    // and nothing was hashed (the files did not change).
    let s2 = Session::start_with(loopback(), store.clone())
        .await
        .unwrap();
    let all = s2.torrents();
    assert_eq!(all.len(), 1);
    let h2 = &all[0];
    wait(h2, "the restored torrent", |s| {
        s.state == TorrentState::Paused
    })
    .await;
    assert_eq!(h2.meta().labels, vec!["tv".to_string()]);
    assert_eq!(h2.status().pieces_checked_at_start, 0, "{:?}", h2.status());
    assert_eq!(h2.status().pieces_have, h2.status().pieces);
    s2.remove(h2.id(), false).await.unwrap();
    assert!(store.torrents.lock().unwrap().is_empty());
    assert!(
        src.join("keep").exists(),
        "removing without data keeps the files"
    );
    s2.shutdown().await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_torrents_come_and_go_while_a_download_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let big = make_torrent(&src, "big", &[6 << 20], 64 * 1024, Version::V1);
    let seeder = Session::start(loopback()).await.unwrap();
    let sh = seeder.add(params(&big, &src, vec![])).await.unwrap();
    wait(&sh, "the seed", |s| s.state == TorrentState::Seeding).await;
    // A rate-limited download keeps running while the torrents come and go.
    let leech = Session::start(SessionConfig {
        max_download_rate: Some(2 << 20),
        ..loopback()
    })
    .await
    .unwrap();
    let dst = tmp.path().join("dst");
    let h = leech
        .add(params(&big, &dst, vec![seeder.local_addr()]))
        .await
        .unwrap();
    wait(&h, "the download to start", |s| s.downloaded > 0).await;
    let metrics = tokio::runtime::Handle::current().metrics();
    let (tasks0, threads0, fds0) = (metrics.num_alive_tasks(), threads(), open_fds());

    // 1,000 small torrents with their data (seeding after a check) and
    // without (downloading, no peer).
    let small = tmp.path().join("small");
    let mut ids = Vec::new();
    for i in 0..1000 {
        let name = format!("t{i}");
        let t = if i % 2 == 0 {
            make_torrent(&small, &name, &[1000 + i], 16 * 1024, Version::V1)
        } else {
            // Only the metainfo: its data is not there.
            let t = make_torrent(&small, &name, &[1000 + i], 16 * 1024, Version::V1);
            std::fs::remove_dir_all(small.join(&name)).unwrap();
            t
        };
        ids.push(leech.add(params(&t, &small, vec![])).await.unwrap());
    }
    for h in &ids {
        wait(h, "a small torrent's check", |s| {
            matches!(s.state, TorrentState::Seeding | TorrentState::Downloading)
        })
        .await;
    }
    assert_eq!(leech.snapshot().len(), 1001);
    let seeding = leech
        .snapshot()
        .iter()
        .filter(|s| s.id != h.id() && s.status.state == TorrentState::Seeding)
        .count();
    assert_eq!(seeding, 500);
    assert!(
        threads() <= threads0 + 8,
        "threads grew with the torrents: {} -> {}",
        threads0,
        threads()
    );
    for h in &ids {
        leech.remove(h.id(), i_delete(h.id())).await.unwrap();
    }
    assert_eq!(leech.snapshot().len(), 1);
    // Everything the removed torrents had is gone (tasks end shortly after).
    let mut settled = false;
    for _ in 0..100 {
        if metrics.num_alive_tasks() <= tasks0 + 2 && open_fds() <= fds0 + 2 {
            settled = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        settled,
        "left behind: tasks {} -> {}, fds {} -> {}",
        tasks0,
        metrics.num_alive_tasks(),
        fds0,
        open_fds()
    );
    // The download went on and completes.
    leech.set_rate_limits(None, None);
    wait(&h, "the download", |s| s.is_complete()).await;
    same_files(&big, &src, &dst);
    leech.shutdown().await;
    seeder.shutdown().await;
}

/// Every other removed torrent takes its data along.
fn i_delete(id: TorrentId) -> bool {
    id.0.is_multiple_of(2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_download_queue_runs_one_at_a_time_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let seeder = Session::start(loopback()).await.unwrap();
    let mut ts = Vec::new();
    for i in 0..3 {
        let t = make_torrent(
            &src,
            &format!("q{i}"),
            &[400_000 + i],
            16 * 1024,
            Version::V1,
        );
        let h = seeder.add(params(&t, &src, vec![])).await.unwrap();
        wait(&h, "a seed", |s| s.state == TorrentState::Seeding).await;
        ts.push(t);
    }
    let leech = Session::start(SessionConfig {
        max_active_downloads: Some(1),
        max_download_rate: Some(100_000),
        ..loopback()
    })
    .await
    .unwrap();
    let dst = tmp.path().join("dst");
    let mut hs = Vec::new();
    for t in &ts {
        hs.push(
            leech
                .add(params(t, &dst, vec![seeder.local_addr()]))
                .await
                .unwrap(),
        );
    }
    // The first added downloads, the others wait.
    wait(&hs[1], "queued", |s| s.state == TorrentState::Queued).await;
    wait(&hs[2], "queued", |s| s.state == TorrentState::Queued).await;
    wait(&hs[0], "downloading", |s| {
        s.state == TorrentState::Downloading
    })
    .await;
    // The last one to the top: it runs, the first waits.
    leech
        .queue_move(hs[2].id(), shoal_engine::QueueMove::Top)
        .await
        .unwrap();
    wait(&hs[2], "moved to the top", |s| {
        s.state == TorrentState::Downloading
    })
    .await;
    wait(&hs[0], "queued again", |s| s.state == TorrentState::Queued).await;
    assert!(hs[2].status().queue_position < hs[0].status().queue_position);
    // Start now bypasses the queue.
    hs[1].start_now().await.unwrap();
    wait(&hs[1], "started by hand", |s| {
        s.state == TorrentState::Downloading
    })
    .await;
    // A bigger queue lets everything run to the end.
    leech.set_rate_limits(None, None);
    leech
        .set_live_settings(shoal_engine::LiveSettings {
            max_active_downloads: Some(3),
            ..leech.live_settings()
        })
        .await;
    for (h, t) in hs.iter().zip(&ts) {
        wait(h, "the download", |s| s.is_complete()).await;
        same_files(t, &src, &dst);
    }
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeding_stops_at_its_goals() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "goal", &[300_000], 16 * 1024, Version::V1);
    // Ratio 1 for the whole session: the seed stops once it sent one copy.
    let seeder = Session::start(SessionConfig {
        seed_ratio: Some(1.0),
        ..loopback()
    })
    .await
    .unwrap();
    let sh = seeder.add(params(&t, &src, vec![])).await.unwrap();
    wait(&sh, "the seed", |s| s.state == TorrentState::Seeding).await;
    let leech = Session::start(loopback()).await.unwrap();
    let lh = leech
        .add(params(
            &t,
            &tmp.path().join("dst"),
            vec![seeder.local_addr()],
        ))
        .await
        .unwrap();
    wait(&lh, "the download", |s| s.is_complete()).await;
    wait(&sh, "the ratio goal", |s| {
        s.finished && s.state == TorrentState::Paused
    })
    .await;
    assert!(sh.status().uploaded >= t.total_length());
    // Resumed by hand it seeds on.
    sh.resume().await.unwrap();
    wait(&sh, "seeding again", |s| {
        s.state == TorrentState::Seeding && !s.finished
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sh.status().state, TorrentState::Seeding);
    // Its own idle goal: one second without uploading stops it.
    let mut limits = sh.meta().limits;
    limits.seed_idle = shoal_engine::SeedGoal::Limit(Duration::from_secs(1));
    limits.seed_ratio = shoal_engine::SeedGoal::Unlimited;
    sh.set_limits(limits).await.unwrap();
    seeder
        .set_live_settings(shoal_engine::LiveSettings {
            seed_ratio: None,
            ..seeder.live_settings()
        })
        .await;
    wait(&sh, "the idle goal", |s| {
        s.finished && s.state == TorrentState::Paused
    })
    .await;
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracker_list_is_replaced_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "trk", &[50_000], 16 * 1024, Version::V1);
    let store = Arc::new(MemPersist::default());
    let s1 = Session::start_with(loopback(), store.clone())
        .await
        .unwrap();
    let mut p = params(&t, &src, vec![]);
    p.extra_trackers = vec!["http://127.0.0.1:1/announce".into()];
    let h = s1.add(p).await.unwrap();
    wait(&h, "seeding", |s| s.state == TorrentState::Seeding).await;
    let old = "http://127.0.0.1:1/announce";
    let new = "http://127.0.0.1:2/announce";
    let urls: Vec<String> = h
        .trackers()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.url)
        .collect();
    assert_eq!(urls, vec![old.to_string()]);
    h.set_trackers(vec![vec![new.into()]]).await.unwrap();
    // The running torrent announces to the new list only.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let t = h.trackers().await.unwrap();
        if t.len() == 1 && t[0].url == new && t[0].announces_failed > 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{t:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.meta().tracker_list, Some(vec![vec![new.to_string()]]));
    s1.shutdown().await;
    let rec = store.torrents.lock().unwrap()[&t.info_hashes()].clone();
    assert_eq!(rec.tracker_list, Some(vec![vec![new.to_string()]]));
    // Restored, it keeps the list.
    let s2 = Session::start_with(loopback(), store.clone())
        .await
        .unwrap();
    let h2 = s2.torrents().remove(0);
    wait(&h2, "seeding again", |s| s.state == TorrentState::Seeding).await;
    assert_eq!(h2.meta().tracker_list, Some(vec![vec![new.to_string()]]));
    s2.shutdown().await;
}

/// UDP trackers hear the session's one UDP port (the port uTP and the DHT
/// use, and the one announced), and their replies reach the torrent
/// through the session's demultiplexer.
#[tokio::test]
async fn udp_trackers_hear_the_sessions_one_port() {
    use shoal_tracker::udp_codec::{Request, Response};
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "udp", &[40_000], 16 * 1024, Version::V1);
    let tracker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let at = tracker.local_addr().unwrap();
    let s = Session::start(loopback()).await.unwrap();
    let ours = s.local_addr().port();
    let mut p = params(&t, &src, vec![]);
    p.extra_trackers = vec![format!("udp://{at}/announce")];
    let h = s.add(p).await.unwrap();
    let mut sources = Vec::new();
    let announced = tokio::time::timeout(LIMIT, async {
        let mut buf = vec![0u8; 2048];
        loop {
            let (n, from) = tracker.recv_from(&mut buf).await.unwrap();
            sources.push(from);
            let reply = match Request::decode(&buf[..n]) {
                Ok(Request::Connect { transaction_id }) => Response::Connect {
                    transaction_id,
                    connection_id: 0x5eed,
                },
                Ok(Request::Announce {
                    transaction_id,
                    request,
                    ..
                }) => {
                    let r = Response::Announce {
                        transaction_id,
                        interval: 1800,
                        leechers: 0,
                        seeders: 7,
                        peers: Vec::new(),
                    };
                    tracker.send_to(&r.encode(), from).await.unwrap();
                    return request;
                }
                other => panic!("unexpected request {other:?}"),
            };
            tracker.send_to(&reply.encode(), from).await.unwrap();
        }
    })
    .await
    .expect("an announce within the limit");
    assert_eq!(announced.port, ours);
    assert!(sources.iter().all(|a| a.port() == ours), "{sources:?}");
    // The reply came back through the shared socket.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let t = h.trackers().await.unwrap();
        if t.first().is_some_and(|t| t.announces_ok > 0) {
            assert_eq!(t[0].seeders, Some(7), "{t:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{t:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    s.shutdown().await;
}
