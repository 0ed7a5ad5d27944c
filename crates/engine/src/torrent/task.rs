//! A torrent's task: its whole life in the session.
//!
//! `fetching metadata` (a magnet link: [`super::magnet`]) → `checking` (the
//! resume data from the session's persistence is trusted where the files'
//! stamps match, the rest is hashed; one torrent checks at a time:
//! [`super::check`]) → transferring (a [`Run`](super::driver::Run) around
//! the sans-IO core: `downloading`, `seeding`, `paused`, `error`;
//! [`super::transfer`]) → back to `checking` for a recheck or after a move
//! → `stopped`. Commands are handled in every phase ([`super::commands`]);
//! status and events are published from here, as are the resume saves
//! (through [`crate::persist::Persist`], on blocking threads). The task is
//! made in [`super::spawn()`]; its trackers are [`super::announcing`], its
//! seeding goals [`super::goals`].
//!
//! Dormancy ([`super::dormant`]): a transfer that seeds or is paused, with
//! no connection, no reader and nothing its core waits for, ends after
//! [`crate::SessionConfig::dormant_after`] without peers (at once when none
//! came): its `Run`, storage and the boxed future of the live phases are
//! dropped, and the task goes dormant with its verified pieces, counters,
//! status and announcer. There, when only a command can wake it (no idle
//! seeding goal; the session's announce service sends the peers trackers
//! give as commands), the task ends and leaves its state to its command
//! queue ([`park`](super::dormant::park)); the next command spawns it
//! again. A connection, a peer address, a tracker answer with peers, a
//! reader or any command that needs a transfer wakes it: a new `Run` starts
//! from the kept pieces without a check, and the waking command is its
//! first. Nothing of this shows in the status or the events.
use super::announcing::Announcing;
use super::cmd::{Reply, TorrentCmd};
use super::core::{CoreInit, CoreLimits, TorrentCore};
use super::dormant::Dormancy;
use super::goals::SeedGoals;
use super::handle::TorrentMeta;
use super::watched::{WatchRef, WatchSender};
use crate::bandwidth::TorrentRates;
use crate::error::TorrentError;
use crate::events::SessionEvent;
use crate::layout::{piece_priorities_of, storage_layout, FileSelection};
use crate::peer::PeerShared;
use crate::persist::{ResumeRecord, TorrentRecord};
use crate::picker::PiecePicker;
use crate::session::dht::FeedMode;
use crate::session::SessionCtx;
use crate::status::{TorrentState, TorrentStatus};
use crate::TorrentId;
use shoal_metainfo::{InfoHashes, Magnet, Torrent};
use shoal_storage::{Storage, StorageOptions};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// Time between two progress events of one torrent.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Bound on the `stopped` announce when a torrent pauses or stops.
pub(crate) const STOP_ANNOUNCE: Duration = Duration::from_secs(3);

/// Byte counters the announcer reads.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub downloaded: AtomicU64,
    pub uploaded: AtomicU64,
    pub left: AtomicU64,
}

/// How the task's life ends.
pub(crate) struct Stop {
    pub(super) delete_data: bool,
    pub(super) reply: Option<Reply>,
}

/// Why a transfer run ended.
pub(super) enum RunEnd {
    Stop(Stop),
    Recheck,
    Move(PathBuf, Reply),
    /// Idle long enough: the torrent goes dormant.
    Dormant,
}

/// How the live phases start.
pub(super) enum Start {
    /// From the beginning: the metadata, the check, the transfer.
    Fresh,
    /// Awake again after dormancy: the transfer at once, from the verified
    /// pieces kept; with the command that woke it, if one did.
    Wake(Option<TorrentCmd>),
}

