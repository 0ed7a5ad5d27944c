//! Transmission's RPC specification (`docs/rpc-spec.md`, sections 3.3 and
//! 4.1) walked key by key: every `torrent-get` field and every
//! `session-get` key it lists is answered, with the type it names, in
//! Transmission 4.1's JSON-RPC 2.0 format (snake_case names, exactly as
//! asked) and in the classic format (its camelCase and kebab-case names).

use crate::common::*;
use serde_json::{json, Value};
use shoal_daemon::Daemon;

/// The spec's value types.
#[derive(Debug, Clone, Copy)]
enum T {
    Num,
    Str,
    Bool,
    Arr,
    Obj,
}

/// Section 3.3's table: every `torrent_get` key and its type.
const TORRENT_FIELDS: &[(&str, T)] = &[
    ("activity_date", T::Num),
    ("added_date", T::Num),
    ("availability", T::Arr),
    ("bandwidth_priority", T::Num),
    ("comment", T::Str),
    ("corrupt_ever", T::Num),
    ("creator", T::Str),
    ("date_created", T::Num),
    ("desired_available", T::Num),
    ("done_date", T::Num),
    ("download_dir", T::Str),
    ("downloaded_ever", T::Num),
    ("download_limit", T::Num),
    ("download_limited", T::Bool),
    ("edit_date", T::Num),
    ("error", T::Num),
    ("error_string", T::Str),
    ("eta", T::Num),
    ("eta_idle", T::Num),
    ("file_count", T::Num),
    ("files", T::Arr),
    ("file_stats", T::Arr),
    ("group", T::Str),
    ("hash_string", T::Str),
    ("have_unchecked", T::Num),
    ("have_valid", T::Num),
    ("honors_session_limits", T::Bool),
    ("id", T::Num),
    ("is_finished", T::Bool),
    ("is_private", T::Bool),
    ("is_stalled", T::Bool),
    ("labels", T::Arr),
    ("left_until_done", T::Num),
    ("magnet_link", T::Str),
    ("manual_announce_time", T::Num),
    ("max_connected_peers", T::Num),
    ("metadata_percent_complete", T::Num),
    ("name", T::Str),
    ("peer_limit", T::Num),
    ("peers", T::Arr),
    ("peers_connected", T::Num),
    ("peers_from", T::Obj),
    ("peers_getting_from_us", T::Num),
    ("peers_sending_to_us", T::Num),
    ("percent_complete", T::Num),
    ("percent_done", T::Num),
    ("pieces", T::Str),
    ("piece_count", T::Num),
    ("piece_size", T::Num),
    ("priorities", T::Arr),
    ("primary_mime_type", T::Str),
    ("queue_position", T::Num),
    ("rate_download", T::Num),
    ("rate_upload", T::Num),
    ("recheck_progress", T::Num),
    ("seconds_downloading", T::Num),
    ("seconds_seeding", T::Num),
    ("seed_idle_limit", T::Num),
    ("seed_idle_mode", T::Num),
    ("seed_ratio_limit", T::Num),
    ("seed_ratio_mode", T::Num),
    ("sequential_download", T::Bool),
    ("size_when_done", T::Num),
    ("start_date", T::Num),
    ("status", T::Num),
    ("torrent_file", T::Str),
    ("total_size", T::Num),
    ("trackers", T::Arr),
    ("tracker_list", T::Str),
    ("tracker_stats", T::Arr),
    ("uploaded_ever", T::Num),
    ("upload_limit", T::Num),
    ("upload_limited", T::Bool),
    ("upload_ratio", T::Num),
    ("wanted", T::Arr),
    ("webseeds", T::Arr),
    ("webseeds_sending_to_us", T::Num),
];

