//! The session methods: `session-get` (every setting transmission-remote
//! `-si` and the *arr apps read), `session-set` (the settings shoal acts on;
//! the others are accepted and ignored, as a Transmission without that
//! feature would), `session-stats`, `free-space` and `port-test`.
use super::keys::{canon, name};
use super::{
    Args, Protocol, RpcError, RPC_VERSION, RPC_VERSION_MINIMUM, RPC_VERSION_SEMVER, VERSION,
};
use crate::paths::check_dir;
use crate::Shared;
use serde_json::{json, Map, Value};
use shoal_engine::TorrentState;
use std::path::Path;

/// Free and total bytes of the filesystem holding `p`.
pub fn free_space_of(p: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a valid out pointer.
    let r = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = s.f_frsize as u64;
    Ok((
        (s.f_bavail as u64).saturating_mul(frsize),
        (s.f_blocks as u64).saturating_mul(frsize),
    ))
}

/// Every `session-get` value, by snake_case name.
fn all(shared: &Shared, p: Protocol) -> Vec<(&'static str, Value)> {
    let s = shared.settings();
    let c = &shared.config;
    let units = json!({
        name(p, "speed_units"): ["kB/s", "MB/s", "GB/s", "TB/s"],
        name(p, "speed_bytes"): 1000,
        name(p, "size_units"): ["kB", "MB", "GB", "TB"],
        name(p, "size_bytes"): 1000,
        name(p, "memory_units"): ["KiB", "MiB", "GiB", "TiB"],
        name(p, "memory_bytes"): 1024,
    });
    let free = free_space_of(&s.download_dir).map(|f| f.0).unwrap_or(0);
    // Transmission's names: `preferred`, `required`, and `tolerated`
    // (`allowed` in 4.1's JSON-RPC) for plain connections first.
    let encryption = match (c.encryption, p) {
        (crate::config::Encryption::Prefer, _) => "preferred",
        (crate::config::Encryption::Require, _) => "required",
        (crate::config::Encryption::Disable, Protocol::Legacy) => "tolerated",
        (crate::config::Encryption::Disable, Protocol::JsonRpc) => "allowed",
    };
    vec![
        ("alt_speed_down", json!(50)),
        ("alt_speed_enabled", json!(false)),
        ("alt_speed_time_begin", json!(540)),
        ("alt_speed_time_day", json!(127)),
        ("alt_speed_time_enabled", json!(false)),
        ("alt_speed_time_end", json!(1020)),
        ("alt_speed_up", json!(50)),
        ("anti_brute_force_enabled", json!(false)),
        ("anti_brute_force_threshold", json!(100)),
        ("blocklist_enabled", json!(false)),
        ("blocklist_size", json!(0)),
        ("blocklist_url", json!("")),
        ("cache_size_mib", json!(4)),
        ("config_dir", json!(c.state_dir.to_string_lossy())),
        ("default_trackers", json!("")),
        ("dht_enabled", json!(shared.session.dht().is_some())),
        ("download_dir", json!(s.download_dir.to_string_lossy())),
        ("download_dir_free_space", json!(free)),
        ("download_queue_enabled", json!(s.download_queue_enabled)),
        ("download_queue_size", json!(s.download_queue_size)),
        ("encryption", json!(encryption)),
        ("idle_seeding_limit", json!(s.idle_seeding_limit)),
        (
            "idle_seeding_limit_enabled",
            json!(s.idle_seeding_limit_enabled),
        ),
        ("incomplete_dir", json!(s.download_dir.to_string_lossy())),
        ("incomplete_dir_enabled", json!(false)),
        ("lpd_enabled", json!(c.lsd)),
        ("peer_limit_global", json!(c.peer_limit_global)),
        ("peer_limit_per_torrent", json!(c.peer_limit_per_torrent)),
        ("peer_port", json!(shared.session.local_addr().port())),
        ("peer_port_random_on_start", json!(false)),
        ("pex_enabled", json!(true)),
        ("port_forwarding_enabled", json!(false)),
        ("preferred_transports", json!(transports(c.utp, c.tcp))),
        ("queue_stalled_enabled", json!(false)),
        ("queue_stalled_minutes", json!(30)),
        ("rename_partial_files", json!(false)),
        ("rpc_version", json!(RPC_VERSION)),
        ("rpc_version_minimum", json!(RPC_VERSION_MINIMUM)),
        ("rpc_version_semver", json!(RPC_VERSION_SEMVER)),
        ("script_torrent_added_enabled", json!(false)),
        ("script_torrent_added_filename", json!("")),
        ("script_torrent_done_enabled", json!(false)),
        ("script_torrent_done_filename", json!("")),
        ("script_torrent_done_seeding_enabled", json!(false)),
        ("script_torrent_done_seeding_filename", json!("")),
        ("seed_queue_enabled", json!(false)),
        ("seed_queue_size", json!(10)),
        ("seed_ratio_limit", json!(s.seed_ratio_limit)),
        ("seed_ratio_limited", json!(s.seed_ratio_limited)),
        ("sequential_download", json!(false)),
        ("session_id", json!(shared.session_id)),
        ("speed_limit_down", json!(s.speed_limit_down)),
        (
            "speed_limit_down_enabled",
            json!(s.speed_limit_down_enabled),
        ),
        ("speed_limit_up", json!(s.speed_limit_up)),
        ("speed_limit_up_enabled", json!(s.speed_limit_up_enabled)),
        ("start_added_torrents", json!(s.start_added_torrents)),
        ("tcp_enabled", json!(true)),
        ("trash_original_torrent_files", json!(false)),
        ("units", units),
        ("utp_enabled", json!(false)),
        ("version", json!(VERSION)),
    ]
}

