//! The flood service: one task that drives a [`FloodNode`] (Gnutella-style
//! flooding search, `shoal_search::flood`) over the engine's BEP 10
//! extension hook. It answers the queries of connected shoal peers from the
//! daemon's own torrents ([`DaemonLibrary`]), forwards them, and runs the
//! daemon's own searches ([`FloodHandle::search`]).
//!
//! Time is passed into the sans-IO node as the time since the service
//! started; a one-second tick forgets searches whose caller stopped
//! waiting. The library is rebuilt from the session at most every
//! [`LIBRARY_TTL`], not per query, so a burst of queries costs one walk
//! over the torrents.
use bytes::Bytes;
use shoal_engine::{ExtPeer, Extensions, Session};
use shoal_search::flood::{
    Action, FloodConfig, FloodCounters, FloodMsg, FloodNode, FloodResult, Library, QueryId,
    EXTENSION_NAME,
};
use shoal_search::keywords::{query_keywords, words};
use shoal_search::SearchHit;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a built library is reused.
pub const LIBRARY_TTL: Duration = Duration::from_secs(2);
/// Searches running at once (more wait for the command queue).
const COMMANDS: usize = 64;
/// Batches of results buffered per running search.
const RESULT_BATCHES: usize = 256;

/// Why a flood search could not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FloodError {
    /// The service has stopped (the daemon is shutting down).
    #[error("the flood service has stopped")]
    Stopped,
}

/// One torrent of the library: what a result says, and the words a query
/// may match (the name's and the file paths').
#[derive(Debug, Clone)]
struct Entry {
    result: FloodResult,
    words: Vec<String>,
}

/// The daemon's torrents as a [`Library`]: every torrent whose metadata is
/// known and that has a v1 info-hash (what a `btih` magnet carries). A
/// torrent matches when its name and file paths hold every keyword.
#[derive(Debug, Clone, Default)]
pub struct DaemonLibrary {
    entries: Vec<Entry>,
}

impl DaemonLibrary {
    /// The library of `session`'s torrents now; private ones only with
    /// `private` (the flood service leaves them out: BEP 27, a private
    /// torrent's existence stays with its tracker).
    pub fn of(session: &Session, private: bool) -> Self {
        let mut entries = Vec::new();
        for h in session.torrents() {
            let Some(t) = h.torrent() else { continue };
            let Some(v1) = t.info_hashes().v1 else {
                continue;
            };
            if t.is_private() && !private {
                continue;
            }
            let mut w = words(t.name());
            for f in t.files().iter().filter(|f| !f.pad) {
                w.extend(words(&f.path_string()));
            }
            w.sort_unstable();
            w.dedup();
            entries.push(Entry {
                result: FloodResult {
                    info_hash: v1.0,
                    name: t.name().to_string(),
                    size: t.total_length(),
                },
                words: w,
            });
        }
        DaemonLibrary { entries }
    }

    /// Torrents in the library.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the library is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl Library for DaemonLibrary {
    fn matches(&self, query: &str, max: usize) -> Vec<FloodResult> {
        let q = query_keywords(query);
        if q.is_empty() {
            return Vec::new();
        }
        self.entries
            .iter()
            .filter(|e| q.iter().all(|k| e.words.binary_search(k).is_ok()))
            .take(max)
            .map(|e| e.result.clone())
            .collect()
    }
}

/// Results of a running search: the neighbour they arrived through, and
/// the new results.
type Batch = (ExtPeer, Vec<FloodResult>);

enum Cmd {
    Search {
        query: String,
        /// When the caller stops waiting.
        until: Instant,
        results: mpsc::Sender<Batch>,
        /// The query id and how many peers it went to.
        started: oneshot::Sender<(QueryId, usize)>,
    },
}

/// A flood search's outcome.
#[derive(Debug, Clone, Default)]
pub struct FloodSearch {
    /// The query id (hex).
    pub query_id: String,
    /// Neighbours the query was sent to.
    pub peers: usize,
    /// The hits, unranked; `found` is `flood ADDR`, the neighbour each
    /// came back through.
    pub hits: Vec<SearchHit>,
}

/// The handle of the running service (cheap to clone).
#[derive(Clone)]
pub struct FloodHandle {
    cmds: mpsc::Sender<Cmd>,
    counters: Arc<Mutex<FloodCounters>>,
    ext: Extensions,
}

impl std::fmt::Debug for FloodHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FloodHandle").finish_non_exhaustive()
    }
}

impl FloodHandle {
    /// Floods `query` to the connected shoal peers and collects what comes
    /// back within `timeout`.
    pub async fn search(&self, query: &str, timeout: Duration) -> Result<FloodSearch, FloodError> {
        let until = Instant::now() + timeout;
        let (tx, mut rx) = mpsc::channel(RESULT_BATCHES);
        let (started, start_rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Search {
                query: query.to_string(),
                until,
                results: tx,
                started,
            })
            .await
            .map_err(|_| FloodError::Stopped)?;
        let (id, peers) = start_rx.await.map_err(|_| FloodError::Stopped)?;
        let mut hits = Vec::new();
        if peers > 0 {
            let deadline = tokio::time::Instant::from_std(until);
            while let Ok(Some((via, batch))) = tokio::time::timeout_at(deadline, rx.recv()).await {
                for r in batch {
                    let mut h = SearchHit::new(r.info_hash, r.name, format!("flood {}", via.addr));
                    h.size = Some(r.size);
                    hits.push(h);
                }
            }
        }
        Ok(FloodSearch {
            query_id: hex::encode(id),
            peers,
            hits,
        })
    }