/// The keys of the objects inside `files`, `file_stats`, `peers_from`,
/// `trackers` and `tracker_stats`.
const NESTED: &[(&str, &[&str])] = &[
    (
        "files",
        &[
            "bytes_completed",
            "length",
            "name",
            "begin_piece",
            "end_piece",
        ],
    ),
    ("file_stats", &["bytes_completed", "wanted", "priority"]),
    (
        "peers_from",
        &[
            "from_cache",
            "from_dht",
            "from_incoming",
            "from_lpd",
            "from_ltep",
            "from_pex",
            "from_tracker",
        ],
    ),
    (
        "trackers",
        &["announce", "id", "scrape", "sitename", "tier"],
    ),
    (
        "tracker_stats",
        &[
            "announce",
            "announce_state",
            "download_count",
            "has_announced",
            "has_scraped",
            "host",
            "id",
            "is_backup",
            "last_announce_peer_count",
            "last_announce_result",
            "last_announce_start_time",
            "last_announce_succeeded",
            "last_announce_time",
            "last_announce_timed_out",
            "last_scrape_result",
            "last_scrape_start_time",
            "last_scrape_succeeded",
            "last_scrape_time",
            "last_scrape_timed_out",
            "leecher_count",
            "next_announce_time",
            "next_scrape_time",
            "scrape",
            "scrape_state",
            "seeder_count",
            "sitename",
            "tier",
        ],
    ),
];

/// Section 4.1's table: every session argument `session-get` returns, as
/// the spec spells it, and its type.
const SESSION_KEYS: &[(&str, T)] = &[
    ("alt_speed_down", T::Num),
    ("alt_speed_enabled", T::Bool),
    ("alt_speed_time_begin", T::Num),
    ("alt_speed_time_day", T::Num),
    ("alt_speed_time_enabled", T::Bool),
    ("alt_speed_time_end", T::Num),
    ("alt_speed_up", T::Num),
    ("blocklist_enabled", T::Bool),
    ("blocklist_size", T::Num),
    ("blocklist_url", T::Str),
    // Transmission 4.1 renamed it `cache_size_mib`; the classic name is
    // `cache-size-mb`.
    ("cache_size_mb|cache_size_mib", T::Num),
    ("config_dir", T::Str),
    ("default_trackers", T::Str),
    ("dht_enabled", T::Bool),
    ("download_dir", T::Str),
    ("download_queue_enabled", T::Bool),
    ("download_queue_size", T::Num),
    ("encryption", T::Str),
    ("idle_seeding_limit", T::Num),
    ("idle_seeding_limit_enabled", T::Bool),
    ("incomplete_dir", T::Str),
    ("incomplete_dir_enabled", T::Bool),
    ("lpd_enabled", T::Bool),
    ("peer_limit_global", T::Num),
    ("peer_limit_per_torrent", T::Num),
    ("peer_port_random_on_start", T::Bool),
    ("peer_port", T::Num),
    ("pex_enabled", T::Bool),
    ("port_forwarding_enabled", T::Bool),
    ("queue_stalled_enabled", T::Bool),
    ("queue_stalled_minutes", T::Num),
    ("rename_partial_files", T::Bool),
    ("rpc_version_minimum", T::Num),
    ("rpc-version-semver", T::Str),
    ("rpc-version", T::Num),
    ("script-torrent-added-enabled", T::Bool),
    ("script-torrent-added-filename", T::Str),
    ("script-torrent-done-enabled", T::Bool),
    ("script-torrent-done-filename", T::Str),
    ("script-torrent-done-seeding-enabled", T::Bool),
    ("script-torrent-done-seeding-filename", T::Str),
    ("seed-queue-enabled", T::Bool),
    ("seed-queue-size", T::Num),
    ("seed_ratio_limit", T::Num),
    ("seedRatioLimited", T::Bool),
    ("session-id", T::Str),
    ("speed-limit-down-enabled", T::Bool),
    ("speed-limit-down", T::Num),
    ("speed-limit-up-enabled", T::Bool),
    ("speed-limit-up", T::Num),
    ("start-added-torrents", T::Bool),
    ("trash-original-torrent-files", T::Bool),
    ("units", T::Obj),
    ("utp-enabled", T::Bool),
    ("version", T::Str),
];

