//! The tokio driver on loopback: ping, BEP 44 put/get, BEP 51 sampling, read-only
//! mode, routing-table persistence and hostile datagrams.
mod common;

use ed25519_dalek::SigningKey;
use shoal_dht::{Config, Dht, DhtConfig, Id20};
use std::time::Duration;

async fn with_timeout<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test took too long")
}

#[tokio::test]
async fn ping_and_garbage() {
    with_timeout(async {
        let a = Dht::bind(common::config(1)).await.unwrap();
        let b = Dht::bind(common::config(2)).await.unwrap();
        let (id, _rtt) = a.ping(b.local_addr()).await.unwrap();
        assert_eq!(id, b.id());
        // Garbage is counted and dropped; the node keeps working.
        let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        for junk in [
            &b"garbage"[..],
            b"d1:t2:aa1:y1:qe",
            b"d1:ad2:id3:xyze1:q4:ping1:t2:aa1:y1:qe",
            &[0xff; 3000],
        ] {
            s.send_to(junk, b.local_addr()).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(a.ping(b.local_addr()).await.unwrap().0, b.id());
        let c = b.counters().await.unwrap();
        assert_eq!(c.decode_errors, 4, "{c:?}");
        // A closed port: no answer.
        let dead = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = dead.local_addr().unwrap();
        drop(dead);
        assert!(a.ping(addr).await.is_err());
        a.shutdown().await.unwrap();
        b.shutdown().await.unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_samples_and_read_only() {
    with_timeout(async {
        let nodes = common::cluster(24, 7).await;
        // Immutable put/get.
        let (target, stored) = nodes[3]
            .put_immutable(b"12:Hello World!".to_vec())
            .await
            .unwrap();
        assert_eq!(target.to_hex(), "e5f96f6f38320f0f33959cb4d3d656452117aadb");
        assert!(stored > 0);
        let got = nodes[17].get_immutable(target).await.unwrap();
        assert_eq!(got.as_deref(), Some(&b"12:Hello World!"[..]));
        // Mutable put/get with salt, seq and CAS.
        let key = SigningKey::from_bytes(&[5u8; 32]);
        let pk = key.verifying_key().to_bytes();
        let (_, r) = nodes[5]
            .put_mutable(&key, b"salt".to_vec(), 1, b"i1e".to_vec(), None)
            .await
            .unwrap();
        assert!(r.stored > 0);
        let (_, r) = nodes[6]
            .put_mutable(&key, b"salt".to_vec(), 2, b"i2e".to_vec(), Some(1))
            .await
            .unwrap();
        assert!(r.stored > 0, "{r:?}");
        let item = nodes[20]
            .get_mutable(pk, b"salt".to_vec())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(item.v, b"i2e");
        assert_eq!(item.seq(), 2);
        // A stale CAS is refused with 301 by the storers that hold seq 2 (a node
        // near the target that holds nothing yet may accept it).
        let (_, r) = nodes[7]
            .put_mutable(&key, b"salt".to_vec(), 3, b"i3e".to_vec(), Some(1))
            .await
            .unwrap();
        assert!(r.store_errors.len() > r.stored, "{r:?}");
        assert!(r.store_errors.iter().all(|(_, c)| *c == 301), "{r:?}");
        // Nothing under another salt.
        assert!(nodes[20]
            .get_mutable(pk, b"other".to_vec())
            .await
            .unwrap()
            .is_none());
        // BEP 51: announced info-hashes show up in samples.
        let ih = Id20([0x42; 20]);
        nodes[2]
            .announce(shoal_base::InfoHash(ih.0), Some(4000))
            .await
            .unwrap();
        let s = nodes[9].sample_infohashes(ih).await.unwrap();
        assert!(s.samples.contains(&ih), "{s:?}");
        // BEP 43: a read-only node can search but is not added by others.
        let ro = Dht::bind(DhtConfig {
            node: Config {
                read_only: true,
                seed: 999,
                ..Config::default()
            },
            ..common::config(999)
        })
        .await
        .unwrap();
        ro.bootstrap(&[nodes[0].local_addr()]).await.unwrap();
        let r = ro.get_peers(shoal_base::InfoHash(ih.0)).await.unwrap();
        assert!(r.peers.contains(&"127.0.0.1:4000".parse().unwrap()));
        for d in &nodes {
            assert!(!d.nodes().await.unwrap().iter().any(|n| n.id == ro.id()));
        }
        // A read-only node answers no queries.
        assert!(nodes[0].ping(ro.local_addr()).await.is_err());
        ro.shutdown().await.unwrap();
        common::shutdown(&nodes).await;
    })
    .await
}

#[tokio::test]
async fn table_survives_restart() {
    with_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dht.json");
        let others: Vec<Dht> = {
            let mut v = Vec::new();
            for i in 0..5 {
                v.push(Dht::bind(common::config(50 + i)).await.unwrap());
            }
            v
        };
        let cfg = DhtConfig {
            state_file: Some(path.clone()),
            ..common::config(60)
        };
        let a = Dht::bind(cfg.clone()).await.unwrap();
        let seeds: Vec<_> = others.iter().map(|d| d.local_addr()).collect();
        assert_eq!(a.bootstrap(&seeds).await.unwrap(), 5);
        let id = a.id();
        a.shutdown().await.unwrap();
        // Restart from the file: same ID, same nodes, no bootstrap needed.
        let b = Dht::bind(DhtConfig {
            node: Config {
                seed: 61,
                ..Config::default()
            },
            ..cfg
        })
        .await
        .unwrap();
        assert_eq!(b.id(), id);
        assert_eq!(b.nodes().await.unwrap().len(), 5);
        assert_eq!(
            b.find_node(others[0].id()).await.unwrap()[0].id,
            others[0].id()
        );
        b.shutdown().await.unwrap();
        common::shutdown(&others).await;
    })
    .await
}

#[tokio::test]
async fn bad_state_file_is_ignored_and_empty_table_not_saved() {
    with_timeout(async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("dht.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"{not json").unwrap();
        let cfg = DhtConfig {
            state_file: Some(path.clone()),
            ..common::config(70)
        };
        // A corrupt file does not stop the node; an empty table is not written.
        let a = Dht::bind(cfg.clone()).await.unwrap();
        a.shutdown().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{not json");
        // With nodes the file is replaced, its directory created when missing.
        let other = Dht::bind(common::config(71)).await.unwrap();
        let fresh = dir.path().join("new").join("dht.json");
        let b = Dht::bind(DhtConfig {
            state_file: Some(fresh.clone()),
            ..cfg
        })
        .await
        .unwrap();
        assert_eq!(b.bootstrap(&[other.local_addr()]).await.unwrap(), 1);
        b.shutdown().await.unwrap();
        let t = shoal_dht::persist::load(&fresh).unwrap();
        assert_eq!(t.nodes.len(), 1);
        assert_eq!(t.id, b.id().to_hex());
        common::shutdown(&[other]).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_loopback_announce_and_get_peers() {
    with_timeout(async {
        // BEP 32: nodes bound on [::1] keep an IPv6 table, exchange `nodes6`
        // and store 18-byte compact peers.
        if std::net::UdpSocket::bind("[::1]:0").is_err() {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        }
        let mut nodes = Vec::new();
        for i in 0..16u64 {
            let mut c = common::config(9_000 + i);
            c.bind = "[::1]:0".parse().unwrap();
            nodes.push(Dht::bind(c).await.unwrap());
        }
        assert!(nodes[0].local_addr().is_ipv6());
        let first = nodes[0].local_addr();
        for d in &nodes[1..] {
            d.bootstrap(&[first]).await.unwrap();
        }
        for d in &nodes {
            assert!(d.bootstrap(&[first]).await.unwrap() > 0);
        }
        let ih = Id20([0x5a; 20]);
        let r = nodes[3]
            .announce(shoal_base::InfoHash(ih.0), Some(6881))
            .await
            .unwrap();
        assert!(r.stored > 0, "{r:?}");
        let got = nodes[12]
            .get_peers(shoal_base::InfoHash(ih.0))
            .await
            .unwrap();
        let want = std::net::SocketAddr::new(nodes[3].local_addr().ip(), 6881);
        assert!(got.peers.contains(&want), "{:?}", got.peers);
        common::shutdown(&nodes).await;
    })
    .await
}
