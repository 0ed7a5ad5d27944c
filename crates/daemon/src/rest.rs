//! shoal's own API under `/api/v1`: JSON in shoal's model (both
//! info-hashes, v2 files with their pieces roots, peers, pieces, trackers,
//! DHT statistics), server-sent events from the session's event stream at
//! `/api/v1/events`, and the OpenAPI document at `/api/v1/openapi.json`.
//! A torrent is named by its id or either info-hash in hex. Errors are
//! `{"error": "..."}` with a 4xx or 5xx status.
use crate::add::{AddError, AddRequest, AddSource};
use crate::service::bump;
use crate::Shared;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use shoal_engine::{SessionEvent, TorrentHandle};
use std::sync::Arc;
use std::time::Duration;

/// The routes (nested under `/api/v1`).
pub fn router() -> Router<Arc<Shared>> {
    Router::new()
        .route("/session", get(session))
        .route("/torrents", get(list).post(add))
        .route("/torrents/{key}", get(detail).delete(remove))
        .route("/torrents/{key}/{action}", post(action))
        .route("/torrents/{key}/peers", get(peers).post(add_peers))
        .route("/torrents/{key}/pieces", get(pieces))
        .route("/torrents/{key}/trackers", get(trackers))
        .route(
            "/torrents/{key}/files",
            get(files).post(crate::ui::set_files),
        )
        .route("/events", get(events))
        .route("/search", get(crate::search::handler))
        .route("/openapi.json", get(crate::openapi::handler))
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn find(shared: &Shared, key: &str) -> Result<TorrentHandle, Box<Response>> {
    shared
        .lookup(key)
        .ok_or_else(|| Box::new(error(StatusCode::NOT_FOUND, format!("no torrent {key}"))))
}

/// A torrent's line in shoal's model.
pub fn summary(shared: &Shared, h: &TorrentHandle) -> Value {
    let s = h.status();
    let meta = h.subscribe_meta();
    let m = meta.borrow();
    let hs = h.info_hashes();
    let a = shared.activity.get(h.id());
    json!({
        "id": h.id().0,
        "info_hash": hs.primary().to_hex(),
        "info_hash_v1": hs.v1.map(|v| v.to_hex()),
        "info_hash_v2": hs.v2.map(|v| v.to_hex()),
        "name": m.name,
        "state": s.state.name(),
        "progress": s.progress(),
        "wanted_bytes": s.wanted_bytes,
        "verified_bytes": s.verified_wanted_bytes,
        "downloaded": s.downloaded,
        "uploaded": s.uploaded,
        "corrupt": s.corrupt,
        "download_rate": s.download_rate,
        "upload_rate": s.upload_rate,
        "peers": s.peers,
        "seeds": s.seeds,
        "pieces": s.pieces,
        "pieces_have": s.pieces_have,
        "queue_position": s.queue_position,
        "finished": s.finished,
        "error": s.error.as_ref().map(|e| e.to_string()),
        "labels": m.labels,
        "save_path": m.save_path.to_string_lossy(),
        "added_at": m.added_at,
        "done_at": a.acc.done_date,
        "seconds_downloading": a.acc.seconds_downloading,
        "seconds_seeding": a.acc.seconds_seeding,
    })
}

async fn session(State(shared): State<Arc<Shared>>) -> Json<Value> {
    bump(&shared.http.rest);
    let st = shared.session.stats();
    let dht = match shared.session.dht() {
        Some(d) => json!({
            "enabled": true,
            "address": d.local_addr().to_string(),
            "node_id": d.id().to_hex(),
            "nodes": d.nodes().await.map(|n| n.len()).unwrap_or(0),
        }),
        None => json!({"enabled": false}),
    };
    let disk = shared.session.disk_stats();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "peer_id": String::from_utf8_lossy(&shared.session.peer_id().0),
        "listen": shared.session.local_addr().to_string(),
        "torrents": st.torrents,
        "dormant_torrents": st.dormant,
        "peers": st.peers,
        "download_rate": st.download_rate,
        "upload_rate": st.upload_rate,
        "downloaded": st.downloaded,
        "uploaded": st.uploaded,
        "uptime_seconds": shared.started.elapsed().as_secs(),
        "dht": dht,
        "flood": flood_json(&shared),
        "dht_publish": match &shared.publish {
            Some(p) => {
                let (published, failed) = p.get();
                json!({"enabled": true, "published": published, "failed": failed})
            }
            None => json!({"enabled": false}),
        },
        "tracker": tracker_json(&shared),
        "disk": {
            "budget": disk.budget,
            "budget_used": disk.budget_used,
            "partial_pieces": disk.partial_pieces,
            "open_files": disk.open_files,
            "read_cache_bytes": disk.read_cache_bytes,
        },
        "settings": shared.settings(),
    }))
}