fn canon(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '-' && c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The classic (Transmission 4.0) name of a torrent field.
fn classic(snake: &str) -> String {
    if ["file_count", "peer_limit", "primary_mime_type"].contains(&snake) {
        return snake.replace('_', "-");
    }
    let mut out = String::new();
    let mut up = false;
    for c in snake.chars() {
        match c {
            '_' => up = true,
            c if up => {
                out.push(c.to_ascii_uppercase());
                up = false;
            }
            c => out.push(c),
        }
    }
    out
}

fn has_type(v: &Value, t: T) -> bool {
    match t {
        T::Num => v.is_number(),
        T::Str => v.is_string(),
        T::Bool => v.is_boolean(),
        T::Arr => v.is_array(),
        T::Obj => v.is_object(),
    }
}

/// The value of `key` (or of one of its `|`-separated spellings) in
/// `obj`, matched by its canonical form.
fn lookup<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let want: Vec<String> = key.split('|').map(canon).collect();
    obj.as_object()?
        .iter()
        .find(|(k, _)| want.contains(&canon(k)))
        .map(|(_, v)| v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_field_of_the_spec_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let (bytes, t, src) = make_torrent(root, "spec.bin", 100_000, 9);
    let d = Daemon::start(config(root)).await.unwrap();
    let mut rpc = Rpc::new(&d);
    let hash = t.info_hashes().v1.unwrap().to_hex();
    rpc.ok(
        "torrent-add",
        json!({"metainfo": b64(&bytes), "download-dir": src.to_str().unwrap()}),
    )
    .await;
    // A tracker, so that `trackers` and `tracker_stats` have a row.
    rpc.ok(
        "torrent-set",
        json!({"ids": [hash], "trackerList": "http://127.0.0.1:9/announce"}),
    )
    .await;
    let end = tokio::time::Instant::now() + LIMIT;
    loop {
        let a = rpc
            .ok("torrent-get", json!({"ids": [hash], "fields": ["status"]}))
            .await;
        if a["torrents"][0]["status"] == 6 {
            break;
        }
        assert!(tokio::time::Instant::now() < end, "never seeding: {a}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // JSON-RPC 2.0, snake_case: the answer names exactly what was asked.
    let fields: Vec<&str> = TORRENT_FIELDS.iter().map(|(n, _)| *n).collect();
    let r = rpc.jsonrpc("torrent_get", json!({"fields": fields})).await;
    let tor = &r["torrents"][0];
    let mut missing = Vec::new();
    for (name, ty) in TORRENT_FIELDS {
        match tor.get(*name) {
            Some(v) if has_type(v, *ty) => {}
            Some(v) => missing.push(format!("{name}: {ty:?} expected, got {v}")),
            None => missing.push(format!("{name}: missing")),
        }
    }
    for (name, keys) in NESTED {
        let first = match &tor[*name] {
            Value::Array(a) => a.first().cloned().unwrap_or(Value::Null),
            v => v.clone(),
        };
        for k in *keys {
            if first.get(*k).is_none() {
                missing.push(format!("{name}.{k}: missing in {first}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "torrent_get (JSON-RPC):\n{}",
        missing.join("\n")
    );
    assert_eq!(tor["hash_string"], hash.as_str());
    assert_eq!(tor["total_size"], 100_000);
    assert_eq!(tor["percent_done"], 1.0);
    assert_eq!(tor["file_count"], 1);
    assert_eq!(
        tor["trackers"][0]["announce"],
        "http://127.0.0.1:9/announce"
    );

    // The classic format, with the names transmission-remote 4.0 sends.
    let classic_fields: Vec<String> = fields.iter().map(|f| classic(f)).collect();
    let a = rpc
        .ok("torrent-get", json!({"fields": classic_fields}))
        .await;
    let tor = &a["torrents"][0];
    let absent: Vec<&String> = classic_fields
        .iter()
        .filter(|f| tor.get(f.as_str()).is_none())
        .collect();
    assert!(
        absent.is_empty(),
        "torrent-get (classic) lacks {absent:?}: {tor}"
    );

    // session-get: every key of 4.1, in both formats.
    for s in [
        rpc.ok("session-get", Value::Null).await,
        rpc.jsonrpc("session_get", json!({})).await,
    ] {
        let mut wrong = Vec::new();
        for (key, ty) in SESSION_KEYS {
            match lookup(&s, key) {
                Some(v) if has_type(v, *ty) => {}
                Some(v) => wrong.push(format!("{key}: {ty:?} expected, got {v}")),
                None => wrong.push(format!("{key}: missing")),
            }
        }
        assert!(wrong.is_empty(), "session-get:\n{}\n{s}", wrong.join("\n"));
        let units = lookup(&s, "units").unwrap();
        for k in [
            "speed-units",
            "speed-bytes",
            "size-units",
            "size-bytes",
            "memory-units",
            "memory-bytes",
        ] {
            assert!(lookup(units, k).is_some(), "units.{k} missing: {units}");
        }
    }
    d.shutdown().await;
}
