//! The sans-IO announce scheduler for an announce-list (BEP 12): which
//! tracker to contact next, with which event, and when.
//!
//! Policy (as libtorrent's default, not BEP 12's strict "first tier that
//! works"): **every tier is announced to in parallel, one tracker per tier**,
//! so a dead tier never delays the others. Within a tier, trackers are
//! shuffled once at creation and tried in order; the first that answers is
//! moved to the front of its tier (BEP 12) and used until it fails, when the
//! next one is tried at once. A failing tracker backs off exponentially
//! (`retry_base · 2^(failures-1)`, capped at `retry_max`); a tier whose
//! trackers all back off waits for the earliest one.
//!
//! Events: each tracker gets `started` before anything else; `completed`
//! goes to every tracker that had seen `started` (or had it under way) when
//! [`Announcer::completed`] was called; trackers first contacted later get
//! `started` with `left = 0` and no `completed`;
//! after [`Announcer::stop`], every tracker that saw `started` gets one
//! `stopped` attempt (no retry) and nothing else is scheduled.
//!
//! Intervals: the next regular announce of a tier is `interval` after its
//! last success, clamped to `[min_interval_floor, max_interval]`;
//! [`Announcer::announce_now`] (more peers wanted) honours the tracker's
//! `min interval`.
use crate::types::{AnnounceRequest, AnnounceResponse, Event};
use rand::seq::SliceRandom;
use rand::Rng;
use shoal_base::intern;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Timing policy of the [`Announcer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnnouncerConfig {
    /// Shortest regular interval, whatever the tracker says (and the default
    /// `min interval`).
    pub min_interval_floor: Duration,
    /// Longest regular interval, whatever the tracker says.
    pub max_interval: Duration,
    /// Back-off after a tracker's first failure; doubles with each further one.
    pub retry_base: Duration,
    /// Longest back-off.
    pub retry_max: Duration,
    /// Most trackers kept from an announce-list (later ones are ignored).
    pub max_trackers: usize,
}

impl AnnouncerConfig {
    /// The default, shared: an [`Announcer`] holds its configuration by
    /// reference, and a session with thousands of torrents shares one.
    pub fn shared_default() -> Arc<AnnouncerConfig> {
        static SHARED: OnceLock<Arc<AnnouncerConfig>> = OnceLock::new();
        SHARED.get_or_init(Default::default).clone()
    }
}

impl Default for AnnouncerConfig {
    /// Floor 60 s, cap 4 h, back-off 15 s doubling up to 1 h, 200 trackers.
    fn default() -> Self {
        AnnouncerConfig {
            min_interval_floor: Duration::from_secs(60),
            max_interval: Duration::from_secs(4 * 3600),
            retry_base: Duration::from_secs(15),
            retry_max: Duration::from_secs(3600),
            max_trackers: 200,
        }
    }
}

/// A stable handle of one tracker in the [`Announcer`] (positions change when
/// trackers move to the front of their tier; keys do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackerKey(u32);

/// One announce the caller should make now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnounceJob {
    /// Which tracker; pass it back to [`Announcer::handle_success`] or [`Announcer::handle_failure`].
    pub key: TrackerKey,
    /// The tracker URL (shared with the announcer, see [`shoal_base::intern`]).
    pub url: Arc<str>,
    /// The event to send.
    pub event: Event,
    /// The `tracker id` this tracker gave before, to send back (HTTP).
    pub tracker_id: Option<Box<[u8]>>,
}

impl AnnounceJob {
    /// `base` (our current statistics) with this job's event; a `stopped`
    /// announce asks for no peers (`numwant=0`).
    pub fn request(&self, base: &AnnounceRequest) -> AnnounceRequest {
        AnnounceRequest {
            event: self.event,
            numwant: if self.event == Event::Stopped {
                Some(0)
            } else {
                base.numwant
            },
            ..base.clone()
        }
    }
}

/// What the [`Announcer`] knows about one tracker, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackerStatus {
    /// The tracker's key.
    pub key: TrackerKey,
    /// Its URL.
    pub url: Arc<str>,
    /// Its tier (0 first).
    pub tier: usize,
    /// Failures in a row.
    pub failures: u32,
    /// The last error text, cleared by a success.
    pub last_error: Option<String>,
    /// Whether an announce to it is under way.
    pub in_flight: bool,
    /// Announces it answered.
    pub announces_ok: u32,
    /// Announces to it that failed.
    pub announces_failed: u32,
    /// The `warning message` of its last answer.
    pub warning: Option<String>,
    /// Seeders (`complete`) of its last answer that said.
    pub seeders: Option<u32>,
    /// Leechers (`incomplete`) of its last answer that said.
    pub leechers: Option<u32>,
    /// Peers in its last answer.
    pub last_peers: u32,
    /// When it last answered or failed.
    pub last_announce: Option<Instant>,
    /// When it is next asked (a past time: as soon as possible): for the
    /// tracker its tier picks next, while no announce of the tier is under
    /// way and the announcer is not stopping; `None` for the others (a tier
    /// announces to one tracker at a time).
    pub next_announce: Option<Instant>,
}

/// A time kept by an [`Announcer`]: whole seconds after its creation
/// (`u32`: 136 years). Instants are rounded down and durations up, so a
/// time is off by less than a second and a back-off is never zero.
type Secs = u32;

/// The rarely set texts of a [`Tracker`], boxed together (absent when all
/// are empty): most trackers never send a tracker id or a warning.
#[derive(Debug, Default)]
struct Texts {
    tracker_id: Option<Box<[u8]>>,
    last_error: Option<Box<str>>,
    warning: Option<Box<str>>,
}

/// One tracker's schedule and what it said (for display). A daemon holds
/// one per tracker of each of thousands of torrents: the URL is shared
/// ([`intern`]), times are [`Secs`], the rare texts boxed (80 bytes).
#[derive(Debug)]
struct Tracker {
    url: Arc<str>,
    texts: Option<Box<Texts>>,
    key: TrackerKey,
    failures: u32,
    retry_at: Option<Secs>,
    started_sent: bool,
    completed_pending: bool,
    stop_done: bool,
    in_flight: Option<Event>,
    announces_ok: u32,
    announces_failed: u32,
    last_peers: u32,
    last_announce: Option<Secs>,
    seeders: Option<u32>,
    leechers: Option<u32>,
}

impl Tracker {
    fn texts(&self) -> &Texts {
        static NONE: Texts = Texts {
            tracker_id: None,
            last_error: None,
            warning: None,
        };
        self.texts.as_deref().unwrap_or(&NONE)
    }

    /// Changes the texts, keeping the box only while one is set.
    fn set_texts(&mut self, f: impl FnOnce(&mut Texts)) {
        let mut t = self.texts.take().unwrap_or_default();
        f(&mut t);
        if t.tracker_id.is_some() || t.last_error.is_some() || t.warning.is_some() {
            self.texts = Some(t);
        }
    }
}

/// One tier: a range of the announcer's trackers, with its schedule.
#[derive(Debug)]
struct Tier {
    start: u32,
    len: u32,
    /// The tracker to try next, relative to `start`.
    cursor: u32,
    next_announce: Secs,
    last_success: Option<Secs>,
    /// In seconds.
    min_interval: u32,
}

impl Tier {
    fn range(&self) -> std::ops::Range<usize> {
        self.start as usize..(self.start + self.len) as usize
    }

    fn busy(&self, all: &[Tracker]) -> bool {
        all[self.range()].iter().any(|t| t.in_flight.is_some())
    }

    /// The first tracker from the cursor whose back-off is over (relative
    /// to `start`).
    fn ready(&self, all: &[Tracker], now: Secs) -> Option<u32> {
        let ts = &all[self.range()];
        (0..self.len)
            .map(|i| (self.cursor + i) % self.len)
            .find(|&i| ts[i as usize].retry_at.is_none_or(|r| r <= now))
    }

    /// When this tier next wants to announce (ignoring in-flight state):
    /// its regular time, or later if every tracker is backing off.
    fn due(&self, all: &[Tracker]) -> Secs {
        let mut earliest_retry: Option<Secs> = None;
        for t in &all[self.range()] {
            match t.retry_at {
                None => return self.next_announce,
                Some(r) => earliest_retry = Some(earliest_retry.map_or(r, |e| e.min(r))),
            }
        }
        earliest_retry.map_or(self.next_announce, |r| self.next_announce.max(r))
    }
}

/// Whole seconds of `d`, rounded up.
fn secs_up(d: Duration) -> u32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(s).unwrap_or(u32::MAX)
}

/// The announce scheduler of one torrent. See the module docs for the policy.
#[derive(Debug)]
pub struct Announcer {
    config: Arc<AnnouncerConfig>,
    /// The origin of its [`Secs`].
    base: Instant,
    /// Every tracker, tier after tier (each tier a range of it).
    trackers: Box<[Tracker]>,
    tiers: Box<[Tier]>,
    stopping: bool,
}

impl Announcer {
    /// Builds the schedule from an announce-list (tiers of URLs, BEP 12), or
    /// from `vec![vec![announce]]` for a single tracker. Each tier is
    /// shuffled once with `rng`; empty tiers, repeated URLs and trackers past
    /// `max_trackers` are dropped.
    /// The first announce of every tier is due at `now`.
    pub fn new(
        tiers: Vec<Vec<String>>,
        config: impl Into<Arc<AnnouncerConfig>>,
        rng: &mut impl Rng,
        now: Instant,
    ) -> Self {
        let config = config.into();
        let mut seen = std::collections::HashSet::new();
        let mut next_key = 0u32;
        let mut trackers = Vec::new();
        let mut out = Vec::new();
        for mut urls in tiers {
            urls.retain(|u| !u.is_empty() && seen.insert(u.clone()));
            urls.truncate(config.max_trackers.saturating_sub(trackers.len()));
            if urls.is_empty() {
                continue;
            }
            urls.shuffle(rng);
            let start = trackers.len() as u32;
            for url in urls {
                next_key += 1;
                trackers.push(Tracker {
                    url: intern(&url),
                    texts: None,
                    key: TrackerKey(next_key),
                    failures: 0,
                    retry_at: None,
                    started_sent: false,
                    completed_pending: false,
                    stop_done: false,
                    in_flight: None,
                    announces_ok: 0,
                    announces_failed: 0,
                    last_peers: 0,
                    last_announce: None,
                    seeders: None,
                    leechers: None,
                });
            }
            out.push(Tier {
                start,
                len: trackers.len() as u32 - start,
                cursor: 0,
                next_announce: 0,
                last_success: None,
                min_interval: secs_up(config.min_interval_floor),
            });
        }
        Announcer {
            config,
            base: now,
            // Exact: one per torrent, thousands in a daemon.
            trackers: trackers.into_boxed_slice(),
            tiers: out.into_boxed_slice(),
            stopping: false,
        }
    }

    /// `t` as [`Secs`] (rounded down; 0 before the creation).
    fn secs(&self, t: Instant) -> Secs {
        let s = t.saturating_duration_since(self.base).as_secs();
        u32::try_from(s).unwrap_or(u32::MAX)
    }

    fn instant(&self, s: Secs) -> Instant {
        self.base + Duration::from_secs(u64::from(s))
    }

    /// The URLs in their current order, tier by tier.
    pub fn tiers(&self) -> Vec<Vec<String>> {
        self.tiers
            .iter()
            .map(|t| {
                self.trackers[t.range()]
                    .iter()
                    .map(|x| x.url.to_string())
                    .collect()
            })
            .collect()
    }

    /// Status of every tracker, tier by tier.
    pub fn status(&self) -> Vec<TrackerStatus> {
        let mut v = Vec::with_capacity(self.trackers.len());
        for (tier, t) in self.tiers.iter().enumerate() {
            // The tracker the tier picks when it is due, and when.
            let due = t.due(&self.trackers);
            let pick = (!self.stopping && !t.busy(&self.trackers))
                .then(|| t.ready(&self.trackers, due))
                .flatten();
            for (i, x) in self.trackers[t.range()].iter().enumerate() {
                let texts = x.texts();
                v.push(TrackerStatus {
                    key: x.key,
                    url: x.url.clone(),
                    tier,
                    failures: x.failures,
                    last_error: texts.last_error.as_deref().map(str::to_owned),
                    in_flight: x.in_flight.is_some(),
                    announces_ok: x.announces_ok,
                    announces_failed: x.announces_failed,
                    warning: texts.warning.as_deref().map(str::to_owned),
                    seeders: x.seeders,
                    leechers: x.leechers,
                    last_peers: x.last_peers,
                    last_announce: x.last_announce.map(|s| self.instant(s)),
                    next_announce: (pick == Some(i as u32)).then(|| self.instant(due)),
                });
            }
        }
        v
    }

    /// The next announce to make now, if any; call until `None`. The job's
    /// tracker counts as in flight until its result is handed back.
    pub fn poll_announce(&mut self, now: Instant) -> Option<AnnounceJob> {
        let stopping = self.stopping;
        let now = self.secs(now);
        let all = &mut self.trackers;
        for tier in self.tiers.iter_mut() {
            if stopping {
                if let Some(t) = all[tier.range()]
                    .iter_mut()
                    .find(|t| t.started_sent && !t.stop_done && t.in_flight.is_none())
                {
                    t.in_flight = Some(Event::Stopped);
                    return Some(job(t, Event::Stopped));
                }
                continue;
            }
            if tier.busy(all) || now < tier.next_announce {
                continue;
            }
            let Some(i) = tier.ready(all, now) else {
                continue;
            };
            tier.cursor = i;
            let t = &mut all[(tier.start + i) as usize];
            let event = if !t.started_sent {
                Event::Started
            } else if t.completed_pending {
                Event::Completed
            } else {
                Event::None
            };
            t.in_flight = Some(event);
            return Some(job(t, event));
        }
        None
    }

    /// When [`Announcer::poll_announce`] may next return a job, if ever.
    /// (Results of in-flight jobs can also make one due.)
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.stopping {
            return None;
        }
        self.tiers
            .iter()
            .filter(|t| !t.busy(&self.trackers))
            .map(|t| t.due(&self.trackers))
            .min()
            .map(|s| self.instant(s))
    }

    /// The tier and the index (in `trackers`) of `key`.
    fn find(&self, key: TrackerKey) -> Option<(usize, usize)> {
        let i = self.trackers.iter().position(|x| x.key == key)?;
        let ti = self.tiers.iter().position(|t| t.range().contains(&i))?;
        Some((ti, i))
    }

    /// Records a successful announce (the tracker answered without `failure reason`).
    pub fn handle_success(&mut self, key: TrackerKey, now: Instant, resp: &AnnounceResponse) {
        let Some((ti, i)) = self.find(key) else {
            return;
        };
        let cfg = *self.config;
        let stopping = self.stopping;
        let now = self.secs(now);
        let tier = &mut self.tiers[ti];
        let t = &mut self.trackers[i];
        let event = t.in_flight.take();
        t.failures = 0;
        t.retry_at = None;
        t.set_texts(|x| {
            x.last_error = None;
            if let Some(id) = &resp.tracker_id {
                x.tracker_id = Some(id.as_slice().into());
            }
            x.warning = resp.warning.as_deref().map(Box::from);
        });
        t.announces_ok = t.announces_ok.saturating_add(1);
        t.last_peers = u32::try_from(resp.peers.len()).unwrap_or(u32::MAX);
        t.seeders = resp.complete;
        t.leechers = resp.incomplete;
        t.last_announce = Some(now);
        match event {
            Some(Event::Started) => t.started_sent = true,
            Some(Event::Completed) => t.completed_pending = false,
            Some(Event::Stopped) => {
                t.stop_done = true;
                t.started_sent = false;
            }
            _ => {}
        }
        if stopping {
            return;
        }
        let completed_pending = t.completed_pending;
        // BEP 12: a tracker that answers moves to the front of its tier.
        self.trackers[tier.start as usize..=i].rotate_right(1);
        tier.cursor = 0;
        let floor = secs_up(cfg.min_interval_floor);
        let max = secs_up(cfg.max_interval);
        let min_interval = resp.min_interval.unwrap_or(floor).min(max);
        let interval = resp.interval.max(floor).max(min_interval).min(max);
        tier.min_interval = min_interval;
        tier.last_success = Some(now);
        tier.next_announce = if completed_pending {
            // `completed` was asked for while this announce was under way.
            now.saturating_add(min_interval)
        } else {
            now.saturating_add(interval)
        };
    }

    /// Records a failed announce (network error, timeout, refusal); `error`
    /// is kept for display. The tier moves on to its next tracker at once.
    pub fn handle_failure(&mut self, key: TrackerKey, now: Instant, error: &str) {
        let Some((ti, i)) = self.find(key) else {
            return;
        };
        let cfg = *self.config;
        let now = self.secs(now);
        let tier = &mut self.tiers[ti];
        let t = &mut self.trackers[i];
        let event = t.in_flight.take();
        t.failures = t.failures.saturating_add(1);
        let factor = 1u32 << (t.failures - 1).min(20);
        let back_off = cfg.retry_base.saturating_mul(factor).min(cfg.retry_max);
        t.retry_at = Some(now.saturating_add(secs_up(back_off)));
        t.set_texts(|x| x.last_error = Some(error.into()));
        t.announces_failed = t.announces_failed.saturating_add(1);
        t.last_announce = Some(now);
        match event {
            Some(Event::Stopped) => {
                // One attempt only: we are leaving anyway.
                t.stop_done = true;
                return;
            }
            // Its next `started` will carry `left = 0`: no `completed` after it.
            Some(Event::Started) => t.completed_pending = false,
            _ => {}
        }
        tier.cursor = (i as u32 - tier.start + 1) % tier.len;
    }

    /// The download finished: every tracker that saw `started` gets
    /// `completed` as soon as its tier is free.
    pub fn completed(&mut self, now: Instant) {
        let now = self.secs(now);
        for tier in self.tiers.iter_mut() {
            let mut any = false;
            for t in &mut self.trackers[tier.range()] {
                // A tracker whose `started` is under way saw us as a leecher too.
                if t.started_sent || t.in_flight == Some(Event::Started) {
                    t.completed_pending = true;
                    any = true;
                }
            }
            if any {
                tier.next_announce = tier.next_announce.min(now);
            }
        }
    }

    /// Ask for peers soon: every tier announces as early as its `min interval` allows.
    pub fn announce_now(&mut self, now: Instant) {
        let now = self.secs(now);
        for tier in self.tiers.iter_mut() {
            let earliest = tier
                .last_success
                .map_or(now, |l| l.saturating_add(tier.min_interval).max(now));
            tier.next_announce = tier.next_announce.min(earliest);
        }
    }

    /// Begins shutdown: from now on only `stopped` announces are scheduled,
    /// one attempt each, to the trackers that saw `started`.
    pub fn stop(&mut self) {
        self.stopping = true;
    }

    /// Whether shutdown is finished: [`Announcer::stop`] was called and no
    /// `stopped` announce is pending or under way.
    pub fn is_stopped(&self) -> bool {
        self.stopping
            && self
                .trackers
                .iter()
                .all(|t| t.in_flight.is_none() && (!t.started_sent || t.stop_done))
    }
}

fn job(t: &Tracker, event: Event) -> AnnounceJob {
    AnnounceJob {
        key: t.key,
        url: t.url.clone(),
        event,
        tracker_id: t.texts().tracker_id.clone(),
    }
}

#[cfg(test)]
#[path = "announcer_tests.rs"]
mod tests;
