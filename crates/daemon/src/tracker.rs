//! The built-in tracker: `shoal daemon --tracker-http ADDR:PORT
//! --tracker-udp ADDR:PORT` runs what `shoal tracker` runs (HTTP and UDP
//! announces and scrapes, the statistics page and `/metrics` on its HTTP
//! port, the central index with `/search` and `/upload`) in the daemon's
//! process, on ports of its own: a tracker answers anybody, without the
//! auth, Host and origin checks of the daemon's API port.
//!
//! Its swarms are kept in `tracker.state` and its index in `tracker.index/`
//! in the state directory: loaded at start, saved every [`SAVE_EVERY`] and
//! when the daemon stops. `/api/v1/session` and the daemon's `/metrics`
//! report its URLs and totals; the daemon's search asks its index directly.
use crate::config::DaemonConfig;
use shoal_search::{IndexConfig, TrackerNode, TrackerNodeConfig, TrackerNodeError};
use shoal_tracker_server::{AllowList, AllowListError, RateConfig, SwarmConfig};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Time between two saves of the tracker's state.
pub const SAVE_EVERY: Duration = Duration::from_secs(300);

/// Most torrents in the built-in tracker's index.
const INDEX_MAX: u64 = 1_000_000;

/// Why the built-in tracker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The allow list could not be read.
    #[error("tracker-allow {}: {source}", path.display())]
    AllowRead {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The allow list is not a list of info-hashes.
    #[error("tracker-allow {}: {source}", path.display())]
    AllowParse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: AllowListError,
    },
    /// The tracker itself (state file, index, listeners).
    #[error(transparent)]
    Node(#[from] TrackerNodeError),
}

/// The settings of the built-in tracker for `config` (`None`: it does not
/// run). The swarm table keeps `shoal tracker`'s defaults.
pub fn node_config(config: &DaemonConfig) -> Result<Option<TrackerNodeConfig>, TrackerError> {
    if !config.runs_tracker() {
        return Ok(None);
    }
    let allow = match &config.tracker_allow {
        Some(p) => {
            let text = std::fs::read(p).map_err(|source| TrackerError::AllowRead {
                path: p.clone(),
                source,
            })?;
            Some(
                AllowList::parse(&text).map_err(|source| TrackerError::AllowParse {
                    path: p.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    Ok(Some(TrackerNodeConfig {
        http: config.tracker_http,
        udp: config.tracker_udp,
        swarm: SwarmConfig::default(),
        rate: RateConfig::default(),
        // One thread answers tens of thousands of UDP announces a second;
        // the daemon's cores belong to its torrents.
        udp_threads: 1,
        state: Some(config.state_dir.join("tracker.state")),
        allow,
        index: config.tracker_index.then_some(IndexConfig {
            dir: Some(config.state_dir.join("tracker.index")),
            max_docs: INDEX_MAX,
        }),
    }))
}

/// Starts the built-in tracker when `config` asks for one; the returned
/// task saves its state every [`SAVE_EVERY`] until `cancel` fires (the
/// daemon saves it once more after its torrents told it `stopped`).
pub async fn start(
    config: &DaemonConfig,
    cancel: CancellationToken,
) -> Result<Option<(Arc<TrackerNode>, impl Future<Output = ()>)>, TrackerError> {
    let Some(cfg) = node_config(config)? else {
        return Ok(None);
    };
    let node = Arc::new(TrackerNode::start(cfg).await?);
    if let Some(r) = node.restored() {
        tracing::info!(
            torrents = r.torrents,
            peers = r.peers,
            expired = r.expired,
            "tracker state restored"
        );
    }
    tracing::info!(urls = ?node.urls(), "tracker started");
    let saver = {
        let node = node.clone();
        async move {
            let mut every = tokio::time::interval(SAVE_EVERY);
            every.tick().await;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = every.tick() => save(&node).await,
                }
            }
        }
    };
    Ok(Some((node, saver)))
}

/// Saves the tracker's state, logging a failure.
pub async fn save(node: &TrackerNode) {
    match node.save().await {
        Ok(n) => tracing::debug!(bytes = ?n, "tracker state saved"),
        Err(e) => tracing::warn!(error = %e, "saving the tracker state"),
    }
}
