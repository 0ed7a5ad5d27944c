//! A torrent's transfer: one [`Run`] of the sans-IO core with its peers,
//! from its start (fresh, or awake again after dormancy) until it stops,
//! rechecks, moves or goes dormant; progress, resume saves and seeding
//! goals are looked after between its steps.
use super::core::PeerSource;
use super::driver::{Run, RunEvent, TaskAction};
use super::task::{RunEnd, Start, Stop, TorrentTask};
use crate::error::TorrentError;
use crate::picker::PiecePicker;
use crate::session::dht::FeedMode;
use crate::status::TorrentState;
use shoal_storage::Storage;
use std::sync::Arc;
use std::time::Instant;

impl TorrentTask {
    /// Transfers until a recheck, a move, dormancy or the end. `start`: the
    /// checked storage; `None` for a magnet link, whose connections fetch
    /// the metadata first ([`super::magnet`]). `how`: whether it wakes from
    /// dormancy (and the command that woke it).
    pub(super) async fn transfer(
        &mut self,
        start: Option<(Arc<Storage>, Vec<bool>)>,
        how: Start,
    ) -> RunEnd {
        let (woke, mut first_cmd) = match how {
            Start::Fresh => (false, None),
            Start::Wake(cmd) => (true, cmd),
        };
        let (core, shared, mut storage) = match (start, self.torrent.clone()) {
            (Some((storage, verified)), Some(t)) => {
                let picker = self.new_picker(&t, &storage, &verified);
                let core = self.new_core(picker, t.is_private());
                let shared = self.new_shared(Some((&t, &storage)));
                (core, shared, Some(storage))
            }
            (_, t) => {
                // A magnet link (no metadata), or a v2 torrent whose piece
                // layers must come from peers first.
                let private = t.as_ref().is_some_and(|t| t.is_private());
                let mut core = self.new_core(PiecePicker::new(16 * 1024, 0), private);
                core.start_metadata_fetch(self.target().hash);
                let shared = self.new_shared(None);
                if let Some(t) = &t {
                    let _ = shared
                        .info
                        .set(bytes::Bytes::copy_from_slice(t.info_bytes()));
                }
                (core, shared, None)
            }
        };
        let mut run = Run::new(core, shared, self.ctx.clone(), self.hashes.primary());
        run.v2_only = self.hashes.v1.is_none();
        let now = Instant::now();
        let peers = std::mem::take(&mut self.peers);
        run.core.add_addrs(now, peers, PeerSource::Added);
        if let Some(m) = self.magnet.as_ref().filter(|_| !woke) {
            let xpe = super::magnet::magnet_peers(m).await;
            run.core.add_addrs(now, xpe, PeerSource::Added);
        }
        if self.user_paused {
            run.core.pause(None);
        } else {
            self.start_announcer();
        }
        if !woke {
            // (Across dormancy the idle goal counts on.)
            self.goals
                .restart(run.core.status().uploaded, Instant::now());
        }
        let counts = (run.core.status().uploaded, run.core.status().downloaded);
        // Since when nothing happens (see `quiet`).
        let mut quiet_since = Instant::now();
        let mut phase: Option<super::magnet::Phase> = None;
        let mut meta_deadline: Option<Instant> = None;
        if storage.is_none() && self.torrent.is_some() {
            // The metadata is known: on to the piece layers.
            self.after_metadata(&mut run, &mut phase);
        }
        let end = loop {
            // The rare and large awaits of the loop are boxed: a future is as
            // large as its largest state, and this one lives as long as the
            // torrent (thousands of them in a daemon), while the loop mostly
            // waits in the `select!`.
            Box::pin(self.after_step(&mut run, storage.as_ref(), &mut phase)).await;
            if let Some(cmd) = first_cmd.take() {
                if let Some(end) = Box::pin(self.transfer_cmd(&mut run, cmd)).await {
                    break end;
                }
                continue;
            }
            let now = Instant::now();
            let dormant_at = if self.quiet(&run, storage.is_some(), phase.is_none()) {
                // At once when no peer came since it woke or started.
                self.ctx.config.dormant_after.map(|d| {
                    if run.had_peers {
                        quiet_since + d
                    } else {
                        quiet_since
                    }
                })
            } else {
                quiet_since = now;
                None
            };
            if dormant_at.is_some_and(|t| now >= t) {
                break RunEnd::Dormant;
            }
            if run.core.status().state == TorrentState::FetchingMetadata {
                if meta_deadline.is_none() {
                    meta_deadline = self.metadata_timeout.map(|t| Instant::now() + t);
                }
            } else {
                meta_deadline = None;
            }
            let deadline = [
                run.core.poll_timeout(),
                self.idle_deadline(&run),
                meta_deadline,
                dormant_at,
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                cmd = self.cmds.recv() => {
                    let Some(cmd) = cmd else {
                        break RunEnd::Stop(Stop { delete_data: false, reply: None });
                    };
                    if let Some(end) = Box::pin(self.transfer_cmd(&mut run, cmd)).await {
                        break end;
                    }
                }
                ev = run.next_event() => {
                    let now = Instant::now();
                    match ev {
                        RunEvent::Disk(e) => run.on_disk(now, e),
                        RunEvent::Peer(m) => run.on_msg(now, m),
                    }
                    // Drain a burst of peer reports before acting.
                    for _ in 0..256 {
                        match run.try_next() {
                            Some(m) => run.on_msg(now, m),
                            None => break,
                        }
                    }
                }
                done = super::magnet::poll_phase(&mut phase) => {
                    Box::pin(self.on_phase(&mut run, &mut storage, done)).await;
                }
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    if meta_deadline.is_some_and(|t| now >= t) && run.core.fetching_metadata() {
                        let secs = self.metadata_timeout.map_or(0, |t| t.as_secs());
                        run.core.pause(Some(TorrentError::MetadataTimeout { secs }));
                        meta_deadline = None;
                    }
                    run.core.handle_timeout(now);
                }
            }
        };
        if matches!(end, RunEnd::Dormant) {
            // The addresses it knows (a paused torrent's) for when it wakes.
            self.peers = run.core.known_addrs();
            self.peers.truncate(super::core::MAX_KNOWN_ADDRS);
        }
        let verified = Box::pin(run.stop()).await;
        let before = std::mem::replace(&mut self.have, run.core.have().clone());
        // Counters as they ended; the state is the next phase's to set.
        let mut s = run.core.status().clone();
        s.state = self.last().state;
        self.publish(&s);
        // Woken and gone dormant again without a change: the resume data
        // saved when it went dormant still holds.
        let unchanged = woke
            && before == self.have
            && counts == {
                let l = self.last();
                (l.uploaded, l.downloaded)
            };
        // The last save of a run is waited for: it must be there at a restart.
        if let Some(storage) = storage.as_ref().filter(|_| !unchanged) {
            let _ = Box::pin(self.save_resume(storage, verified)).await;
        }
        end
    }

    /// Whether nothing happens in `run` nor needs it: it seeds or is
    /// paused, with its storage (`stored`) and no metadata phase
    /// (`settled`), no connection, no reader, and its core waits for no
    /// time (no candidate to dial, no resume save, no rate to settle).
    fn quiet(&self, run: &Run, stored: bool, settled: bool) -> bool {
        stored
            && settled
            && self.readers.is_empty()
            && matches!(
                run.core.status().state,
                TorrentState::Seeding | TorrentState::Paused
            )
            && !run.core.fetching_metadata()
            && run.has_no_peers()
            && run.core.poll_timeout().is_none()
    }

    /// When the idle seeding goal would stop this torrent, if it has one.
    fn idle_deadline(&self, run: &Run) -> Option<Instant> {
        self.idle_goal(run.core.status().state)
    }

    async fn after_step(
        &mut self,
        run: &mut Run,
        storage: Option<&Arc<Storage>>,
        phase: &mut Option<super::magnet::Phase>,
    ) {
        let s = run.core.status().clone();
        if self.goal_reached(&s) {
            tracing::info!("seeding goal reached; stopping");
            self.finished = true;
            self.user_paused = true;
            run.core.pause(None);
            self.save_record().await;
        }
        if self.queued && !self.force_start && run.core.status().state == TorrentState::Downloading
        {
            run.core.queue();
        }
        for a in run.act() {
            match a {
                TaskAction::SaveResume(v) => {
                    // Batches run in the background; the last one is awaited.
                    if let Some(storage) = storage {
                        drop(self.save_resume(storage, v));
                    }
                }
                TaskAction::Metadata(info) => self.on_metadata(run, info, phase).await,
                TaskAction::Layers(l) => self.on_layers(run, l, phase),
                TaskAction::AnnounceCompleted => {
                    self.announcer.completed();
                }
            }
        }
        let s = run.core.status().clone();
        let mode = match s.state {
            TorrentState::Downloading => FeedMode::Downloading,
            TorrentState::Seeding => FeedMode::Seeding,
            TorrentState::FetchingMetadata => FeedMode::Metadata,
            _ => FeedMode::Off,
        };
        self.set_dht(mode);
        // Announce while the torrent transfers, fetches its metadata or
        // checks what a magnet brought; stop once it pauses or fails.
        if matches!(
            s.state,
            TorrentState::Paused
                | TorrentState::Error
                | TorrentState::Stopped
                | TorrentState::Queued
        ) {
            self.stop_announcer();
        }
        self.publish(&s);
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}
