//! Time and traffic accounting the engine leaves to its callers:
//! per torrent the seconds spent downloading and seeding, when it completed,
//! when data last moved and when it last started (Transmission's
//! `secondsDownloading`, `secondsSeeding`, `doneDate`, `activityDate`,
//! `startDate`); per session the bytes moved in this run and over all runs.
//!
//! A one-second tick reads every torrent's status (a `watch` borrow, no
//! message) and adds the elapsed time to the state it is in. Counters are
//! cumulative in the engine (restored from the resume data while a torrent
//! checks), so traffic is counted as the growth between two ticks outside
//! the checking phases. Dirty entries go to the database's batches every
//! [`SAVE_EVERY`].
use crate::store::{Activity, Store, Totals};
use crate::Shared;
use shoal_base::VecMap;
use shoal_engine::{TorrentId, TorrentState, TorrentStatus};
use shoal_metainfo::InfoHashes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Time between two ticks.
pub const TICK: Duration = Duration::from_secs(1);
/// Time between two saves of what changed.
pub const SAVE_EVERY: Duration = Duration::from_secs(5);
/// Time between two saves of what changed only by the passing of time (the
/// seconds downloading or seeding): every seeding torrent's count grows
/// every tick, and writing 10,000 of them every [`SAVE_EVERY`] is churn for
/// nothing. A kill -9 loses at most this much of those counts.
pub const SAVE_SECONDS_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Track {
    acc: Activity,
    state: TorrentState,
    /// Sub-second remainders of the state's time.
    frac: Duration,
    up: u64,
    down: u64,
    /// When it last went from stopped to transferring (0: not this run).
    start_date: u64,
    /// Changed beyond its seconds: saved with the next batch.
    dirty: bool,
    /// Its seconds changed: saved every [`SAVE_SECONDS_EVERY`].
    seconds_dirty: bool,
    /// The parity of the last tick that found its torrent.
    seen: bool,
}

/// One torrent's activity as the API shows it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TorrentActivity {
    /// Stored accounting.
    pub acc: Activity,
    /// When it last started transferring in this run (0: not yet).
    pub start_date: u64,
}

#[derive(Debug, Default)]
struct Inner {
    tracks: VecMap<TorrentId, Track>,
    /// The parity of the current tick.
    parity: bool,
    saved: HashMap<InfoHashes, Activity>,
    /// The first tick ran: torrents seen later were added in this run, and
    /// all of their traffic counts for it.
    primed: bool,
    /// When the seconds were saved last.
    seconds_saved: Option<Instant>,
}

/// See the module docs.
#[derive(Debug)]
pub struct ActivityTracker {
    inner: Mutex<Inner>,
    /// Totals of the runs before this one.
    before: Totals,
    /// Bytes sent in this run.
    pub up: AtomicU64,
    /// Bytes received in this run.
    pub down: AtomicU64,
    /// Torrents added in this run.
    pub added: AtomicU64,
    started: Instant,
}

impl ActivityTracker {
    /// Loads what the database holds.
    pub fn load(store: &Store) -> ActivityTracker {
        let saved = store.activities().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading torrent activity");
            HashMap::new()
        });
        let mut before = store.totals().unwrap_or_default();
        before.session_count += 1;
        store.save_totals(before);
        ActivityTracker {
            inner: Mutex::new(Inner {
                tracks: VecMap::new(),
                parity: false,
                saved,
                primed: false,
                seconds_saved: None,
            }),
            before,
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            added: AtomicU64::new(0),
            started: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a torrent added.
    pub fn count_added(&self) {
        self.added.fetch_add(1, Ordering::Relaxed);
    }

    /// A torrent's accounting (zeros before its first tick).
    pub fn get(&self, id: TorrentId) -> TorrentActivity {
        self.lock()
            .tracks
            .get(&id)
            .map(|t| TorrentActivity {
                acc: t.acc,
                start_date: t.start_date,
            })
            .unwrap_or_default()
    }

    /// This run's totals (bytes, torrents added, seconds).
    pub fn current(&self) -> Totals {
        Totals {
            uploaded: self.up.load(Ordering::Relaxed),
            downloaded: self.down.load(Ordering::Relaxed),
            files_added: self.added.load(Ordering::Relaxed),
            seconds_active: self.started.elapsed().as_secs(),
            session_count: 1,
        }
    }

    /// Totals over every run, this one included.
    pub fn cumulative(&self) -> Totals {
        let c = self.current();
        Totals {
            uploaded: self.before.uploaded + c.uploaded,
            downloaded: self.before.downloaded + c.downloaded,
            files_added: self.before.files_added + c.files_added,
            seconds_active: self.before.seconds_active + c.seconds_active,
            session_count: self.before.session_count,
        }
    }

    /// One tick: `dt` passed since the last.
    pub fn tick(&self, shared: &Shared, dt: Duration) {
        let now = crate::service::unix_now();
        let handles = shared.session.torrents();
        let seen = handles
            .iter()
            .map(|h| (h.id(), h.info_hashes(), h.status()));
        let (up, down) = self.lock().observe(seen, dt, now);
        self.up.fetch_add(up, Ordering::Relaxed);
        self.down.fetch_add(down, Ordering::Relaxed);
    }

    /// Queues what changed (everything with `all`) for the database.
    pub fn save(&self, shared: &Shared, all: bool) {
        let due = self.lock().take_due(Instant::now(), all);
        for (id, acc) in due {
            // (A torrent removed meanwhile keeps no activity.)
            if let Some(h) = shared.session.torrent(id) {
                shared.store.save_activity(&h.info_hashes(), acc);
            }
        }
        shared.store.save_totals(self.cumulative());
    }
}

