//! 256 real DHT nodes on 127.0.0.1 in one process: 1,000 announce-then-get_peers
//! operations; 30% of the nodes are killed half-way and success must stay >= 99.5%.
mod common;

use rand::{rngs::SmallRng, Rng, SeedableRng};
use shoal_dht::Id20;
use std::net::SocketAddr;
use std::time::Duration;

const NODES: usize = 256;
const OPS: usize = 1000;
const BATCH: usize = 50;

/// Runs `count` announce-then-get_peers pairs among the `live` nodes; returns the
/// number that found the announced peer.
async fn run_ops(
    nodes: &[shoal_dht::Dht],
    live: &[usize],
    count: usize,
    rng: &mut SmallRng,
) -> usize {
    let mut ok = 0;
    let mut done = 0;
    while done < count {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..BATCH.min(count - done) {
            let a = nodes[live[rng.gen_range(0..live.len())]].clone();
            let g = nodes[live[rng.gen_range(0..live.len())]].clone();
            let ih = Id20::random(rng);
            let port: u16 = rng.gen_range(1024..65000);
            set.spawn(async move {
                let ann = a
                    .announce(shoal_base::InfoHash(ih.0), Some(port))
                    .await
                    .unwrap();
                assert!(ann.stored > 0, "announce stored nowhere");
                let r = g.get_peers(shoal_base::InfoHash(ih.0)).await.unwrap();
                r.peers.contains(&SocketAddr::from(([127, 0, 0, 1], port)))
            });
        }
        while let Some(r) = set.join_next().await {
            done += 1;
            if r.unwrap() {
                ok += 1;
            }
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_of_256_with_30_percent_killed() {
    let run = async {
        let nodes = common::cluster(NODES, 1).await;
        let mut rng = SmallRng::seed_from_u64(42);
        let all: Vec<usize> = (0..NODES).collect();
        let ok1 = run_ops(&nodes, &all, OPS / 2, &mut rng).await;
        assert_eq!(ok1, OPS / 2, "before churn: {ok1}/{} succeeded", OPS / 2);
        // Kill 30% of the nodes (their sockets close; others see timeouts).
        let killed: Vec<usize> =
            rand::seq::index::sample(&mut rng, NODES, NODES * 3 / 10).into_vec();
        for &i in &killed {
            nodes[i].shutdown().await.unwrap();
        }
        let live: Vec<usize> = all
            .iter()
            .copied()
            .filter(|i| !killed.contains(i))
            .collect();
        let ok2 = run_ops(&nodes, &live, OPS / 2, &mut rng).await;
        let rate = ok2 as f64 / (OPS / 2) as f64;
        assert!(
            rate >= 0.995,
            "after killing 30%: {ok2}/{} succeeded",
            OPS / 2
        );
        let c = nodes[live[0]].counters().await.unwrap();
        assert!(c.queries_answered > 0);
        common::shutdown(&nodes).await;
    };
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("loopback swarm test took too long");
}
