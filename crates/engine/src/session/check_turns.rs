//! The check turns of torrents restored parked.
//!
//! A session restores its torrents all at once, and each checks its data
//! (against its resume data) before it transfers, one at a time: the
//! session's `checks` semaphore. A restored torrent with its metadata does
//! not wait for its turn as a task: it starts parked (its state in its
//! command queue, see `torrent::cmd_queue`), and this queue hands it the
//! turn as a [`TorrentCmd::CheckTurn`] command, in the order of restoring.
//! So 10,000 restored torrents hold no future while they wait, and the
//! futures of their checks, made one at a time, leave no holes between
//! their long-lived states.
//!
//! A torrent woken sooner (by a user's command) waits for the semaphore
//! itself, as an added torrent does; the turn it is handed later is then
//! dropped at once, which passes it on. A torrent removed meanwhile is
//! skipped.
use crate::torrent::{TorrentCmd, WeakCmdSender};
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore};

/// Hands the turns of `checks` to the torrents that `waiting` names, one
/// at a time, until every sender of `waiting` is dropped.
pub(crate) async fn run(
    checks: Arc<Semaphore>,
    mut waiting: mpsc::UnboundedReceiver<WeakCmdSender<TorrentCmd>>,
) {
    while let Some(torrent) = waiting.recv().await {
        let Ok(turn) = checks.clone().acquire_owned().await else {
            return;
        };
        // (Gone: removed meanwhile; the turn goes back as it drops.)
        if let Some(tx) = torrent.upgrade() {
            let _ = tx.send(TorrentCmd::CheckTurn(turn)).await;
        }
    }
}
