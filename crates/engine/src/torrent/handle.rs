//! [`TorrentHandle`]: a cheap, cloneable way to watch and steer one torrent
//! of a session. Reads (status, metadata) never wait; commands are messages
//! to the torrent's task.
use super::cmd::TorrentCmd;
use super::driver::PeerStream;
use super::watched::WatchReceiver;
use crate::error::TorrentOpError;
use crate::persist::TorrentLimits;
use crate::status::{TorrentState, TorrentStatus};
use crate::TorrentId;
use shoal_metainfo::{InfoHashes, Torrent};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// What changes rarely about a torrent: its metadata and where its data is.
#[derive(Debug, Clone, Default)]
pub struct TorrentMeta {
    /// The parsed torrent (`None` while a magnet link's metadata is missing).
    pub torrent: Option<Arc<Torrent>>,
    /// The display name (the torrent's, else the magnet's `dn`, else the hash).
    pub name: String,
    /// The directory the torrent's files live under.
    pub save_path: PathBuf,
    /// One priority per file (0: not downloaded); empty before the metadata.
    pub file_priorities: Vec<u8>,
    /// Per-torrent limits.
    pub limits: TorrentLimits,
    /// The bandwidth group it is in, if any.
    pub group: Option<String>,
    /// Free-form labels.
    pub labels: Vec<String>,
    /// When the torrent was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// The magnet link it was added from, if any.
    pub magnet: Option<String>,
    /// Trackers added besides the torrent's own.
    pub extra_trackers: Vec<String>,
    /// The tracker list (tiers) set with [`TorrentHandle::set_trackers`],
    /// used instead of every other.
    pub tracker_list: Option<Vec<Vec<String>>>,
}

/// A handle to a torrent of a session; cheap to clone.
#[derive(Clone)]
pub struct TorrentHandle {
    pub(crate) id: TorrentId,
    pub(crate) info_hashes: InfoHashes,
    pub(crate) tx: super::CmdSender<TorrentCmd>,
    pub(crate) status: WatchReceiver<TorrentStatus>,
    pub(crate) meta: WatchReceiver<TorrentMeta>,
}

impl std::fmt::Debug for TorrentHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorrentHandle")
            .field("id", &self.id)
            .field("info_hash", &self.info_hashes.primary().to_hex())
            .finish_non_exhaustive()
    }
}

impl TorrentHandle {
    /// The session's id of the torrent.
    pub fn id(&self) -> TorrentId {
        self.id
    }

    /// The 20-byte info-hash used on the wire (v1, or the truncated v2).
    pub fn info_hash(&self) -> shoal_base::InfoHash {
        self.info_hashes.primary()
    }

    /// Both info-hashes (a hybrid torrent has two).
    pub fn info_hashes(&self) -> InfoHashes {
        self.info_hashes
    }

    /// The latest status snapshot.
    pub fn status(&self) -> TorrentStatus {
        self.status.borrow().clone()
    }

    /// A receiver that wakes on every status update.
    pub fn subscribe(&self) -> WatchReceiver<TorrentStatus> {
        self.status.clone()
    }

    /// The metadata and settings.
    pub fn meta(&self) -> TorrentMeta {
        self.meta.borrow().clone()
    }

    /// The parsed torrent, once known.
    pub fn torrent(&self) -> Option<Arc<Torrent>> {
        self.meta.borrow().torrent.clone()
    }

    /// A receiver that wakes when the metadata or settings change.
    pub fn subscribe_meta(&self) -> WatchReceiver<TorrentMeta> {
        self.meta.clone()
    }

    /// Waits until `pred` holds for the status (or the torrent stops).
    pub async fn wait_for(&self, mut pred: impl FnMut(&TorrentStatus) -> bool) -> TorrentStatus {
        let mut rx = self.status.clone();
        loop {
            {
                let s = rx.borrow_and_update();
                if pred(&s) || s.state == TorrentState::Stopped {
                    return s.clone();
                }
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone();
            }
        }
    }

    async fn send(&self, cmd: TorrentCmd) -> Result<(), TorrentOpError> {
        self.tx.send(cmd).await.map_err(|_| TorrentOpError::Stopped)
    }

    async fn ask<T>(
        &self,
        cmd: impl FnOnce(oneshot::Sender<Result<T, TorrentOpError>>) -> TorrentCmd,
    ) -> Result<T, TorrentOpError> {
        let (tx, rx) = oneshot::channel();
        self.send(cmd(tx)).await?;
        rx.await.map_err(|_| TorrentOpError::Stopped)?
    }

    async fn query<T>(
        &self,
        q: impl FnOnce(oneshot::Sender<T>) -> super::cmd::Query,
    ) -> Result<T, TorrentOpError> {
        let (tx, rx) = oneshot::channel();
        self.send(TorrentCmd::Query(q(tx))).await?;
        rx.await.map_err(|_| TorrentOpError::Stopped)
    }

    /// The connections (empty while not transferring).
    pub async fn peers(&self) -> Result<Vec<crate::info::PeerInfo>, TorrentOpError> {
        self.query(super::cmd::Query::Peers).await
    }

