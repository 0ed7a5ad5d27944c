//! Helpers shared by the engine's integration tests: a session on loopback,
//! bounded waits, and comparing downloaded files with their source.
use shoal_engine::{AddTorrentParams, SessionConfig, TorrentHandle, TorrentStatus};
use shoal_metainfo::Torrent;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// How long [`wait`] waits at most.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// A session listening on loopback only, otherwise default.
pub fn loopback() -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..SessionConfig::default()
    }
}

/// Parameters adding `t` with its data under `dir`, dialling `peers`.
pub fn params(t: &Arc<Torrent>, dir: &Path, peers: Vec<SocketAddr>) -> AddTorrentParams {
    let mut p = AddTorrentParams::torrent(t.clone(), dir);
    p.peers = peers;
    p
}

/// Waits (at most [`WAIT_LIMIT`]) until `pred` holds for `h`'s status;
/// panics naming `what` and the last status otherwise.
pub async fn wait(h: &TorrentHandle, what: &str, pred: impl FnMut(&TorrentStatus) -> bool) {
    if tokio::time::timeout(WAIT_LIMIT, h.wait_for(pred))
        .await
        .is_err()
    {
        panic!("timed out waiting for {what}: {:?}", h.status());
    }
}

/// Asserts that every file of `t` is the same under `a` and `b`.
pub fn same_files(t: &Torrent, a: &Path, b: &Path) {
    for f in t.files().iter().filter(|f| !f.pad) {
        let x = std::fs::read(a.join(&f.path)).unwrap();
        let y = std::fs::read(b.join(&f.path)).unwrap();
        assert!(x == y, "{} differs", f.path.display());
    }
}
