//! The commands a torrent's task takes: between transfers
//! ([`TorrentTask::idle_cmd`], answered from the kept state) and during one
//! ([`TorrentTask::transfer_cmd`], applied to the running core). Settings
//! that outlive a run are stored in the metadata watch and the session's
//! persistence.
use super::cmd::TorrentCmd;
use super::core::PeerSource;
use super::driver::Run;
use super::task::{RunEnd, Stop, TorrentTask};
use crate::error::TorrentOpError;
use crate::persist::TorrentLimits;
use crate::session::dht::FeedMode;
use crate::status::TorrentState;
use std::time::Instant;

impl TorrentTask {
    /// Commands that need no running transfer (while checking, fetching
    /// metadata or stopped by an error).
    pub(super) async fn idle_cmd(&mut self, cmd: TorrentCmd) {
        match cmd {
            TorrentCmd::AddPeers(p) => {
                self.peers.extend(p);
                self.peers.truncate(super::core::MAX_KNOWN_ADDRS);
            }
            TorrentCmd::Pause => {
                self.user_paused = true;
                self.save_record().await;
            }
            TorrentCmd::Resume { force } => {
                self.resumed_by_user(force);
                self.save_record().await;
            }
            TorrentCmd::Queue(q) => self.queued = q,
            TorrentCmd::SetQueuePosition(p) => {
                self.queue_position = p;
                let s = self.last().clone();
                self.publish(&s);
                self.save_record().await;
            }
            TorrentCmd::SettingsChanged => self.goals.ignore = false,
            TorrentCmd::SetFilePriorities(p, reply) => {
                let r = self.store_priorities(p);
                if r.is_ok() {
                    self.save_record().await;
                }
                let _ = reply.send(r);
            }
            c
            @ (TorrentCmd::SetLimits(_) | TorrentCmd::SetGroup(..) | TorrentCmd::SetLabels(_)) => {
                self.settings_cmd(c).await;
            }
            TorrentCmd::SetTrackers(tiers) => self.store_trackers(tiers).await,
            TorrentCmd::Move(to, reply) => {
                let r = self.move_data(to).await;
                let _ = reply.send(r);
            }
            TorrentCmd::Recheck => self.force_check = true,
            TorrentCmd::Query(q) => self.answer_idle(q),
            TorrentCmd::Reader(id, w) => self.set_reader(id, w),
            TorrentCmd::Reannounce | TorrentCmd::Incoming(_) | TorrentCmd::Outgoing { .. } => {}
            TorrentCmd::Shutdown { .. } | TorrentCmd::CheckTurn(_) => {}
            TorrentCmd::Announced(o) => {
                self.note_idle_announce(*o);
            }
        }
    }

    /// The user resumed it (`force`: beyond the download queue); one that
    /// finished on its seeding goals then seeds whatever they say.
    fn resumed_by_user(&mut self, force: bool) {
        self.user_paused = false;
        self.force_start = force;
        if std::mem::take(&mut self.finished) {
            self.goals.ignore = true;
        }
    }

    /// The settings that are stored the same in every phase: limits, the
    /// bandwidth group and labels (any other command is ignored here).
    async fn settings_cmd(&mut self, cmd: TorrentCmd) {
        match cmd {
            TorrentCmd::SetLimits(l) => self.store_limits(*l).await,
            TorrentCmd::SetGroup(g, reply) => {
                let r = self.store_group(g).await;
                let _ = reply.send(r);
            }
            TorrentCmd::SetLabels(l) => {
                self.meta_tx.send_modify(|m| m.labels = l);
                self.save_record().await;
            }
            _ => {}
        }
    }

    pub(super) fn store_priorities(&mut self, p: Vec<u8>) -> Result<(), TorrentOpError> {
        let Some(t) = &self.torrent else {
            return Err(TorrentOpError::NoMetadata);
        };
        if p.len() != t.files().len() {
            return Err(TorrentOpError::BadPriorities {
                given: p.len(),
                count: t.files().len(),
            });
        }
        self.meta_tx.send_modify(|m| m.file_priorities = p);
        Ok(())
    }

    /// Keeps a new tracker list; what the old trackers said is forgotten.
    pub(super) async fn store_trackers(&mut self, tiers: Vec<Vec<String>>) {
        self.meta_tx.send_modify(|m| m.tracker_list = Some(tiers));
        self.save_record().await;
    }

    pub(super) async fn store_limits(&mut self, l: TorrentLimits) {
        if let Some(r) = &self.rates {
            r.set_limits(
                l.max_upload_rate,
                l.max_download_rate,
                l.bypass_session_limits,
            );
        }
        self.meta_tx.send_modify(|m| m.limits = l);
        self.save_record().await;
    }

    /// Puts the torrent in a bandwidth group, created if need be (refused
    /// when the session holds too many).
    pub(super) async fn store_group(
        &mut self,
        group: Option<String>,
    ) -> Result<(), TorrentOpError> {
        let rates = group
            .as_deref()
            .map(|g| self.ctx.groups.get(g))
            .transpose()?;
        if let Some(r) = &self.rates {
            r.set_group(rates);
        }
        self.meta_tx.send_modify(|m| m.group = group);
        self.save_record().await;
        Ok(())
    }