async fn list(State(shared): State<Arc<Shared>>) -> Json<Value> {
    bump(&shared.http.rest);
    let v: Vec<Value> = shared
        .session
        .torrents()
        .iter()
        .map(|h| summary(&shared, h))
        .collect();
    Json(Value::Array(v))
}

/// The body of `POST /api/v1/torrents`: one of `magnet`, `url`, `path` or
/// `metainfo` (base64).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
    magnet: Option<String>,
    url: Option<String>,
    path: Option<String>,
    metainfo: Option<String>,
    download_dir: Option<String>,
    paused: Option<bool>,
    #[serde(default)]
    labels: Vec<String>,
}

async fn add(State(shared): State<Arc<Shared>>, body: axum::body::Bytes) -> Response {
    bump(&shared.http.rest);
    let b: AddBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    let source = match (b.magnet, b.url, b.path, b.metainfo) {
        (Some(m), None, None, None) => AddSource::Magnet(m),
        (None, Some(u), None, None) => AddSource::Url(u),
        (None, None, Some(p), None) => AddSource::Path(p.into()),
        (None, None, None, Some(m)) => {
            match base64::engine::general_purpose::STANDARD.decode(m.trim()) {
                Ok(b) => AddSource::Metainfo(b),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!("metainfo: bad base64: {e}"),
                    )
                }
            }
        }
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "give exactly one of magnet, url, path, metainfo",
            )
        }
    };
    let mut req = AddRequest::new(source);
    req.download_dir = b.download_dir;
    req.paused = b.paused;
    req.labels = b.labels;
    match shared.add(req).await {
        Ok(a) => {
            let mut v = summary(&shared, &a.handle);
            v["duplicate"] = json!(a.duplicate);
            let status = if a.duplicate {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            (status, Json(v)).into_response()
        }
        Err(e) => {
            let status = match e {
                AddError::Engine(_) | AddError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
                AddError::Fetch { .. } => StatusCode::BAD_GATEWAY,
                _ => StatusCode::BAD_REQUEST,
            };
            error(status, e.to_string())
        }
    }
}

async fn detail(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let mut v = summary(&shared, &h);
    let m = h.meta();
    if let Some(t) = &m.torrent {
        v["piece_length"] = json!(t.piece_length());
        v["total_length"] = json!(t.total_length());
        v["private"] = json!(t.is_private());
        v["version"] = json!(format!("{:?}", t.version()).to_lowercase());
        v["comment"] = json!(t.comment());
        v["magnet"] = json!(t.magnet().to_uri());
    }
    v["trackers"] = json!(crate::rpc::tiers(&m));
    v["limits"] = json!({
        "max_upload_rate": m.limits.max_upload_rate,
        "max_download_rate": m.limits.max_download_rate,
        "max_peers": m.limits.max_peers,
        "seed_ratio": format!("{:?}", m.limits.seed_ratio),
        "seed_idle": format!("{:?}", m.limits.seed_idle),
        "honors_session_limits": !m.limits.bypass_session_limits,
        "group": m.group,
    });
    Json(v).into_response()
}

