//! A seeding torrent's goals: stop at a ratio of uploaded to downloaded
//! bytes, or after a time without uploading (Transmission's `seedRatioLimit`
//! and `seedIdleLimit`), each the torrent's own or the session's.
use crate::persist::TorrentLimits;
use crate::session::LiveSettings;
use crate::status::{TorrentState, TorrentStatus};
use std::time::Instant;

/// Where a torrent stands against its seeding goals.
///
/// Invariant: `last_upload` holds the uploaded bytes last seen and when they
/// last changed (the idle goal counts from there, across dormancy).
#[derive(Debug, Clone, Copy)]
pub(super) struct SeedGoals {
    /// Resumed by hand after finishing: seed on whatever the goals say,
    /// until the settings change.
    pub ignore: bool,
    last_upload: (u64, Instant),
}

impl SeedGoals {
    /// No upload seen yet: the idle time counts from `now`.
    pub fn new(now: Instant) -> Self {
        SeedGoals {
            ignore: false,
            last_upload: (0, now),
        }
    }

    /// A transfer starts with `uploaded` bytes sent: the idle time counts
    /// from `now`.
    pub fn restart(&mut self, uploaded: u64, now: Instant) {
        self.last_upload = (uploaded, now);
    }

    /// When the idle goal would stop a torrent in `state`, if it has one.
    pub fn idle_deadline(
        &self,
        state: TorrentState,
        limits: &TorrentLimits,
        live: &LiveSettings,
    ) -> Option<Instant> {
        if state != TorrentState::Seeding || self.ignore {
            return None;
        }
        let idle = limits.seed_idle.resolve(live.seed_idle)?;
        Some(self.last_upload.1 + idle)
    }

    /// Notes the upload of `s` at `now`; whether a seeding torrent reached
    /// its ratio or idle goal.
    pub fn reached(
        &mut self,
        s: &TorrentStatus,
        limits: &TorrentLimits,
        live: &LiveSettings,
        now: Instant,
    ) -> bool {
        if s.uploaded != self.last_upload.0 {
            self.last_upload = (s.uploaded, now);
        }
        if s.state != TorrentState::Seeding || self.ignore {
            return false;
        }
        if let Some(r) = limits.seed_ratio.resolve(live.seed_ratio) {
            // As Transmission: against what was downloaded, or the size
            // for a torrent that was never downloaded here.
            let base = if s.downloaded > 0 {
                s.downloaded
            } else {
                s.wanted_bytes
            };
            if base > 0 && s.uploaded as f64 >= r * base as f64 {
                return true;
            }
        }
        if let Some(idle) = limits.seed_idle.resolve(live.seed_idle) {
            if now >= self.last_upload.1 + idle {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::SeedGoal;
    use std::time::Duration;

    fn seeding(uploaded: u64, downloaded: u64, wanted: u64) -> TorrentStatus {
        TorrentStatus {
            state: TorrentState::Seeding,
            uploaded,
            downloaded,
            wanted_bytes: wanted,
            ..TorrentStatus::default()
        }
    }

    fn live(ratio: Option<f64>, idle: Option<u64>) -> LiveSettings {
        LiveSettings {
            seed_ratio: ratio,
            seed_idle: idle.map(Duration::from_secs),
            ..LiveSettings::default()
        }
    }

    #[test]
    fn ratio_against_downloaded_else_size_own_goal_first() {
        let t0 = Instant::now();
        let mut g = SeedGoals::new(t0);
        let none = TorrentLimits::default();
        let session = live(Some(2.0), None);
        assert!(!g.reached(&seeding(199, 100, 1000), &none, &session, t0));
        assert!(g.reached(&seeding(200, 100, 1000), &none, &session, t0));
        // Never downloaded here: against the size.
        assert!(!g.reached(&seeding(1999, 0, 1000), &none, &session, t0));
        assert!(g.reached(&seeding(2000, 0, 1000), &none, &session, t0));
        // The torrent's own goal wins; unlimited means none.
        let own = TorrentLimits {
            seed_ratio: SeedGoal::Limit(0.5),
            ..TorrentLimits::default()
        };
        assert!(g.reached(&seeding(50, 100, 1000), &own, &session, t0));
        let unlimited = TorrentLimits {
            seed_ratio: SeedGoal::Unlimited,
            ..TorrentLimits::default()
        };
        assert!(!g.reached(&seeding(5000, 100, 1000), &unlimited, &session, t0));
        // Not seeding, or resumed by hand: no goal.
        let mut down = seeding(5000, 100, 1000);
        down.state = TorrentState::Downloading;
        assert!(!g.reached(&down, &none, &session, t0));
        g.ignore = true;
        assert!(!g.reached(&seeding(5000, 100, 1000), &none, &session, t0));
    }

    #[test]
    fn idle_counts_from_the_last_upload() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut g = SeedGoals::new(t0);
        let none = TorrentLimits::default();
        let session = live(None, Some(60));
        let seeding_state = TorrentState::Seeding;
        assert_eq!(
            g.idle_deadline(seeding_state, &none, &session),
            Some(at(60))
        );
        assert!(!g.reached(&seeding(0, 0, 10), &none, &session, at(59)));
        // An upload at 50 s moves the deadline.
        assert!(!g.reached(&seeding(5, 0, 10), &none, &session, at(50)));
        assert_eq!(
            g.idle_deadline(seeding_state, &none, &session),
            Some(at(110))
        );
        assert!(!g.reached(&seeding(5, 0, 10), &none, &session, at(109)));
        assert!(g.reached(&seeding(5, 0, 10), &none, &session, at(110)));
        // A new transfer counts from its start.
        g.restart(5, at(200));
        assert_eq!(
            g.idle_deadline(seeding_state, &none, &session),
            Some(at(260))
        );
        assert_eq!(g.idle_deadline(TorrentState::Paused, &none, &session), None);
        assert_eq!(
            g.idle_deadline(seeding_state, &none, &live(None, None)),
            None
        );
    }
}
