//! Bandwidth groups as a daemon drives them: two seeding torrents put in
//! one group share its upload limit (together, not each), and lifting the
//! group's limit frees them at once.
use rand::{RngCore, SeedableRng};
use shoal_engine::{AddTorrentParams, BandwidthGroup, Session, TorrentHandle, TorrentState};
use shoal_metainfo::create::CreateOptions;
use shoal_metainfo::Torrent;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::util::{loopback, wait};
/// The group's upload limit, bytes/s.
const RATE: u64 = 100_000;

fn make_torrent(root: &Path, name: &str, len: usize) -> Arc<Torrent> {
    let mut data = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(len as u64).fill_bytes(&mut data);
    std::fs::create_dir_all(root).unwrap();
    let file = root.join(name);
    std::fs::write(&file, data).unwrap();
    let opts = CreateOptions {
        piece_length: Some(16 * 1024),
        ..CreateOptions::default()
    };
    let bytes = shoal_metainfo::create(&file, &opts, &|_| {}).unwrap();
    Arc::new(Torrent::from_bytes(&bytes).unwrap())
}

fn uploaded(hs: &[TorrentHandle]) -> u64 {
    hs.iter().map(|h| h.status().uploaded).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torrents_in_a_group_share_its_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let ts = [
        make_torrent(&src, "a.bin", 3 << 20),
        make_torrent(&src, "b.bin", (3 << 20) + 1),
    ];
    let seeder = Session::start(loopback()).await.unwrap();
    seeder
        .set_bandwidth_group(
            "slow",
            BandwidthGroup {
                max_upload_rate: Some(RATE),
                ..BandwidthGroup::default()
            },
        )
        .unwrap();
    let mut seeds = Vec::new();
    for t in &ts {
        let h = seeder
            .add(AddTorrentParams::torrent(t.clone(), &src))
            .await
            .unwrap();
        wait(&h, "the seed", |s| s.state == TorrentState::Seeding).await;
        h.set_group(Some("slow".into())).await.unwrap();
        assert_eq!(h.meta().group.as_deref(), Some("slow"));
        seeds.push(h);
    }
    // A bad name is refused before anything changes.
    assert!(seeds[0].set_group(Some(String::new())).await.is_err());
    assert_eq!(seeds[0].meta().group.as_deref(), Some("slow"));

    let leech = Session::start(loopback()).await.unwrap();
    let dst = tmp.path().join("dst");
    let mut leeches = Vec::new();
    for t in &ts {
        let mut p = AddTorrentParams::torrent(t.clone(), &dst);
        p.peers = vec![seeder.local_addr()];
        leeches.push(leech.add(p).await.unwrap());
    }
    for h in &leeches {
        wait(h, "the download to start", |s| s.downloaded > 0).await;
    }
    // Over a few seconds both torrents together send about RATE per second
    // (each alone at RATE would send twice that). Status figures lag by
    // well under a second; the bound leaves one second's worth for it.
    let (t0, u0) = (Instant::now(), uploaded(&seeds));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (secs, sent) = (t0.elapsed().as_secs_f64(), uploaded(&seeds) - u0);
    let bound = RATE as f64 * (secs + 1.0);
    assert!(
        (sent as f64) < bound,
        "{sent} bytes in {secs:.1} s through a group limited to {RATE} B/s"
    );
    assert!(sent > 0, "nothing moved in {secs:.1} s");
    assert_eq!(
        seeder.bandwidth_groups(),
        vec![(
            "slow".to_owned(),
            BandwidthGroup {
                max_upload_rate: Some(RATE),
                ..BandwidthGroup::default()
            }
        )]
    );
    // Lifting the group's limit lets both finish.
    seeder
        .set_bandwidth_group("slow", BandwidthGroup::default())
        .unwrap();
    for h in &leeches {
        wait(h, "the download", |s| s.is_complete()).await;
    }
    leech.shutdown().await;
    seeder.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_beyond_the_sessions_bound_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let t = make_torrent(&src, "c.bin", 50_000);
    let s = Session::start(loopback()).await.unwrap();
    let h = s
        .add(AddTorrentParams::torrent(t.clone(), &src))
        .await
        .unwrap();
    wait(&h, "the seed", |st| st.state == TorrentState::Seeding).await;
    for i in 0..shoal_engine::bandwidth::MAX_GROUPS {
        s.set_bandwidth_group(&format!("g{i}"), BandwidthGroup::default())
            .unwrap();
    }
    h.set_group(Some("g1".into())).await.unwrap();
    // The answer says so at once (it used to look accepted), and the
    // torrent stays where it was.
    let r = tokio::time::timeout(Duration::from_secs(2), h.set_group(Some("one more".into())))
        .await
        .expect("an answer");
    assert!(
        matches!(
            r,
            Err(shoal_engine::TorrentOpError::Group(
                shoal_engine::GroupError::TooMany
            ))
        ),
        "{r:?}"
    );
    assert_eq!(h.meta().group.as_deref(), Some("g1"));
    s.shutdown().await;
}
