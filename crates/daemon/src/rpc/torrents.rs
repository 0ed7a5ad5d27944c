//! The torrent methods besides `torrent-get`: `torrent-add`, `torrent-set`,
//! `torrent-remove`, the actions (`start`, `start-now`, `stop`, `verify`,
//! `reannounce`), `torrent-set-location`, `torrent-rename-path` and the
//! queue moves.
use super::keys::name;
use super::{code, prio, select, visible_files, Args, Protocol, RpcError};
use crate::add::{AddError, AddRequest, AddSource};
use crate::paths::{check_dir, check_name, PathError};
use crate::Shared;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use shoal_engine::{QueueMove, SeedGoal, TorrentHandle};
use std::time::Duration;

fn add_error(e: AddError) -> RpcError {
    let c = match &e {
        AddError::BadTorrent(_) | AddError::BadMagnet(_) => code::CORRUPT_TORRENT,
        AddError::Dir(PathError::NotAbsolute(_)) => code::PATH_NOT_ABSOLUTE,
        AddError::Dir(_) | AddError::Label(_) => code::INVALID_PARAMS,
        AddError::FileIndex { .. } => code::FILE_IDX_OOR,
        AddError::Fetch { .. } => code::HTTP_ERROR,
        AddError::Read { .. } | AddError::Store(_) => code::SYSTEM_ERROR,
        _ => code::INTERNAL_ERROR,
    };
    RpcError::new(c, e.to_string())
}

fn path_error(e: PathError) -> RpcError {
    let c = match e {
        PathError::NotAbsolute(_) => code::PATH_NOT_ABSOLUTE,
        _ => code::INVALID_PARAMS,
    };
    RpcError::new(c, e.to_string())
}

