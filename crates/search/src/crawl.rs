//! Crawling: find torrents nobody told us about. [`crawl`] samples the DHT
//! with BEP 51 `sample_infohashes` at targets spread over the key space,
//! looks each new info-hash up (`get_peers`), fetches its info dictionary
//! from those peers with BEP 9 (checked against the info-hash) and adds it
//! to a local [`TorrentIndex`].
//!
//! Politeness and bounds: one sampling lookup per
//! [`CrawlConfig::sample_interval`], at most
//! [`CrawlConfig::fetch_concurrency`] metadata fetches at once (each bounded
//! in time, peers and size), at most [`CrawlConfig::max_pending`] info-hashes
//! waiting, and the whole crawl stops after [`CrawlConfig::duration`] or
//! [`CrawlConfig::max_torrents`] indexed torrents. Info-hashes already in the
//! index are not fetched again.
use crate::central::fetch_doc;
use crate::index::{IndexError, TorrentIndex};
use rand::{Rng, SeedableRng};
use shoal_dht::{Dht, Id20};
use shoal_engine::metadata::MetadataFetchConfig;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Settings of a crawl.
#[derive(Debug, Clone)]
pub struct CrawlConfig {
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after indexing this many torrents.
    pub max_torrents: usize,
    /// Least time between two sampling lookups.
    pub sample_interval: Duration,
    /// Most metadata fetches at once.
    pub fetch_concurrency: usize,
    /// Time allowed for one fetch (peer lookup and metadata).
    pub fetch_timeout: Duration,
    /// Largest info dictionary fetched.
    pub max_metadata: u64,
    /// Most info-hashes waiting to be fetched (more are dropped).
    pub max_pending: usize,
    /// Seed of the sampling targets (spread over the key space from it).
    pub seed: u64,
}

impl Default for CrawlConfig {
    fn default() -> Self {
        CrawlConfig {
            duration: Duration::from_secs(300),
            max_torrents: 1000,
            sample_interval: Duration::from_millis(500),
            fetch_concurrency: 4,
            fetch_timeout: Duration::from_secs(20),
            max_metadata: 8 << 20,
            max_pending: 10_000,
            seed: 0,
        }
    }
}

/// What a crawl did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct CrawlReport {
    /// Sampling lookups run.
    pub samples_queried: u64,
    /// Distinct info-hashes seen in samples.
    pub info_hashes_seen: u64,
    /// Torrents whose metadata was fetched and indexed.
    pub indexed: u64,
    /// Info-hashes without peers, or whose metadata could not be fetched.
    pub failed: u64,
    /// Names indexed (at most the first 100).
    pub names: Vec<String>,
}

/// Why a crawl failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CrawlError {
    /// Writing the index failed.
    #[error("{0}")]
    Index(#[from] IndexError),
}

/// Crawls through `dht` into `index` (committed at the end); see the module docs.
pub async fn crawl(
    dht: &Dht,
    index: Arc<TorrentIndex>,
    cfg: &CrawlConfig,
) -> Result<CrawlReport, CrawlError> {
    let deadline = tokio::time::Instant::now() + cfg.duration;
    let mut rng = rand::rngs::SmallRng::seed_from_u64(cfg.seed);
    let mut report = CrawlReport::default();
    let mut seen: HashSet<[u8; 20]> = HashSet::new();
    let mut pending: VecDeque<[u8; 20]> = VecDeque::new();
    let mut fetches: JoinSet<Option<crate::TorrentDoc>> = JoinSet::new();
    let mut sampling: JoinSet<Vec<Id20>> = JoinSet::new();
    let mut next_sample = tokio::time::Instant::now();
    let fcfg = MetadataFetchConfig {
        max_metadata_size: cfg.max_metadata,
        max_concurrent: 4,
        max_candidates: 32,
        peer_timeout: cfg.fetch_timeout,
        overall_timeout: cfg.fetch_timeout,
        ..MetadataFetchConfig::default()
    };
    while (report.indexed as usize) < cfg.max_torrents {
        while fetches.len() < cfg.fetch_concurrency.max(1) {
            let Some(ih) = pending.pop_front() else { break };
            let (dht, fcfg, limit) = (dht.clone(), fcfg.clone(), cfg.fetch_timeout);
            fetches.spawn(async move {
                let peers = tokio::time::timeout(limit, dht.get_peers(shoal_base::InfoHash(ih)))
                    .await
                    .ok()?
                    .ok()?
                    .peers;
                fetch_doc(shoal_base::InfoHash(ih), peers, fcfg).await
            });
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => break,
            _ = tokio::time::sleep_until(next_sample), if sampling.is_empty() => {
                next_sample = tokio::time::Instant::now() + cfg.sample_interval;
                let target = Id20(rng.gen());
                let dht = dht.clone();
                report.samples_queried += 1;
                sampling.spawn(async move {
                    dht.sample_infohashes(target).await.map(|r| r.samples).unwrap_or_default()
                });
            }
            Some(r) = sampling.join_next(), if !sampling.is_empty() => {
                for ih in r.unwrap_or_default() {
                    if seen.len() < cfg.max_pending.saturating_mul(4) && seen.insert(ih.0) {
                        report.info_hashes_seen += 1;
                        if !index.contains(&ih.0) && pending.len() < cfg.max_pending {
                            pending.push_back(ih.0);
                        }
                    }
                }
            }
            Some(r) = fetches.join_next(), if !fetches.is_empty() => match r {
                Ok(Some(doc)) => {
                    let ix = index.clone();
                    let name = doc.name.clone();
                    tokio::task::spawn_blocking(move || ix.add(&doc))
                        .await
                        .unwrap_or(Ok(()))?;
                    report.indexed += 1;
                    if report.names.len() < 100 {
                        report.names.push(name);
                    }
                }
                _ => report.failed += 1,
            },
        }
    }
    fetches.abort_all();
    sampling.abort_all();
    let ix = index.clone();
    tokio::task::spawn_blocking(move || ix.commit())
        .await
        .unwrap_or(Ok(()))?;
    Ok(report)
}