    /// The verified pieces (all clear while checking or before the metadata).
    pub async fn pieces(&self) -> Result<shoal_wire::Bitfield, TorrentOpError> {
        self.query(super::cmd::Query::Pieces).await
    }

    /// The trackers and what they last said.
    pub async fn trackers(&self) -> Result<Vec<crate::info::TrackerInfo>, TorrentOpError> {
        self.query(super::cmd::Query::Trackers).await
    }

    /// Bytes verified of each file (empty before the metadata).
    pub async fn file_progress(&self) -> Result<Vec<u64>, TorrentOpError> {
        let pieces = self.pieces().await?;
        Ok(match self.torrent() {
            Some(t) => crate::info::file_progress(&t, &pieces),
            None => Vec::new(),
        })
    }

    /// Adds peer addresses to connect to.
    pub async fn add_peers(&self, peers: Vec<SocketAddr>) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::AddPeers(peers)).await
    }

    /// Stops transferring (connections closed, trackers told `stopped`);
    /// data and settings are kept.
    pub async fn pause(&self) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::Pause).await
    }

    /// Starts transferring again after a pause or an error (it may wait in
    /// the session's download queue).
    pub async fn resume(&self) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::Resume { force: false }).await
    }

    /// Starts transferring at once, beyond the session's download queue.
    pub async fn start_now(&self) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::Resume { force: true }).await
    }

    /// Hashes all the data again (state [`TorrentState::Checking`]), then
    /// goes on with what is verified.
    pub async fn recheck(&self) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::Recheck).await
    }

    /// Asks every tracker (and the DHT) for peers now.
    pub async fn reannounce(&self) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::Reannounce).await
    }

    /// Sets one priority per file (0: skip the file, 1 normal, higher first).
    pub async fn set_file_priorities(&self, prio: Vec<u8>) -> Result<(), TorrentOpError> {
        self.ask(|reply| TorrentCmd::SetFilePriorities(prio, reply))
            .await
    }

    /// Sets this torrent's limits; returns once they apply (a status or
    /// [`TorrentHandle::meta`] read right after shows them).
    pub async fn set_limits(&self, limits: TorrentLimits) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::SetLimits(Box::new(limits))).await?;
        self.applied(|m| m.limits == limits).await
    }

    /// Sets the labels; returns once they apply.
    pub async fn set_labels(&self, labels: Vec<String>) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::SetLabels(labels.clone())).await?;
        self.applied(|m| m.labels == labels).await
    }

    /// Puts the torrent in the bandwidth group `group` (created without
    /// limits if the session has none of that name), or in none; returns
    /// once its peers are charged to it.
    pub async fn set_group(&self, group: Option<String>) -> Result<(), TorrentOpError> {
        if let Some(g) = &group {
            crate::bandwidth::check_group_name(g)?;
        }
        self.ask(|reply| TorrentCmd::SetGroup(group, reply)).await
    }

    /// Waits (bounded) until the torrent's task shows `done` in its metadata.
    async fn applied(&self, done: impl Fn(&TorrentMeta) -> bool) -> Result<(), TorrentOpError> {
        let mut rx = self.meta.clone();
        let wait = async {
            loop {
                if done(&rx.borrow_and_update()) {
                    return Ok(());
                }
                if rx.changed().await.is_err() {
                    return Err(TorrentOpError::Stopped);
                }
            }
        };
        // A task busy for longer (moving data) applies it when it gets there.
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or(Ok(()))
    }

    /// Replaces every tracker of the torrent (its own, the magnet's, the
    /// extra ones) with these tiers; an announce starts at once when it
    /// transfers. Kept across restarts.
    pub async fn set_trackers(&self, tiers: Vec<Vec<String>>) -> Result<(), TorrentOpError> {
        self.send(TorrentCmd::SetTrackers(tiers)).await
    }

    /// Moves the data under another directory (rename on the same
    /// filesystem, else copy then delete); transfers stop meanwhile. On
    /// failure the data stays where it was.
    pub async fn move_data(&self, to: PathBuf) -> Result<(), TorrentOpError> {
        self.ask(|reply| TorrentCmd::Move(to, reply)).await
    }

    /// Runs an outgoing peer connection over an already connected stream
    /// (in-memory streams in tests; `addr` names the remote side).
    pub async fn connect_stream<S: PeerStream>(&self, stream: S, addr: SocketAddr) {
        let _ = self
            .send(TorrentCmd::Outgoing {
                stream: Box::new(stream),
                addr,
            })
            .await;
    }

    /// Accepts an incoming peer connection over `stream` (its handshake is
    /// read here, bounded in time, and must name this torrent).
    pub async fn accept_stream<S: PeerStream>(&self, mut stream: S, addr: SocketAddr) {
        let prefix = tokio::time::timeout(
            Duration::from_secs(10),
            shoal_wire::tokio_io::read_handshake_prefix(&mut stream),
        )
        .await;
        if let Ok(Ok(prefix)) = prefix {
            if super::matches_hash(&self.info_hashes, &prefix.info_hash) {
                let _ = self
                    .send(TorrentCmd::Incoming(Box::new(super::cmd::Incoming {
                        stream: Box::new(stream),
                        prefix,
                        addr,
                        encrypted: false,
                        utp: false,
                    })))
                    .await;
            }
        }
    }
}
