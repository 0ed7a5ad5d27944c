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
    /// The tracker URL.
    pub url: String,
    /// The event to send.
    pub event: Event,
    /// The `tracker id` this tracker gave before, to send back (HTTP).
    pub tracker_id: Option<Vec<u8>>,
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
    pub url: String,
    /// Its tier (0 first).
    pub tier: usize,
    /// Failures in a row.
    pub failures: u32,
    /// The last error text, cleared by a success.
    pub last_error: Option<String>,
    /// Whether an announce to it is under way.
    pub in_flight: bool,
}

#[derive(Debug)]
struct Tracker {
    key: TrackerKey,
    url: String,
    failures: u32,
    retry_at: Option<Instant>,
    started_sent: bool,
    completed_pending: bool,
    stop_done: bool,
    in_flight: Option<Event>,
    tracker_id: Option<Vec<u8>>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Tier {
    trackers: Vec<Tracker>,
    cursor: usize,
    next_announce: Instant,
    last_success: Option<Instant>,
    min_interval: Duration,
}

impl Tier {
    fn busy(&self) -> bool {
        self.trackers.iter().any(|t| t.in_flight.is_some())
    }

    /// The first tracker from the cursor whose back-off is over.
    fn ready(&self, now: Instant) -> Option<usize> {
        let n = self.trackers.len();
        (0..n)
            .map(|i| (self.cursor + i) % n)
            .find(|&i| self.trackers[i].retry_at.is_none_or(|r| r <= now))
    }

    /// When this tier next wants to announce (ignoring in-flight state):
    /// its regular time, or later if every tracker is backing off.
    fn due(&self) -> Instant {
        let mut earliest_retry: Option<Instant> = None;
        for t in &self.trackers {
            match t.retry_at {
                None => return self.next_announce,
                Some(r) => earliest_retry = Some(earliest_retry.map_or(r, |e| e.min(r))),
            }
        }
        earliest_retry.map_or(self.next_announce, |r| self.next_announce.max(r))
    }
}

/// The announce scheduler of one torrent. See the module docs for the policy.
#[derive(Debug)]
pub struct Announcer {
    config: Arc<AnnouncerConfig>,
    tiers: Vec<Tier>,
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
        let mut out = Vec::new();
        for mut urls in tiers {
            urls.retain(|u| !u.is_empty() && seen.insert(u.clone()));
            urls.truncate(config.max_trackers.saturating_sub(seen_count(&out)));
            if urls.is_empty() {
                continue;
            }
            urls.shuffle(rng);
            let trackers = urls
                .into_iter()
                .map(|url| {
                    next_key += 1;
                    Tracker {
                        key: TrackerKey(next_key),
                        url,
                        failures: 0,
                        retry_at: None,
                        started_sent: false,
                        completed_pending: false,
                        stop_done: false,
                        in_flight: None,
                        tracker_id: None,
                        last_error: None,
                    }
                })
                .collect();
            out.push(Tier {
                trackers,
                cursor: 0,
                next_announce: now,
                last_success: None,
                min_interval: config.min_interval_floor,
            });
        }
        // Exact: one per torrent, thousands in a daemon (a pushed-to
        // vector keeps room for four).
        out.shrink_to_fit();
        Announcer {
            config,
            tiers: out,
            stopping: false,
        }
    }

    /// The URLs in their current order, tier by tier.
    pub fn tiers(&self) -> Vec<Vec<String>> {
        self.tiers
            .iter()
            .map(|t| t.trackers.iter().map(|x| x.url.clone()).collect())
            .collect()
    }

    /// Status of every tracker, tier by tier.
    pub fn status(&self) -> Vec<TrackerStatus> {
        let mut v = Vec::new();
        for (tier, t) in self.tiers.iter().enumerate() {
            for x in &t.trackers {
                v.push(TrackerStatus {
                    key: x.key,
                    url: x.url.clone(),
                    tier,
                    failures: x.failures,
                    last_error: x.last_error.clone(),
                    in_flight: x.in_flight.is_some(),
                });
            }
        }
        v
    }