/// Maps Transmission file indices (pad files hidden) to the torrent's.
fn engine_indices(
    visible: &[usize],
    tr: Option<Vec<usize>>,
) -> Result<Option<Vec<usize>>, RpcError> {
    let Some(tr) = tr else { return Ok(None) };
    // An empty list means every file.
    if tr.is_empty() {
        return Ok(Some(visible.to_vec()));
    }
    tr.into_iter()
        .map(|i| {
            visible.get(i).copied().ok_or_else(|| {
                RpcError::new(
                    code::FILE_IDX_OOR,
                    format!(
                        "file index {i} out of range (the torrent has {} files)",
                        visible.len()
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `torrent-add`.
pub async fn add(shared: &Shared, p: Protocol, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let source = match (a.str("metainfo")?, a.str("filename")?) {
        (Some(b64), _) => {
            let clean: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(clean.as_bytes())
                .map_err(|e| {
                    RpcError::new(code::CORRUPT_TORRENT, format!("metainfo: bad base64: {e}"))
                })?;
            AddSource::Metainfo(bytes)
        }
        (None, Some(f)) => AddSource::from_filename(f),
        (None, None) => return Err(RpcError::params("no filename or metainfo specified")),
    };
    let mut req = AddRequest::new(source);
    req.download_dir = a.str("download_dir")?.map(str::to_owned);
    req.paused = a.bool("paused")?;
    req.labels = a.strings("labels")?.unwrap_or_default();
    req.peer_limit = a
        .u64("peer_limit")?
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let unwanted = a.indices("files_unwanted")?;
    let high = a.indices("priority_high")?;
    let low = a.indices("priority_low")?;
    a.indices("files_wanted")?;
    a.indices("priority_normal")?;
    if unwanted.is_some() || high.is_some() || low.is_some() {
        // Indices are the client's (pad files hidden): map them once the
        // torrent is parsed.
        let bytes = match &req.source {
            AddSource::Metainfo(b) => Some(b.clone()),
            _ => None,
        };
        if let Some(t) = bytes
            .as_deref()
            .and_then(|b| shoal_metainfo::Torrent::from_bytes(b).ok())
        {
            let v = visible_files(&t);
            req.files_unwanted = engine_indices(&v, unwanted)?.unwrap_or_default();
            req.priority_high = engine_indices(&v, high)?.unwrap_or_default();
            req.priority_low = engine_indices(&v, low)?.unwrap_or_default();
        }
    }
    let added = shared.add(req).await.map_err(add_error)?;
    let h = &added.handle;
    let key = if added.duplicate {
        "torrent_duplicate"
    } else {
        "torrent_added"
    };
    let mut out = Map::new();
    out.insert(
        name(p, key),
        json!({
            name(p, "hash_string"): h.info_hashes().primary().to_hex(),
            "id": h.id().0,
            "name": h.subscribe_meta().borrow().name.clone(),
        }),
    );
    Ok(out)
}

/// A rate in kB/s from the RPC, in bytes/s.
fn rate(kb: u64) -> u64 {
    kb.saturating_mul(crate::settings::KB)
}

/// Parses a `trackerList`: URLs one a line, a blank line between tiers.
fn parse_tracker_list(s: &str) -> Result<Vec<Vec<String>>, RpcError> {
    let mut tiers: Vec<Vec<String>> = vec![Vec::new()];
    for line in s.lines().map(str::trim) {
        if line.is_empty() {
            if tiers.last().is_some_and(|t| !t.is_empty()) {
                tiers.push(Vec::new());
            }
            continue;
        }
        let ok = url::Url::parse(line)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https" | "udp") && u.has_host());
        if !ok || line.len() > 2048 {
            return Err(RpcError::new(
                code::INVALID_TRACKER_LIST,
                format!("not a tracker URL: {line:?}"),
            ));
        }
        if !tiers.iter().flatten().any(|u| u == line) {
            if let Some(t) = tiers.last_mut() {
                t.push(line.to_owned());
            }
        }
    }
    tiers.retain(|t| !t.is_empty());
    if tiers.len() > 100 {
        return Err(RpcError::new(
            code::INVALID_TRACKER_LIST,
            "more than 100 tiers",
        ));
    }
    Ok(tiers)
}

/// `torrent-set`.
pub async fn set(shared: &Shared, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let (handles, _) = select(shared, a)?;
    // Check every argument before changing anything.
    let down = a.u64("download_limit")?;
    let down_on = a.bool("download_limited")?;
    let up = a.u64("upload_limit")?;
    let up_on = a.bool("upload_limited")?;
    let peer_limit = a.u64("peer_limit")?;
    let ratio = a.f64("seed_ratio_limit")?;
    let ratio_mode = a.u64("seed_ratio_mode")?;
    let idle = a.u64("seed_idle_limit")?;
    let idle_mode = a.u64("seed_idle_mode")?;
    let labels = match a.strings("labels")? {
        Some(l) => Some(crate::add::check_labels(&l).map_err(|e| RpcError::params(e.to_string()))?),
        None => None,
    };
    let location = match a.str("location")? {
        Some(l) => Some(check_dir(l, &shared.config.download_roots).map_err(path_error)?),
        None => None,
    };
    let tracker_list = match a.str("tracker_list")? {
        Some(s) => Some(parse_tracker_list(s)?),
        None => None,
    };
    let tracker_add = a.strings("tracker_add")?;
    let tracker_remove = a.indices("tracker_remove")?;
    let tracker_replace = match a.get("tracker_replace") {
        None | Some(Value::Null) => None,
        Some(Value::Array(v)) if v.len() % 2 == 0 => Some(v.clone()),
        Some(_) => return Err(RpcError::params("tracker_replace: expected [id, url, ...]")),
    };
    if let Some(r) = ratio {
        if r < 0.0 {
            return Err(RpcError::params("seed_ratio_limit: must not be negative"));
        }
    }
    if ratio_mode.is_some_and(|m| m > 2) || idle_mode.is_some_and(|m| m > 2) {
        return Err(RpcError::params("a seed mode is 0, 1 or 2"));
    }
    let file_lists = [
        ("files_wanted", a.indices("files_wanted")?),
        ("files_unwanted", a.indices("files_unwanted")?),
        ("priority_high", a.indices("priority_high")?),
        ("priority_normal", a.indices("priority_normal")?),
        ("priority_low", a.indices("priority_low")?),
    ];
    let queue_position = a.u64("queue_position")?;
    let honors = a.bool("honors_session_limits")?;
    // An empty name takes the torrent out of its group (as Transmission).
    let group = match a.str("group")? {
        Some("") => Some(None),
        Some(g) => {
            shoal_engine::bandwidth::check_group_name(g)
                .map_err(|e| RpcError::params(e.to_string()))?;
            Some(Some(g.to_owned()))
        }
        None => None,
    };
    for h in &handles {
        let m = h.meta();
        let mut limits = m.limits;
        if let Some(v) = down {
            limits.max_download_rate = Some(rate(v));
        }
        match down_on {
            Some(false) => limits.max_download_rate = None,
            Some(true) if limits.max_download_rate.is_none() => {
                limits.max_download_rate = Some(rate(down.unwrap_or(100)))
            }
            _ => {}
        }
        if let Some(v) = up {
            limits.max_upload_rate = Some(rate(v));
        }
        match up_on {
            Some(false) => limits.max_upload_rate = None,
            Some(true) if limits.max_upload_rate.is_none() => {
                limits.max_upload_rate = Some(rate(up.unwrap_or(100)))
            }
            _ => {}
        }
        if let Some(b) = honors {
            limits.bypass_session_limits = !b;
        }
        if let Some(n) = peer_limit {
            limits.max_peers = Some(usize::try_from(n).unwrap_or(usize::MAX).max(1));
        }
        let own_ratio = ratio.or(match limits.seed_ratio {
            SeedGoal::Limit(r) => Some(r),
            _ => None,
        });
        match (ratio_mode, own_ratio) {
            (Some(0), _) => limits.seed_ratio = SeedGoal::Session,
            (Some(1), Some(r)) => limits.seed_ratio = SeedGoal::Limit(r),
            (Some(1), None) => {
                limits.seed_ratio = SeedGoal::Limit(shared.settings().seed_ratio_limit)
            }
            (Some(_), _) => limits.seed_ratio = SeedGoal::Unlimited,
            (None, _) => {
                if let (Some(r), SeedGoal::Limit(_)) = (ratio, limits.seed_ratio) {
                    limits.seed_ratio = SeedGoal::Limit(r);
                }
            }
        }
        let idle_d = |min: u64| Duration::from_secs(min.saturating_mul(60));
        let own_idle = idle.or(match limits.seed_idle {
            SeedGoal::Limit(d) => Some(d.as_secs() / 60),
            _ => None,
        });
        match (idle_mode, own_idle) {
            (Some(0), _) => limits.seed_idle = SeedGoal::Session,
            (Some(1), Some(m)) => limits.seed_idle = SeedGoal::Limit(idle_d(m)),
            (Some(1), None) => {
                limits.seed_idle = SeedGoal::Limit(idle_d(shared.settings().idle_seeding_limit))
            }
            (Some(_), _) => limits.seed_idle = SeedGoal::Unlimited,
            (None, _) => {
                if let (Some(v), SeedGoal::Limit(_)) = (idle, limits.seed_idle) {
                    limits.seed_idle = SeedGoal::Limit(idle_d(v));
                }
            }
        }
        if limits != m.limits {
            h.set_limits(limits).await.map_err(op_error)?;
        }
        if let Some(l) = &labels {
            h.set_labels(l.clone()).await.map_err(op_error)?;
        }
        if let Some(g) = &group {
            if *g != m.group {
                h.set_group(g.clone()).await.map_err(op_error)?;
            }
        }
        set_files(h, &m, &file_lists).await?;
        set_trackers(
            h,
            &m,
            tracker_list.clone(),
            tracker_add.as_deref(),
            tracker_remove.as_deref(),
            tracker_replace.as_deref(),
        )
        .await?;
        if let Some(to) = &location {
            // `torrent-set` with a location moves the data (Transmission does).
            if *to != m.save_path {
                h.move_data(to.clone()).await.map_err(op_error)?;
            }
        }
    }
    if let (Some(pos), Some(h)) = (queue_position, handles.first()) {
        queue_to(shared, h, pos).await?;
    }
    Ok(Map::new())
}

fn op_error(e: shoal_engine::TorrentOpError) -> RpcError {
    let c = match e {
        shoal_engine::TorrentOpError::NoSuchTorrent(_) => code::UNRECOGNIZED_INFO,
        shoal_engine::TorrentOpError::BadPriorities { .. } => code::FILE_IDX_OOR,
        shoal_engine::TorrentOpError::Group(_) => code::INVALID_PARAMS,
        shoal_engine::TorrentOpError::Move { .. } | shoal_engine::TorrentOpError::Delete(_) => {
            code::SYSTEM_ERROR
        }
        _ => code::INTERNAL_ERROR,
    };
    RpcError::new(c, e.to_string())
}

async fn set_files(
    h: &TorrentHandle,
    m: &shoal_engine::TorrentMeta,
    lists: &[(&str, Option<Vec<usize>>)],
) -> Result<(), RpcError> {
    if lists.iter().all(|(_, l)| l.is_none()) {
        return Ok(());
    }
    let Some(t) = m.torrent.as_deref() else {
        return Err(RpcError::params(
            "file settings need the torrent's metadata, which has not arrived yet",
        ));
    };
    let visible = visible_files(t);
    let n = t.files().len();
    let mut wanted: Vec<bool> = (0..n)
        .map(|i| m.file_priorities.get(i).is_none_or(|&p| p > 0))
        .collect();
    let mut tr = prio::to_tr(&m.file_priorities);
    tr.resize(n, 0);
    for (key, list) in lists {
        let Some(idx) = engine_indices(&visible, list.clone())? else {
            continue;
        };
        for i in idx {
            match *key {
                "files_wanted" => wanted[i] = true,
                "files_unwanted" => wanted[i] = false,
                "priority_high" => tr[i] = 1,
                "priority_normal" => tr[i] = 0,
                _ => tr[i] = -1,
            }
        }
    }
    let pads: Vec<bool> = t.files().iter().map(|f| f.pad).collect();
    let engine: Vec<u8> = (0..n)
        .map(|i| {
            if pads[i] || !wanted[i] {
                0
            } else {
                prio::from_tr(tr[i])
            }
        })
        .collect();
    if engine.iter().all(|&p| p == 0) {
        return Err(RpcError::params("at least one file must stay wanted"));
    }
    h.set_file_priorities(engine).await.map_err(op_error)
}

async fn set_trackers(
    h: &TorrentHandle,
    m: &shoal_engine::TorrentMeta,
    list: Option<Vec<Vec<String>>>,
    add: Option<&[String]>,
    remove: Option<&[usize]>,
    replace: Option<&[Value]>,
) -> Result<(), RpcError> {
    if list.is_none() && add.is_none() && remove.is_none() && replace.is_none() {
        return Ok(());
    }
    let mut tiers = list.unwrap_or_else(|| super::torrent_get::tiers(m));
    // The deprecated forms act on tracker ids: positions in the flat list.
    let flat: Vec<String> = tiers.iter().flatten().cloned().collect();
    if let Some(r) = replace {
        for pair in r.chunks(2) {
            let (Some(id), Some(url)) = (pair[0].as_u64(), pair[1].as_str()) else {
                return Err(RpcError::params("tracker_replace: expected [id, url, ...]"));
            };
            let old = flat.get(id as usize).ok_or_else(|| {
                RpcError::new(code::INVALID_TRACKER_LIST, format!("no tracker {id}"))
            })?;
            let new = parse_tracker_list(url)?;
            let new = new
                .first()
                .and_then(|t| t.first())
                .cloned()
                .unwrap_or_default();
            for u in tiers.iter_mut().flatten() {
                if u == old {
                    u.clone_from(&new);
                }
            }
        }
    }
    if let Some(ids) = remove {
        let gone: Vec<&String> = ids.iter().filter_map(|&i| flat.get(i)).collect();
        for t in &mut tiers {
            t.retain(|u| !gone.contains(&u));
        }
    }
    if let Some(urls) = add {
        for u in urls {
            let parsed = parse_tracker_list(u)?;
            for x in parsed.into_iter().flatten() {
                if !tiers.iter().flatten().any(|y| *y == x) {
                    tiers.push(vec![x]);
                }
            }
        }
    }
    tiers.retain(|t| !t.is_empty());
    h.set_trackers(tiers).await.map_err(op_error)
}

/// `torrent-remove`.
pub async fn remove(shared: &Shared, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let (handles, _) = select(shared, a)?;
    let delete = a.bool("delete_local_data")?.unwrap_or(false);
    let mut failed = Vec::new();
    for h in &handles {
        if let Err(e) = shared.remove(h, delete).await {
            failed.push(e);
        }
    }
    if let Some(e) = failed.first() {
        return Err(RpcError::new(code::SYSTEM_ERROR, e.to_string()));
    }
    Ok(Map::new())
}

/// `torrent-start`, `-start-now`, `-stop`, `-verify`, `-reannounce`.
pub async fn action(
    shared: &Shared,
    method: &str,
    a: &Args,
) -> Result<Map<String, Value>, RpcError> {
    let (handles, _) = select(shared, a)?;
    for h in &handles {
        let r = match method {
            "torrentstart" => h.resume().await,
            "torrentstartnow" => h.start_now().await,
            "torrentstop" => h.pause().await,
            "torrentverify" => h.recheck().await,
            _ => h.reannounce().await,
        };
        r.map_err(op_error)?;
    }
    Ok(Map::new())
}

/// `torrent-set-location` with `move`: the data moves (rename, or copy
/// then delete). Pointing a torrent at data already elsewhere (`move`
/// false) is not supported yet.
pub async fn set_location(shared: &Shared, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let (handles, _) = select(shared, a)?;
    let to = a
        .str("location")?
        .ok_or_else(|| RpcError::params("no location"))?;
    let to = check_dir(to, &shared.config.download_roots).map_err(path_error)?;
    if !a.bool("move")?.unwrap_or(false) {
        return Err(RpcError::new(
            code::SYSTEM_ERROR,
            "finding the data in another place (move=false) is not supported yet; pass move=true to move it",
        ));
    }
    for h in &handles {
        if h.meta().save_path != to {
            h.move_data(to.clone()).await.map_err(op_error)?;
        }
    }
    Ok(Map::new())
}

/// `torrent-rename-path`: the new name is checked (one path component);
/// renaming files inside a torrent is not supported yet.
pub fn rename_path(shared: &Shared, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let (handles, _) = select(shared, a)?;
    if handles.len() != 1 {
        return Err(RpcError::params(
            "torrent-rename-path takes exactly one torrent",
        ));
    }
    let path = a.str("path")?.ok_or_else(|| RpcError::params("no path"))?;
    let new = a.str("name")?.ok_or_else(|| RpcError::params("no name"))?;
    check_name(new).map_err(|e| RpcError::params(format!("name: {e}")))?;
    if path.split('/').any(|c| c == ".." || c == ".") || path.starts_with('/') {
        return Err(RpcError::params(format!(
            "path: not inside the torrent: {path:?}"
        )));
    }
    Err(RpcError::new(
        code::SYSTEM_ERROR,
        "renaming files is not supported by shoal yet",
    ))
}

async fn queue_to(shared: &Shared, h: &TorrentHandle, pos: u64) -> Result<(), RpcError> {
    // A rank: move to the top, then down `pos` places.
    shared
        .session
        .queue_move(h.id(), QueueMove::Top)
        .await
        .map_err(op_error)?;
    let n = shared.session.torrents().len() as u64;
    for _ in 0..pos.min(n) {
        shared
            .session
            .queue_move(h.id(), QueueMove::Down)
            .await
            .map_err(op_error)?;
    }
    Ok(())
}

/// `queue-move-top`, `-up`, `-down`, `-bottom`.
pub async fn queue_move(
    shared: &Shared,
    method: &str,
    a: &Args,
) -> Result<Map<String, Value>, RpcError> {
    let (mut handles, _) = select(shared, a)?;
    let to = match method {
        "queuemovetop" => QueueMove::Top,
        "queuemoveup" => QueueMove::Up,
        "queuemovedown" => QueueMove::Down,
        _ => QueueMove::Bottom,
    };
    // Keep the given torrents in their order relative to each other.
    handles.sort_by_key(|h| h.status().queue_position);
    if matches!(to, QueueMove::Top | QueueMove::Down) {
        handles.reverse();
    }
    for h in &handles {
        shared
            .session
            .queue_move(h.id(), to)
            .await
            .map_err(op_error)?;
    }
    Ok(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracker_lists() {
        let t =
            parse_tracker_list("http://a/announce\nudp://b:1\n\n\nhttp://c/announce\n").unwrap();
        assert_eq!(
            t,
            vec![
                vec!["http://a/announce".to_string(), "udp://b:1".to_string()],
                vec!["http://c/announce".to_string()]
            ]
        );
        assert!(parse_tracker_list("not a url").is_err());
        assert!(parse_tracker_list("file:///etc/passwd").is_err());
        assert_eq!(parse_tracker_list("").unwrap(), Vec::<Vec<String>>::new());
    }

    #[test]
    fn file_indices_skip_pads() {
        let v = vec![0, 2, 3];
        assert_eq!(engine_indices(&v, Some(vec![1])).unwrap(), Some(vec![2]));
        assert_eq!(
            engine_indices(&v, Some(vec![])).unwrap(),
            Some(vec![0, 2, 3])
        );
        assert_eq!(engine_indices(&v, None).unwrap(), None);
        assert_eq!(
            engine_indices(&v, Some(vec![3])).unwrap_err().code,
            code::FILE_IDX_OOR
        );
    }
}
