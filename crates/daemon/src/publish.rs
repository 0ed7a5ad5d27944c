//! Republishing the daemon's torrents in the DHT keyword index
//! (`shoal_search::kad`): BEP 44 nodes drop an item two hours after its
//! last put, so whoever shares a torrent must put its keyword slots and
//! its record again, every [`shoal_search::kad::REPUBLISH`] by default.
//!
//! Opt-in (`dht_publish`): it tells the whole DHT the names of what this
//! daemon shares. Only public torrents with a v1 info-hash are published
//! (a private torrent's existence stays with its tracker, BEP 27; the
//! index carries 20-byte hashes that a `btih` magnet names). A new torrent
//! is published within one [`CHECK_EVERY`]; each check publishes at most
//! [`MAX_PER_CHECK`] torrents, the longest unpublished first, so a daemon
//! with thousands of torrents spreads its puts over time.
use shoal_engine::Session;
use shoal_search::kad::{self, KadConfig};
use shoal_search::TorrentDoc;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the publisher looks for torrents due (at most; a shorter
/// republish interval checks at that interval).
pub const CHECK_EVERY: Duration = Duration::from_secs(30);
/// Most torrents published per check.
pub const MAX_PER_CHECK: usize = 64;
/// Bound on one torrent's publication.
pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(60);

/// What the publisher did, for `/metrics` and the session API.
#[derive(Debug, Default)]
pub struct PublishCounters {
    /// Torrents published (slots or record stored on at least one node).
    pub published: AtomicU64,
    /// Publications that stored nothing or failed.
    pub failed: AtomicU64,
}

impl PublishCounters {
    /// (published, failed) now.
    pub fn get(&self) -> (u64, u64) {
        (
            self.published.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}

/// The public torrents of `session` as index documents.
fn public_docs(session: &Session) -> Vec<TorrentDoc> {
    session
        .torrents()
        .iter()
        .filter_map(|h| h.torrent())
        .filter(|t| !t.is_private() && t.info_hashes().v1.is_some())
        .map(|t| TorrentDoc::from_torrent(&t))
        .collect()
}

/// Runs the publisher until `cancel`, when the session has a DHT; its
/// counters and its task.
pub fn start(
    session: Session,
    every: Duration,
    cancel: CancellationToken,
) -> Option<(Arc<PublishCounters>, impl std::future::Future<Output = ()>)> {
    session.dht()?;
    let counters = Arc::new(PublishCounters::default());
    let c = counters.clone();
    Some((
        counters,
        run(session, every.max(Duration::from_secs(1)), c, cancel),
    ))
}

async fn run(
    session: Session,
    every: Duration,
    counters: Arc<PublishCounters>,
    cancel: CancellationToken,
) {
    let cfg = KadConfig::default();
    let check = every.min(CHECK_EVERY);
    // When each torrent is due again: `every` after a publication, one
    // check after a failure (the DHT may still be joining).
    let mut next: HashMap<[u8; 20], Instant> = HashMap::new();
    loop {
        let docs = public_docs(&session);
        next.retain(|ih, _| docs.iter().any(|d| d.info_hash == *ih));
        let now = Instant::now();
        let mut due: Vec<(Option<Instant>, TorrentDoc)> = docs
            .into_iter()
            .map(|d| (next.get(&d.info_hash).copied(), d))
            .filter(|(t, _)| t.is_none_or(|t| t <= now))
            .collect();
        // Never published first, then the longest due.
        due.sort_by_key(|(t, _)| *t);
        due.truncate(MAX_PER_CHECK);
        for (_, doc) in due {
            let Some(dht) = session.dht() else { return };
            // Bounded: a DHT whose nodes drop our queries must not hold the
            // other torrents back.
            let r = tokio::select! {
                r = tokio::time::timeout(PUBLISH_TIMEOUT, kad::publish(dht, &doc, &cfg)) => r.ok(),
                _ = cancel.cancelled() => return,
            };
            let Some(r) = r else {
                counters.failed.fetch_add(1, Ordering::Relaxed);
                next.insert(doc.info_hash, Instant::now() + check);
                tracing::debug!(name = %doc.name, "dht index: publish timed out");
                continue;
            };
            let ok = matches!(&r, Ok(rep) if rep.slots_stored > 0 || rep.record_stored);
            next.insert(
                doc.info_hash,
                Instant::now() + if ok { every } else { check },
            );
            match r {
                Ok(rep) if ok => {
                    counters.published.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(name = %doc.name, slots = rep.slots_stored, "dht index: published");
                }
                Ok(_) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(name = %doc.name, "dht index: no node stored it");
                }
                Err(e) => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(name = %doc.name, error = %e, "dht index: publish failed");
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(check) => {}
            _ = cancel.cancelled() => return,
        }
    }
}