/// The task. See the module docs.
pub(crate) struct TorrentTask {
    pub(super) id: TorrentId,
    pub(super) ctx: Arc<SessionCtx>,
    pub(super) hashes: InfoHashes,
    pub(super) torrent: Option<Arc<Torrent>>,
    pub(super) magnet: Option<Box<Magnet>>,
    /// The files to fetch once a magnet's metadata arrives (`None`: all,
    /// or the metadata is here and the selection is in the priorities).
    pub(super) selection: Option<Box<FileSelection>>,
    pub(super) metadata_timeout: Option<Duration>,
    pub(super) peers: Vec<SocketAddr>,
    pub(super) user_paused: bool,
    pub(super) cmds: super::cmd_queue::CmdReceiver<TorrentCmd>,
    /// Our own command channel, for the DHT scheduler to send peers on.
    pub(super) own_tx: super::cmd_queue::WeakCmdSender<TorrentCmd>,
    pub(super) status_tx: WatchSender<TorrentStatus>,
    pub(super) meta_tx: WatchSender<TorrentMeta>,
    pub(super) force_check: bool,
    /// The rate limits every peer of the torrent charges its bytes to:
    /// made when a transfer starts, dropped while dormant (the limits and
    /// the group are kept in the metadata).
    pub(super) rates: Option<Arc<TorrentRates>>,
    /// Its place in the session's announce service, which sends the peers
    /// trackers give as [`TorrentCmd::Announced`] and keeps what each said
    /// (for display: [`Query::Trackers`](super::cmd::Query::Trackers)).
    pub(super) announcer: Announcing,
    /// The verified pieces as of the last run (answers queries between runs).
    pub(super) have: shoal_wire::Bitfield,
    /// The windows of the open file readers, by reader id.
    pub(super) readers: std::collections::BTreeMap<u64, super::reader::ReaderWindows>,
    pub(super) counters: Arc<Counters>,
    /// The last progress event, while the torrent is awake (boxed: a
    /// parked torrent drops it, and a daemon parks thousands).
    pub(super) shown: Option<Box<Shown>>,
    /// The session's download queue holds it back.
    pub(super) queued: bool,
    /// Started by hand beyond the download queue.
    pub(super) force_start: bool,
    /// Stopped on its seeding goal.
    pub(super) finished: bool,
    /// Where it stands against its seeding goals.
    pub(super) goals: SeedGoals,
    pub(super) queue_position: i64,
    pub(super) dht_mode: Option<FeedMode>,
    /// It parked dormant ([`park`](super::dormant::park)), not restored and waiting for its
    /// check: it wakes dormant.
    pub(super) parked_dormant: bool,
}

/// The last progress event sent: when, and the verified wanted bytes,
/// rates and peers it gave.
pub(super) struct Shown {
    at: Instant,
    shown: (u64, u64, u64, usize),
}

