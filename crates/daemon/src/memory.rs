//! Gives the heap's free memory back to the system after a wave of
//! torrents settles.
//!
//! Adding or restoring thousands of torrents allocates much that is freed
//! again (request bodies, checks, each torrent's first transfer run before
//! it goes dormant), between allocations that live on. glibc's allocator
//! keeps the freed pages of its arenas, so the daemon's RSS stayed 10 to
//! 20 MiB above its live heap after 10,000 torrents were loaded
//! (bench/daemon.py). Once such a wave is over, `malloc_trim` returns the
//! free pages. It runs only after a wave, never on a timer of its own, so
//! an idle daemon does nothing here.
use crate::Shared;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Time between two looks at the session.
pub const TICK: Duration = Duration::from_secs(1);
/// Torrents that must have come, gone, slept or woken since the last trim.
pub const WAVE: usize = 256;
/// Least time between two trims.
pub const MIN_GAP: Duration = Duration::from_secs(10);

/// When to trim: after at least [`WAVE`] torrents were added, removed, went
/// dormant or woke since the last trim, once the counts held still for one
/// tick (the wave is over), at most once per [`MIN_GAP`].
#[derive(Debug, Default)]
pub struct TrimPolicy {
    /// Counts (torrents, dormant) at the last trim.
    base: (usize, usize),
    /// Counts at the previous tick.
    prev: Option<(usize, usize)>,
    last_trim: Option<Instant>,
}

impl TrimPolicy {
    /// A policy whose first wave starts at `torrents` and `dormant`.
    pub fn new(torrents: usize, dormant: usize) -> Self {
        TrimPolicy {
            base: (torrents, dormant),
            ..Default::default()
        }
    }

    /// Whether to trim now, given the counts at `now`; a `true` answer
    /// starts the next wave from these counts.
    pub fn due(&mut self, now: Instant, torrents: usize, dormant: usize) -> bool {
        let counts = (torrents, dormant);
        let still = self.prev == Some(counts);
        self.prev = Some(counts);
        let moved = torrents.abs_diff(self.base.0) + dormant.abs_diff(self.base.1);
        let spaced = self.last_trim.is_none_or(|t| now >= t + MIN_GAP);
        if still && moved >= WAVE && spaced {
            self.base = counts;
            self.last_trim = Some(now);
            return true;
        }
        false
    }
}

/// Returns the allocator's free pages to the system (glibc only; elsewhere
/// nothing). True when memory was released.
pub fn trim() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists;
        // it takes the arenas' locks and is safe to call from any thread.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// The loop (until the daemon stops).
pub async fn run(shared: Arc<Shared>) {
    let s = &shared.session;
    let mut policy = TrimPolicy::new(0, 0);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        if policy.due(Instant::now(), s.torrent_count(), s.dormant_count()) {
            let released = tokio::task::spawn_blocking(trim).await.unwrap_or(false);
            tracing::debug!(released, "heap trimmed after a wave of torrents");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_once_a_wave_is_over() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut p = TrimPolicy::new(0, 0);
        // Torrents arrive: the counts move, no trim while they do.
        assert!(!p.due(at(1), 100, 0));
        assert!(!p.due(at(2), 300, 50));
        assert!(!p.due(at(3), 300, 290));
        // Still for one tick: the wave is over.
        assert!(p.due(at(4), 300, 290));
        // Nothing moves: no further trim.
        assert!(!p.due(at(5), 300, 290));
        assert!(!p.due(at(60), 300, 290));
    }

    #[test]
    fn small_changes_do_not_trim() {
        let t0 = Instant::now();
        let mut p = TrimPolicy::new(1000, 1000);
        for s in 1..100 {
            // A few torrents wake and sleep again: fewer than a wave.
            let dormant = 1000 - (s % 3) as usize;
            assert!(!p.due(t0 + Duration::from_secs(s), 1000, dormant));
        }
    }

    #[test]
    fn trims_are_spaced() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut p = TrimPolicy::new(0, 0);
        assert!(!p.due(at(1), 500, 500));
        assert!(p.due(at(2), 500, 500));
        // A second wave right after: it waits for the gap.
        assert!(!p.due(at(3), 0, 0));
        assert!(!p.due(at(4), 0, 0));
        assert!(p.due(at(12), 0, 0));
    }
}
