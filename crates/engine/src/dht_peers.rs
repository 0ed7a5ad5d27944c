//! Peers from the mainline DHT for one torrent: a task that runs a DHT
//! `get_peers` lookup for the info-hash every [`DhtPeersConfig::interval`]
//! (announcing our listen port on the way when one is given, BEP 5) and hands
//! the peers found to a bounded channel.
//!
//! The caller decides where the peers go (the metadata fetcher, then
//! [`crate::TorrentHandle::add_peers`]) and stops the task when the torrent
//! turns out to be private (BEP 27) or is done.
use shoal_dht::{Dht, Id20};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Settings of a [`DhtPeerFinder`].
#[derive(Debug, Clone)]
pub struct DhtPeersConfig {
    /// Time between two lookups (the first runs at once); [`SEED_INTERVAL`] for
    /// torrents we only seed, [`DOWNLOAD_INTERVAL`] while downloading.
    pub interval: Duration,
    /// Our TCP listen port to announce; `None`: look up only.
    pub announce_port: Option<u16>,
    /// Most peers handed on per lookup.
    pub max_peers_per_lookup: usize,
    /// Time to the next lookup instead of `interval` (when shorter) after a lookup
    /// that failed, reached no node or stored no announce (e.g. the DHT was still
    /// empty), so a node that joins late is not idle for a whole `interval`.
    pub retry_interval: Duration,
}

/// Time between two announces of a torrent we seed: peers stored in the DHT expire
/// after about 30 minutes, so every 15 minutes keeps us listed.
pub const SEED_INTERVAL: Duration = Duration::from_secs(15 * 60);
/// Time between two lookups (and announces) while downloading.
pub const DOWNLOAD_INTERVAL: Duration = Duration::from_secs(30);
/// Default [`DhtPeersConfig::retry_interval`].
pub const RETRY_INTERVAL: Duration = Duration::from_secs(30);

impl DhtPeersConfig {
    /// Seeding: announce `port` at once, then every [`SEED_INTERVAL`].
    pub fn seeding(port: u16) -> Self {
        DhtPeersConfig {
            interval: SEED_INTERVAL,
            announce_port: Some(port),
            ..DhtPeersConfig::default()
        }
    }

    /// Downloading: look up peers and announce `port` at once, then every
    /// [`DOWNLOAD_INTERVAL`].
    pub fn downloading(port: u16) -> Self {
        DhtPeersConfig {
            interval: DOWNLOAD_INTERVAL,
            announce_port: Some(port),
            ..DhtPeersConfig::default()
        }
    }
}

impl Default for DhtPeersConfig {
    fn default() -> Self {
        DhtPeersConfig {
            interval: DOWNLOAD_INTERVAL,
            announce_port: None,
            max_peers_per_lookup: 200,
            retry_interval: RETRY_INTERVAL,
        }
    }
}

/// A running lookup loop for one info-hash. Dropping it stops the loop too.
#[derive(Debug)]
pub struct DhtPeerFinder {
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl DhtPeerFinder {
    /// Starts the loop on `dht` for `info_hash`; peers found go to `sink`
    /// (the loop ends when the receiver is dropped).
    pub fn spawn(
        dht: Dht,
        info_hash: shoal_base::InfoHash,
        config: DhtPeersConfig,
        sink: mpsc::Sender<Vec<SocketAddr>>,
    ) -> DhtPeerFinder {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(dht, Id20(info_hash.0), config, sink, cancel.clone()));
        DhtPeerFinder {
            cancel,
            task: Some(task),
        }
    }

