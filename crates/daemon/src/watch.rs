//! The watch folder: every [`POLL`] the directory is listed; a `.torrent`
//! file that did not change since the last look is added (to the default
//! download directory) and renamed `NAME.torrent.added`; one that does not
//! parse is renamed `NAME.torrent.invalid` and the reason logged.
use crate::add::{AddRequest, AddSource, MAX_TORRENT_FILE};
use crate::Shared;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Time between two looks.
pub const POLL: Duration = Duration::from_secs(2);

/// Renames `p` to `p.SUFFIX`.
fn mark(p: &Path, suffix: &str) {
    let mut to = p.as_os_str().to_owned();
    to.push(suffix);
    if let Err(e) = std::fs::rename(p, &to) {
        tracing::warn!(file = %p.display(), error = %e, "watch folder: renaming");
    }
}

/// `.torrent` files and their (size, mtime).
fn scan(dir: &Path) -> HashMap<PathBuf, (u64, Option<SystemTime>)> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let is_torrent = p
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("torrent"));
        if !is_torrent {
            continue;
        }
        if let Ok(m) = e.metadata() {
            if m.is_file() {
                out.insert(p, (m.len(), m.modified().ok()));
            }
        }
    }
    out
}

/// Adds what settled since the last look; returns what is still changing.
pub async fn once(
    shared: &Shared,
    dir: &Path,
    last: &HashMap<PathBuf, (u64, Option<SystemTime>)>,
) -> HashMap<PathBuf, (u64, Option<SystemTime>)> {
    let d = dir.to_path_buf();
    let now = tokio::task::spawn_blocking(move || scan(&d))
        .await
        .unwrap_or_default();
    let mut pending = HashMap::new();
    for (p, stamp) in now {
        if last.get(&p) != Some(&stamp) {
            // New or still being written: look again next time.
            pending.insert(p, stamp);
            continue;
        }
        if stamp.0 > MAX_TORRENT_FILE as u64 {
            tracing::warn!(file = %p.display(), "watch folder: larger than {MAX_TORRENT_FILE} bytes; not a torrent");
            mark(&p, ".invalid");
            continue;
        }
        let bytes = match std::fs::read(&p) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "watch folder: reading");
                continue;
            }
        };
        match shared
            .add(AddRequest::new(AddSource::Metainfo(bytes)))
            .await
        {
            Ok(a) => {
                tracing::info!(file = %p.display(), id = %a.handle.id(), duplicate = a.duplicate, "watch folder: added");
                mark(&p, ".added");
            }
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "watch folder: not added");
                mark(&p, ".invalid");
            }
        }
    }
    pending
}

/// The loop (until the daemon stops).
pub async fn run(shared: Arc<Shared>, dir: PathBuf) {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "watch folder: cannot create it");
    }
    let mut last = HashMap::new();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tokio::time::sleep(POLL) => {}
        }
        last = once(&shared, &dir, &last).await;
    }
}
