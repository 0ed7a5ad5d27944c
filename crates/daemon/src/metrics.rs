//! `/metrics`: Prometheus text format. Session totals and rates, torrents
//! by state, peers, DHT nodes, the disk pool, errors and HTTP counters.
//! Names follow the Transmission and qBittorrent exporters, prefixed
//! `shoal_`. Per-torrent series (`shoal_torrent_*{info_hash,name}`) only
//! with `metrics-per-torrent` (10,000 torrents make 10,000 series each).
use crate::Shared;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use shoal_engine::TorrentState;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const STATES: [TorrentState; 8] = [
    TorrentState::Checking,
    TorrentState::FetchingMetadata,
    TorrentState::Queued,
    TorrentState::Downloading,
    TorrentState::Seeding,
    TorrentState::Paused,
    TorrentState::Error,
    TorrentState::Stopped,
];

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// A label value escaped for the text format.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The whole text.
pub async fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(4096);
    let st = shared.session.stats();
    metric(
        &mut out,
        "shoal_session_dormant_torrents",
        "gauge",
        "Torrents dormant now (seeding or paused with nothing to do: no transfer state held).",
        st.dormant,
    );
    metric(
        &mut out,
        "shoal_session_download_speed_bytes",
        "gauge",
        "Download rate of all torrents, payload bytes per second.",
        st.download_rate,
    );
    metric(
        &mut out,
        "shoal_session_upload_speed_bytes",
        "gauge",
        "Upload rate of all torrents, payload bytes per second.",
        st.upload_rate,
    );
    let cur = shared.activity.current();
    metric(
        &mut out,
        "shoal_session_downloaded_bytes_total",
        "counter",
        "Payload bytes received since the daemon started.",
        cur.downloaded,
    );
    metric(
        &mut out,
        "shoal_session_uploaded_bytes_total",
        "counter",
        "Payload bytes sent since the daemon started.",
        cur.uploaded,
    );
    let cum = shared.activity.cumulative();
    metric(
        &mut out,
        "shoal_cumulative_downloaded_bytes_total",
        "counter",
        "Payload bytes received over every run.",
        cum.downloaded,
    );
    metric(
        &mut out,
        "shoal_cumulative_uploaded_bytes_total",
        "counter",
        "Payload bytes sent over every run.",
        cum.uploaded,
    );
    metric(
        &mut out,
        "shoal_uptime_seconds",
        "gauge",
        "Seconds since the daemon started.",
        shared.started.elapsed().as_secs(),
    );
    let handles = shared.session.torrents();
    let mut by_state = [0u64; STATES.len()];
    let (mut failed, mut corrupt, mut seeds) = (0u64, 0u64, 0usize);
    let mut per_torrent = String::new();
    for h in &handles {
        let s = h.status();
        if let Some(i) = STATES.iter().position(|x| *x == s.state) {
            by_state[i] += 1;
        }
        failed += s.pieces_failed;
        corrupt += s.corrupt;
        seeds += s.seeds;
        if shared.config.metrics_per_torrent {
            let name = label(&h.subscribe_meta().borrow().name);
            let hash = h.info_hashes().primary().to_hex();
            for (m, v) in [
                ("shoal_torrent_downloaded_bytes", s.downloaded),
                ("shoal_torrent_uploaded_bytes", s.uploaded),
                ("shoal_torrent_download_speed_bytes", s.download_rate),
                ("shoal_torrent_upload_speed_bytes", s.upload_rate),
                ("shoal_torrent_peers", s.peers as u64),
            ] {
                let _ = writeln!(
                    per_torrent,
                    "{m}{{info_hash=\"{hash}\",name=\"{name}\"}} {v}"
                );
            }
            let _ = writeln!(
                per_torrent,
                "shoal_torrent_progress{{info_hash=\"{hash}\",name=\"{name}\"}} {}",
                s.progress()
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP shoal_torrents Torrents by state.\n# TYPE shoal_torrents gauge"
    );
    for (i, s) in STATES.iter().enumerate() {
        let _ = writeln!(
            out,
            "shoal_torrents{{state=\"{}\"}} {}",
            s.name().replace(' ', "_"),
            by_state[i]
        );
    }
    metric(
        &mut out,
        "shoal_torrents_total",
        "gauge",
        "Torrents in the session.",
        handles.len(),
    );
    metric(
        &mut out,
        "shoal_peers_connected",
        "gauge",
        "Connected peers, all torrents.",
        st.peers,
    );
    metric(
        &mut out,
        "shoal_peers_seeds",
        "gauge",
        "Connected peers that have every piece.",
        seeds,
    );
    metric(
        &mut out,
        "shoal_pieces_failed_total",
        "counter",
        "Pieces that failed their hash check.",
        failed,
    );
    metric(
        &mut out,
        "shoal_corrupt_bytes_total",
        "counter",
        "Payload bytes of pieces that failed their hash check.",
        corrupt,
    );
    metric(
        &mut out,
        "shoal_torrents_errored",
        "gauge",
        "Torrents stopped by an error.",
        by_state[6],
    );
    let nodes = match shared.session.dht() {
        Some(d) => d.nodes().await.map(|n| n.len()).unwrap_or(0),
        None => 0,
    };
    metric(
        &mut out,
        "shoal_dht_nodes",
        "gauge",
        "Nodes in the DHT routing table.",
        nodes,
    );
    if let Some(p) = &shared.publish {
        let (published, failed) = p.get();
        metric(
            &mut out,
            "shoal_dht_index_published_total",
            "counter",
            "Torrents published in the DHT keyword index (republications too).",
            published,
        );
        metric(
            &mut out,
            "shoal_dht_index_publish_failed_total",
            "counter",
            "Publications in the DHT keyword index that stored nothing.",
            failed,
        );
    }
    if let Some(t) = &shared.tracker {
        // The tracker's own counters (announces, scrapes, rates) are on its
        // HTTP port's /metrics, as with `shoal tracker`.
        let totals = t.server().swarms().totals();
        for (name, help, v) in [
            (
                "shoal_tracker_torrents",
                "Torrents the built-in tracker holds.",
                totals.torrents,
            ),
            (
                "shoal_tracker_peers",
                "Peers the built-in tracker holds.",
                totals.peers,
            ),
            (
                "shoal_tracker_seeders",
                "Seeders among the built-in tracker's peers.",
                totals.seeders,
            ),
        ] {
            metric(&mut out, name, "gauge", help, v);
        }
    }
    let disk = shared.session.disk_stats();
    metric(
        &mut out,
        "shoal_disk_budget_bytes",
        "gauge",
        "The disk pool's memory budget.",
        disk.budget,
    );
    metric(
        &mut out,
        "shoal_disk_queued_bytes",
        "gauge",
        "Bytes of the disk budget held (data waiting to be hashed or written).",
        disk.budget_used,
    );
    metric(
        &mut out,
        "shoal_disk_partial_pieces",
        "gauge",
        "Pieces with some blocks received.",
        disk.partial_pieces,
    );
    metric(
        &mut out,
        "shoal_disk_open_files",
        "gauge",
        "Open data files.",
        disk.open_files,
    );
    metric(
        &mut out,
        "shoal_disk_read_cache_bytes",
        "gauge",
        "Bytes in the upload read cache.",
        disk.read_cache_bytes,
    );
    for (name, help, v) in [
        (
            "shoal_disk_pieces_verified_total",
            "Pieces that passed their hash check.",
            disk.pieces_verified,
        ),
        (
            "shoal_disk_pieces_failed_total",
            "Pieces that failed their hash check.",
            disk.pieces_failed,
        ),
        (
            "shoal_disk_read_cache_hits_total",
            "Upload reads served from the read cache.",
            disk.read_cache_hits,
        ),
        (
            "shoal_disk_read_cache_misses_total",
            "Upload reads that went to disk.",
            disk.read_cache_misses,
        ),
        (
            "shoal_disk_upload_file_blocks_total",
            "Upload blocks sent from their files with sendfile (no copy).",
            disk.file_blocks,
        ),
    ] {
        metric(&mut out, name, "counter", help, v);
    }
    metric(
        &mut out,
        "shoal_http_rpc_requests_total",
        "counter",
        "Transmission RPC requests answered.",
        shared.http.rpc.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "shoal_http_api_requests_total",
        "counter",
        "REST API requests answered.",
        shared.http.rest.load(Ordering::Relaxed),
    );
    metric(
        &mut out,
        "shoal_http_refused_total",
        "counter",
        "HTTP requests refused (auth, host, origin, bad input).",
        shared.http.refused.load(Ordering::Relaxed),
    );
    if !per_torrent.is_empty() {
        out.push_str(&per_torrent);
    }
    out
}

/// The handler.
pub async fn handler(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&shared).await,
    )
}
