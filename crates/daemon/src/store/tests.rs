//! The state database: records round-trip, resume data is batched and
//! survives reopening, removal forgets everything, and a foreign, damaged,
//! newer or busy file is refused with its own error.
use super::*;
use shoal_engine::persist::SeedGoal;
use shoal_engine::TorrentLimits;
use shoal_metainfo::{InfoHashV1, InfoHashV2};
use shoal_storage::FileStamp;
use shoal_storage::ResumeData;

fn record(n: u8) -> TorrentRecord {
    TorrentRecord {
        info_hashes: InfoHashes {
            v1: Some(InfoHashV1([n; 20])),
            v2: n.is_multiple_of(2).then_some(InfoHashV2([n; 32])),
        },
        metainfo: Some(vec![b'd', n, b'e']),
        magnet: None,
        name: Some(format!("t{n}")),
        save_path: PathBuf::from(format!("/data/{n}")),
        file_priorities: vec![1, 0, 3],
        extra_trackers: vec!["http://127.0.0.1:1/announce".into()],
        tracker_list: Some(vec![vec!["udp://127.0.0.1:2".into()], vec![]]),
        paused: n.is_multiple_of(3),
        labels: vec!["tv".into(), "hd".into()],
        limits: TorrentLimits {
            max_upload_rate: Some(1000),
            max_download_rate: None,
            max_peers: Some(7),
            seed_ratio: SeedGoal::Limit(1.5),
            seed_idle: SeedGoal::Unlimited,
            bypass_session_limits: n.is_multiple_of(2),
        },
        group: n.is_multiple_of(2).then(|| format!("g{n}")),
        added_at: 1_700_000_000 + u64::from(n),
        queue_position: -i64::from(n),
    }
}

fn resume(pieces: usize) -> ResumeRecord {
    ResumeRecord {
        data: ResumeData {
            piece_length: 16384,
            total_length: 16384 * pieces as u64,
            verified: (0..pieces).map(|i| i % 2 == 0).collect(),
            files: vec![FileStamp {
                length: Some(16384 * pieces as u64),
                mtime_ns: 42,
            }],
            parts: FileStamp {
                length: None,
                mtime_ns: 0,
            },
        },
        uploaded: 5,
        downloaded: 6,
    }
}

#[test]
fn records_resume_and_activity_survive_reopening() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    for n in 1..=4 {
        s.save_torrent(&record(n)).unwrap();
    }
    let h2 = record(2).info_hashes;
    s.put_metainfo(&h2, b"the whole torrent").unwrap();
    s.save_torrent(&record(2)).unwrap();
    s.save_resume(&h2, &resume(10)).unwrap();
    // Queued data reads back before it is committed.
    assert_eq!(s.load_resume(&h2).unwrap(), Some(resume(10)));
    s.save_activity(
        &h2,
        Activity {
            seconds_seeding: 9,
            ..Activity::default()
        },
    );
    s.save_totals(Totals {
        uploaded: 1,
        session_count: 3,
        ..Totals::default()
    });
    s.save_settings(&[("speed_limit_down", serde_json::json!(100))])
        .unwrap();
    s.close().unwrap();
    drop(s);

    let s = Store::open(d.path()).unwrap();
    let mut all = s.load_torrents().unwrap();
    all.sort_by_key(|r| r.added_at);
    assert_eq!(all.len(), 4);
    for (r, n) in all.iter().zip(1..) {
        let mut want = record(n);
        if n == 2 {
            want.metainfo = Some(b"the whole torrent".to_vec());
        }
        assert_eq!(*r, want);
    }
    // The walk a session restores from hands over the same records, and
    // stops when told.
    let mut walked = Vec::new();
    s.visit_torrents(&mut |r| {
        walked.push(r);
        true
    })
    .unwrap();
    walked.sort_by_key(|r| r.added_at);
    assert_eq!(walked, all);
    let mut seen = 0;
    s.visit_torrents(&mut |_| {
        seen += 1;
        seen < 2
    })
    .unwrap();
    assert_eq!(seen, 2);
    assert_eq!(s.load_resume(&h2).unwrap(), Some(resume(10)));
    assert_eq!(s.load_resume(&record(1).info_hashes).unwrap(), None);
    assert_eq!(s.activities().unwrap()[&h2].seconds_seeding, 9);
    assert_eq!(s.totals().unwrap().session_count, 3);
    assert_eq!(s.settings().unwrap()["speed_limit_down"], 100);

    s.remove_torrent(&h2).unwrap();
    assert_eq!(s.load_resume(&h2).unwrap(), None);
    assert_eq!(s.metainfo(&h2).unwrap(), None);
    assert_eq!(s.torrent_count().unwrap(), 3);
    // Resume data of a torrent removed before its batch is dropped.
    s.save_resume(&h2, &resume(3)).unwrap();
    s.flush().unwrap();
    assert_eq!(s.torrent_count().unwrap(), 3);
    s.close().unwrap();
}

