//! The session's run loop: adds and removes torrents (the only writer of
//! the registry), runs the listener, and shuts everything down within
//! bounds.
use super::registry::Registry;
use super::{AddTorrentParams, SessionCtx};
use crate::error::{AddTorrentError, TorrentOpError};
use crate::events::SessionEvent;
use crate::persist::TorrentRecord;
use crate::torrent::{self, TorrentHandle};
use crate::TorrentId;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Bound on stopping one torrent (peers closed, `stopped` announced, resume saved).
const TORRENT_SHUTDOWN: Duration = Duration::from_secs(15);

/// Messages to the run loop.
pub(crate) enum SessionCmd {
    Add {
        params: Box<AddTorrentParams>,
        reply: oneshot::Sender<Result<TorrentHandle, AddTorrentError>>,
    },
    Restore {
        record: Box<TorrentRecord>,
        reply: oneshot::Sender<Result<TorrentHandle, AddTorrentError>>,
    },
    Remove {
        id: TorrentId,
        delete_data: bool,
        reply: oneshot::Sender<Result<(), TorrentOpError>>,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
    /// Apply the download queue now (its size changed).
    Reconcile,
    QueueMove {
        id: TorrentId,
        to: super::QueueMove,
        reply: oneshot::Sender<Result<(), TorrentOpError>>,
    },
}

/// Time to gather state changes before applying the download queue.
const RECONCILE_DELAY: Duration = Duration::from_millis(100);

/// Starts and queues downloads so that at most the session's limit
/// transfer, by queue position.
fn reconcile(ctx: &SessionCtx, registry: &Registry) {
    use crate::status::TorrentState::{Downloading, Queued};
    let limit = ctx.live().max_active_downloads;
    let mut c: Vec<(i64, TorrentId, crate::TorrentState, TorrentHandle)> = registry
        .all()
        .into_iter()
        .filter_map(|h| {
            let s = h.status.borrow();
            matches!(s.state, Downloading | Queued)
                .then(|| (s.queue_position, h.id(), s.state, h.clone()))
        })
        .collect();
    c.sort_by_key(|(p, id, _, _)| (*p, *id));
    for (i, (_, _, state, h)) in c.into_iter().enumerate() {
        let run = limit.is_none_or(|n| i < n);
        if run && state == Queued {
            let _ = h.tx.try_send(torrent::TorrentCmd::Queue(false));
        } else if !run && state == Downloading {
            let _ = h.tx.try_send(torrent::TorrentCmd::Queue(true));
        }
    }
}

/// New queue positions for a move: (torrent, position) pairs to set.
fn queue_move(
    registry: &Registry,
    id: TorrentId,
    to: super::QueueMove,
) -> Vec<(TorrentHandle, i64)> {
    let mut all: Vec<(i64, TorrentId, TorrentHandle)> = registry
        .all()
        .into_iter()
        .map(|h| {
            let p = h.status.borrow().queue_position;
            (p, h.id(), h)
        })
        .collect();
    all.sort_by_key(|(p, id, _)| (*p, *id));
    let Some(i) = all.iter().position(|(_, t, _)| *t == id) else {
        return Vec::new();
    };
    let pos = all[i].0;
    match to {
        super::QueueMove::Top => {
            let min = all.first().map_or(0, |a| a.0);
            vec![(all[i].2.clone(), min - 1)]
        }
        super::QueueMove::Bottom => {
            let max = all.last().map_or(0, |a| a.0);
            vec![(all[i].2.clone(), max + 1)]
        }
        super::QueueMove::Up if i > 0 => {
            let other = &all[i - 1];
            let (a, b) = if other.0 == pos {
                (pos - 1, pos)
            } else {
                (other.0, pos)
            };
            vec![(all[i].2.clone(), a), (other.2.clone(), b)]
        }
        super::QueueMove::Down if i + 1 < all.len() => {
            let other = &all[i + 1];
            let (a, b) = if other.0 == pos {
                (pos + 1, pos)
            } else {
                (other.0, pos)
            };
            vec![(all[i].2.clone(), a), (other.2.clone(), b)]
        }
        _ => Vec::new(),
    }
}

pub(crate) async fn run(
    ctx: Arc<SessionCtx>,
    registry: Arc<Registry>,
    mut cmds: mpsc::Receiver<SessionCmd>,
    listener: TcpListener,
    cancel: CancellationToken,
) {
    let listen = tokio::spawn(super::listener::run(
        listener,
        registry.clone(),
        ctx.clone(),
        cancel.child_token(),
    ));
    let mut torrents: JoinSet<()> = JoinSet::new();
    let mut children: JoinSet<()> = JoinSet::new();
    let (turns, waiting) = mpsc::unbounded_channel();
    children.spawn(super::check_turns::run(ctx.checks.clone(), waiting));
    let mut next_id = 1u64;
    let mut max_pos = 0i64;
    let mut events = ctx.events.subscribe();
    let mut reconcile_at: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            e = events.recv() => {
                let due = match e {
                    Ok(SessionEvent::StateChanged { .. } | SessionEvent::Added { .. } | SessionEvent::Removed { .. }) => true,
                    Ok(_) => false,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => true,
                    Err(_) => false,
                };
                if due && reconcile_at.is_none() {
                    reconcile_at = Some(tokio::time::Instant::now() + RECONCILE_DELAY);
                }
            }
            _ = sleep_opt(reconcile_at) => {
                reconcile_at = None;
                reconcile(&ctx, &registry);
            }
            _ = cancel.cancelled() => break,
            cmd = cmds.recv() => match cmd {
                None => break,
                Some(SessionCmd::Add { params, reply }) => {
                    let h = params.source.info_hashes();
                    let r = if registry.contains(&h) {
                        Err(AddTorrentError::Duplicate(h.primary().to_hex()))
                    } else {
                        let id = TorrentId(next_id);
                        next_id += 1;
                        max_pos += 1;
                        torrent::spawn(ctx.clone(), id, torrent::Origin::Params(params, max_pos)).await
                    };
                    let _ = reply.send(r.map(|(handle, launch)| {
                        start(&ctx, &registry, &mut torrents, &turns, &handle, launch);
                        handle
                    }));
                }
                Some(SessionCmd::Restore { record, reply }) => {
                    let r = if registry.contains(&record.info_hashes) {
                        Err(AddTorrentError::Duplicate(record.info_hashes.primary().to_hex()))
                    } else {
                        let id = TorrentId(next_id);
                        next_id += 1;
                        max_pos = max_pos.max(record.queue_position);
                        torrent::spawn(ctx.clone(), id, torrent::Origin::Record(record)).await
                    };
                    let _ = reply.send(r.map(|(handle, launch)| {
                        start(&ctx, &registry, &mut torrents, &turns, &handle, launch);
                        handle
                    }));
                }
                Some(SessionCmd::Remove { id, delete_data, reply }) => {
                    let Some(handle) = registry.get(id) else {
                        let _ = reply.send(Err(TorrentOpError::NoSuchTorrent(id)));
                        continue;
                    };
                    let registry = registry.clone();
                    let ctx = ctx.clone();
                    children.spawn(async move {
                        let r = stop(&handle, delete_data).await;
                        registry.remove(id);
                        if let Some(d) = &ctx.dht {
                            d.remove(id);
                        }
                        let p = ctx.persist.clone();
                        let key = handle.info_hashes();
                        let forgotten = tokio::task::spawn_blocking(move || p.remove_torrent(&key)).await;
                        if let Ok(Err(e)) = forgotten {
                            tracing::warn!(error = %e, "forgetting a removed torrent");
                        }
                        ctx.emit(SessionEvent::Removed { id });
                        let _ = reply.send(r);
                    });
                }
                Some(SessionCmd::Reconcile) => reconcile(&ctx, &registry),
                Some(SessionCmd::QueueMove { id, to, reply }) => {
                    if registry.get(id).is_none() {
                        let _ = reply.send(Err(TorrentOpError::NoSuchTorrent(id)));
                        continue;
                    }
                    for (h, p) in queue_move(&registry, id, to) {
                        max_pos = max_pos.max(p);
                        let _ = h.tx.send(torrent::TorrentCmd::SetQueuePosition(p)).await;
                    }
                    let _ = reply.send(Ok(()));
                    reconcile_at.get_or_insert(tokio::time::Instant::now() + RECONCILE_DELAY);
                }
                Some(SessionCmd::Shutdown { reply }) => {
                    let mut all = JoinSet::new();
                    for h in registry.all() {
                        all.spawn(async move { stop(&h, false).await });
                    }
                    while all.join_next().await.is_some() {}
                    let _ = reply.send(());
                    break;
                }
            },
            Some(_) = torrents.join_next(), if !torrents.is_empty() => {}
            Some(_) = children.join_next(), if !children.is_empty() => {}
        }
    }
    cancel.cancel();
    let _ = listen.await;
    torrents.abort_all();
    while torrents.join_next().await.is_some() {}
    children.abort_all();
}

