//! Tracker time: milliseconds and seconds since the server started, offset
//! by [`EPOCH_OFFSET`] seconds so that times restored from a state file
//! (peers last seen before this run) are still positive. The sans-IO parts
//! take these numbers as arguments; only the drivers read a [`Clock`].
use std::time::Instant;

/// Tracker time (seconds) at the moment the clock starts: about 194 days,
/// more than any peer timeout.
pub const EPOCH_OFFSET: u32 = 1 << 24;

/// A monotonic clock reading tracker time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: Instant,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock starting now.
    pub fn new() -> Self {
        Clock {
            start: Instant::now(),
        }
    }

    /// Tracker time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
            + u64::from(EPOCH_OFFSET) * 1000
    }

    /// Tracker time in seconds.
    pub fn now_secs(&self) -> u32 {
        secs(self.now_ms())
    }
}

/// Seconds of a tracker time in milliseconds.
pub fn secs(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}