    /// The next announce to make now, if any; call until `None`. The job's
    /// tracker counts as in flight until its result is handed back.
    pub fn poll_announce(&mut self, now: Instant) -> Option<AnnounceJob> {
        let stopping = self.stopping;
        for tier in &mut self.tiers {
            if stopping {
                if let Some(t) = tier
                    .trackers
                    .iter_mut()
                    .find(|t| t.started_sent && !t.stop_done && t.in_flight.is_none())
                {
                    t.in_flight = Some(Event::Stopped);
                    return Some(job(t, Event::Stopped));
                }
                continue;
            }
            if tier.busy() || now < tier.next_announce {
                continue;
            }
            let Some(i) = tier.ready(now) else {
                continue;
            };
            tier.cursor = i;
            let t = &mut tier.trackers[i];
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
        self.tiers.iter().filter(|t| !t.busy()).map(Tier::due).min()
    }

    fn find(&mut self, key: TrackerKey) -> Option<(usize, usize)> {
        self.tiers.iter().enumerate().find_map(|(ti, t)| {
            t.trackers
                .iter()
                .position(|x| x.key == key)
                .map(|i| (ti, i))
        })
    }

    /// Records a successful announce (the tracker answered without `failure reason`).
    pub fn handle_success(&mut self, key: TrackerKey, now: Instant, resp: &AnnounceResponse) {
        let Some((ti, i)) = self.find(key) else {
            return;
        };
        let cfg = *self.config;
        let stopping = self.stopping;
        let tier = &mut self.tiers[ti];
        let t = &mut tier.trackers[i];
        let event = t.in_flight.take();
        t.failures = 0;
        t.retry_at = None;
        t.last_error = None;
        if resp.tracker_id.is_some() {
            t.tracker_id.clone_from(&resp.tracker_id);
        }
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
        let moved = tier.trackers.remove(i);
        tier.trackers.insert(0, moved);
        tier.cursor = 0;
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        let min_interval = resp
            .min_interval
            .map_or(cfg.min_interval_floor, secs)
            .min(cfg.max_interval);
        let interval = secs(resp.interval)
            .max(cfg.min_interval_floor)
            .max(min_interval)
            .min(cfg.max_interval);
        tier.min_interval = min_interval;
        tier.last_success = Some(now);
        tier.next_announce = if completed_pending {
            // `completed` was asked for while this announce was under way.
            now + min_interval
        } else {
            now + interval
        };
    }

    /// Records a failed announce (network error, timeout, refusal); `error`
    /// is kept for display. The tier moves on to its next tracker at once.
    pub fn handle_failure(&mut self, key: TrackerKey, now: Instant, error: &str) {
        let Some((ti, i)) = self.find(key) else {
            return;
        };
        let cfg = *self.config;
        let tier = &mut self.tiers[ti];
        let n = tier.trackers.len();
        let t = &mut tier.trackers[i];
        let event = t.in_flight.take();
        t.failures = t.failures.saturating_add(1);
        let factor = 1u32 << (t.failures - 1).min(20);
        t.retry_at = Some(now + cfg.retry_base.saturating_mul(factor).min(cfg.retry_max));
        t.last_error = Some(error.to_owned());
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
        tier.cursor = (i + 1) % n;
    }

    /// The download finished: every tracker that saw `started` gets
    /// `completed` as soon as its tier is free.
    pub fn completed(&mut self, now: Instant) {
        for tier in &mut self.tiers {
            let mut any = false;
            for t in &mut tier.trackers {
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
        for tier in &mut self.tiers {
            let earliest = tier
                .last_success
                .map_or(now, |l| (l + tier.min_interval).max(now));
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
            && self.tiers.iter().all(|tier| {
                tier.trackers
                    .iter()
                    .all(|t| t.in_flight.is_none() && (!t.started_sent || t.stop_done))
            })
    }
}

fn seen_count(tiers: &[Tier]) -> usize {
    tiers.iter().map(|t| t.trackers.len()).sum()
}

fn job(t: &Tracker, event: Event) -> AnnounceJob {
    AnnounceJob {
        key: t.key,
        url: t.url.clone(),
        event,
        tracker_id: t.tracker_id.clone(),
    }
}

#[cfg(test)]
#[path = "announcer_tests.rs"]
mod tests;