pub(super) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl TorrentTask {
    /// The task's life (`asleep`: resumed from its parking, dormant).
    /// `self` is boxed: an `async fn` keeps its by-value arguments twice in
    /// its future (rust-lang/rust#62958), and this future lives as long as
    /// the torrent is awake, or dormant with a seeding goal's time to wait for.
    pub(super) async fn run(mut self: Box<Self>, asleep: bool) {
        let mut start = Start::Fresh;
        // Woken from its parking: dormant still, no live phase to resume.
        let mut asleep = asleep;
        let stop = loop {
            if !asleep {
                // A torrent with its metadata starts with a check: it waits
                // for its turn here, before its live phases' future exists,
                // so the thousands of torrents restored at once wait small.
                let turn = if matches!(start, Start::Fresh) && self.torrent.is_some() {
                    match Box::pin(self.check_turn()).await {
                        Ok(p) => Some(p),
                        Err(stop) => break stop,
                    }
                } else {
                    None
                };
                // The live phases' future is large (a transfer's state
                // machine): it is boxed, and dropped while the torrent is
                // dormant, which then holds only this loop's small one.
                if let Err(stop) = Box::pin(self.live(start, turn)).await {
                    break stop;
                }
            }
            match self.dormant(asleep).await {
                Ok(Dormancy::Wake(cmd)) => {
                    start = Start::Wake(cmd);
                    asleep = false;
                }
                Ok(Dormancy::Park) => match super::dormant::park(self) {
                    Ok(()) => return,
                    Err(back) => {
                        // A command came meanwhile: handle it, dormant.
                        self = back;
                        start = Start::Fresh;
                        asleep = true;
                    }
                },
                Err(stop) => break stop,
            }
        };
        Box::pin(self.finish(stop)).await;
    }

    /// The live phases: metadata, check, transfer, recheck, move. `Ok`
    /// when the torrent goes dormant. `turn`: the check's turn, taken
    /// already (see [`Self::check_turn`]).
    async fn live(
        &mut self,
        mut start: Start,
        mut turn: Option<Option<OwnedSemaphorePermit>>,
    ) -> Result<(), Stop> {
        loop {
            let needs_layers = self
                .torrent
                .as_ref()
                .is_some_and(|t| (0..t.files().len()).any(|i| t.needs_piece_layer(i)));
            if self.torrent.is_none() || needs_layers {
                // A magnet link, or a v2 torrent without its piece layers:
                // one run fetches them, checks and transfers with the same
                // connections. (No turn is held meanwhile.)
                drop(turn.take());
                self.set_state(TorrentState::FetchingMetadata, None);
                match self
                    .transfer(None, std::mem::replace(&mut start, Start::Fresh))
                    .await
                {
                    RunEnd::Stop(stop) => return Err(stop),
                    RunEnd::Recheck => self.force_check = true,
                    RunEnd::Move(to, reply) => {
                        let r = Box::pin(self.move_data(to)).await;
                        let _ = reply.send(r);
                    }
                    RunEnd::Dormant => return Ok(()),
                }
                continue;
            }
            // A fresh start checks: the torrent waits for its turn before
            // it opens its storage, so thousands of torrents restored at
            // once do not all hold one while they wait.
            let fresh = matches!(start, Start::Fresh);
            let permit = match (fresh, turn.take()) {
                (false, _) => None,
                (true, Some(p)) => Some(p),
                (true, None) => Some(Box::pin(self.check_turn()).await?),
            };
            let storage = match self.open_storage() {
                Ok(s) => s,
                Err(e) => {
                    // (Others check while this one waits for a resume.)
                    drop(permit);
                    match Box::pin(self.failed_before_run(e)).await {
                        Some(stop) => return Err(stop),
                        None => continue,
                    }
                }
            };
            let verified = if let Some(permit) = permit {
                match Box::pin(self.check(&storage, permit)).await {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => match Box::pin(self.failed_before_run(e)).await {
                        Some(stop) => return Err(stop),
                        None => continue,
                    },
                    Err(stop) => return Err(stop),
                }
            } else {
                // Checked before it went dormant, and not changed since: it
                // took nothing while dormant.
                self.restore_storage(&storage);
                let n = self.torrent.as_ref().map_or(0, |t| t.piece_count());
                (0..n).map(|p| self.have.get(p)).collect()
            };
            let start = std::mem::replace(&mut start, Start::Fresh);
            match self.transfer(Some((storage, verified)), start).await {
                RunEnd::Stop(stop) => return Err(stop),
                RunEnd::Recheck => self.force_check = true,
                RunEnd::Move(to, reply) => {
                    let r = Box::pin(self.move_data(to)).await;
                    let _ = reply.send(r);
                }
                RunEnd::Dormant => return Ok(()),
            }
        }
    }

    /// Marks the files not downloaded in a storage opened again.
    pub(super) fn restore_storage(&self, storage: &Storage) {
        let wanted: Vec<bool> = self
            .meta_tx
            .borrow()
            .file_priorities
            .iter()
            .map(|&p| p > 0)
            .collect();
        storage.restore_wanted(&wanted);
    }

    // ------------------------------------------------------------ status

    /// The status last published (a read lock on it: drop it before the
    /// next publish).
    pub(super) fn last(&self) -> WatchRef<'_, TorrentStatus> {
        self.status_tx.borrow()
    }

    /// Publishes `s` and the events its change implies.
    pub(super) fn publish(&mut self, s: &TorrentStatus) {
        let now = Instant::now();
        let mut s = s.clone();
        s.finished = self.finished;
        s.queue_position = self.queue_position;
        let s = &s;
        let last_state = self.last().state;
        if s.state != last_state {
            self.ctx.emit(SessionEvent::StateChanged {
                id: self.id,
                state: s.state,
            });
            if s.state == TorrentState::Error {
                if let Some(e) = &s.error {
                    self.ctx.emit(SessionEvent::Error {
                        id: self.id,
                        error: e.clone(),
                    });
                }
            }
        }
        if last_state == TorrentState::Downloading && s.state == TorrentState::Seeding {
            self.ctx.emit(SessionEvent::Completed { id: self.id });
        }
        // Compared with the last event sent, not the last status: a change
        // held back by the rate limit is sent with the next one. Rates
        // falling to zero are sent at once: no further status may follow
        // (an idle torrent stops ticking), and a listener would show the
        // old rates for ever.
        let shown = (
            s.verified_wanted_bytes,
            s.download_rate,
            s.upload_rate,
            s.peers,
        );
        let last = self.shown.as_deref();
        let went_idle = s.download_rate == 0
            && s.upload_rate == 0
            && last.is_some_and(|l| l.shown.1 != 0 || l.shown.2 != 0);
        let due = last.is_none_or(|l| now >= l.at + PROGRESS_EVERY);
        if last.map(|l| l.shown) != Some(shown) && (due || went_idle) {
            self.shown = Some(Box::new(Shown { at: now, shown }));
            self.ctx.emit(SessionEvent::Progress {
                id: self.id,
                verified_wanted_bytes: s.verified_wanted_bytes,
                wanted_bytes: s.wanted_bytes,
                download_rate: s.download_rate,
                upload_rate: s.upload_rate,
                peers: s.peers,
            });
        }
        self.counters
            .downloaded
            .store(s.downloaded, Ordering::Relaxed);
        self.counters.uploaded.store(s.uploaded, Ordering::Relaxed);
        // Without metadata the size is unknown: say something is left.
        let left = if self.torrent.is_none() {
            1
        } else {
            s.wanted_bytes.saturating_sub(s.verified_wanted_bytes)
        };
        self.counters.left.store(left, Ordering::Relaxed);
        self.status_tx.send_if_modified(|cur| {
            let changed = *cur != *s;
            if changed {
                cur.clone_from(s);
            }
            changed
        });
    }

    /// Publishes a state (other fields as last published).
    pub(super) fn set_state(&mut self, state: TorrentState, error: Option<TorrentError>) {
        let mut s = self.last().clone();
        s.state = state;
        s.error = error;
        s.download_rate = 0;
        s.upload_rate = 0;
        s.peers = 0;
        s.seeds = 0;
        self.publish(&s);
    }

    /// Updates the torrent's record in the persistence (settings changed).
    pub(super) async fn save_record(&self) {
        let m = self.meta_tx.borrow().clone();
        let rec = TorrentRecord {
            info_hashes: self.hashes,
            metainfo: m.torrent.as_ref().map(|t| t.info_bytes().to_vec()),
            magnet: m.magnet.clone(),
            name: Some(m.name.clone()),
            save_path: m.save_path.clone(),
            file_priorities: m.file_priorities.clone(),
            extra_trackers: m.extra_trackers.clone(),
            tracker_list: m.tracker_list.clone(),
            paused: self.user_paused,
            labels: m.labels.clone(),
            limits: m.limits,
            group: m.group.clone(),
            added_at: m.added_at,
            queue_position: self.queue_position,
        };
        let p = self.ctx.persist.clone();
        let r = tokio::task::spawn_blocking(move || p.save_torrent(&rec)).await;
        if let Ok(Err(e)) = r {
            tracing::warn!(error = %e, "saving the torrent's settings failed");
        }
    }

    /// Tells the DHT scheduler (and local peer discovery) what this torrent
    /// needs now.
    pub(super) fn set_dht(&mut self, mode: FeedMode) {
        let private = self.torrent.as_ref().is_some_and(|t| t.is_private());
        let mode = if private { FeedMode::Off } else { mode };
        if self.dht_mode == Some(mode) {
            return;
        }
        self.dht_mode = Some(mode);
        if let (Some(d), Some(tx)) = (&self.ctx.dht, self.own_tx.upgrade()) {
            d.set(self.id, self.hashes.primary(), mode, tx);
        }
        if let Some(l) = &self.ctx.lsd {
            match (mode, self.own_tx.upgrade()) {
                (FeedMode::Off, _) | (_, None) => l.remove(self.id),
                (_, Some(tx)) => l.set(self.id, self.hashes.primary(), private, tx),
            }
        }
    }

    // ------------------------------------------------------------ phases

    pub(super) fn open_storage(&self) -> Result<Arc<Storage>, TorrentError> {
        let Some(t) = &self.torrent else {
            return Err(TorrentError::Open("no metadata".into()));
        };
        let layout = storage_layout(t).map_err(|e| TorrentError::Open(e.to_string()))?;
        let opts = StorageOptions {
            name: self.hashes.primary().to_hex(),
            direct_io: self.ctx.config.direct_io,
            allocation: if self.ctx.config.preallocate {
                shoal_storage::Allocation::Preallocate
            } else {
                shoal_storage::Allocation::Sparse
            },
            ..StorageOptions::default()
        };
        let save_path = self.meta_tx.borrow().save_path.clone();
        let storage =
            Storage::open(layout, save_path, opts).map_err(|e| TorrentError::from_storage(&e))?;
        Ok(Arc::new(storage))
    }

    /// A failure before transferring (the data cannot be opened or
    /// checked): the torrent shows the error and waits for a resume
    /// (`None`: try again) or the end.
    pub(super) async fn failed_before_run(&mut self, e: TorrentError) -> Option<Stop> {
        tracing::warn!(error = %e, "torrent stopped");
        self.set_state(TorrentState::Error, Some(e));
        self.set_dht(FeedMode::Off);
        loop {
            let cmd = self.cmds.recv().await?;
            match cmd {
                TorrentCmd::Resume { .. } | TorrentCmd::Recheck => {
                    self.user_paused = false;
                    return None;
                }
                TorrentCmd::Shutdown { delete_data, reply } => {
                    return Some(Stop {
                        delete_data,
                        reply: Some(reply),
                    })
                }
                other => self.idle_cmd(other).await,
            }
        }
    }

    /// The torrent's rate limits, made from its metadata if need be.
    pub(super) fn rates(&mut self) -> Arc<TorrentRates> {
        if let Some(r) = &self.rates {
            return r.clone();
        }
        let meta = self.meta_tx.borrow();
        let l = meta.limits;
        let rates = Arc::new(TorrentRates::new(
            self.ctx.up.clone(),
            self.ctx.down.clone(),
            l.max_upload_rate,
            l.max_download_rate,
            l.bypass_session_limits,
        ));
        if let Some(g) = &meta.group {
            match self.ctx.groups.get(g) {
                Ok(r) => rates.set_group(Some(r)),
                Err(e) => tracing::warn!(error = %e, "bandwidth group of a stored torrent refused"),
            }
        }
        drop(meta);
        self.rates = Some(rates.clone());
        rates
    }

    /// The picker of `t` stored in `storage`: the file priorities and what
    /// is verified already.
    pub(super) fn new_picker(
        &self,
        t: &Torrent,
        storage: &Storage,
        verified: &[bool],
    ) -> PiecePicker {
        let prio = self.meta_tx.borrow().file_priorities.clone();
        let piece_prio = self.piece_priorities(t, &prio);
        let piece_length = t.piece_length().min(u64::from(u32::MAX)) as u32;
        // The piece space (a v2-only layout ends with a pad to a piece boundary).
        let total = storage.map().layout().total_length;
        let mut picker = PiecePicker::new(piece_length, total);
        for (i, &p) in piece_prio.iter().enumerate() {
            picker.set_priority(i as u32, p);
        }
        for (i, &v) in verified.iter().enumerate() {
            if v {
                picker.set_have(i as u32);
            }
        }
        picker
    }

    /// A core for `picker` (empty, for a magnet link that fetches its
    /// metadata first; peer exchange is on until the metadata says private).
    pub(super) fn new_core(&self, picker: PiecePicker, private: bool) -> TorrentCore {
        let mut status = self.last().clone();
        status.state = TorrentState::Downloading;
        status.error = None;
        let limits = self.meta_tx.borrow().limits;
        TorrentCore::new(
            CoreInit {
                peer_id: self.ctx.peer_id,
                picker,
                limits: CoreLimits {
                    max_peers: limits
                        .max_peers
                        .unwrap_or(self.ctx.config.max_peers_per_torrent),
                    max_connecting: 10,
                    upload_slots: self.ctx.config.upload_slots,
                    super_seed: self.ctx.config.super_seed,
                    resume_interval: self.ctx.config.resume_interval,
                },
                rng: self.ctx.torrent_rng(),
                status,
                pex: crate::pex::PeerExchange::new(
                    crate::pex::PexConfig::with_interval(self.ctx.config.pex_interval),
                    !private,
                    self.ctx.local_addr,
                ),
            },
            Instant::now(),
        )
    }

    /// What the peer tasks share for `t` stored in `storage` (`None`: a
    /// magnet link still without metadata; filled in later).
    pub(super) fn new_shared(&mut self, t: Option<(&Torrent, &Arc<Storage>)>) -> Arc<PeerShared> {
        let shared = PeerShared {
            storage: std::sync::OnceLock::new(),
            disk: std::sync::OnceLock::new(),
            rates: self.rates(),
            digests: Default::default(),
            info: std::sync::OnceLock::new(),
            hash_trees: std::sync::OnceLock::new(),
        };
        if let Some((t, storage)) = t {
            fill_shared(&shared, t, storage);
        }
        Arc::new(shared)
    }

    /// The trackers to announce to, by tier.
    pub(super) fn tracker_tiers(&self) -> Vec<Vec<String>> {
        let meta = self.meta_tx.borrow();
        super::announcing::tiers(&meta, self.torrent.as_deref(), self.magnet.as_deref())
    }

    /// Starts announcing, unless it does or the torrent has no tracker.
    pub(super) fn start_announcer(&mut self) {
        if self.announcer.is_on() {
            return;
        }
        let tiers = self.tracker_tiers();
        let from = super::announcing::Announcer {
            ctx: &self.ctx,
            hashes: self.hashes,
            counters: &self.counters,
            own: &self.own_tx,
        };
        self.announcer.start(tiers, from);
    }

    /// Announces `stopped` in the background (bounded) and forgets the announcer.
    pub(super) fn stop_announcer(&mut self) {
        self.announcer.stop();
    }

    pub(super) fn save_resume(
        &self,
        storage: &Arc<Storage>,
        verified: Vec<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let st = storage.clone();
        let p = self.ctx.persist.clone();
        let key = self.hashes;
        let (up, down) = {
            let l = self.last();
            (l.uploaded, l.downloaded)
        };
        tokio::task::spawn_blocking(move || {
            let r = st
                .wait_all_written()
                .and_then(|()| st.resume_data(&verified));
            match r {
                Ok(data) => {
                    let rec = ResumeRecord {
                        data,
                        uploaded: up,
                        downloaded: down,
                    };
                    if let Err(e) = p.save_resume(&key, &rec) {
                        tracing::warn!(error = %e, "saving resume data failed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "saving resume data failed"),
            }
        })
    }

    /// When the idle seeding goal would stop a torrent in `state`.
    pub(super) fn idle_goal(&self, state: TorrentState) -> Option<Instant> {
        let limits = self.meta_tx.borrow().limits;
        self.goals.idle_deadline(state, &limits, &self.ctx.live())
    }

    /// Whether a seeding torrent reached its ratio or idle goal.
    pub(super) fn goal_reached(&mut self, s: &TorrentStatus) -> bool {
        let limits = self.meta_tx.borrow().limits;
        self.goals
            .reached(s, &limits, &self.ctx.live(), Instant::now())
    }

    /// Keeps the peers a tracker gave while no transfer runs, for the next
    /// one. Whether it gave any.
    pub(super) fn note_idle_announce(&mut self, resp: shoal_tracker::AnnounceResponse) -> bool {
        if resp.peers.is_empty() {
            return false;
        }
        self.peers.extend(resp.peers);
        self.peers.truncate(super::core::MAX_KNOWN_ADDRS);
        true
    }

    /// One priority per piece: the files' priorities, raised where readers
    /// want pieces.
    pub(super) fn piece_priorities(&self, t: &Torrent, file_prio: &[u8]) -> Vec<u8> {
        let mut p = piece_priorities_of(t, file_prio);
        super::reader::overlay(&mut p, self.readers.values());
        p
    }

    async fn finish(mut self: Box<Self>, stop: Stop) {
        if let Some(d) = &self.ctx.dht {
            d.remove(self.id);
        }
        self.announcer.finish().await;
        let mut r = Ok(());
        if stop.delete_data {
            r = self.delete_data().await;
        }
        self.set_state(TorrentState::Stopped, None);
        if let Some(reply) = stop.reply {
            let _ = reply.send(r);
        }
    }
}

/// Sets what the peer tasks need once the metadata and storage are known.
pub(super) fn fill_shared(shared: &PeerShared, t: &Torrent, storage: &Arc<Storage>) {
    let _ = shared.storage.set(storage.clone());
    let _ = shared
        .info
        .set(bytes::Bytes::copy_from_slice(t.info_bytes()));
    let _ = shared.hash_trees.set(crate::peer::hash_trees(t));
}

#[cfg(test)]
mod size_tests {
    /// The size of the future an async fn returns.
    fn future_size<A, F: std::future::Future>(_: impl FnOnce(A) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every torrent holds its boxed task and its queued commands for its
    /// whole life, and its task's future unless it is parked: keep them
    /// small (a daemon holds 10,000 torrents; see bench/daemon.py).
    #[test]
    fn idle_torrents_stay_small() {
        assert!(std::mem::size_of::<super::TorrentCmd>() <= 48);
        assert!(std::mem::size_of::<crate::torrent::ToTorrent>() <= 64);
        let task = std::mem::size_of::<super::TorrentTask>();
        assert!(task <= 432, "the task is {task} bytes");
        // 5,184 bytes before the rare awaits were boxed and the task was
        // passed boxed (an async fn keeps by-value arguments twice).
        // The live phases' future is boxed: a dormant torrent holds only
        // the outer loop's future and the dormant wait in it.
        // 480 before the dormant wait was kept apart with its timer boxed.
        // (A parked dormant torrent has none: see `park`.)
        let run = future_size(|t: Box<super::TorrentTask>| t.run(false));
        assert!(run <= 320, "the task's future is {run} bytes");
    }
}