    /// The node's counters.
    pub fn counters(&self) -> FloodCounters {
        *self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connected peers that speak the flooding extension.
    pub fn peers(&self) -> usize {
        self.ext.peers(EXTENSION_NAME).len()
    }
}

/// Starts the service on `session`'s extension hook (which must advertise
/// [`EXTENSION_NAME`]); `None` when it does not, or another task already
/// took the hook's messages. It stops when `cancel` is cancelled.
pub fn start(
    session: Session,
    cfg: FloodConfig,
    cancel: CancellationToken,
) -> Option<(
    FloodHandle,
    impl std::future::Future<Output = ()> + Send + 'static,
)> {
    let ext = session.extensions()?;
    if !ext.names().contains(&EXTENSION_NAME) {
        return None;
    }
    let inbox = ext.take_messages()?;
    let (tx, rx) = mpsc::channel(COMMANDS);
    let counters = Arc::new(Mutex::new(FloodCounters::default()));
    let handle = FloodHandle {
        cmds: tx,
        counters: counters.clone(),
        ext: ext.clone(),
    };
    let seed = rand::random();
    let svc = Service {
        session,
        ext,
        node: FloodNode::new(cfg, seed),
        epoch: Instant::now(),
        library: None,
        waiting: HashMap::new(),
        counters,
    };
    Some((handle, svc.run(inbox, rx, cancel)))
}

struct Service {
    session: Session,
    ext: Extensions,
    node: FloodNode<ExtPeer>,
    epoch: Instant,
    library: Option<(Instant, Arc<DaemonLibrary>)>,
    /// Our running searches: where their results go, until when.
    waiting: HashMap<QueryId, (mpsc::Sender<Batch>, Instant)>,
    counters: Arc<Mutex<FloodCounters>>,
}

impl Service {
    async fn run(
        mut self,
        mut inbox: mpsc::Receiver<shoal_engine::ExtMessage>,
        mut cmds: mpsc::Receiver<Cmd>,
        cancel: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                m = inbox.recv() => match m {
                    Some(m) => self.on_message(m),
                    None => return,
                },
                c = cmds.recv() => match c {
                    Some(c) => self.on_cmd(c),
                    None => return,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.waiting.retain(|_, (tx, until)| *until > now && !tx.is_closed());
                }
            }
            *self.counters.lock().unwrap_or_else(|e| e.into_inner()) = self.node.counters();
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The library, rebuilt when older than [`LIBRARY_TTL`].
    fn library(&mut self) -> Arc<DaemonLibrary> {
        let now = Instant::now();
        match &self.library {
            Some((at, l)) if now.duration_since(*at) < LIBRARY_TTL => l.clone(),
            _ => {
                let l = Arc::new(DaemonLibrary::of(&self.session, false));
                self.library = Some((now, l.clone()));
                l
            }
        }
    }

    fn on_message(&mut self, m: shoal_engine::ExtMessage) {
        if m.name != EXTENSION_NAME {
            return;
        }
        let msg = match FloodMsg::decode(&m.payload) {
            Ok(msg) => msg,
            Err(e) => {
                tracing::debug!(peer = %m.peer, error = %e, "bad flood message dropped");
                return;
            }
        };
        let peers = self.ext.peers(EXTENSION_NAME);
        let now = self.now();
        // Only queries are answered from the library.
        let library = match msg {
            FloodMsg::Query { .. } => self.library(),
            _ => Arc::default(),
        };
        let actions = self.node.handle(now, m.peer, msg, &peers, library.as_ref());
        self.perform(Some(m.peer), actions);
    }

    fn on_cmd(&mut self, c: Cmd) {
        match c {
            Cmd::Search {
                query,
                until,
                results,
                started,
            } => {
                let peers = self.ext.peers(EXTENSION_NAME);
                let now = self.now();
                let (id, actions) = self.node.start_query(now, &query, &peers);
                tracing::debug!(query, id = %hex::encode(id), peers = peers.len(), "flood search");
                self.waiting.insert(id, (results, until));
                let _ = started.send((id, peers.len()));
                self.perform(None, actions);
            }
        }
    }

    /// Carries out the node's actions; `from` is the peer whose message
    /// caused them (results of ours arrived through it).
    fn perform(&mut self, from: Option<ExtPeer>, actions: Vec<Action<ExtPeer>>) {
        for a in actions {
            match a {
                Action::Send(to, msg) => {
                    if let Err(e) = self.ext.send(to, EXTENSION_NAME, Bytes::from(msg.encode())) {
                        tracing::debug!(peer = %to, error = %e, "flood message not sent");
                    }
                }
                Action::Found(id, results) => {
                    if let (Some((tx, _)), Some(from)) = (self.waiting.get(&id), from) {
                        // A caller that stopped reading loses results, not the service.
                        let _ = tx.try_send((from, results));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, name: &str, files: &[&str]) -> Entry {
        let mut w = words(name);
        for f in files {
            w.extend(words(f));
        }
        w.sort_unstable();
        w.dedup();
        Entry {
            result: FloodResult {
                info_hash: [n; 20],
                name: name.into(),
                size: u64::from(n),
            },
            words: w,
        }
    }

    #[test]
    fn library_matches_names_and_file_paths() {
        let lib = DaemonLibrary {
            entries: vec![
                entry(1, "Rare Penguin Documentary 1080p", &["penguins.mkv"]),
                entry(2, "holiday", &["Penguin Documentary/extra.txt"]),
                entry(3, "other", &["nothing.bin"]),
            ],
        };
        let hits = lib.matches("penguin documentary", 10);
        assert_eq!(
            hits.iter().map(|r| r.info_hash[0]).collect::<Vec<_>>(),
            [1, 2]
        );
        assert_eq!(lib.matches("penguin documentary", 1).len(), 1);
        assert!(lib.matches("zebra", 10).is_empty());
        assert!(lib.matches("the a", 10).is_empty());
    }
}
