//! The phases of a torrent that starts without everything it needs: a
//! magnet link's info dictionary (BEP 9, from peers found through the DHT,
//! the magnet's trackers, its `x.pe` peers and peers given by hand) and
//! the piece layers of a v2 torrent (BEP 52 hash requests). Peers that
//! helped become the torrent's first candidates. Policy lives here, not in
//! the CLI: a private torrent (BEP 27) leaves the DHT as soon as its
//! metadata says so.
use super::cmd::TorrentCmd;
use super::task::{Stop, TorrentTask};
use crate::error::TorrentError;
use crate::events::SessionEvent;
use crate::layout::FileSelection;
use crate::metadata::{fetch_metadata, MetadataFetchConfig, MetadataTarget};
use crate::piece_layers::{fetch_piece_layers, LayerFetchConfig};
use crate::session::dht::FeedMode;
use crate::status::TorrentState;
use shoal_metainfo::{Magnet, ParseLimits, Torrent};
use shoal_wire::MetadataHash;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Most trackers asked for peers while the metadata is missing.
const MAX_METADATA_TRACKERS: usize = 8;
/// Fallback time between two announces to one tracker while the metadata is missing.
const METADATA_TRACKER_INTERVAL: Duration = Duration::from_secs(30);
/// Time allowed when no timeout was asked for (the fetch is started again).
const LONG: Duration = Duration::from_secs(3600);

impl TorrentTask {
    fn target(&self) -> MetadataTarget {
        match (self.hashes.v1, self.hashes.v2) {
            (Some(v1), _) => MetadataTarget {
                info_hash: v1.0,
                hash: MetadataHash::V1(v1.0),
            },
            (None, Some(v2)) => MetadataTarget {
                info_hash: v2.truncated().0,
                hash: MetadataHash::V2(v2.0),
            },
            (None, None) => MetadataTarget {
                info_hash: [0; 20],
                hash: MetadataHash::V1([0; 20]),
            },
        }
    }

