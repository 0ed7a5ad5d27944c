//! The base-delay history of LEDBAT, as libtorrent's `timestamp_history`:
//! the lowest one-way delay sample in each of the last 20 minutes (a minute is
//! only stepped over once it saw more than 120 samples, so an idle link keeps
//! its base). A sample's queueing delay is its distance above the base. The
//! samples are differences of two unsynchronised 32-bit microsecond clocks, so
//! they wrap and are compared with [`ts_lt`].
use crate::seq::ts_lt;

const HISTORY: usize = 20;
const MIN_SAMPLES_TO_STEP: u16 = 120;

/// Sliding minimum of delay samples.
#[derive(Debug, Clone)]
pub struct DelayHistory {
    history: [u32; HISTORY],
    base: u32,
    index: usize,
    samples: u16,
    initialized: bool,
}

impl Default for DelayHistory {
    fn default() -> Self {
        DelayHistory {
            history: [0; HISTORY],
            base: 0,
            index: 0,
            samples: 0,
            initialized: false,
        }
    }
}

impl DelayHistory {
    /// Whether a sample was seen.
    pub fn initialized(&self) -> bool {
        self.initialized
    }

    /// The base delay (meaningful once initialized).
    pub fn base(&self) -> u32 {
        self.base
    }

    /// Adds a sample; `step` says a minute passed since the last step. Returns
    /// the sample's distance above the base.
    pub fn add_sample(&mut self, sample: u32, step: bool) -> u32 {
        if !self.initialized {
            self.history = [sample; HISTORY];
            self.base = sample;
            self.samples = 0;
            self.initialized = true;
        }
        self.samples = self.samples.saturating_add(1);
        if ts_lt(sample, self.base) {
            self.base = sample;
            self.history[self.index] = sample;
        } else if ts_lt(sample, self.history[self.index]) {
            self.history[self.index] = sample;
        }
        let ret = sample.wrapping_sub(self.base);
        if step && self.samples > MIN_SAMPLES_TO_STEP {
            self.samples = 0;
            self.index = (self.index + 1) % HISTORY;
            self.history[self.index] = sample;
            self.base = sample;
            for &h in &self.history {
                if ts_lt(h, self.base) {
                    self.base = h;
                }
            }
        }
        ret
    }

    /// Raises the base by `change` microseconds (clock-drift compensation:
    /// when the other side's base goes down by as much).
    pub fn adjust_base(&mut self, change: u32) {
        self.base = self.base.wrapping_add(change);
        for h in &mut self.history {
            if ts_lt(*h, self.base) {
                *h = self.base;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_above_the_minimum() {
        let mut h = DelayHistory::default();
        assert_eq!(h.add_sample(1000, false), 0);
        assert_eq!(h.add_sample(1500, false), 500);
        assert_eq!(h.add_sample(800, false), 0);
        assert_eq!(h.add_sample(1000, false), 200);
        assert_eq!(h.base(), 800);
    }

    #[test]
    fn wraps_around_the_clock() {
        let mut h = DelayHistory::default();
        h.add_sample(u32::MAX - 100, false);
        assert_eq!(h.add_sample(50, false), 151);
        assert_eq!(h.base(), u32::MAX - 100);
    }

    #[test]
    fn old_minimum_ages_out_after_twenty_busy_minutes() {
        let mut h = DelayHistory::default();
        h.add_sample(100, false);
        for _minute in 0..HISTORY {
            for _ in 0..=MIN_SAMPLES_TO_STEP {
                h.add_sample(5000, false);
            }
            h.add_sample(5000, true);
        }
        assert_eq!(h.base(), 5000);
        // An idle minute (few samples) does not step.
        let mut idle = DelayHistory::default();
        idle.add_sample(100, false);
        for _ in 0..HISTORY * 2 {
            idle.add_sample(5000, true);
        }
        assert_eq!(idle.base(), 100);
    }

    #[test]
    fn adjusting_raises_the_floor() {
        let mut h = DelayHistory::default();
        h.add_sample(1000, false);
        h.adjust_base(300);
        assert_eq!(h.base(), 1300);
        assert_eq!(h.add_sample(1400, false), 100);
    }
}
