//! Round-trip-time estimation (RFC 6298 style) for adaptive query timeouts: one
//! estimator per node over all its queries (a global estimator, since most contacts
//! are queried only once or twice).

/// A smoothed RTT estimator; the timeout is `max(srtt + 4 * rttvar, 2 * srtt)`, clamped.
#[derive(Clone, Copy, Debug)]
pub struct RttEstimator {
    srtt: f32,
    rttvar: f32,
    samples: u32,
    min_ms: u32,
    max_ms: u32,
    initial_ms: u32,
}

impl RttEstimator {
    /// An estimator with no samples: the timeout is `initial_ms` until the first one.
    pub fn new(min_ms: u32, max_ms: u32, initial_ms: u32) -> Self {
        RttEstimator {
            srtt: 0.0,
            rttvar: 0.0,
            samples: 0,
            min_ms,
            max_ms,
            initial_ms,
        }
    }

    /// Adds one measured round trip.
    pub fn sample(&mut self, rtt_ms: u64) {
        let r = rtt_ms as f32;
        if self.samples == 0 {
            self.srtt = r;
            self.rttvar = r / 2.0;
        } else {
            self.rttvar = 0.75 * self.rttvar + 0.25 * (self.srtt - r).abs();
            self.srtt = 0.875 * self.srtt + 0.125 * r;
        }
        self.samples = self.samples.saturating_add(1);
    }

    /// The smoothed RTT, if any sample was taken.
    pub fn srtt_ms(&self) -> Option<f32> {
        (self.samples > 0).then_some(self.srtt)
    }

    /// The current query timeout in milliseconds.
    pub fn timeout_ms(&self) -> u64 {
        let t = if self.samples == 0 {
            self.initial_ms as f32
        } else {
            // Never less than twice the smoothed RTT: with a very steady RTT the
            // variance term vanishes and answers would race the timeout.
            (self.srtt + 4.0 * self.rttvar).max(2.0 * self.srtt)
        };
        (t as u64).clamp(u64::from(self.min_ms), u64::from(self.max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adapts_to_samples() {
        let mut e = RttEstimator::new(50, 5000, 1000);
        assert_eq!(e.timeout_ms(), 1000);
        e.sample(100);
        assert_eq!(e.timeout_ms(), 300);
        for _ in 0..50 {
            e.sample(100);
        }
        assert!(e.timeout_ms() <= 200, "{}", e.timeout_ms());
        for _ in 0..50 {
            e.sample(10_000);
        }
        assert_eq!(e.timeout_ms(), 5000);
    }
}
