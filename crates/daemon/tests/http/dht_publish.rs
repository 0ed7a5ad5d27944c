//! The daemon publishes its public torrents in the DHT keyword index and
//! republishes them: on a loopback DHT of shoal nodes, a separate DHT
//! client finds a torrent by the words of its name that only the daemon
//! published, and the daemon's counters show the next publication after
//! the (shortened) interval. Off by default.
use crate::common::*;
use serde_json::Value;
use shoal_dht::{Config, Dht, DhtConfig};
use std::time::Duration;

#[path = "../../../dht/tests/common/mod.rs"]
mod dht_common;

async fn session_json(d: &shoal_daemon::Daemon) -> Value {
    let url = format!("http://{}/api/v1/session", d.http_addr());
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_torrents_are_published_and_republished_in_the_dht_index() {
    let nodes = dht_common::cluster(8, 44).await;
    let boot = nodes[0].local_addr();
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.dht = true;
    cfg.dht_bootstrap = vec![boot];
    cfg.dht_publish = true;
    cfg.dht_publish_interval = Duration::from_secs(2);
    let d = shoal_daemon::Daemon::start(cfg).await.unwrap();
    let (bytes, t, parent) = make_torrent(tmp.path(), "Aurora Borealis Timelapse", 100_000, 9);
    let mut rpc = Rpc::new(&d);
    rpc.ok(
        "torrent-add",
        serde_json::json!({"metainfo": b64(&bytes), "download-dir": parent.to_str().unwrap()}),
    )
    .await;

    // Another node of the DHT, which stores nothing itself, finds it.
    let client = Dht::bind(DhtConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        node: Config {
            seed: 4_400_999,
            ..Config::default()
        },
        ..DhtConfig::default()
    })
    .await
    .unwrap();
    client.bootstrap(&[boot]).await.unwrap();
    let want = t.info_hashes().v1.unwrap().to_hex();
    let kad = shoal_search::kad::KadConfig::default();
    // First published (the daemon's counter), then found by the client:
    // searching meanwhile would only load the nodes, which rate-limit per
    // address and all of us are 127.0.0.1.
    wait_for("a first publication", || async {
        let v = session_json(&d).await;
        (v["dht_publish"]["published"].as_u64() >= Some(1)).then_some(())
    })
    .await;
    let mut found = false;
    for _ in 0..10 {
        let hits = shoal_search::kad::search(&client, "aurora timelapse", &kad).await;
        if hits
            .as_ref()
            .is_ok_and(|h| h.iter().any(|h| h.info_hash == want))
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(found, "the DHT index does not find the torrent");

    // Published again after the interval: the counter goes past one.
    let v = wait_for("a republication", || async {
        let v = session_json(&d).await;
        (v["dht_publish"]["published"].as_u64() >= Some(2)).then_some(v)
    })
    .await;
    assert_eq!(v["dht_publish"]["enabled"], true, "{v}");
    let metrics = reqwest::get(format!("http://{}/metrics", d.http_addr()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("shoal_dht_index_published_total"),
        "{metrics}"
    );

    d.shutdown().await;
    let _ = client.shutdown().await;
    dht_common::shutdown(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_is_off_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let d = shoal_daemon::Daemon::start(config(tmp.path()))
        .await
        .unwrap();
    let v = session_json(&d).await;
    assert_eq!(v["dht_publish"]["enabled"], false, "{v}");
    d.shutdown().await;
}
