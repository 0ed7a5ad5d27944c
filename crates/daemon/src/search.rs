//! `GET /api/v1/search?q=WORDS[&timeout_ms=N][&sources=flood,dht,tracker,local][&limit=N][&tracker=URL...]`:
//! keyword search from the daemon, answered in the shape `shoal search
//! --json` prints: `{"query", "results": [hit + "magnet" + "download"],
//! "errors": [{"source", "error"}], "flood": {"query_id", "peers"}}`.
//!
//! Sources, asked at once, each bounded by `timeout_ms`:
//! - `flood`: the connected shoal peers, by the flood service ([`crate::flood`]);
//! - `local`: the daemon's own torrents (names and file paths, private
//!   ones included);
//! - `dht`: the DHT keyword index (when the session runs a DHT);
//! - `tracker`: the central index of each `tracker=` announce URL, else of
//!   the built-in tracker (see [`crate::tracker`]; asked directly) and of
//!   the trackers of the daemon's torrents (at most [`MAX_TRACKERS`]).
//!
//! Without `sources`, every source that is available is asked; a source
//! named explicitly but unavailable is reported in `errors`. Hits are
//! merged by info-hash and ranked by relevance (`shoal_search::rank`);
//! those matched by file paths only (the name lacks the keywords) follow
//! with score 0.
//! The input is bounded: the query in bytes and words, the timeout, the
//! limit, the number and length of tracker URLs.
use crate::service::bump;
use crate::Shared;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use shoal_search::flood::Library;
use shoal_search::{rank, SearchHit};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

/// Longest query, bytes (what one flood message carries).
pub const MAX_QUERY_BYTES: usize = shoal_search::flood::msg::MAX_QUERY_BYTES;
/// Most words in a query.
pub const MAX_QUERY_WORDS: usize = 16;
/// Default and bounds of `timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
/// Shortest `timeout_ms` honoured.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Longest `timeout_ms` honoured.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(30);
/// Default `limit`.
pub const DEFAULT_LIMIT: usize = 50;
/// Most trackers asked per search.
pub const MAX_TRACKERS: usize = 8;
/// Longest tracker URL accepted.
const MAX_URL: usize = 2048;
/// Most query-string parameters looked at.
const MAX_PARAMS: usize = 32;

/// One source of hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Flooding among connected shoal peers.
    Flood,
    /// The DHT keyword index.
    Dht,
    /// Trackers' central indexes.
    Tracker,
    /// The daemon's own torrents.
    Local,
}

impl Source {
    fn parse(s: &str) -> Option<Source> {
        Some(match s {
            "flood" => Source::Flood,
            "dht" => Source::Dht,
            "tracker" => Source::Tracker,
            "local" => Source::Local,
            _ => return None,
        })
    }
}

/// A parsed, bounded request.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// Bound on every source.
    pub timeout: Duration,
    /// Sources named (`None`: every available one).
    pub sources: Option<Vec<Source>>,
    /// Most results returned.
    pub limit: usize,
    /// Announce URLs whose central index to ask.
    pub trackers: Vec<String>,
}

/// Why a search request's query string was refused (answered 400 with
/// this text).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SearchRequestError {
    /// A numeric parameter is not a number.
    #[error("{param}: {value:?}")]
    NotANumber {
        /// The parameter.
        param: &'static str,
        /// What it held.
        value: String,
    },
    /// `sources` names an unknown source.
    #[error("sources: unknown {0:?} (flood, dht, tracker, local)")]
    UnknownSource(String),
    /// More `tracker` parameters than [`MAX_TRACKERS`].
    #[error("at most {MAX_TRACKERS} tracker parameters")]
    TooManyTrackers,
    /// A `tracker` that is not an http(s) URL of at most [`MAX_URL`] bytes.
    #[error("tracker: an http(s) announce URL")]
    BadTracker,
    /// No `q`.
    #[error("missing q (the words to look for)")]
    MissingQuery,
    /// `q` is longer than [`MAX_QUERY_BYTES`].
    #[error("q: longer than {MAX_QUERY_BYTES} bytes")]
    QueryTooLong,
    /// `q` has more than [`MAX_QUERY_WORDS`] words.
    #[error("q: more than {MAX_QUERY_WORDS} words")]
    TooManyWords,
    /// `q` has nothing to look for.
    #[error(
        "q: {0:?} has no keyword (words of 3 or more letters or digits that are not stop words)"
    )]
    NoKeyword(String),
}

