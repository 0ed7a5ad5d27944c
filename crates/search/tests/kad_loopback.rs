//! The DHT keyword index on a loopback DHT of shoal nodes: one node
//! publishes torrents, others find them by keywords; slots shared by many
//! torrents stay within BEP 44's limits; junk written to a slot is ignored.
#[path = "../../dht/tests/common/mod.rs"]
mod common;

use shoal_search::kad::{self, KadConfig};
use shoal_search::TorrentDoc;

fn doc(n: u8, name: &str) -> TorrentDoc {
    TorrentDoc {
        info_hash: [n; 20],
        name: name.to_string(),
        size: 1000 + u64::from(n),
        file_count: 1,
        files: Vec::new(),
    }
}

fn names(h: &[shoal_search::SearchHit]) -> Vec<&str> {
    h.iter().map(|h| h.name.as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_torrents_are_found_by_keywords() {
    let nodes = common::cluster(10, 77).await;
    let cfg = KadConfig::default();
    let docs = [
        doc(1, "Debian 12.5 netinst amd64"),
        doc(2, "Debian 12.5 live GNOME amd64"),
        doc(3, "Ubuntu 24.04 desktop amd64"),
        doc(4, "Big Buck Bunny 1080p"),
    ];
    for d in &docs {
        let r = kad::publish(&nodes[1], d, &cfg).await.unwrap();
        assert!(
            r.record_stored && r.slots_stored == r.keywords.len(),
            "{r:?}"
        );
    }
    let s = |i: usize, q: &'static str| {
        let n = nodes[i].clone();
        async move { kad::search(&n, q, &cfg).await.unwrap() }
    };
    assert_eq!(
        names(&s(5, "debian amd64").await),
        ["Debian 12.5 netinst amd64", "Debian 12.5 live GNOME amd64"]
    );
    assert_eq!(
        names(&s(7, "netinst debian").await),
        ["Debian 12.5 netinst amd64"]
    );
    let h = s(8, "bunny").await;
    assert_eq!(names(&h), ["Big Buck Bunny 1080p"]);
    assert_eq!(
        (h[0].size, h[0].found.clone()),
        (Some(1004), vec!["dht".to_string()])
    );
    assert!(s(9, "ubuntu debian").await.is_empty());
    assert!(s(9, "nothing here").await.is_empty());

    // Many torrents under one keyword: the slots stay bounded, the newest stay.
    for n in 10..70u8 {
        kad::publish(&nodes[2], &doc(n, &format!("common word {n}")), &cfg)
            .await
            .unwrap();
    }
    // A lookup on a loaded machine can reach only nodes that missed the
    // last write of a slot (the DHT is eventually consistent): a reader
    // asks again, as a user would, a bounded number of times.
    let mut all = Vec::new();
    for _ in 0..3 {
        all = s(6, "common word").await;
        if names(&all).contains(&"common word 69") {
            break;
        }
    }
    assert!(all.len() >= 40 && all.len() <= 60, "{}", all.len());
    assert!(names(&all).contains(&"common word 69"));

    // A slot overwritten with junk (any node can write it: the key is public)
    // loses its entries until republished but does not break the search; a
    // spam hash without a record is not shown.
    let key = kad::index_key();
    let salt = kad::slot_salt("bunny", kad::slot_of(&[4; 20], cfg.slots));
    let cur = nodes[3]
        .get_mutable(key.verifying_key().to_bytes(), salt.clone())
        .await
        .unwrap()
        .unwrap();
    let seq = cur.mutable.unwrap().seq;
    nodes[3]
        .put_mutable(&key, salt.clone(), seq + 1, b"i666e".to_vec(), None)
        .await
        .unwrap();
    assert!(s(4, "bunny").await.is_empty());
    let mut spam = kad::decode_slot(&cur.v).unwrap();
    spam.push([0xEE; 20]);
    nodes[3]
        .put_mutable(&key, salt, seq + 2, kad::encode_slot(&spam), None)
        .await
        .unwrap();
    assert_eq!(names(&s(4, "bunny").await), ["Big Buck Bunny 1080p"]);

    common::shutdown(&nodes).await;
}
