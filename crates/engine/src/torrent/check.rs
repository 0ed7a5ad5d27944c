//! A torrent's check: its turn among the session's checks (one torrent
//! hashes at a time), then the resume data trusted where the files' stamps
//! match and the rest hashed.
use super::cmd::TorrentCmd;
use super::task::{Stop, TorrentTask};
use crate::error::TorrentError;
use crate::status::TorrentState;
use shoal_storage::Storage;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

impl TorrentTask {
    /// Hashes what is on disk (trusting resume data where the files are
    /// unchanged). `Err` when the torrent was stopped meanwhile.
    /// Waits, in the checking state, for the torrent's turn to check: one
    /// torrent checks at a time; commands are served while waiting.
    pub(super) async fn check_turn(&mut self) -> Result<Option<OwnedSemaphorePermit>, Stop> {
        self.set_state(TorrentState::Checking, None);
        let checks = self.ctx.checks.clone();
        loop {
            tokio::select! {
                p = checks.clone().acquire_owned() => return Ok(p.ok()),
                cmd = self.cmds.recv() => match cmd {
                    None => return Err(Stop { delete_data: false, reply: None }),
                    Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                        return Err(Stop { delete_data, reply: Some(reply) })
                    }
                    Some(TorrentCmd::CheckTurn(p)) => return Ok(Some(p)),
                    Some(other) => Box::pin(self.idle_cmd(other)).await,
                },
            }
        }
    }

    /// Checks the data in `storage` against the resume data, on the turn
    /// `permit` holds.
    pub(super) async fn check(
        &mut self,
        storage: &Arc<Storage>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Result<Result<Vec<bool>, TorrentError>, Stop> {
        let resume = if std::mem::take(&mut self.force_check) {
            None
        } else {
            let p = self.ctx.persist.clone();
            let key = self.hashes;
            match tokio::task::spawn_blocking(move || p.load_resume(&key)).await {
                Ok(Ok(r)) => r,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "loading resume data; checking everything");
                    None
                }
                Err(_) => None,
            }
        };
        if let Some(r) = &resume {
            let mut s = self.last().clone();
            s.uploaded = s.uploaded.max(r.uploaded);
            s.downloaded = s.downloaded.max(r.downloaded);
            self.publish(&s);
        }
        let prio = self.meta_tx.borrow().file_priorities.clone();
        let checked = Arc::new(AtomicU64::new(0));
        let st = storage.clone();
        let c2 = checked.clone();
        let data = resume.map(|r| r.data);
        let work = tokio::task::spawn_blocking(move || {
            for (i, &p) in prio.iter().enumerate() {
                if p == 0 {
                    st.set_file_wanted(i, false)?;
                }
            }
            st.resume_from(data, &|p: shoal_storage::CheckProgress| {
                c2.store(p.pieces_done, Ordering::Relaxed);
            })
        });
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let outcome = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => {
                    let mut s = self.last().clone();
                    s.pieces_checked = checked.load(Ordering::Relaxed);
                    self.publish(&s);
                }
                cmd = self.cmds.recv() => match cmd {
                    None => return Err(Stop { delete_data: false, reply: None }),
                    Some(TorrentCmd::Shutdown { delete_data, reply }) => {
                        // The check finishes on its thread; nothing waits for it.
                        return Err(Stop { delete_data, reply: Some(reply) });
                    }
                    Some(other) => self.idle_cmd(other).await,
                },
            }
        };
        drop(permit);
        match outcome {
            Ok(Ok(o)) => {
                let mut s = self.last().clone();
                s.pieces_checked_at_start = o.pieces_checked;
                s.pieces_checked = o.pieces_checked;
                self.publish(&s);
                Ok(Ok(o.verified))
            }
            Ok(Err(e)) => Ok(Err(TorrentError::from_storage(&e))),
            Err(_) => Ok(Err(TorrentError::Open("the check panicked".into()))),
        }
    }
}
