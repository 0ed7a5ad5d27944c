//! Helpers shared by the loopback tests: a cluster of DHT nodes on 127.0.0.1.
#![allow(dead_code)]
use shoal_dht::{Config, Dht, DhtConfig};
use std::net::SocketAddr;

/// Node settings for loopback tests: loopback is BEP 42-exempt; rate limits stay on.
pub fn config(seed: u64) -> DhtConfig {
    DhtConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        node: Config {
            seed,
            ..Config::default()
        },
        ..DhtConfig::default()
    }
}

/// Starts `n` nodes and bootstraps them: each joins through node 0 and a few earlier
/// nodes, then every node looks itself up once more so early nodes learn late ones.
pub async fn cluster(n: usize, seed: u64) -> Vec<Dht> {
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        nodes.push(Dht::bind(config(seed * 100_000 + i as u64)).await.unwrap());
    }
    let addrs: Vec<SocketAddr> = nodes.iter().map(|d| d.local_addr()).collect();
    let mut set = tokio::task::JoinSet::new();
    for (i, d) in nodes.iter().enumerate().skip(1) {
        let d = d.clone();
        let seeds: Vec<SocketAddr> = [0, i / 2, i.saturating_sub(1)]
            .iter()
            .map(|j| addrs[*j])
            .collect();
        set.spawn(async move { d.bootstrap(&seeds).await.unwrap() });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    for d in nodes.iter() {
        let d = d.clone();
        let seeds = vec![addrs[0]];
        set.spawn(async move { d.bootstrap(&seeds).await.unwrap() });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    nodes
}

/// Stops every node.
pub async fn shutdown(nodes: &[Dht]) {
    for d in nodes {
        let _ = d.shutdown().await;
    }
}
