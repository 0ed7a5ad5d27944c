//! Helpers shared by the engine's integration tests: a session on loopback,
//! bounded waits, comparing downloaded files with their source, and a
//! persistence kept in memory.
use shoal_engine::persist::{PersistError, ResumeRecord};
use shoal_engine::{
    AddTorrentParams, Persist, SessionConfig, TorrentHandle, TorrentRecord, TorrentStatus,
};
use shoal_metainfo::{InfoHashes, Torrent};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
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

/// A persistence kept in memory, to check what the session stores.
#[derive(Default)]
pub struct MemPersist {
    pub torrents: Mutex<HashMap<InfoHashes, TorrentRecord>>,
    pub resume: Mutex<HashMap<InfoHashes, ResumeRecord>>,
}

impl Persist for MemPersist {
    fn load_torrents(&self) -> Result<Vec<TorrentRecord>, PersistError> {
        Ok(self.torrents.lock().unwrap().values().cloned().collect())
    }
    fn save_torrent(&self, r: &TorrentRecord) -> Result<(), PersistError> {
        self.torrents
            .lock()
            .unwrap()
            .insert(r.info_hashes, r.clone());
        Ok(())
    }
    fn remove_torrent(&self, k: &InfoHashes) -> Result<(), PersistError> {
        self.torrents.lock().unwrap().remove(k);
        self.resume.lock().unwrap().remove(k);
        Ok(())
    }
    fn load_resume(&self, k: &InfoHashes) -> Result<Option<ResumeRecord>, PersistError> {
        Ok(self.resume.lock().unwrap().get(k).cloned())
    }
    fn save_resume(&self, k: &InfoHashes, r: &ResumeRecord) -> Result<(), PersistError> {
        self.resume.lock().unwrap().insert(*k, r.clone());
        Ok(())
    }
}

/// Reads one length-prefixed peer message: `(id, payload)`; `None` for a
/// keep-alive.
pub async fn read_msg(s: &mut tokio::net::TcpStream) -> Option<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let len = s.read_u32().await.unwrap() as usize;
    assert!(len <= 1 << 20, "message of {len} bytes");
    let mut m = vec![0u8; len];
    s.read_exact(&mut m).await.unwrap();
    (len > 0).then(|| (m[0], m[1..].to_vec()))
}