/// Parses and bounds the query string.
pub fn parse_request(raw: &str) -> Result<SearchRequest, SearchRequestError> {
    let mut q = None;
    let mut r = SearchRequest {
        query: String::new(),
        timeout: DEFAULT_TIMEOUT,
        sources: None,
        limit: DEFAULT_LIMIT,
        trackers: Vec::new(),
    };
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()).take(MAX_PARAMS) {
        match &*k {
            "q" => q = Some(v.into_owned()),
            "timeout_ms" => {
                let ms: u64 = v.parse().map_err(|_| SearchRequestError::NotANumber {
                    param: "timeout_ms",
                    value: v.to_string(),
                })?;
                r.timeout = Duration::from_millis(ms).clamp(MIN_TIMEOUT, MAX_TIMEOUT);
            }
            "limit" => {
                let n: usize = v.parse().map_err(|_| SearchRequestError::NotANumber {
                    param: "limit",
                    value: v.to_string(),
                })?;
                r.limit = n.clamp(1, shoal_search::index::MAX_RESULTS);
            }
            "sources" => {
                let mut s = Vec::new();
                for name in v.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let src = Source::parse(name)
                        .ok_or_else(|| SearchRequestError::UnknownSource(name.to_string()))?;
                    if !s.contains(&src) {
                        s.push(src);
                    }
                }
                r.sources = Some(s);
            }
            "tracker" => {
                if r.trackers.len() >= MAX_TRACKERS {
                    return Err(SearchRequestError::TooManyTrackers);
                }
                if v.len() > MAX_URL || !(v.starts_with("http://") || v.starts_with("https://")) {
                    return Err(SearchRequestError::BadTracker);
                }
                r.trackers.push(v.into_owned());
            }
            _ => {}
        }
    }
    let q = q.ok_or(SearchRequestError::MissingQuery)?;
    let q = q.trim();
    if q.len() > MAX_QUERY_BYTES {
        return Err(SearchRequestError::QueryTooLong);
    }
    if q.split_whitespace().count() > MAX_QUERY_WORDS {
        return Err(SearchRequestError::TooManyWords);
    }
    if shoal_search::query_keywords(q).is_empty() {
        return Err(SearchRequestError::NoKeyword(q.to_string()));
    }
    r.query = q.to_string();
    Ok(r)
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

