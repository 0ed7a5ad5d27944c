//! Bandwidth groups over Transmission RPC as a 4.x client sends them:
//! `group-set` and `group-get` in both formats, a torrent put in a group
//! and taken out with `torrent-set`, `honorsSessionLimits`, bad names
//! refused, and everything back after a restart.
use crate::common::*;
use serde_json::{json, Value};
use shoal_daemon::Daemon;

/// The torrent's `group` and `honorsSessionLimits`.
async fn torrent_group(rpc: &mut Rpc, hash: &str) -> (Value, Value) {
    let a = rpc
        .ok(
            "torrent-get",
            json!({"ids": [hash], "fields": ["group", "honorsSessionLimits"]}),
        )
        .await;
    let t = &a["torrents"][0];
    (t["group"].clone(), t["honorsSessionLimits"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_are_set_listed_assigned_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (bytes, t, src) = make_torrent(root, "grouped.bin", 100_000, 3);
    let hash = t.info_hashes().v1.unwrap().to_hex();
    let d = Daemon::start(config(root)).await.unwrap();
    let mut rpc = Rpc::new(&d);
    assert_eq!(rpc.ok("group-get", json!({})).await, json!({"group": []}));
    rpc.ok(
        "group-set",
        json!({"name": "slow", "speed-limit-up-enabled": true, "speed-limit-up": 50,
               "speed-limit-down": 200, "honorsSessionLimits": false}),
    )
    .await;
    let slow = json!({"name": "slow", "honorsSessionLimits": false,
        "speed-limit-down": 200, "speed-limit-down-enabled": false,
        "speed-limit-up": 50, "speed-limit-up-enabled": true});
    assert_eq!(
        rpc.ok("group-get", json!({"group": "slow"})).await,
        json!({"group": [slow]})
    );
    // Arguments left out keep their value.
    rpc.ok(
        "group-set",
        json!({"name": "slow", "speed-limit-down-enabled": true}),
    )
    .await;
    let mut slow_now = slow.clone();
    slow_now["speed-limit-down-enabled"] = json!(true);
    // JSON-RPC 2.0 spells it in snake_case and names groups by `name`.
    let r = rpc.jsonrpc("group_get", json!({"name": ["slow"]})).await;
    assert_eq!(
        r["group"][0],
        json!({"name": "slow", "honors_session_limits": false,
            "speed_limit_down": 200, "speed_limit_down_enabled": true,
            "speed_limit_up": 50, "speed_limit_up_enabled": true}),
        "{r}"
    );
    // Bad names are refused.
    for bad in [json!({"name": ""}), json!({}), json!({"name": "a\u{1}b"})] {
        let v = rpc.call("group-set", bad.clone()).await;
        assert_ne!(v["result"], "success", "{bad}: {v}");
    }

    rpc.ok(
        "torrent-add",
        json!({"metainfo": b64(&bytes), "download-dir": src.to_str().unwrap()}),
    )
    .await;
    assert_eq!(
        torrent_group(&mut rpc, &hash).await,
        (json!(""), json!(true))
    );
    rpc.ok(
        "torrent-set",
        json!({"ids": [hash], "group": "slow", "honorsSessionLimits": false}),
    )
    .await;
    assert_eq!(
        torrent_group(&mut rpc, &hash).await,
        (json!("slow"), json!(false))
    );
    // Naming a group that does not exist creates it without limits.
    rpc.ok("torrent-set", json!({"ids": [hash], "group": "tv"}))
        .await;
    let all = rpc.ok("group-get", json!({})).await;
    let names: Vec<&str> = all["group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["slow", "tv"], "{all}");
    assert_eq!(all["group"][1]["speed-limit-up-enabled"], false, "{all}");
    // An empty name takes it out; then into "slow" for the restart.
    rpc.ok("torrent-set", json!({"ids": [hash], "group": ""}))
        .await;
    assert_eq!(torrent_group(&mut rpc, &hash).await.0, json!(""));
    let v = rpc
        .call(
            "torrent-set",
            json!({"ids": [hash], "group": "x".repeat(200)}),
        )
        .await;
    assert_ne!(v["result"], "success", "{v}");
    rpc.ok("torrent-set", json!({"ids": [hash], "group": "slow"}))
        .await;
    d.shutdown().await;

    // A restart keeps the groups and the torrent's place in one.
    let d = Daemon::start(config(root)).await.unwrap();
    let mut rpc = Rpc::new(&d);
    assert_eq!(
        rpc.ok("group-get", json!({"group": ["slow"]})).await,
        json!({"group": [slow_now]})
    );
    assert_eq!(
        torrent_group(&mut rpc, &hash).await,
        (json!("slow"), json!(false))
    );
    d.shutdown().await;
}
