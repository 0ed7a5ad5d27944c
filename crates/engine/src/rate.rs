//! Rate limiting: a token bucket per direction, shared by the whole session.
use std::time::{Duration, Instant};

/// A token bucket: `rate` bytes per second with a burst of one second's worth
/// (at least 64 KiB so a block always fits). `None` rate means unlimited.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: Option<u64>,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    /// A bucket limiting to `rate` bytes/s, or unlimited for `None` (or 0).
    pub fn new(rate: Option<u64>) -> Self {
        let rate = rate.filter(|&r| r > 0);
        TokenBucket {
            rate,
            tokens: rate.map_or(0.0, Self::burst_of),
            last: None,
        }
    }

    fn burst_of(rate: u64) -> f64 {
        rate.max(64 * 1024) as f64
    }

    /// The limit in bytes/s, if any.
    pub fn rate(&self) -> Option<u64> {
        self.rate
    }

    /// Changes the limit.
    pub fn set_rate(&mut self, rate: Option<u64>) {
        *self = TokenBucket::new(rate);
    }

    fn refill(&mut self, now: Instant, rate: u64) {
        if let Some(last) = self.last {
            let dt = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + dt * rate as f64).min(Self::burst_of(rate));
        }
        self.last = Some(now);
    }

    /// Takes `bytes` from the bucket; returns how long the caller must wait before
    /// sending them (zero when allowed now). The debt is recorded, so callers that
    /// wait the returned time stay within the rate on average.
    pub fn take(&mut self, bytes: u64, now: Instant) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        self.refill(now, rate);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let mut b = TokenBucket::new(None);
        assert_eq!(b.take(u64::MAX / 2, Instant::now()), Duration::ZERO);
    }

    #[test]
    fn limits_average_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Some(100_000));
        // Burst of 100 KB goes at once.
        assert_eq!(b.take(100_000, t0), Duration::ZERO);
        // The next 50 KB must wait half a second.
        let w = b.take(50_000, t0);
        assert!((w.as_secs_f64() - 0.5).abs() < 1e-6, "{w:?}");
        // Simulate sending 1 MB in 16 KiB blocks, honouring waits: ~10 s.
        let mut t = t0 + w;
        let mut sent = 0u64;
        while sent < 1_000_000 {
            t += b.take(16_384, t);
            sent += 16_384;
        }
        let secs = (t - t0).as_secs_f64();
        assert!((9.5..11.5).contains(&secs), "{secs}");
    }
}