/// `session-get`.
pub fn get(shared: &Shared, p: Protocol, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let fields: Option<Vec<String>> = a
        .strings("fields")?
        .map(|f| f.iter().map(|x| canon(x)).collect());
    Ok(all(shared, p)
        .into_iter()
        .filter(|(k, _)| fields.as_ref().is_none_or(|f| f.contains(&canon(k))))
        .map(|(k, v)| (name(p, k), v))
        .collect())
}

/// `session-set`: changes what shoal acts on, saves it, applies it.
pub async fn set(shared: &Shared, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let mut s = shared.settings();
    if let Some(d) = a.str("download_dir")? {
        s.download_dir = check_dir(d, &shared.config.download_roots)
            .map_err(|e| RpcError::params(format!("download-dir: {e}")))?;
    }
    macro_rules! set {
        ($f:ident, $get:ident) => {
            if let Some(v) = a.$get(stringify!($f))? {
                s.$f = v
                    .try_into()
                    .map_err(|_| RpcError::params(concat!(stringify!($f), ": out of range")))?;
            }
        };
    }
    set!(speed_limit_down, u64);
    set!(speed_limit_down_enabled, bool);
    set!(speed_limit_up, u64);
    set!(speed_limit_up_enabled, bool);
    set!(download_queue_enabled, bool);
    set!(download_queue_size, u64);
    set!(idle_seeding_limit, u64);
    set!(idle_seeding_limit_enabled, bool);
    set!(start_added_torrents, bool);
    if let Some(r) = a.f64("seedRatioLimit")? {
        if r < 0.0 {
            return Err(RpcError::params("seedRatioLimit: must not be negative"));
        }
        s.seed_ratio_limit = r;
    }
    if let Some(b) = a.bool("seedRatioLimited")? {
        s.seed_ratio_limited = b;
    }
    if s.download_queue_size == 0 {
        s.download_queue_size = 1;
    }
    s.apply(shared)
        .await
        .map_err(|e| RpcError::new(super::code::SYSTEM_ERROR, e.to_string()))?;
    Ok(Map::new())
}

/// `session-stats`.
pub fn stats(shared: &Shared, p: Protocol) -> Map<String, Value> {
    let st = shared.session.stats();
    let (mut active, mut paused) = (0u64, 0u64);
    for h in shared.session.torrents() {
        let s = h.status();
        if s.state.is_active() || s.download_rate > 0 || s.upload_rate > 0 {
            active += 1;
        }
        if matches!(s.state, TorrentState::Paused | TorrentState::Error) {
            paused += 1;
        }
    }
    let stats = |t: crate::store::Totals| {
        json!({
            name(p, "uploaded_bytes"): t.uploaded,
            name(p, "downloaded_bytes"): t.downloaded,
            name(p, "files_added"): t.files_added,
            name(p, "seconds_active"): t.seconds_active,
            name(p, "session_count"): t.session_count,
        })
    };
    Map::from_iter([
        (name(p, "active_torrent_count"), json!(active)),
        (name(p, "download_speed"), json!(st.download_rate)),
        (name(p, "paused_torrent_count"), json!(paused)),
        (name(p, "torrent_count"), json!(st.torrents)),
        (name(p, "upload_speed"), json!(st.upload_rate)),
        (
            name(p, "cumulative_stats"),
            stats(shared.activity.cumulative()),
        ),
        (name(p, "current_stats"), stats(shared.activity.current())),
    ])
}

/// `free-space`.
pub fn free_space(p: Protocol, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let path = a.str("path")?.ok_or_else(|| RpcError::params("no path"))?;
    let dir = check_dir(path, &[]).map_err(|e| RpcError::params(format!("path: {e}")))?;
    let (free, total) = free_space_of(&dir)
        .map_err(|e| RpcError::new(super::code::SYSTEM_ERROR, format!("{path}: {e}")))?;
    Ok(Map::from_iter([
        ("path".to_owned(), json!(path)),
        (name(p, "size_bytes"), json!(free)),
        ("total_size".to_owned(), json!(total)),
    ]))
}

/// `port-test`: shoal makes no connection to an outside test service; it
/// reports whether the peer port accepts connections here.
pub fn port_test(shared: &Shared, p: Protocol) -> Map<String, Value> {
    let addr = shared.session.local_addr();
    let target = if addr.ip().is_unspecified() {
        std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let open =
        std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_secs(2)).is_ok();
    Map::from_iter([
        (name(p, "port_is_open"), json!(open)),
        (
            name(p, "ip_protocol"),
            json!(if target.is_ipv4() { "ipv4" } else { "ipv6" }),
        ),
    ])
}

/// Transmission's `preferred_transports`: the transports on, the one
/// tried first for a peer not known to speak uTP first.
fn transports(utp: bool, tcp: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    if tcp {
        v.push("tcp");
    }
    if utp {
        v.push("utp");
    }
    v
}
