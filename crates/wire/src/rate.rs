//! [`RateMeter`]: bytes per second over a sliding window, on caller-given time.

use std::time::{Duration, Instant};

const BUCKETS: usize = 16;
/// Buckets of [`RateMeter::recent_rate`] for a request pipeline: 1.25 to
/// 1.9 s of a 10-s window, so at least two of Transmission's half-second
/// bursts.
pub const PIPELINE_BUCKETS: usize = 3;

/// A sliding-window rate: per-bucket byte counts over the last `window`.
///
/// Invariant: `buckets[i]` counts bytes in the bucket `tick` where
/// `tick % BUCKETS == i` and `tick > last_tick - BUCKETS`; time never goes
/// backwards inside (earlier instants count as the latest seen).
#[derive(Debug, Clone)]
pub struct RateMeter {
    start: Instant,
    bucket: Duration,
    buckets: [u64; BUCKETS],
    last_tick: u64,
    total: u64,
}

impl RateMeter {
    /// A meter averaging over `window` (split in 16 buckets), starting at `now`.
    pub fn new(now: Instant, window: Duration) -> Self {
        RateMeter {
            start: now,
            bucket: (window / BUCKETS as u32).max(Duration::from_millis(1)),
            buckets: [0; BUCKETS],
            last_tick: 0,
            total: 0,
        }
    }

    fn tick_of(&self, now: Instant) -> u64 {
        let t = (now.saturating_duration_since(self.start).as_nanos()
            / self.bucket.as_nanos().max(1)) as u64;
        t.max(self.last_tick)
    }

    fn advance(&mut self, now: Instant) {
        let t = self.tick_of(now);
        let gap = t - self.last_tick;
        for i in 1..=gap.min(BUCKETS as u64) {
            self.buckets[((self.last_tick + i) % BUCKETS as u64) as usize] = 0;
        }
        self.last_tick = t;
    }

    /// Counts `bytes` at `now`.
    pub fn record(&mut self, now: Instant, bytes: u64) {
        self.advance(now);
        self.buckets[(self.last_tick % BUCKETS as u64) as usize] += bytes;
        self.total += bytes;
    }

    /// Bytes per second over the window ending at `now` (over the elapsed time
    /// while the meter is younger than the window).
    pub fn rate(&mut self, now: Instant) -> u64 {
        self.advance(now);
        let sum: u64 = self.buckets.iter().sum();
        let elapsed = now.saturating_duration_since(self.start);
        let span = (self.bucket * BUCKETS as u32).min(elapsed.max(self.bucket));
        (sum as f64 / span.as_secs_f64()) as u64
    }

    /// Bytes per second over the last `buckets` buckets (the current one
    /// counted for the part of it elapsed): a short-term rate, for decisions
    /// that must follow a rate as it grows (a request pipeline), where the
    /// whole window would lag.
    pub fn recent_rate(&mut self, now: Instant, buckets: usize) -> u64 {
        self.advance(now);
        let n = buckets.clamp(1, BUCKETS) as u64;
        let sum: u64 = (0..n.min(self.last_tick + 1))
            .map(|i| self.buckets[((self.last_tick - i) % BUCKETS as u64) as usize])
            .sum();
        let elapsed = now.saturating_duration_since(self.start);
        let in_current = elapsed.saturating_sub(self.bucket * self.last_tick as u32);
        let span = (self.bucket * (n - 1) as u32 + in_current)
            .min(elapsed)
            .max(self.bucket / 4);
        (sum as f64 / span.as_secs_f64()) as u64
    }

    /// Bytes counted since creation.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recent_rate_follows_a_rise_the_window_averages() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0, Duration::from_secs(16));
        // 1 kB/s for 12 s, then 8 kB/s for 3 s.
        for s in 0..12u64 {
            m.record(t0 + Duration::from_secs(s), 1000);
        }
        for s in 12..15u64 {
            m.record(t0 + Duration::from_secs(s), 8000);
        }
        let now = t0 + Duration::from_secs(15);
        let whole = m.rate(now);
        let recent = m.recent_rate(now, 3);
        assert!(whole < 3000, "the window lags: {whole}");
        assert!((7000..=8500).contains(&recent), "recent: {recent}");
        // Younger than the buckets asked for: over the elapsed time.
        let mut y = RateMeter::new(t0, Duration::from_secs(16));
        y.record(t0 + Duration::from_millis(500), 4000);
        let r = y.recent_rate(t0 + Duration::from_secs(2), 4);
        assert!((1900..=2100).contains(&r), "young: {r}");
        assert_eq!(
            RateMeter::new(t0, Duration::from_secs(16)).recent_rate(t0, 4),
            0
        );
    }

    #[test]
    fn steady_rate_and_decay() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0, Duration::from_secs(16));
        for s in 0..32u64 {
            m.record(t0 + Duration::from_secs(s), 1000);
        }
        let r = m.rate(t0 + Duration::from_secs(32));
        assert!((900..=1100).contains(&r), "rate {r}");
        assert_eq!(m.total(), 32_000);
        assert_eq!(m.rate(t0 + Duration::from_secs(100)), 0);
    }

    #[test]
    fn young_meter_uses_elapsed_time() {
        let t0 = Instant::now();
        let mut m = RateMeter::new(t0, Duration::from_secs(16));
        m.record(t0 + Duration::from_millis(500), 2000);
        let r = m.rate(t0 + Duration::from_secs(2));
        assert_eq!(r, 1000);
        // time going backwards does not panic or lose data
        m.record(t0, 10);
        assert_eq!(m.total(), 2010);
    }
}
