//! How a torrent's task is made: from what a caller adds or from a saved
//! record, with its handle, watches and command queue ([`spawn`]).
use super::announcing::Announcing;
use super::goals::SeedGoals;
use super::handle::{TorrentHandle, TorrentMeta};
use super::task::{unix_now, Counters, TorrentTask};
use super::watched;
use crate::error::AddTorrentError;
use crate::layout::{storage_layout, FileSelection};
use crate::persist::TorrentRecord;
use crate::session::{AddTorrentParams, SessionCtx, TorrentSource};
use crate::status::{TorrentState, TorrentStatus};
use crate::TorrentId;
use shoal_metainfo::{Magnet, Torrent};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

/// Commands queued to a torrent's task.
const CMD_QUEUE: usize = 256;

/// How a torrent enters the session.
pub(crate) enum Origin {
    /// Added by a caller, at this queue position.
    Params(Box<AddTorrentParams>, i64),
    /// Restored from the session's persistence.
    Record(Box<TorrentRecord>),
}

/// Builds a torrent's task and its handle (the caller spawns the task).
pub(crate) async fn spawn(
    ctx: Arc<SessionCtx>,
    id: TorrentId,
    origin: Origin,
) -> Result<(TorrentHandle, Launch), AddTorrentError> {
    let (record, torrent, magnet, selection, peers, timeout, is_new) = match origin {
        Origin::Params(p, queue_position) => {
            let p = *p;
            let hashes = p.source.info_hashes();
            let (torrent, magnet) = match p.source {
                TorrentSource::Torrent(t) => (Some(t), None),
                TorrentSource::Magnet(m) => (None, Some(*m)),
                TorrentSource::InfoHash(h) => (
                    None,
                    Some(Magnet {
                        v1: h.v1,
                        v2: h.v2,
                        ..Magnet::default()
                    }),
                ),
            };
            if magnet
                .as_ref()
                .is_some_and(|m| m.v1.is_none() && m.v2.is_none())
            {
                return Err(AddTorrentError::NoInfoHash);
            }
            let file_priorities = match &torrent {
                Some(t) => {
                    // Refuse what can never work now rather than fail later.
                    check_layout(t)?;
                    p.selection.file_priorities(t)?
                }
                None => Vec::new(),
            };
            let record = TorrentRecord {
                info_hashes: hashes,
                metainfo: torrent.as_ref().map(|t| t.info_bytes().to_vec()),
                magnet: magnet.as_ref().map(Magnet::to_uri),
                name: torrent
                    .as_ref()
                    .map(|t| t.name().to_owned())
                    .or_else(|| magnet.as_ref().and_then(|m| m.name.clone())),
                save_path: p.save_path,
                file_priorities,
                extra_trackers: p.extra_trackers,
                tracker_list: None,
                paused: p.paused,
                labels: p.labels,
                limits: p.limits,
                group: None,
                added_at: unix_now(),
                queue_position,
            };
            (
                record,
                torrent,
                magnet,
                p.selection,
                p.peers,
                p.metadata_timeout,
                true,
            )
        }
        Origin::Record(r) => {
            let r = *r;
            let torrent = match &r.metainfo {
                Some(m) => Some(Arc::new(parse_saved(m).map_err(|e| {
                    AddTorrentError::Persist(crate::persist::PersistError::Corrupt(e.into()))
                })?)),
                None => None,
            };
            let magnet = r.magnet.as_deref().and_then(|m| Magnet::parse(m).ok());
            if torrent.is_none() && magnet.is_none() {
                return Err(AddTorrentError::NoInfoHash);
            }
            (
                r,
                torrent,
                magnet,
                FileSelection::All,
                Vec::new(),
                None,
                false,
            )
        }
    };
    if is_new {
        let p = ctx.persist.clone();
        let rec = record.clone();
        tokio::task::spawn_blocking(move || p.save_torrent(&rec))
            .await
            .map_err(|_| AddTorrentError::SessionClosed)??;
    }
    let name = record
        .name
        .clone()
        .unwrap_or_else(|| record.info_hashes.primary().to_hex());
    let state = if torrent.is_some() {
        TorrentState::Checking
    } else {
        TorrentState::FetchingMetadata
    };
    let status = TorrentStatus {
        state,
        ..TorrentStatus::default()
    };
    let (status_tx, status_rx) = watched::channel(status.clone());
    let (meta_tx, meta_rx) = watched::channel(TorrentMeta {
        torrent: torrent.clone(),
        name,
        save_path: record.save_path.clone(),
        file_priorities: record.file_priorities.clone(),
        limits: record.limits,
        group: record.group.clone(),
        labels: record.labels.clone(),
        added_at: record.added_at,
        magnet: record.magnet.clone(),
        extra_trackers: record.extra_trackers.clone(),
        tracker_list: record.tracker_list.clone(),
    });
    let (tx, rx) = super::cmd_queue::channel(CMD_QUEUE);
    let handle = TorrentHandle {
        id,
        info_hashes: record.info_hashes,
        tx: tx.clone(),
        status: status_rx,
        meta: meta_rx,
    };
    let selection = match selection {
        FileSelection::All => None,
        _ if torrent.is_some() => None,
        sel => Some(Box::new(sel)),
    };
    let task = TorrentTask {
        id,
        hashes: record.info_hashes,
        torrent,
        magnet: magnet.map(Box::new),
        selection,
        metadata_timeout: timeout,
        peers,
        user_paused: record.paused,
        cmds: rx,
        own_tx: tx.downgrade(),
        status_tx,
        meta_tx,
        force_check: false,
        rates: None,
        announcer: Announcing::default(),
        have: shoal_wire::Bitfield::new(0),
        readers: std::collections::BTreeMap::new(),
        counters: Arc::new(Counters::default()),
        shown: None,
        queued: false,
        force_start: false,
        finished: false,
        goals: SeedGoals::new(Instant::now()),
        queue_position: record.queue_position,
        dht_mode: None,
        parked_dormant: false,
        ctx,
    };
    let task = Box::new(task);
    if !is_new && task.torrent.is_some() {
        // Restored with its metadata: it waits for its check turn parked,
        // with no future or tokio task, and the session's check turns
        // ([`crate::session::check_turns`]) wake it when its turn comes (a
        // command wakes it sooner). Thousands restored at once then hold
        // only their state, and the futures of their checks, made one at a
        // time, leave no holes between the states.
        match task.cmds.parker().park(task) {
            Ok(()) => return Ok((handle, Launch::Parked)),
            Err(task) => return Ok((handle, Launch::Run(Box::pin(task.run(false))))),
        }
    }
    Ok((handle, Launch::Run(Box::pin(task.run(false)))))
}

/// How a new torrent's task starts ([`spawn`]).
pub(crate) enum Launch {
    /// The caller spawns this future.
    Run(Pin<Box<dyn Future<Output = ()> + Send>>),
    /// Parked until its check turn: the caller hands the torrent's queue to
    /// the session's check turns.
    Parked,
}

/// Parses a stored metainfo: a whole .torrent, or a bare info dictionary.
fn parse_saved(bytes: &[u8]) -> Result<Torrent, shoal_metainfo::MetainfoError> {
    Torrent::from_bytes(bytes).or_else(|_| Torrent::from_info_bytes(bytes, &Default::default()))
}

/// Whether `t` can be stored: a v2 torrent without piece layers is fine
/// (they are fetched from peers), any other layout problem is not.
fn check_layout(t: &Torrent) -> Result<(), AddTorrentError> {
    match storage_layout(t) {
        Ok(_) | Err(AddTorrentError::V2Only) => Ok(()),
        Err(e) => Err(e),
    }
}