#[derive(Debug, Deserialize)]
struct RemoveQuery {
    #[serde(default)]
    delete_data: bool,
}

async fn remove(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    Query(q): Query<RemoveQuery>,
) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    match shared.remove(&h, q.delete_data).await {
        Ok(()) => Json(json!({"removed": h.id().0})).into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn action(
    State(shared): State<Arc<Shared>>,
    Path((key, action)): Path<(String, String)>,
) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let r = match action.as_str() {
        "pause" => h.pause().await,
        "resume" => h.resume().await,
        "start_now" => h.start_now().await,
        "recheck" => h.recheck().await,
        "reannounce" => h.reannounce().await,
        _ => return error(StatusCode::NOT_FOUND, format!("no action {action:?}")),
    };
    match r {
        Ok(()) => Json(summary(&shared, &h)).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

async fn peers(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let peers = h.peers().await.unwrap_or_default();
    Json(Value::Array(
        peers
            .iter()
            .map(|p| {
                json!({
                    "address": p.addr.to_string(),
                    "client": p.client,
                    "origin": format!("{:?}", p.origin).to_lowercase(),
                    "connected": p.connected,
                    "am_choking": p.am_choking,
                    "am_interested": p.am_interested,
                    "peer_choking": p.peer_choking,
                    "peer_interested": p.peer_interested,
                    "snubbed": p.snubbed,
                    "download_rate": p.download_rate,
                    "upload_rate": p.upload_rate,
                    "progress": p.progress,
                    "requests": p.requests,
                    "transport": p.transport,
                    "encrypted": p.encrypted,
                })
            })
            .collect(),
    ))
    .into_response()
}

/// Most addresses in one `POST /torrents/{key}/peers`.
const MAX_ADDED_PEERS: usize = 200;

/// The body of `POST /api/v1/torrents/{key}/peers`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddPeersBody {
    peers: Vec<String>,
}

/// Gives a torrent peer addresses to connect to (`ip:port`).
async fn add_peers(
    State(shared): State<Arc<Shared>>,
    Path(key): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let b: AddPeersBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("bad request body: {e}")),
    };
    if b.peers.len() > MAX_ADDED_PEERS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("at most {MAX_ADDED_PEERS} peers"),
        );
    }
    let mut addrs = Vec::with_capacity(b.peers.len());
    for p in &b.peers {
        match p.parse::<std::net::SocketAddr>() {
            Ok(a) => addrs.push(a),
            Err(_) => return error(StatusCode::BAD_REQUEST, format!("not an ip:port: {p:?}")),
        }
    }
    let n = addrs.len();
    match h.add_peers(addrs).await {
        Ok(()) => Json(json!({"added": n})).into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

/// The built-in tracker's state for `/api/v1/session`.
fn tracker_json(shared: &Shared) -> Value {
    let Some(t) = &shared.tracker else {
        return json!({"enabled": false});
    };
    let totals = t.server().swarms().totals();
    json!({
        "enabled": true,
        "announce": t.urls(),
        "http": t.server().http_addr().map(|a| a.to_string()),
        "udp": t.server().udp_addr().map(|a| a.to_string()),
        "torrents": totals.torrents,
        "peers": totals.peers,
        "indexed": t.central().map(|c| c.index().len()),
    })
}

/// The flood search service's state for `/api/v1/session`.
fn flood_json(shared: &Shared) -> Value {
    match &shared.flood {
        Some(f) => {
            let c = f.counters();
            json!({
                "enabled": true,
                "peers": f.peers(),
                "queries_in": c.queries_in,
                "answered": c.answered,
                "duplicates": c.duplicates,
                "rate_limited": c.rate_limited,
                "forwarded": c.forwarded,
                "results_dropped": c.results_dropped,
            })
        }
        None => json!({"enabled": false}),
    }
}

async fn pieces(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let b = h
        .pieces()
        .await
        .unwrap_or_else(|_| shoal_wire::Bitfield::new(0));
    Json(json!({
        "count": b.len(),
        "have": b.count_ones(),
        "bitfield": base64::engine::general_purpose::STANDARD.encode(b.as_bytes()),
    }))
    .into_response()
}

async fn trackers(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let t = h.trackers().await.unwrap_or_default();
    Json(Value::Array(
        t.iter()
            .map(|t| {
                json!({
                    "url": t.url, "tier": t.tier, "announces_ok": t.announces_ok,
                    "announces_failed": t.announces_failed, "last_error": t.last_error,
                    "warning": t.warning, "seeders": t.seeders, "leechers": t.leechers,
                    "last_peers": t.last_peers, "last_announce": t.last_announce,
                    "next_announce": t.next_announce, "announcing": t.announcing,
                })
            })
            .collect(),
    ))
    .into_response()
}

async fn files(State(shared): State<Arc<Shared>>, Path(key): Path<String>) -> Response {
    bump(&shared.http.rest);
    let h = match find(&shared, &key) {
        Ok(h) => h,
        Err(r) => return *r,
    };
    let m = h.meta();
    let Some(t) = &m.torrent else {
        return Json(json!([])).into_response();
    };
    let progress = h.file_progress().await.unwrap_or_default();
    Json(Value::Array(
        t.files()
            .iter()
            .enumerate()
            .map(|(i, f)| {
                json!({
                    "index": i,
                    "path": f.path_string(),
                    "length": f.length,
                    "pad": f.pad,
                    "pieces_root": f.pieces_root.map(hex::encode),
                    "verified_bytes": progress.get(i).copied().unwrap_or(0),
                    "priority": m.file_priorities.get(i).copied().unwrap_or(1),
                    "stream_url": (!f.pad).then(|| crate::stream::stream_path(&h, i)),
                })
            })
            .collect(),
    ))
    .into_response()
}

/// An engine event as JSON: `{"type": "...", "id": N, ...}`.
pub fn event_json(e: &SessionEvent) -> (&'static str, Value) {
    match e {
        SessionEvent::Added { id, name } => ("added", json!({"id": id.0, "name": name})),
        SessionEvent::MetadataReceived { id, name } => {
            ("metadata", json!({"id": id.0, "name": name}))
        }
        SessionEvent::StateChanged { id, state } => {
            ("state", json!({"id": id.0, "state": state.name()}))
        }
        SessionEvent::Progress {
            id,
            verified_wanted_bytes,
            wanted_bytes,
            download_rate,
            upload_rate,
            peers,
        } => (
            "progress",
            json!({
                "id": id.0, "verified_bytes": verified_wanted_bytes, "wanted_bytes": wanted_bytes,
                "download_rate": download_rate, "upload_rate": upload_rate, "peers": peers,
            }),
        ),
        SessionEvent::Completed { id } => ("completed", json!({"id": id.0})),
        SessionEvent::Error { id, error } => {
            ("error", json!({"id": id.0, "error": error.to_string()}))
        }
        SessionEvent::Removed { id } => ("removed", json!({"id": id.0})),
        other => ("other", json!({"id": other.id().0})),
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>> {
    bump(&shared.http.rest);
    let rx = shared.session.subscribe();
    let cancel = shared.cancel.clone();
    let stream = futures_util::stream::unfold((rx, cancel), |(mut rx, cancel)| async move {
        let ev = tokio::select! {
            _ = cancel.cancelled() => return None,
            r = rx.recv() => r,
        };
        let event = match ev {
            Ok(e) => {
                let (kind, data) = event_json(&e);
                Event::default().event(kind).data(data.to_string())
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => Event::default()
                .event("lagged")
                .data(json!({"missed": n}).to_string()),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), (rx, cancel)))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