impl Track {
    /// The entry of a torrent first seen now, with its stored accounting;
    /// `fresh`: it was added in this run, after the first tick.
    fn new(acc: Activity, fresh: bool, s: &TorrentStatus) -> Track {
        Track {
            acc,
            state: if fresh {
                s.state
            } else {
                TorrentState::Checking
            },
            frac: Duration::ZERO,
            up: if fresh { 0 } else { s.uploaded },
            down: if fresh { 0 } else { s.downloaded },
            start_date: 0,
            dirty: false,
            seconds_dirty: false,
            seen: false,
        }
    }
}

impl Inner {
    /// One tick over every torrent of the session (`dt` passed since the
    /// last, `now` in Unix seconds): their time and dates are accounted,
    /// the tracks of torrents gone are dropped. Returns the bytes sent and
    /// received since the last tick.
    fn observe(
        &mut self,
        torrents: impl Iterator<Item = (TorrentId, InfoHashes, TorrentStatus)>,
        dt: Duration,
        now: u64,
    ) -> (u64, u64) {
        let Inner {
            tracks,
            parity,
            saved,
            primed,
            ..
        } = self;
        let fresh = *primed;
        *primed = true;
        *parity = !*parity;
        let parity = *parity;
        let (mut up, mut down) = (0u64, 0u64);
        for (id, hashes, s) in torrents {
            let t = tracks.get_or_insert_with(id, || {
                let acc = saved.remove(&hashes).unwrap_or_default();
                Track::new(acc, fresh, &s)
            });
            t.seen = parity;
            let counting = !matches!(
                t.state,
                TorrentState::Checking | TorrentState::FetchingMetadata
            ) && !matches!(
                s.state,
                TorrentState::Checking | TorrentState::FetchingMetadata
            );
            if counting {
                up += s.uploaded.saturating_sub(t.up);
                down += s.downloaded.saturating_sub(t.down);
            }
            t.up = s.uploaded;
            t.down = s.downloaded;
            let secs = match t.state {
                TorrentState::Downloading => Some(&mut t.acc.seconds_downloading),
                TorrentState::Seeding => Some(&mut t.acc.seconds_seeding),
                _ => None,
            };
            if let Some(secs) = secs {
                t.frac += dt;
                *secs += t.frac.as_secs();
                t.frac = Duration::from_nanos(u64::from(t.frac.subsec_nanos()));
                t.seconds_dirty = true;
            }
            if s.state.is_active() && !t.state.is_active() {
                t.start_date = now;
            }
            if s.state == TorrentState::Seeding && t.acc.done_date == 0 {
                t.acc.done_date = now;
                t.dirty = true;
            }
            if s.download_rate > 0 || s.upload_rate > 0 {
                t.acc.activity_date = now;
                t.dirty = true;
            }
            t.state = s.state;
        }
        tracks.retain(|_, t| t.seen == parity);
        if saved.is_empty() && saved.capacity() > 0 {
            // Every stored entry found its torrent: give back the table
            // (10,000 torrents' worth after a restart).
            *saved = HashMap::new();
        }
        (up, down)
    }

    /// The entries to save now, marked clean: every one with `all`, else
    /// those changed beyond their seconds, and those whose seconds changed
    /// once [`SAVE_SECONDS_EVERY`] passed since the seconds were saved.
    fn take_due(&mut self, now: Instant, all: bool) -> Vec<(TorrentId, Activity)> {
        let seconds = all
            || self
                .seconds_saved
                .is_none_or(|t| now.duration_since(t) >= SAVE_SECONDS_EVERY);
        if seconds {
            self.seconds_saved = Some(now);
        }
        let mut out = Vec::new();
        for (&id, t) in self.tracks.iter_mut() {
            if all || t.dirty || (seconds && t.seconds_dirty) {
                out.push((id, t.acc));
                t.dirty = false;
                if seconds {
                    t.seconds_dirty = false;
                }
            }
        }
        out
    }
}