#[test]
fn batches_are_committed_within_the_flush_interval() {
    let d = tempfile::tempdir().unwrap();
    let s = Store::open(d.path()).unwrap();
    let h = record(1).info_hashes;
    s.save_torrent(&record(1)).unwrap();
    s.save_resume(&h, &resume(4)).unwrap();
    std::thread::sleep(FLUSH_EVERY * 4);
    // Read straight from the database, not the queue.
    assert!(s.lock_pending().resume.is_empty());
    let tx = s.inner.db.begin_read().unwrap();
    let t = tx.open_table(RESUME).unwrap();
    assert!(t.get(key_of(&h).as_slice()).unwrap().is_some());
    drop(t);
    drop(tx);
    s.close().unwrap();
}

#[test]
fn foreign_damaged_newer_and_busy_files_are_refused() {
    let d = tempfile::tempdir().unwrap();
    // Not a database at all.
    let p = d.path().join("text.redb");
    std::fs::write(&p, vec![b'x'; 8192]).unwrap();
    let e = Store::open_file(&p).unwrap_err();
    assert!(matches!(e, StoreError::Foreign { .. }), "{e}");
    assert!(e.to_string().contains("not a shoal state database"), "{e}");
    assert_eq!(
        std::fs::read(&p).unwrap(),
        vec![b'x'; 8192],
        "left unchanged"
    );

    // Another program's redb database.
    let p = d.path().join("other.redb");
    {
        let db = Database::create(&p).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx
                .open_table(TableDefinition::<&str, u64>::new("theirs"))
                .unwrap();
            t.insert("x", 1).unwrap();
        }
        tx.commit().unwrap();
    }
    let e = Store::open_file(&p).unwrap_err();
    assert!(matches!(e, StoreError::Foreign { .. }), "{e}");

    // A newer schema.
    let p = d.path().join("newer.redb");
    Store::open_file(&p).unwrap().close().unwrap();
    {
        let db = Database::open(&p).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(META).unwrap();
            t.insert("version", (VERSION + 1).to_le_bytes().as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let e = Store::open_file(&p).unwrap_err();
    assert!(
        matches!(e, StoreError::Version { found, .. } if found == VERSION + 1),
        "{e}"
    );

    // Damaged: a shoal database with its pages overwritten.
    let p = d.path().join("damaged.redb");
    let s = Store::open_file(&p).unwrap();
    for n in 1..=50 {
        s.save_torrent(&record(n)).unwrap();
    }
    s.close().unwrap();
    drop(s);
    let mut bytes = std::fs::read(&p).unwrap();
    let len = bytes.len();
    for b in &mut bytes[4096.min(len)..] {
        *b = 0xa5;
    }
    std::fs::write(&p, &bytes).unwrap();
    match Store::open_file(&p) {
        Err(e) => assert!(
            matches!(e, StoreError::Corrupt { .. } | StoreError::Db { .. }),
            "{e}"
        ),
        // redb may open it and fail on reading: never an empty success.
        Ok(s) => assert!(s.load_torrents().is_err()),
    }

    // Busy: one process (here: one handle) at a time.
    let p = d.path().join("busy.redb");
    let s = Store::open_file(&p).unwrap();
    let e = Store::open_file(&p).unwrap_err();
    assert!(matches!(e, StoreError::InUse { .. }), "{e}");
    s.close().unwrap();
}
