//! [`TrackerNode`]: a running tracker with its central index, as `shoal
//! tracker` runs it and as `shoal daemon` runs it beside its torrents.
//!
//! It puts together what a tracker needs besides the swarm table: the
//! state file (loaded at start, saved by [`TrackerNode::save`]), the allow
//! list, and the central index ([`crate::central`]) fed by the announces,
//! whose routes (`/search`, `/upload`) and counters share the tracker's
//! HTTP port. Everything stops when the node is dropped.
use crate::central::{CentralConfig, CentralIndex};
use crate::index::{IndexConfig, IndexError};
use shoal_tracker_server::{
    load_state, AllowList, Clock, HttpExtension, RateConfig, Restored, StateError, SwarmConfig,
    Swarms, TrackerConfig, TrackerServer,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::task::JoinHandle;

/// Announces waiting for the index's metadata fetcher; more are dropped
/// (and counted) until it catches up.
const ANNOUNCED_QUEUE: usize = 10_000;

/// How to run a [`TrackerNode`].
#[derive(Debug, Clone)]
pub struct TrackerNodeConfig {
    /// Where to serve HTTP announces, scrapes, the statistics page,
    /// `/metrics` and the index (`None`: no HTTP).
    pub http: Option<SocketAddr>,
    /// Where to serve UDP announces and scrapes (`None`: no UDP).
    pub udp: Option<SocketAddr>,
    /// The swarm table's limits and intervals.
    pub swarm: SwarmConfig,
    /// Per-IP rate limits of announces and scrapes.
    pub rate: RateConfig,
    /// UDP worker threads (0: one per CPU).
    pub udp_threads: usize,
    /// The file the swarms are kept in (`None`: memory only).
    pub state: Option<PathBuf>,
    /// Track only these info-hashes (`None`: open tracker).
    pub allow: Option<AllowList>,
    /// The central index (`None`: no index, no `/search`, no fetches).
    pub index: Option<IndexConfig>,
}

impl Default for TrackerNodeConfig {
    /// No listeners, default limits, no state file, open, no index.
    fn default() -> Self {
        TrackerNodeConfig {
            http: None,
            udp: None,
            swarm: SwarmConfig::default(),
            rate: RateConfig::default(),
            udp_threads: 0,
            state: None,
            allow: None,
            index: None,
        }
    }
}

/// Why a [`TrackerNode`] could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerNodeError {
    /// The state file exists but cannot be used; nothing was overwritten.
    #[error("loading the tracker state {} (move the file away to start with an empty tracker): {source}", path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: StateError,
    },
    /// The search index could not be opened.
    #[error("opening the search index: {0}")]
    Index(#[from] IndexError),
    /// A listener could not be bound.
    #[error("starting the tracker: {0}")]
    Listen(#[from] std::io::Error),
}

/// A running tracker and its central index. See the module docs.
#[derive(Debug)]
pub struct TrackerNode {
    server: Arc<TrackerServer>,
    central: Option<CentralIndex>,
    fetcher: Option<JoinHandle<()>>,
    state: Option<PathBuf>,
    restored: Option<Restored>,
}

impl TrackerNode {
    /// Loads the state file, opens the index and binds the listeners (port
    /// 0 picks a free port). Call inside a tokio runtime.
    pub async fn start(cfg: TrackerNodeConfig) -> Result<TrackerNode, TrackerNodeError> {
        let mut swarms = Swarms::new(cfg.swarm.clone(), rand::random());
        let announced = cfg.index.as_ref().map(|_| {
            let (observer, announced) = crate::central::observer(ANNOUNCED_QUEUE);
            swarms.set_observer(observer);
            announced
        });
        swarms.set_allow_list(cfg.allow);
        let clock = Clock::new();
        let restored = match &cfg.state {
            Some(p) => load_state(&swarms, clock.now_secs(), p).map_err(|source| {
                TrackerNodeError::State {
                    path: p.clone(),
                    source,
                }
            })?,
            None => None,
        };
        let swarms = Arc::new(swarms);
        let central = match cfg.index {
            Some(index) => Some(CentralIndex::open(
                CentralConfig {
                    index,
                    ..CentralConfig::default()
                },
                swarms.clone(),
            )?),
            None => None,
        };
        let config = TrackerConfig {
            http: cfg.http,
            udp: cfg.udp,
            rate: cfg.rate,
            udp_threads: cfg.udp_threads,
            ..TrackerConfig::default()
        };
        let extension = central
            .clone()
            .map(|c| Arc::new(c) as Arc<dyn HttpExtension>);
        let server = TrackerServer::start_with(config, swarms, clock, extension).await?;
        let fetcher = match (&central, announced) {
            (Some(c), Some(a)) => Some(c.spawn(a)),
            _ => None,
        };
        Ok(TrackerNode {
            server: Arc::new(server),
            central,
            fetcher,
            state: cfg.state,
            restored,
        })
    }

    /// What the state file gave at start (`None`: no file, or no state).
    pub fn restored(&self) -> Option<&Restored> {
        self.restored.as_ref()
    }

    /// The tracker server (addresses, URLs, swarm table, counters).
    pub fn server(&self) -> &TrackerServer {
        &self.server
    }

    /// The central index, when there is one.
    pub fn central(&self) -> Option<&CentralIndex> {
        self.central.as_ref()
    }

    /// The announce URLs served: HTTP first, then UDP.
    pub fn urls(&self) -> Vec<String> {
        [self.server.http_url(), self.server.udp_url()]
            .into_iter()
            .flatten()
            .collect()
    }

    /// The state file, when there is one.
    pub fn state_file(&self) -> Option<&Path> {
        self.state.as_deref()
    }

    /// Saves the swarms to the state file and commits the index, off the
    /// runtime's threads. `Ok(None)`: no state file.
    pub async fn save(&self) -> Result<Option<usize>, StateError> {
        let (server, central, path) = (
            self.server.clone(),
            self.central.clone(),
            self.state.clone(),
        );
        let joined = tokio::task::spawn_blocking(move || {
            if let Some(c) = &central {
                if let Err(e) = c.commit() {
                    tracing::warn!(error = %e, "committing the search index");
                }
            }
            path.map(|p| server.save_state(&p)).transpose()
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(StateError::Io {
                path: self.state.clone().unwrap_or_default(),
                source: std::io::Error::other(e.to_string()),
            }),
        }
    }
}

impl Drop for TrackerNode {
    fn drop(&mut self) {
        if let Some(f) = &self.fetcher {
            f.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_state_file_brings_the_swarms_back() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("tracker.state");
        let cfg = TrackerNodeConfig {
            http: Some("127.0.0.1:0".parse().unwrap()),
            state: Some(state.clone()),
            index: Some(IndexConfig {
                dir: Some(d.path().join("index")),
                max_docs: 100,
            }),
            ..TrackerNodeConfig::default()
        };
        let node = TrackerNode::start(cfg.clone()).await.unwrap();
        assert!(node.restored().is_none(), "no file yet");
        assert_eq!(node.urls().len(), 1);
        let url = format!(
            "http://{}/announce?info_hash={}&peer_id=-XX0000-000000000000&port=6881&left=0&compact=1",
            node.server().http_addr().unwrap(),
            "%11".repeat(20)
        );
        let body = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert!(body.starts_with(b"d"), "{body:?}");
        assert_eq!(node.save().await.unwrap().map(|n| n > 0), Some(true));
        drop(node);
        // The index's writer lock goes with the server's aborted tasks.
        let mut tries = 0;
        let again = loop {
            match TrackerNode::start(cfg.clone()).await {
                Ok(n) => break n,
                Err(e) if tries < 50 => {
                    tries += 1;
                    tracing::debug!(error = %e, "not yet");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let r = again.restored().expect("the file is read");
        assert_eq!((r.torrents, r.peers), (1, 1));
        assert!(again.central().is_some());
    }

    #[tokio::test]
    async fn a_damaged_state_file_is_refused_and_kept() {
        let d = tempfile::tempdir().unwrap();
        let state = d.path().join("tracker.state");
        std::fs::write(&state, b"not a state file").unwrap();
        let cfg = TrackerNodeConfig {
            udp: Some("127.0.0.1:0".parse().unwrap()),
            state: Some(state.clone()),
            ..TrackerNodeConfig::default()
        };
        let e = TrackerNode::start(cfg).await.unwrap_err();
        assert!(matches!(e, TrackerNodeError::State { .. }), "{e}");
        assert!(e.to_string().contains("move the file away"), "{e}");
        assert_eq!(std::fs::read(&state).unwrap(), b"not a state file");
    }
}
