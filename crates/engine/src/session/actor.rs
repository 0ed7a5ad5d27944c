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
    let mut next_id = 1u64;
    loop {
        tokio::select! {
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
                        torrent::spawn(ctx.clone(), id, torrent::Origin::Params(params)).await
                    };
                    let _ = reply.send(r.map(|(handle, task)| {
                        torrents.spawn(task);
                        registry.insert(handle.clone());
                        ctx.emit(SessionEvent::Added { id: handle.id(), name: Some(handle.meta().name) });
                        handle
                    }));
                }
                Some(SessionCmd::Restore { record, reply }) => {
                    let r = if registry.contains(&record.info_hashes) {
                        Err(AddTorrentError::Duplicate(record.info_hashes.primary().to_hex()))
                    } else {
                        let id = TorrentId(next_id);
                        next_id += 1;
                        torrent::spawn(ctx.clone(), id, torrent::Origin::Record(record)).await
                    };
                    let _ = reply.send(r.map(|(handle, task)| {
                        torrents.spawn(task);
                        registry.insert(handle.clone());
                        ctx.emit(SessionEvent::Added { id: handle.id(), name: Some(handle.meta().name) });
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