/// The tick loop (until the daemon stops).
pub async fn run(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last = Instant::now();
    let mut last_save = Instant::now();
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        shared.activity.tick(&shared, now - last);
        last = now;
        if now - last_save >= SAVE_EVERY {
            last_save = now;
            shared.activity.save(&shared, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track() -> Track {
        Track {
            seen: false,
            acc: Activity::default(),
            state: TorrentState::Seeding,
            frac: Duration::ZERO,
            up: 0,
            down: 0,
            start_date: 0,
            dirty: false,
            seconds_dirty: false,
        }
    }

    #[test]
    fn seconds_alone_are_saved_once_a_minute_other_changes_at_once() {
        let mut inner = Inner::default();
        let t0 = Instant::now();
        // The first save takes everything that changed.
        inner.tracks.insert(TorrentId(1), track());
        inner.tracks.insert(TorrentId(2), track());
        for (_, t) in inner.tracks.iter_mut() {
            t.seconds_dirty = true;
        }
        assert_eq!(inner.take_due(t0, false).len(), 2);
        // Seconds grew on both, a date changed on one: only that one goes.
        for (_, t) in inner.tracks.iter_mut() {
            t.seconds_dirty = true;
        }
        if let Some(t) = inner.tracks.get_mut(&TorrentId(2)) {
            t.dirty = true;
        }
        let due = inner.take_due(t0 + SAVE_EVERY, false);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].0, TorrentId(2));
        assert!(inner.take_due(t0 + SAVE_EVERY * 2, false).is_empty());
        // A minute on, the seconds of both are due.
        assert_eq!(inner.take_due(t0 + SAVE_SECONDS_EVERY, false).len(), 2);
        assert!(inner.take_due(t0 + SAVE_SECONDS_EVERY, false).is_empty());
        // At shutdown everything goes, changed or not.
        assert_eq!(inner.take_due(t0 + SAVE_SECONDS_EVERY, true).len(), 2);
    }

    fn status(state: TorrentState, uploaded: u64) -> TorrentStatus {
        TorrentStatus {
            state,
            uploaded,
            ..TorrentStatus::default()
        }
    }

    fn hashes(n: u8) -> InfoHashes {
        InfoHashes {
            v1: Some(shoal_base::InfoHash([n; 20])),
            v2: None,
        }
    }

    #[test]
    fn ticks_account_time_and_traffic_and_forget_torrents_gone() {
        let mut inner = Inner::default();
        let stored = Activity {
            seconds_seeding: 100,
            ..Activity::default()
        };
        inner.saved.insert(hashes(2), stored);
        let sec = Duration::from_secs(1);
        let seed = |up| status(TorrentState::Seeding, up);
        // The first tick: torrent 1 new, torrent 2 restored with its
        // stored seconds; traffic before the first tick is not this run's.
        let torrents = |up1, up2| {
            [
                (TorrentId(1), hashes(1), seed(up1)),
                (TorrentId(2), hashes(2), seed(up2)),
            ]
        };
        assert_eq!(
            inner.observe(torrents(10, 20).into_iter(), sec, 1000),
            (0, 0)
        );
        assert!(inner.saved.is_empty() && inner.saved.capacity() == 0);
        // Two more seconds, 5 and 7 bytes sent.
        assert_eq!(
            inner.observe(torrents(15, 27).into_iter(), sec, 1001),
            (5 + 7, 0)
        );
        assert_eq!(
            inner.observe(torrents(15, 27).into_iter(), sec, 1002),
            (0, 0)
        );
        let secs = |inner: &Inner, id| {
            inner
                .tracks
                .get(&TorrentId(id))
                .map(|t| t.acc.seconds_seeding)
        };
        assert_eq!(secs(&inner, 1), Some(2));
        assert_eq!(secs(&inner, 2), Some(102));
        // Torrent 1 is gone: its track too; half seconds add up.
        let half = Duration::from_millis(500);
        let only2 = || [(TorrentId(2), hashes(2), seed(27))].into_iter();
        inner.observe(only2(), half, 1003);
        assert_eq!(secs(&inner, 1), None);
        assert_eq!(secs(&inner, 2), Some(102));
        inner.observe(only2(), half, 1004);
        assert_eq!(secs(&inner, 2), Some(103));
        // One added after the first tick counts all its traffic.
        let added = [
            (TorrentId(2), hashes(2), seed(27)),
            (TorrentId(3), hashes(3), seed(9)),
        ];
        assert_eq!(inner.observe(added.into_iter(), sec, 1005), (9, 0));
        assert_eq!(inner.tracks.len(), 2);
    }
}
