//! A torrent that starts without everything it needs: a magnet link's info
//! dictionary and the piece layers of a v2 torrent.
//!
//! A magnet link runs from the start like any torrent (peers from the DHT,
//! its trackers, its `x.pe` peers and peers given by hand), with a core in
//! metadata mode: the same connections fetch the info dictionary (BEP 9,
//! `torrent::core::metadata`), then, still connected, the task parses it,
//! fetches missing v2 piece layers (BEP 52), checks what is on disk, and
//! the core gets its pieces ([`TorrentCore::set_metadata`]): the peers that
//! gave the metadata are the first to give pieces. Those steps run as one
//! [`Phase`] future beside the run's events. Policy lives here, not in the
//! CLI: a private torrent (BEP 27) leaves the DHT and peer exchange as soon
//! as its metadata says so.
//!
//! [`TorrentCore::set_metadata`]: super::core::TorrentCore::set_metadata
use super::driver::Run;
use super::task::fill_shared;
use super::task::TorrentTask;
use crate::error::TorrentError;
use crate::events::SessionEvent;
use crate::layout::FileSelection;
use crate::metadata::MetadataTarget;
use crate::piece_layers::{LayerAssembler, LayerFetchConfig};
use crate::session::dht::FeedMode;
use bytes::Bytes;
use shoal_metainfo::{Magnet, ParseLimits, Torrent};
use shoal_storage::{ResumeOutcome, Storage, StorageError};
use shoal_wire::MetadataHash;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

impl TorrentTask {
    pub(super) fn target(&self) -> MetadataTarget {
        match (self.hashes.v1, self.hashes.v2) {
            (Some(v1), _) => MetadataTarget {
                info_hash: shoal_base::InfoHash(v1.0),
                hash: MetadataHash::V1(shoal_base::InfoHash(v1.0)),
            },
            (None, Some(v2)) => MetadataTarget {
                info_hash: v2.truncated(),
                hash: MetadataHash::V2(shoal_base::InfoHashV2(v2.0)),
            },
            (None, None) => MetadataTarget {
                info_hash: shoal_base::InfoHash([0; 20]),
                hash: MetadataHash::V1(shoal_base::InfoHash([0; 20])),
            },
        }
    }

    /// One priority per file: the caller's selection, else the magnet's
    /// `so` (BEP 53), else every file. Indices past the end are ignored.
    fn selection_for(&self, t: &Torrent) -> Vec<u8> {
        let n = t.files().len();
        let sel = match self.selection.as_deref().unwrap_or(&FileSelection::All) {
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
}

/// The work between a magnet link's metadata and its first piece.
pub(super) type Phase = Pin<Box<dyn Future<Output = PhaseDone> + Send>>;

/// What a [`Phase`] came to.
pub(super) enum PhaseDone {
    /// The data on disk was checked.
    Checked(
        Arc<Storage>,
        Result<Result<ResumeOutcome, StorageError>, tokio::task::JoinError>,
    ),
}

/// The phase's result, when there is one running (never, otherwise).
pub(super) async fn poll_phase(phase: &mut Option<Phase>) -> PhaseDone {
    match phase {
        Some(p) => {
            let done = p.as_mut().await;
            *phase = None;
            done
        }
        None => std::future::pending().await,
    }
}

/// A magnet's `x.pe` peers (host names resolved; failures skipped).
pub(super) async fn magnet_peers(m: &Magnet) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    for hp in &m.peers {
        match hp.to_socket_addr() {
            Some(a) => out.push(a),
            None => match tokio::net::lookup_host((hp.host.as_str(), hp.port)).await {
                Ok(mut addrs) => out.extend(addrs.next()),
                Err(e) => tracing::warn!(host = %hp.host, error = %e, "x.pe peer not resolved"),
            },
        }
    }
    out
}

impl TorrentTask {
    /// The info dictionary arrived over the run's connections: parse it,
    /// then fetch the missing piece layers or check the data.
    pub(super) async fn on_metadata(
        &mut self,
        run: &mut Run,
        info: Bytes,
        phase: &mut Option<Phase>,
    ) {
        let t = match Torrent::from_info_bytes(&info, &ParseLimits::default()) {
            Ok(t) => t,
            Err(e) => {
                run.core.metadata_unusable();
                run.core
                    .pause(Some(TorrentError::BadMetadata(e.to_string())));
                return;
            }
        };
        tracing::info!(name = t.name(), bytes = info.len(), "metadata received");
        let prio = self.selection_for(&t);
        let t = Arc::new(t);
        let name = t.name().to_owned();
        self.meta_tx.send_modify(|m| {
            m.torrent = Some(t.clone());
            m.name = name.clone();
            m.file_priorities = prio;
        });
        self.torrent = Some(t.clone());
        // BEP 27: no DHT for a private torrent (peer exchange goes off with
        // the metadata in the core).
        self.set_dht(FeedMode::Off);
        self.save_record().await;
        self.ctx
            .emit(SessionEvent::MetadataReceived { id: self.id, name });
        self.after_metadata(run, phase);
    }