    /// Answers a question from the last known state (between runs).
    pub(super) fn answer_idle(&self, q: super::cmd::Query) {
        use super::cmd::Query;
        match q {
            Query::Peers(tx) => {
                let _ = tx.send(Vec::new());
            }
            Query::Pieces(tx) => {
                let n = self.torrent.as_ref().map_or(0, |t| t.piece_count());
                let have = if self.have.len() == n {
                    self.have.clone()
                } else {
                    shoal_wire::Bitfield::new(n)
                };
                let _ = tx.send(have);
            }
            Query::Trackers(tx) => {
                let tiers = || self.tracker_tiers();
                self.announcer.answer(tx, tiers);
            }
            Query::Disk(tx) => {
                let _ = tx.send(None);
            }
        }
    }

    /// Notes reader `id`'s windows (`None`: it closed).
    pub(super) fn set_reader(&mut self, id: u64, w: Option<Box<super::reader::ReaderWindows>>) {
        match w {
            Some(w) => {
                self.readers.insert(id, *w);
            }
            None => {
                self.readers.remove(&id);
            }
        }
    }

    pub(super) async fn transfer_cmd(&mut self, run: &mut Run, cmd: TorrentCmd) -> Option<RunEnd> {
        let now = Instant::now();
        match cmd {
            TorrentCmd::Query(q) => {
                use super::cmd::Query;
                match q {
                    Query::Peers(tx) => {
                        let _ = tx.send(run.core.peer_infos());
                    }
                    Query::Pieces(tx) => {
                        let _ = tx.send(run.core.have().clone());
                    }
                    Query::Disk(tx) => {
                        if let Err(e) = run.ensure_disk() {
                            tracing::warn!(error = %e, "registering with the disk pool");
                        }
                        let _ = tx.send(run.shared.disk.get().cloned());
                    }
                    q @ Query::Trackers(_) => self.answer_idle(q),
                }
            }
            TorrentCmd::Reader(id, w) => {
                self.set_reader(id, w);
                if let Some(t) = self.torrent.clone() {
                    let fp = self.meta_tx.borrow().file_priorities.clone();
                    run.core
                        .set_priorities(now, &self.piece_priorities(&t, &fp));
                }
            }
            TorrentCmd::Incoming(c) => {
                let c = *c;
                run.incoming(c.stream, c.prefix, c.addr, c.encrypted, c.utp)
            }
            TorrentCmd::Outgoing { stream, addr } => run.outgoing(stream, addr),
            TorrentCmd::AddPeers(addrs) => {
                run.core.add_addrs(now, addrs, PeerSource::Added);
                run.core.handle_timeout(now);
            }
            TorrentCmd::Pause => {
                self.user_paused = true;
                run.core.pause(None);
                self.save_record().await;
            }
            TorrentCmd::Resume { force } => {
                self.resumed_by_user(force);
                run.core.resume(now);
                self.start_announcer();
                self.save_record().await;
            }
            TorrentCmd::Queue(q) => {
                self.queued = q;
                if !q && run.core.status().state == TorrentState::Queued && !self.user_paused {
                    run.core.resume(now);
                    self.start_announcer();
                }
            }
            TorrentCmd::SetQueuePosition(p) => {
                self.queue_position = p;
                self.save_record().await;
            }
            TorrentCmd::SettingsChanged => self.goals.ignore = false,
            TorrentCmd::Recheck => return Some(RunEnd::Recheck),
            TorrentCmd::Reannounce => {
                self.announcer.announce_now();
                if let Some(mode) = self.dht_mode.take() {
                    self.set_dht(FeedMode::Off);
                    self.set_dht(mode);
                }
            }
            TorrentCmd::SetFilePriorities(p, reply) => {
                let r = self.store_priorities(p.clone());
                if r.is_ok() {
                    if let Some(t) = &self.torrent {
                        for (i, &fp) in p.iter().enumerate() {
                            let r = match run.shared.disk.get() {
                                Some(d) => d
                                    .set_file_wanted(i, fp > 0)
                                    .await
                                    .map_err(|e| e.to_string()),
                                None => match run.shared.storage.get() {
                                    Some(st) => {
                                        st.set_file_wanted(i, fp > 0).map_err(|e| e.to_string())
                                    }
                                    None => Ok(()),
                                },
                            };
                            if let Err(e) = r {
                                tracing::warn!(file = i, error = %e, "changing a file's selection");
                            }
                        }
                        run.core.set_priorities(now, &self.piece_priorities(t, &p));
                    }
                    self.save_record().await;
                }
                let _ = reply.send(r);
            }
            c
            @ (TorrentCmd::SetLimits(_) | TorrentCmd::SetGroup(..) | TorrentCmd::SetLabels(_)) => {
                self.settings_cmd(c).await;
            }
            TorrentCmd::SetTrackers(tiers) => {
                self.store_trackers(tiers).await;
                if self.announcer.is_on() {
                    self.stop_announcer();
                    self.start_announcer();
                }
            }
            TorrentCmd::Move(to, reply) => return Some(RunEnd::Move(to, reply)),
            // Checked already (a command woke it before its turn came).
            TorrentCmd::CheckTurn(_) => {}
            TorrentCmd::Announced(resp) => {
                tracing::debug!(peers = resp.peers.len(), "announce ok");
                run.core.add_addrs(now, resp.peers, PeerSource::Tracker);
                run.core.handle_timeout(now);
            }
            TorrentCmd::Shutdown { delete_data, reply } => {
                return Some(RunEnd::Stop(Stop {
                    delete_data,
                    reply: Some(reply),
                }))
            }
        }
        None
    }
}
