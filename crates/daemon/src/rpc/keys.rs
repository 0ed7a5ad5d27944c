//! Names in the two RPC formats. Transmission 4.1's JSON-RPC uses
//! snake_case everywhere; the classic format mixes camelCase (torrent
//! fields) and kebab-case (session settings, some arguments). Input is
//! matched by [`canon`] (lower case, separators dropped), so every spelling
//! works; output is written in snake_case and turned into the classic
//! spelling by [`legacy`] (the kebab-case list is Transmission's
//! `api-compat` table).
use super::request::Protocol;
use std::borrow::Cow;

/// The canonical form of a name: ASCII lower case without `-` and `_`.
pub fn canon(s: &str) -> String {
    s.chars()
        .filter(|&c| c != '-' && c != '_')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Snake-case names whose classic spelling is kebab-case (the rest are
/// camelCase).
const KEBAB: &[&str] = &[
    "alt_speed_down",
    "alt_speed_enabled",
    "alt_speed_time_begin",
    "alt_speed_time_day",
    "alt_speed_time_enabled",
    "alt_speed_time_end",
    "alt_speed_up",
    "anti_brute_force_enabled",
    "anti_brute_force_threshold",
    "blocklist_enabled",
    "blocklist_size",
    "blocklist_url",
    "cache_size_mib",
    "config_dir",
    "cumulative_stats",
    "current_stats",
    "default_trackers",
    "delete_local_data",
    "dht_enabled",
    "download_dir",
    "download_dir_free_space",
    "download_queue_enabled",
    "download_queue_size",
    "file_count",
    "files_unwanted",
    "files_wanted",
    "idle_seeding_limit",
    "idle_seeding_limit_enabled",
    "incomplete_dir",
    "incomplete_dir_enabled",
    "lpd_enabled",
    "memory_bytes",
    "memory_units",
    "peer_limit",
    "peer_limit_global",
    "peer_limit_per_torrent",
    "peer_port",
    "peer_port_random_on_start",
    "pex_enabled",
    "port_forwarding_enabled",
    "port_is_open",
    "primary_mime_type",
    "priority_high",
    "priority_low",
    "priority_normal",
    "queue_stalled_enabled",
    "queue_stalled_minutes",
    "recently_active",
    "rename_partial_files",
    "rpc_host_whitelist",
    "rpc_host_whitelist_enabled",
    "rpc_version",
    "rpc_version_minimum",
    "rpc_version_semver",
    "script_torrent_added_enabled",
    "script_torrent_added_filename",
    "script_torrent_done_enabled",
    "script_torrent_done_filename",
    "script_torrent_done_seeding_enabled",
    "script_torrent_done_seeding_filename",
    "seed_queue_enabled",
    "seed_queue_size",
    "session_id",
    "size_bytes",
    "size_units",
    "speed_bytes",
    "speed_limit_down",
    "speed_limit_down_enabled",
    "speed_limit_up",
    "speed_limit_up_enabled",
    "speed_units",
    "start_added_torrents",
    "tcp_enabled",
    "torrent_added",
    "torrent_duplicate",
    "trash_original_torrent_files",
    "utp_enabled",
];

/// The classic spelling of a snake_case name.
pub fn legacy(snake: &str) -> Cow<'_, str> {
    if snake == "cache_size_mib" {
        return Cow::Borrowed("cache-size-mb");
    }
    if !snake.contains('_') {
        return Cow::Borrowed(snake);
    }
    if KEBAB.binary_search(&snake).is_ok() {
        return Cow::Owned(snake.replace('_', "-"));
    }
    let mut out = String::with_capacity(snake.len());
    let mut up = false;
    for c in snake.chars() {
        if c == '_' {
            up = true;
        } else if up {
            out.push(c.to_ascii_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A snake_case name spelt for `p`.
pub fn name(p: Protocol, snake: &str) -> String {
    match p {
        Protocol::JsonRpc => snake.to_owned(),
        Protocol::Legacy => legacy(snake).into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings() {
        assert!(KEBAB.windows(2).all(|w| w[0] < w[1]), "sorted");
        assert_eq!(canon("downloadDir"), "downloaddir");
        assert_eq!(canon("download-dir"), canon("download_dir"));
        assert_eq!(legacy("hash_string"), "hashString");
        assert_eq!(legacy("peers_getting_from_us"), "peersGettingFromUs");
        assert_eq!(legacy("download_dir"), "download-dir");
        assert_eq!(
            legacy("speed_limit_down_enabled"),
            "speed-limit-down-enabled"
        );
        assert_eq!(legacy("seed_ratio_limit"), "seedRatioLimit");
        assert_eq!(legacy("cache_size_mib"), "cache-size-mb");
        assert_eq!(legacy("torrent_added"), "torrent-added");
        assert_eq!(legacy("id"), "id");
        assert_eq!(name(Protocol::JsonRpc, "hash_string"), "hash_string");
    }
}
