//! `/api/v1/search` names each source that could not answer, with why,
//! and still answers from the others.

use crate::common::*;
use serde_json::Value;
use shoal_daemon::client::request;
use shoal_daemon::Daemon;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sources_that_cannot_answer_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.flood = false;
    let d = Daemon::start(cfg).await.unwrap();
    let url = format!(
        "http://{}/api/v1/search?q=payload&sources=dht,flood,tracker,local&timeout_ms=1000",
        d.http_addr()
    );
    let r = request("GET", &url, &[], Vec::new(), 1 << 20, LIMIT)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    let errors: Vec<(String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["source"].as_str().unwrap().to_owned(),
                e["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let has = |src: &str, why: &str| errors.iter().any(|(s, e)| s == src && e.contains(why));
    // No DHT node, the flood service off, no tracker known: each is said.
    assert!(has("dht", "runs no DHT"), "{errors:?}");
    assert!(has("flood", "flood service is off"), "{errors:?}");
    assert!(has("tracker", "no tracker"), "{errors:?}");
    // The local library answered (nothing), without an error.
    assert!(!errors.iter().any(|(s, _)| s == "local"), "{errors:?}");
    assert_eq!(v["results"], serde_json::json!([]), "{v}");
    d.shutdown().await;
}