/// Why one source gave no answer (each is listed in the answer's `errors`).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// `sources=dht` on a daemon without a DHT node.
    #[error("the daemon runs no DHT")]
    NoDht,
    /// `sources=flood` while the flood service is off.
    #[error("the flood service is off")]
    FloodOff,
    /// `sources=tracker` with no tracker to ask.
    #[error("no tracker: give tracker=URL or add a torrent with one")]
    NoTracker,
    /// The source did not answer within the search's timeout.
    #[error("timed out")]
    TimedOut,
    /// The DHT keyword search failed.
    #[error(transparent)]
    Dht(#[from] shoal_search::kad::KadError),
    /// The built-in tracker's index failed.
    #[error(transparent)]
    Index(#[from] shoal_search::IndexError),
    /// A tracker's `/search` failed.
    #[error(transparent)]
    Tracker(#[from] shoal_search::client::ClientError),
    /// The flood search failed.
    #[error(transparent)]
    Flood(#[from] crate::flood::FloodError),
    /// No HTTP client could be made to ask trackers.
    #[error("HTTP client: {0}")]
    HttpClient(reqwest::Error),
    /// A source's task failed.
    #[error("search task: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// One source's answer.
type Answer = (String, Result<Vec<SearchHit>, SourceError>);

/// The trackers of the daemon's torrents, deduplicated, at most [`MAX_TRACKERS`].
fn own_trackers(shared: &Shared) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in shared.session.torrents() {
        for url in crate::rpc::tiers(&h.meta()).into_iter().flatten() {
            if out.len() >= MAX_TRACKERS {
                return out;
            }
            if url.starts_with("http") && !out.contains(&url) {
                out.push(url);
            }
        }
    }
    out
}

/// The handler of `GET /api/v1/search`.
pub async fn handler(State(shared): State<Arc<Shared>>, RawQuery(raw): RawQuery) -> Response {
    bump(&shared.http.rest);
    let req = match parse_request(raw.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => {
            bump(&shared.http.refused);
            return error(StatusCode::BAD_REQUEST, e.to_string());
        }
    };
    Json(search(&shared, &req).await).into_response()
}

/// Runs `req` against its sources; the JSON answer (see the module docs).
pub async fn search(shared: &Arc<Shared>, req: &SearchRequest) -> Value {
    let explicit = req.sources.is_some();
    // The built-in tracker's index is asked directly, unless `tracker=`
    // names the trackers to ask.
    let builtin = match &shared.tracker {
        Some(t) if req.trackers.is_empty() => t.central().cloned().map(|c| {
            let url = t.urls().into_iter().next().unwrap_or_default();
            (url, c)
        }),
        _ => None,
    };
    let trackers = if req.trackers.is_empty() {
        let mut own = own_trackers(shared);
        if let Some((url, _)) = &builtin {
            own.retain(|u| u != url);
        }
        own
    } else {
        req.trackers.clone()
    };
    let sources = req.sources.clone().unwrap_or_else(|| {
        let mut s = vec![Source::Flood, Source::Local];
        if shared.session.dht().is_some() {
            s.push(Source::Dht);
        }
        if !trackers.is_empty() || builtin.is_some() {
            s.push(Source::Tracker);
        }
        s
    });
    let mut set: JoinSet<Answer> = JoinSet::new();
    let mut errors: Vec<(String, SourceError)> = Vec::new();
    let mut flood_info = Value::Null;
    let want_flood = sources.contains(&Source::Flood);
    let flood = if want_flood {
        shared.flood.clone()
    } else {
        None
    };
    for src in &sources {
        let (q, timeout, limit) = (req.query.clone(), req.timeout, req.limit);
        match src {
            Source::Flood => {}
            Source::Local => {
                let lib = crate::flood::DaemonLibrary::of(&shared.session, true);
                let hits = lib
                    .matches(&q, limit)
                    .into_iter()
                    .map(|r| {
                        let mut h = SearchHit::new(r.info_hash, r.name, "local".into());
                        h.size = Some(r.size);
                        h
                    })
                    .collect();
                set.spawn(async move { ("local".to_string(), Ok(hits)) });
            }
            Source::Dht => {
                if shared.session.dht().is_none() {
                    errors.push(("dht".into(), SourceError::NoDht));
                    continue;
                }
                let s = shared.clone();
                set.spawn(async move {
                    let r = async {
                        let dht = s.session.dht().ok_or(SourceError::NoDht)?;
                        let cfg = shoal_search::kad::KadConfig::default();
                        Ok(shoal_search::kad::search(dht, &q, &cfg).await?)
                    };
                    let r = tokio::time::timeout(timeout, r)
                        .await
                        .unwrap_or(Err(SourceError::TimedOut));
                    ("dht".to_string(), r)
                });
            }
            Source::Tracker => {
                if let Some((url, central)) = builtin.clone() {
                    let q = q.clone();
                    set.spawn(async move {
                        let r = match tokio::task::spawn_blocking(move || central.search(&q, limit))
                            .await
                        {
                            Ok(r) => r.map_err(SourceError::from),
                            Err(e) => Err(e.into()),
                        };
                        (format!("tracker {url}"), r)
                    });
                }
                if trackers.is_empty() && builtin.is_some() {
                    continue;
                }
                if trackers.is_empty() {
                    errors.push(("tracker".into(), SourceError::NoTracker));
                    continue;
                }
                let http = match reqwest::Client::builder()
                    .user_agent(concat!("shoal/", env!("CARGO_PKG_VERSION")))
                    .build()
                {
                    Ok(c) => c,
                    Err(e) => {
                        errors.push(("tracker".into(), SourceError::HttpClient(e)));
                        continue;
                    }
                };
                for t in &trackers {
                    let (http, t, q) = (http.clone(), t.clone(), q.clone());
                    set.spawn(async move {
                        let r = shoal_search::client::search_tracker(&http, &t, &q, limit, timeout)
                            .await
                            .map_err(SourceError::from);
                        (format!("tracker {t}"), r)
                    });
                }
            }
        }
    }
    let mut hits = Vec::new();
    // The flood search waits its whole timeout (answers trickle in hop by
    // hop): run it here while the other sources run in the set.
    let flood_run = async {
        match &flood {
            Some(f) => Some(f.search(&req.query, req.timeout).await),
            None => None,
        }
    };
    let deadline = tokio::time::Instant::now() + req.timeout + Duration::from_secs(1);
    let others = async {
        let mut answers = Vec::new();
        while !set.is_empty() {
            match tokio::time::timeout_at(deadline, set.join_next()).await {
                Ok(Some(Ok(a))) => answers.push(a),
                Ok(Some(Err(e))) => answers.push(("task".into(), Err(e.into()))),
                Ok(None) => break,
                Err(_) => {
                    answers.push(("search".into(), Err(SourceError::TimedOut)));
                    set.abort_all();
                    break;
                }
            }
        }
        answers
    };
    let (flood_r, answers) = tokio::join!(flood_run, others);
    match flood_r {
        Some(Ok(f)) => {
            flood_info = json!({"query_id": f.query_id, "peers": f.peers});
            hits.extend(f.hits);
        }
        Some(Err(e)) => errors.push(("flood".into(), e.into())),
        None if want_flood && explicit => {
            errors.push(("flood".into(), SourceError::FloodOff));
        }
        None => {}
    }
    for (name, r) in answers {
        match r {
            Ok(h) => hits.extend(h),
            Err(e) => errors.push((name, e)),
        }
    }
    let ranked = rank_all(&req.query, hits, req.limit);
    let results: Vec<Value> = ranked.iter().map(SearchHit::to_json).collect();
    let errs: Vec<Value> = errors
        .iter()
        .map(|(n, e)| json!({"source": n, "error": e.to_string()}))
        .collect();
    json!({"query": req.query, "results": results, "errors": errs, "flood": flood_info})
}

/// [`rank`], then the hits it drops because their name lacks every
/// keyword: the flood and local libraries match file paths too, so such a
/// hit is an answer, only a weaker one (score 0, last). At most `limit`.
fn rank_all(query: &str, hits: Vec<SearchHit>, limit: usize) -> Vec<SearchHit> {
    let mut ranked = rank(query, hits.clone());
    let have: std::collections::HashSet<String> =
        ranked.iter().map(|h| h.info_hash.clone()).collect();
    ranked.extend(
        shoal_search::hit::merge(hits)
            .into_iter()
            .filter(|h| !have.contains(&h.info_hash))
            .map(|mut h| {
                h.score = 0.0;
                h
            }),
    );
    ranked.truncate(limit);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_matched_by_file_paths_come_last() {
        let by_path = SearchHit::new([1; 20], "holiday".into(), "local".into());
        let by_name = SearchHit::new([2; 20], "Penguin Documentary".into(), "local".into());
        let r = rank_all("penguin documentary", vec![by_path.clone(), by_name], 10);
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, "Penguin Documentary");
        assert_eq!((r[1].name.as_str(), r[1].score), ("holiday", 0.0));
        assert_eq!(rank_all("penguin", vec![by_path], 0).len(), 0);
    }

    #[test]
    fn parses_and_bounds_the_request() {
        let r = parse_request(
            "q=penguin+documentary&timeout_ms=999999&sources=flood,local,flood&limit=0&tracker=http%3A%2F%2Ft%2Fannounce",
        )
        .unwrap();
        assert_eq!(r.query, "penguin documentary");
        assert_eq!(r.timeout, MAX_TIMEOUT);
        assert_eq!(r.sources, Some(vec![Source::Flood, Source::Local]));
        assert_eq!(r.limit, 1);
        assert_eq!(r.trackers, ["http://t/announce"]);
        let r = parse_request("q=debian&timeout_ms=1").unwrap();
        assert_eq!(
            (r.timeout, r.sources, r.limit),
            (MIN_TIMEOUT, None, DEFAULT_LIMIT)
        );

        assert!(parse_request("").is_err());
        assert!(parse_request("q=the+a").is_err());
        assert!(parse_request("q=debian&sources=gopher").is_err());
        assert!(parse_request("q=debian&timeout_ms=soon").is_err());
        assert!(parse_request("q=debian&tracker=file:///etc/passwd").is_err());
        let long = format!("q={}", "a".repeat(MAX_QUERY_BYTES + 1));
        assert!(parse_request(&long).is_err());
        let many = format!("q={}", vec!["word"; MAX_QUERY_WORDS + 1].join("+"));
        assert!(parse_request(&many).is_err());
        let trackers = "&tracker=http://t/a".repeat(MAX_TRACKERS + 1);
        assert!(parse_request(&format!("q=debian{trackers}")).is_err());
    }
}