/// Starts a new torrent's task (or hands its queue to the check turns when
/// it waits parked), registers it and says so.
fn start(
    ctx: &SessionCtx,
    registry: &Registry,
    torrents: &mut JoinSet<()>,
    turns: &mpsc::UnboundedSender<torrent::WeakCmdSender<torrent::TorrentCmd>>,
    handle: &TorrentHandle,
    launch: torrent::Launch,
) {
    match launch {
        torrent::Launch::Run(task) => {
            torrents.spawn(task);
        }
        torrent::Launch::Parked => {
            let _ = turns.send(handle.tx.downgrade());
        }
    }
    registry.insert(handle.clone());
    ctx.emit(SessionEvent::Added {
        id: handle.id(),
        name: Some(handle.meta().name),
    });
}

/// Stops a torrent's task within [`TORRENT_SHUTDOWN`].
async fn stop(h: &TorrentHandle, delete_data: bool) -> Result<(), TorrentOpError> {
    let (tx, rx) = oneshot::channel();
    let cmd = torrent::TorrentCmd::Shutdown {
        delete_data,
        reply: tx,
    };
    if h.tx.send(cmd).await.is_err() {
        return Ok(());
    }
    match tokio::time::timeout(TORRENT_SHUTDOWN, rx).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => Ok(()),
        Err(_) => Err(TorrentOpError::Stopped),
    }
}

async fn sleep_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}