    /// With the info dictionary known: fetch the missing v2 piece layers
    /// from the connected peers, or check the data.
    pub(super) fn after_metadata(&mut self, run: &mut Run, phase: &mut Option<Phase>) {
        let Some(t) = self.torrent.clone() else {
            return;
        };
        run.core.metadata_received();
        if (0..t.files().len()).any(|i| t.needs_piece_layer(i)) {
            match LayerAssembler::new(&t, LayerFetchConfig::default().max_pieces) {
                Ok(asm) => run.core.start_layer_fetch(Instant::now(), asm),
                Err(e) => run
                    .core
                    .pause(Some(TorrentError::PieceLayers(e.to_string()))),
            }
        } else {
            self.start_check(run, phase);
        }
    }

    /// The piece layers arrived (checked against their roots): attach them
    /// and check the data.
    pub(super) fn on_layers(
        &mut self,
        run: &mut Run,
        layers: Vec<(usize, Vec<[u8; 32]>)>,
        phase: &mut Option<Phase>,
    ) {
        let Some(t) = self.torrent.clone() else {
            return;
        };
        let mut t = (*t).clone();
        for (i, layer) in layers {
            if let Err(e) = t.attach_piece_layer(i, layer) {
                run.core
                    .pause(Some(TorrentError::PieceLayers(e.to_string())));
                return;
            }
        }
        tracing::info!("piece layers received");
        let t = Arc::new(t);
        self.meta_tx.send_modify(|m| m.torrent = Some(t.clone()));
        self.torrent = Some(t);
        self.start_check(run, phase);
    }

    /// Opens the storage and checks it in the background.
    fn start_check(&mut self, run: &mut Run, phase: &mut Option<Phase>) {
        let storage = match self.open_storage() {
            Ok(s) => s,
            Err(e) => {
                run.core.pause(Some(e));
                return;
            }
        };
        let prio = self.meta_tx.borrow().file_priorities.clone();
        let checks = self.ctx.checks.clone();
        *phase = Some(Box::pin(async move {
            let _permit = checks.acquire_owned().await;
            let st = storage.clone();
            let r = tokio::task::spawn_blocking(move || {
                for (i, &p) in prio.iter().enumerate() {
                    if p == 0 {
                        st.set_file_wanted(i, false)?;
                    }
                }
                st.resume_from(None, &|_| {})
            })
            .await;
            PhaseDone::Checked(storage, r)
        }));
    }

    /// A phase ended: go on to the next, or give the core its pieces.
    pub(super) async fn on_phase(
        &mut self,
        run: &mut Run,
        storage: &mut Option<Arc<Storage>>,
        done: PhaseDone,
    ) {
        match done {
            PhaseDone::Checked(st, Ok(Ok(o))) => {
                let Some(t) = self.torrent.clone() else {
                    return;
                };
                fill_shared(&run.shared, &t, &st);
                let picker = self.new_picker(&t, &st, &o.verified);
                run.core
                    .set_metadata(Instant::now(), picker, t.is_private());
                let mut s = run.core.status().clone();
                s.pieces_checked_at_start = o.pieces_checked;
                s.pieces_checked = o.pieces_checked;
                self.publish(&s);
                *storage = Some(st);
                if let Err(e) = run.ensure_disk() {
                    tracing::warn!(error = %e, "registering with the disk pool");
                }
            }
            PhaseDone::Checked(_, Ok(Err(e))) => {
                run.core.pause(Some(TorrentError::from_storage(&e)));
            }
            PhaseDone::Checked(_, Err(e)) => run
                .core
                .pause(Some(TorrentError::Open(format!("the check failed: {e}")))),
        }
    }
}