    /// Waits while the user keeps the torrent paused. `Err` when it ends.
    async fn wait_unpaused(&mut self) -> Result<(), Stop> {
        if !self.user_paused {
            return Ok(());
        }
        self.set_state(TorrentState::Paused, None);
        self.set_dht(FeedMode::Off);
        while self.user_paused {
            match self.cmds.recv().await {
                None => return Err(Stop::quiet()),
                Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                    return Err(Stop::new(delete_data, reply))
                }
                Some(other) => self.idle_cmd(other).await,
            }
        }
        Ok(())
    }

    /// Fetches the info dictionary; `Err` when the torrent is stopped first.
    pub(super) async fn fetch_metadata(&mut self) -> Result<(), Stop> {
        loop {
            self.wait_unpaused().await?;
            self.set_state(TorrentState::FetchingMetadata, None);
            self.set_dht(FeedMode::Metadata);
            let (tx, mut rx) = mpsc::channel(64);
            let trackers = self.metadata_trackers(tx.clone());
            let explicit = self.explicit_peers().await;
            let timeout = self.metadata_timeout;
            let config = MetadataFetchConfig {
                peer_id: self.ctx.peer_id,
                overall_timeout: timeout.unwrap_or(LONG),
                ..MetadataFetchConfig::default()
            };
            let fetch = fetch_metadata(self.target(), config, explicit.clone(), &mut rx, |p| {
                tracing::debug!(
                    known = p.known,
                    active = p.active,
                    failed = p.failed,
                    "fetching metadata"
                );
            });
            tokio::pin!(fetch);
            let result = loop {
                tokio::select! {
                    r = &mut fetch => break Some(r),
                    cmd = self.cmds.recv() => match cmd {
                        None => {
                            trackers.abort();
                            return Err(Stop::quiet());
                        }
                        Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                            trackers.abort();
                            return Err(Stop::new(delete_data, reply));
                        }
                        Some(TorrentCmd::AddPeers(p)) => {
                            let _ = tx.try_send(p);
                        }
                        Some(TorrentCmd::Pause) => {
                            self.user_paused = true;
                            self.save_record().await;
                            break None;
                        }
                        Some(other) => self.idle_cmd(other).await,
                    },
                }
            };
            trackers.abort();
            let Some(result) = result else { continue };
            let fetched = match result {
                Ok(f) => f,
                Err(e) => {
                    tracing::info!(error = %e, "fetching metadata");
                    let secs = timeout.unwrap_or(LONG).as_secs();
                    match self
                        .failed_before_run(TorrentError::MetadataTimeout { secs })
                        .await
                    {
                        Some(stop) => return Err(stop),
                        None => continue,
                    }
                }
            };
            let t = match Torrent::from_info_bytes(&fetched.info, &ParseLimits::default()) {
                Ok(t) => t,
                Err(e) => match self
                    .failed_before_run(TorrentError::BadMetadata(e.to_string()))
                    .await
                {
                    Some(stop) => return Err(stop),
                    None => continue,
                },
            };
            tracing::info!(name = t.name(), from = %fetched.from, bytes = fetched.info.len(), "metadata received");
            // BEP 27: a private torrent uses only its trackers and the peers
            // given by hand.
            let private = t.is_private();
            let mut peers = vec![fetched.from];
            peers.extend(if private {
                explicit
            } else {
                fetched.candidates
            });
            peers.dedup();
            self.peers.extend(peers);
            let prio = self.selection_for(&t);
            let t = Arc::new(t);
            let name = t.name().to_owned();
            self.meta_tx.send_modify(|m| {
                m.torrent = Some(t.clone());
                m.name = name.clone();
                m.file_priorities = prio;
            });
            self.torrent = Some(t);
            self.save_record().await;
            self.ctx
                .emit(SessionEvent::MetadataReceived { id: self.id, name });
            return Ok(());
        }
    }

    /// One priority per file: the caller's selection, else the magnet's
    /// `so` (BEP 53), else every file. Indices past the end are ignored.
    fn selection_for(&self, t: &Torrent) -> Vec<u8> {
        let n = t.files().len();
        let sel = match &self.selection {
            FileSelection::All => {
                let so: Vec<usize> = self
                    .magnet
                    .iter()
                    .flat_map(|m| m.select_only.iter())
                    .flat_map(|r| {
                        *r.start() as usize..=(*r.end() as usize).min(n.saturating_sub(1))
                    })
                    .filter(|&i| i < n)
                    .collect();
                if so.is_empty() {
                    FileSelection::All
                } else {
                    FileSelection::Indices(so)
                }
            }
            other => other.clone(),
        };
        sel.file_priorities(t).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "file selection ignored");
            vec![1; n]
        })
    }

    /// Fetches the piece layers a v2 torrent lacks from its peers (BEP 52).
    pub(super) async fn fetch_layers(&mut self) -> Result<(), Stop> {
        loop {
            self.wait_unpaused().await?;
            let Some(t) = self.torrent.clone() else {
                return Ok(());
            };
            self.set_state(TorrentState::FetchingMetadata, None);
            self.set_dht(FeedMode::Metadata);
            let (tx, mut rx) = mpsc::channel(64);
            let trackers = self.metadata_trackers(tx.clone());
            let mut peers = self.explicit_peers().await;
            // Gather candidates until some arrive (bounded by the timeout).
            let deadline = tokio::time::Instant::now() + self.metadata_timeout.unwrap_or(LONG);
            while peers.is_empty() {
                tokio::select! {
                    Some(p) = rx.recv() => peers.extend(p),
                    cmd = self.cmds.recv() => match cmd {
                        None => return Err(Stop::quiet()),
                        Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                            trackers.abort();
                            return Err(Stop::new(delete_data, reply));
                        }
                        Some(TorrentCmd::AddPeers(p)) => peers.extend(p),
                        Some(other) => self.idle_cmd(other).await,
                    },
                    _ = tokio::time::sleep_until(deadline) => break,
                }
            }
            trackers.abort();
            let mut torrent = (*t).clone();
            let config = LayerFetchConfig {
                peer_id: self.ctx.peer_id,
                overall_timeout: self.metadata_timeout.unwrap_or(Duration::from_secs(120)),
                ..LayerFetchConfig::default()
            };
            let info_hash = self.hashes.primary().0;
            let r = tokio::select! {
                r = fetch_piece_layers(&mut torrent, info_hash, &peers, &config) => r,
                cmd = self.cmds.recv() => match cmd {
                    Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                        return Err(Stop::new(delete_data, reply));
                    }
                    None => return Err(Stop::quiet()),
                    // Anything else waits for the layers: put it back later.
                    Some(other) => {
                        self.idle_cmd(other).await;
                        continue;
                    }
                },
            };
            match r {
                Ok(()) => {
                    self.peers.extend(peers);
                    let t = Arc::new(torrent);
                    self.meta_tx.send_modify(|m| m.torrent = Some(t.clone()));
                    self.torrent = Some(t);
                    return Ok(());
                }
                Err(e) => match self
                    .failed_before_run(TorrentError::PieceLayers(e.to_string()))
                    .await
                {
                    Some(stop) => return Err(stop),
                    None => continue,
                },
            }
        }
    }

    /// The peers given by hand and the magnet's `x.pe` peers (host names
    /// resolved; failures skipped).
    async fn explicit_peers(&self) -> Vec<SocketAddr> {
        let mut out = self.peers.clone();
        if let Some(m) = &self.magnet {
            for hp in &m.peers {
                match hp.to_socket_addr() {
                    Some(a) => out.push(a),
                    None => match tokio::net::lookup_host((hp.host.as_str(), hp.port)).await {
                        Ok(mut addrs) => out.extend(addrs.next()),
                        Err(e) => {
                            tracing::warn!(host = %hp.host, error = %e, "x.pe peer not resolved")
                        }
                    },
                }
            }
        }
        out
    }

    /// Asks the magnet's and the extra trackers for peers while the
    /// metadata is missing (the announcer takes over once the torrent
    /// runs); peers go to `sink`. Abort the returned task when done.
    fn metadata_trackers(
        &self,
        sink: mpsc::Sender<Vec<SocketAddr>>,
    ) -> tokio::task::JoinHandle<()> {
        let mut urls: Vec<String> = self
            .magnet
            .as_ref()
            .map(|m: &Magnet| m.trackers.clone())
            .unwrap_or_default();
        if let Some(t) = &self.torrent {
            urls.extend(t.trackers().iter().flatten().cloned());
        }
        urls.extend(self.meta_tx.borrow().extra_trackers.iter().cloned());
        urls.dedup();
        urls.truncate(MAX_METADATA_TRACKERS);
        let client = self.ctx.tracker.clone();
        let info_hash = self.hashes.primary().0;
        let peer_id = self.ctx.peer_id;
        let port = self.ctx.local_addr.port();
        tokio::spawn(async move {
            let mut set = tokio::task::JoinSet::new();
            for url in urls {
                let client = client.clone();
                let sink = sink.clone();
                set.spawn(async move {
                    // The size is unknown until the metadata arrives: say something is left.
                    let mut req = shoal_tracker::AnnounceRequest::new(info_hash, peer_id, port, 1);
                    req.event = shoal_tracker::Event::Started;
                    req.numwant = Some(50);
                    loop {
                        let wait = match client.announce(&url, &req, None).await {
                            Ok(r) => {
                                req.event = shoal_tracker::Event::None;
                                if !r.peers.is_empty() && sink.send(r.peers).await.is_err() {
                                    return;
                                }
                                Duration::from_secs(u64::from(r.interval.clamp(5, 300)))
                            }
                            Err(e) => {
                                tracing::warn!(%url, error = %e, "tracker announce failed");
                                METADATA_TRACKER_INTERVAL
                            }
                        };
                        tokio::time::sleep(wait.min(METADATA_TRACKER_INTERVAL)).await;
                    }
                });
            }
            while set.join_next().await.is_some() {}
        })
    }
}
