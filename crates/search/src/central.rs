//! The central index (Napster): a tracker that knows the names of the
//! torrents announced to it and answers keyword queries.
//!
//! Where names come from:
//! - **announces**: the swarm table tells an [`AnnounceObserver`] about
//!   every info-hash it sees for the first time (a `try_send` into a bounded
//!   queue: a full queue drops the hash and counts it). After
//!   [`CentralConfig::fetch_delay`] (so the announcing peer is in the table)
//!   the fetcher asks the swarm's peers for the info dictionary with BEP 9
//!   (`shoal_engine::metadata::fetch_metadata`, checked against the
//!   info-hash), politely: at most [`CentralConfig::fetch_concurrency`]
//!   fetches at once, one started per [`CentralConfig::fetch_interval`],
//!   each bounded in time and peers, a failed one retried a few times later;
//! - **uploads**: `POST /upload` with a .torrent file as the body (at most
//!   [`CentralConfig::max_upload`] bytes, parsed with the metainfo limits).
//!
//! HTTP, on the tracker's port (through
//! [`shoal_tracker_server::HttpExtension`]):
//! - `GET /search?q=WORDS[&limit=N]` → `{"results": [SearchHit …]}` (JSON),
//!   with seeders and leechers from the swarm table;
//! - `POST /upload` → `{"info_hash": HEX, "name": NAME}`.
//!
//! Both are rate-limited per client IP; queries are bounded
//! ([`CentralConfig::max_query_bytes`], [`crate::keywords`]). The index is
//! tantivy on disk ([`crate::index`]): it survives a restart and is bounded
//! in torrents. A torrent only a v2 hash names (truncated in announces)
//! cannot be checked from 20 bytes and is indexed by upload only.
use crate::doc::TorrentDoc;
use crate::hit::SearchHit;
use crate::index::{IndexConfig, IndexError, TorrentIndex, MAX_RESULTS};
use serde::Serialize;
use shoal_engine::metadata::{fetch_metadata, MetadataFetchConfig, MetadataTarget};
use shoal_tracker_server::ratelimit::{RateLimiter, Verdict};
use shoal_tracker_server::{
    AnswerFuture, ExtensionRequest, HttpExtension, RateConfig, SwarmObserver, Swarms,
};
use shoal_wire::MetadataHash;
use std::collections::{BinaryHeap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// Settings of the central index.
#[derive(Debug, Clone)]
pub struct CentralConfig {
    /// Where the index lives and how many torrents it keeps.
    pub index: IndexConfig,
    /// Most info-hashes waiting for their metadata.
    pub queue: usize,
    /// Wait after a torrent's first announce before fetching its metadata.
    pub fetch_delay: Duration,
    /// Most metadata fetches at once.
    pub fetch_concurrency: usize,
    /// Least time between the starts of two fetches.
    pub fetch_interval: Duration,
    /// Time allowed for one fetch (all its peers).
    pub fetch_timeout: Duration,
    /// Largest info dictionary fetched.
    pub max_metadata: u64,
    /// Most peers of the swarm tried per fetch.
    pub peers_per_fetch: usize,
    /// Fetches retried this many times after a failure.
    pub retries: u32,
    /// Wait before a retry (times the attempt number).
    pub retry_after: Duration,
    /// Largest .torrent accepted by `POST /upload`.
    pub max_upload: usize,
    /// Longest query string accepted.
    pub max_query_bytes: usize,
    /// Searches and uploads per client IP.
    pub rate: RateConfig,
    /// Staged documents are committed (made visible) this often.
    pub commit_every: Duration,
}

impl Default for CentralConfig {
    fn default() -> Self {
        CentralConfig {
            index: IndexConfig::default(),
            queue: 10_000,
            fetch_delay: Duration::from_secs(2),
            fetch_concurrency: 4,
            fetch_interval: Duration::from_millis(100),
            fetch_timeout: Duration::from_secs(30),
            max_metadata: 8 << 20,
            peers_per_fetch: 16,
            retries: 2,
            retry_after: Duration::from_secs(60),
            max_upload: 4 << 20,
            max_query_bytes: 1024,
            rate: RateConfig {
                per_second: 10.0,
                burst: 50.0,
                ..RateConfig::default()
            },
            commit_every: Duration::from_secs(1),
        }
    }
}

/// Tells the central index about new torrents; install it with
/// [`Swarms::set_observer`].
#[derive(Debug)]
pub struct AnnounceObserver {
    tx: mpsc::Sender<shoal_base::InfoHash>,
    dropped: AtomicU64,
}

impl SwarmObserver for AnnounceObserver {
    fn torrent_added(&self, info_hash: &shoal_base::InfoHash) {
        if self.tx.try_send(*info_hash).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AnnounceObserver {
    /// Info-hashes dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The receiving end of an [`AnnounceObserver`], for [`CentralIndex::spawn`].
#[derive(Debug)]
pub struct Announced(mpsc::Receiver<shoal_base::InfoHash>);

/// An observer with a queue of `capacity` info-hashes, and its receiver.
pub fn observer(capacity: usize) -> (Arc<AnnounceObserver>, Announced) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    (
        Arc::new(AnnounceObserver {
            tx,
            dropped: AtomicU64::new(0),
        }),
        Announced(rx),
    )
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The body is not a valid .torrent.
    #[error("not a torrent: {0}")]
    Invalid(#[from] shoal_metainfo::MetainfoError),
    /// The tracker has an allow list without this info-hash.
    #[error("torrent not tracked here")]
    NotAllowed,
    /// Indexing failed.
    #[error("{0}")]
    Index(#[from] IndexError),
}

/// Counters of the central index.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CentralStats {
    /// Torrents whose metadata was fetched and indexed.
    pub fetched: u64,
    /// Fetches that failed (each attempt).
    pub fetch_failed: u64,
    /// Torrents indexed from uploads.
    pub uploaded: u64,
    /// Searches answered.
    pub searches: u64,
    /// Requests refused by the rate limit.
    pub rate_limited: u64,
    /// Info-hashes not queued because the queue was full.
    pub queue_full: u64,
}

#[derive(Debug, Default)]
struct Counters {
    fetched: AtomicU64,
    fetch_failed: AtomicU64,
    uploaded: AtomicU64,
    searches: AtomicU64,
    rate_limited: AtomicU64,
    queue_full: AtomicU64,
}

#[derive(Debug)]
struct Inner {
    index: TorrentIndex,
    swarms: Arc<Swarms>,
    cfg: CentralConfig,
    limiter: RateLimiter,
    start: Instant,
    counters: Counters,
    dirty: AtomicBool,
}

/// The central index: a tantivy index fed by announces and uploads, served
/// over HTTP on the tracker's port. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CentralIndex {
    inner: Arc<Inner>,
}

fn json(status: u16, v: &impl Serialize) -> shoal_tracker_server::http::HttpAnswer {
    shoal_tracker_server::http::HttpAnswer {
        status,
        content_type: "application/json",
        body: serde_json::to_vec(v).unwrap_or_default(),
    }
}

fn error(status: u16, msg: &str) -> shoal_tracker_server::http::HttpAnswer {
    json(status, &serde_json::json!({ "error": msg }))
}

/// A pending fetch, ordered by due time (earliest first in the heap).
#[derive(Debug, PartialEq, Eq)]
struct Due {
    at: tokio::time::Instant,
    info_hash: shoal_base::InfoHash,
    attempt: u32,
}

impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.at.cmp(&self.at)
            .then_with(|| o.info_hash.cmp(&self.info_hash))
    }
}

impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl CentralIndex {
    /// Opens the index of `cfg` for the tracker serving `swarms`.
    pub fn open(cfg: CentralConfig, swarms: Arc<Swarms>) -> Result<CentralIndex, IndexError> {
        let index = TorrentIndex::open(&cfg.index)?;
        Ok(CentralIndex {
            inner: Arc::new(Inner {
                index,
                swarms,
                limiter: RateLimiter::new(cfg.rate),
                cfg,
                start: Instant::now(),
                counters: Counters::default(),
                dirty: AtomicBool::new(false),
            }),
        })
    }

    /// The index.
    pub fn index(&self) -> &TorrentIndex {
        &self.inner.index
    }

    /// The counters.
    pub fn stats(&self) -> CentralStats {
        let c = &self.inner.counters;
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CentralStats {
            fetched: l(&c.fetched),
            fetch_failed: l(&c.fetch_failed),
            uploaded: l(&c.uploaded),
            searches: l(&c.searches),
            rate_limited: l(&c.rate_limited),
            queue_full: l(&c.queue_full),
        }
    }

    /// Commits staged documents now (blocking).
    pub fn commit(&self) -> Result<(), IndexError> {
        self.inner.dirty.store(false, Ordering::Relaxed);
        self.inner.index.commit()
    }

    /// Searches the index; seeders and leechers come from the swarm table.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, IndexError> {
        self.inner.counters.searches.fetch_add(1, Ordering::Relaxed);
        let hits = self.inner.index.search(query, limit)?;
        Ok(hits
            .into_iter()
            .map(|h| {
                let mut s = h.to_hit("tracker");
                s.score = f64::from(h.score);
                if let Some(st) = self.inner.swarms.scrape(&shoal_base::InfoHash(h.info_hash)) {
                    s.seeds = Some(st.complete);
                    s.leechers = Some(st.incomplete);
                }
                s
            })
            .collect())
    }

    /// Indexes an uploaded .torrent (visible at the next commit).
    pub fn upload(&self, torrent: &[u8]) -> Result<TorrentDoc, UploadError> {
        let doc = TorrentDoc::from_torrent_file(torrent)?;
        if !self
            .inner
            .swarms
            .is_allowed(&shoal_base::InfoHash(doc.info_hash))
        {
            return Err(UploadError::NotAllowed);
        }
        self.inner.index.add(&doc)?;
        self.inner.dirty.store(true, Ordering::Relaxed);
        self.inner.counters.uploaded.fetch_add(1, Ordering::Relaxed);
        Ok(doc)
    }

    /// Starts the fetcher (metadata of announced torrents) and the periodic
    /// commit; they stop when the handle is aborted.
    pub fn spawn(&self, announced: Announced) -> JoinHandle<()> {
        tokio::spawn(self.clone().run(announced.0))
    }

    async fn run(self, mut rx: mpsc::Receiver<shoal_base::InfoHash>) {
        let cfg = self.inner.cfg.clone();
        let mut pending: BinaryHeap<Due> = BinaryHeap::new();
        let mut queued: HashSet<shoal_base::InfoHash> = HashSet::new();
        let mut active: JoinSet<(shoal_base::InfoHash, u32, Option<TorrentDoc>)> = JoinSet::new();
        let mut commit = tokio::time::interval(cfg.commit_every.max(Duration::from_millis(50)));
        let mut next_start = tokio::time::Instant::now();
        let mut rx_open = true;
        loop {
            let due = pending.peek().map(|d| d.at.max(next_start));
            let can_start = active.len() < cfg.fetch_concurrency.max(1);
            tokio::select! {
                r = rx.recv(), if rx_open => match r {
                    Some(ih) => {
                        if queued.len() >= cfg.queue {
                            self.inner.counters.queue_full.fetch_add(1, Ordering::Relaxed);
                        } else if !self.inner.index.contains(&ih.0) && queued.insert(ih) {
                            pending.push(Due {
                                at: tokio::time::Instant::now() + cfg.fetch_delay,
                                info_hash: ih,
                                attempt: 0,
                            });
                        }
                    }
                    None => rx_open = false,
                },
                _ = tokio::time::sleep_until(due.unwrap_or(next_start)), if due.is_some() && can_start => {
                    let Some(d) = pending.pop() else { continue };
                    next_start = tokio::time::Instant::now() + cfg.fetch_interval;
                    let peers = self.inner.swarms.peer_addrs(&shoal_base::InfoHash(d.info_hash.0), cfg.peers_per_fetch);
                    let fcfg = MetadataFetchConfig {
                        max_metadata_size: cfg.max_metadata,
                        max_concurrent: 4,
                        max_candidates: cfg.peers_per_fetch,
                        peer_timeout: cfg.fetch_timeout,
                        overall_timeout: cfg.fetch_timeout,
                        ..MetadataFetchConfig::default()
                    };
                    active.spawn(async move {
                        let doc = fetch_doc(d.info_hash, peers, fcfg).await;
                        (d.info_hash, d.attempt, doc)
                    });
                }
                Some(r) = active.join_next(), if !active.is_empty() => {
                    let Ok((ih, attempt, doc)) = r else { continue };
                    match doc {
                        Some(doc) => {
                            queued.remove(&ih);
                            match self.inner.index.add(&doc) {
                                Ok(()) => {
                                    self.inner.dirty.store(true, Ordering::Relaxed);
                                    self.inner.counters.fetched.fetch_add(1, Ordering::Relaxed);
                                    tracing::debug!(info_hash = %doc.hex(), name = %doc.name, "central index: indexed");
                                }
                                Err(e) => tracing::warn!(error = %e, "central index: add failed"),
                            }
                        }
                        None => {
                            self.inner.counters.fetch_failed.fetch_add(1, Ordering::Relaxed);
                            if attempt < cfg.retries {
                                pending.push(Due {
                                    at: tokio::time::Instant::now() + cfg.retry_after * (attempt + 1),
                                    info_hash: ih,
                                    attempt: attempt + 1,
                                });
                            } else {
                                queued.remove(&ih);
                            }
                        }
                    }
                }
                _ = commit.tick() => {
                    if self.inner.dirty.swap(false, Ordering::Relaxed) {
                        let me = self.clone();
                        match tokio::task::spawn_blocking(move || me.inner.index.commit()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::warn!(error = %e, "central index: commit failed"),
                            Err(e) => tracing::warn!(error = %e, "central index: commit task"),
                        }
                    }
                }
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn limited(&self, req: &ExtensionRequest) -> bool {
        match self.inner.limiter.check(self.now_ms(), req.remote.ip()) {
            Verdict::Deny => {
                self.inner
                    .counters
                    .rate_limited
                    .fetch_add(1, Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// The index's counters in Prometheus text format (`shoal_index_…`),
    /// appended to the tracker's `/metrics`.
    pub fn prometheus(&self) -> String {
        use std::fmt::Write;
        let s = self.stats();
        let mut o = String::new();
        let _ = writeln!(
            o,
            "# HELP shoal_index_documents Torrents in the search index."
        );
        let _ = writeln!(o, "# TYPE shoal_index_documents gauge");
        let _ = writeln!(o, "shoal_index_documents {}", self.inner.index.len());
        for (name, help, v) in [
            (
                "fetched",
                "Torrents indexed from metadata fetched from their peers.",
                s.fetched,
            ),
            (
                "fetch_failed",
                "Metadata fetches that failed.",
                s.fetch_failed,
            ),
            ("uploaded", "Torrents indexed from uploads.", s.uploaded),
            ("searches", "Searches answered.", s.searches),
            (
                "rate_limited",
                "Index requests refused by the rate limit.",
                s.rate_limited,
            ),
            (
                "queue_full",
                "Announced torrents not queued for indexing (queue full).",
                s.queue_full,
            ),
        ] {
            let _ = writeln!(o, "# HELP shoal_index_{name}_total {help}");
            let _ = writeln!(o, "# TYPE shoal_index_{name}_total counter");
            let _ = writeln!(o, "shoal_index_{name}_total {v}");
        }
        o
    }

    /// Answers `GET /search` and `POST /upload` (blocking: call it off the
    /// async threads).
    pub fn answer(&self, req: &ExtensionRequest) -> shoal_tracker_server::http::HttpAnswer {
        let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
        match (req.method.as_str(), path) {
            ("GET", "/search") => {
                if query.len() > self.inner.cfg.max_query_bytes {
                    return error(414, "query too long");
                }
                if self.limited(req) {
                    return error(429, "too many requests, slow down");
                }
                let mut q = None;
                let mut limit = 50usize;
                for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                    match &*k {
                        "q" => q = Some(v.into_owned()),
                        "limit" => limit = v.parse().unwrap_or(50).clamp(1, MAX_RESULTS),
                        _ => {}
                    }
                }
                let Some(q) = q.filter(|q| !q.trim().is_empty()) else {
                    return error(400, "missing q");
                };
                match self.search(&q, limit) {
                    Ok(results) => json(200, &serde_json::json!({ "results": results })),
                    Err(e) => error(500, &e.to_string()),
                }
            }
            ("POST", "/upload") => {
                if self.limited(req) {
                    return error(429, "too many requests, slow down");
                }
                match self.upload(&req.body) {
                    Ok(doc) => json(
                        200,
                        &serde_json::json!({ "info_hash": doc.hex(), "name": doc.name }),
                    ),
                    Err(UploadError::NotAllowed) => error(403, "torrent not tracked here"),
                    Err(e @ UploadError::Invalid(_)) => error(400, &e.to_string()),
                    Err(e) => error(500, &e.to_string()),
                }
            }
            (_, "/search") => error(405, "use GET"),
            _ => error(405, "use POST"),
        }
    }
}

/// Fetches and parses one torrent's info dictionary from `peers`.
pub(crate) async fn fetch_doc(
    info_hash: shoal_base::InfoHash,
    peers: Vec<std::net::SocketAddr>,
    cfg: MetadataFetchConfig,
) -> Option<TorrentDoc> {
    if peers.is_empty() {
        return None;
    }
    let target = MetadataTarget {
        info_hash: shoal_base::InfoHash(info_hash.0),
        hash: MetadataHash::V1(shoal_base::InfoHash(info_hash.0)),
    };
    let (tx, mut more) = mpsc::channel(1);
    drop(tx);
    match fetch_metadata(target, cfg, peers, &mut more, |_| {}).await {
        Ok(m) => match TorrentDoc::from_info(&m.info) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::debug!(error = %e, "central index: bad info dictionary");
                None
            }
        },
        Err(e) => {
            tracing::debug!(info_hash = %hex::encode(info_hash), error = %e, "central index: no metadata");
            None
        }
    }
}

impl HttpExtension for CentralIndex {
    fn serves(&self, path: &str) -> bool {
        path == "/search" || path == "/upload"
    }

    fn max_body(&self) -> usize {
        self.inner.cfg.max_upload
    }

    fn metrics(&self) -> String {
        self.prometheus()
    }

    fn respond(&self, req: ExtensionRequest) -> AnswerFuture {
        let me = self.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || me.answer(&req))
                .await
                .unwrap_or_else(|_| error(500, "internal error"))
        })
    }
}