    /// Stops the loop and waits for it (an announce in progress is abandoned).
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for DhtPeerFinder {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn run(
    dht: Dht,
    info_hash: Id20,
    config: DhtPeersConfig,
    sink: mpsc::Sender<Vec<SocketAddr>>,
    cancel: CancellationToken,
) {
    loop {
        let lookup = async {
            match config.announce_port {
                Some(p) => {
                    dht.announce(shoal_base::InfoHash(info_hash.0), Some(p))
                        .await
                }
                None => dht.get_peers(shoal_base::InfoHash(info_hash.0)).await,
            }
        };
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = lookup => r,
        };
        let reached = match &result {
            Ok(r) => !r.closest.is_empty() && (config.announce_port.is_none() || r.stored > 0),
            Err(_) => false,
        };
        match result {
            Ok(r) => {
                tracing::debug!(
                    peers = r.peers.len(),
                    nodes = r.closest.len(),
                    stored = r.stored,
                    "dht: lookup done"
                );
                let mut peers = r.peers;
                peers.truncate(config.max_peers_per_lookup);
                if !peers.is_empty() {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        s = sink.send(peers) => if s.is_err() { return },
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "dht: lookup failed"),
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sink.closed() => return,
            _ = tokio::time::sleep(if reached {
                config.interval
            } else {
                config.retry_interval.min(config.interval)
            }) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_dht::{Config, DhtConfig};

    async fn node(seed: u64) -> Dht {
        Dht::bind(DhtConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            node: Config {
                seed,
                ..Config::default()
            },
            ..DhtConfig::default()
        })
        .await
        .unwrap()
    }

    #[test]
    fn seeding_and_downloading_presets() {
        let s = DhtPeersConfig::seeding(6881);
        assert_eq!((s.interval, s.announce_port), (SEED_INTERVAL, Some(6881)));
        let d = DhtPeersConfig::downloading(7000);
        assert_eq!(
            (d.interval, d.announce_port),
            (DOWNLOAD_INTERVAL, Some(7000))
        );
        assert!(SEED_INTERVAL > DOWNLOAD_INTERVAL);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_empty_dht_is_retried_sooner_than_the_interval() {
        let (a, b, c) = (node(11).await, node(12).await, node(13).await);
        let ih = [0x3c; 20];
        let (tx, _rx) = mpsc::channel(4);
        // `a` knows nobody yet: the first announce reaches no node.
        let finder = DhtPeerFinder::spawn(
            a.clone(),
            shoal_base::InfoHash(ih),
            DhtPeersConfig {
                interval: Duration::from_secs(3600),
                retry_interval: Duration::from_millis(100),
                ..DhtPeersConfig::seeding(4444)
            },
            tx,
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        b.bootstrap(&[c.local_addr()]).await.unwrap();
        a.bootstrap(&[b.local_addr()]).await.unwrap();
        // Within seconds (not an hour) the announce lands where `c` finds it.
        let ours = SocketAddr::from(([127, 0, 0, 1], 4444));
        let found = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let r = c.get_peers(shoal_base::InfoHash(ih)).await.unwrap();
                if r.peers.contains(&ours) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(found.is_ok(), "the announce was not retried");
        finder.stop().await;
        for n in [a, b, c] {
            n.shutdown().await.unwrap();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finds_announced_peer_and_announces_us() {
        let nodes = [node(1).await, node(2).await, node(3).await];
        let boot = [nodes[0].local_addr()];
        for n in &nodes[1..] {
            n.bootstrap(&boot).await.unwrap();
        }
        nodes[0].bootstrap(&[nodes[1].local_addr()]).await.unwrap();
        let ih = [0x5a; 20];
        nodes[1]
            .announce(shoal_base::InfoHash(ih), Some(4242))
            .await
            .unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let finder = DhtPeerFinder::spawn(
            nodes[2].clone(),
            shoal_base::InfoHash(ih),
            DhtPeersConfig {
                interval: Duration::from_millis(200),
                announce_port: Some(4343),
                ..DhtPeersConfig::default()
            },
            tx,
        );
        let want = SocketAddr::from(([127, 0, 0, 1], 4242));
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let peers = rx.recv().await.unwrap();
                if peers.contains(&want) {
                    return;
                }
            }
        })
        .await;
        assert!(got.is_ok(), "the announced peer was not found");
        finder.stop().await;
        // Our announce reached the DHT: another node finds our port.
        let ours = SocketAddr::from(([127, 0, 0, 1], 4343));
        let r = nodes[0].get_peers(shoal_base::InfoHash(ih)).await.unwrap();
        assert!(r.peers.contains(&ours), "{:?}", r.peers);
        for n in &nodes {
            let _ = n.shutdown().await;
        }
    }
}
