//! LEDBAT congestion control as libtorrent does it (`do_ledbat`): a window in
//! bytes (16.16 fixed point) that grows in proportion to how far the measured
//! queueing delay is below the target and shrinks as far as it is above,
//! scaled so that a full window of ACKs applies the gain once per RTT; slow
//! start (the window grows by every acked byte) until the delay reaches the
//! target or a loss; halved on loss at most once per window and per 100 ms;
//! back to one packet on a timeout. The window never drops below one packet
//! (RFC 6817) and only grows while the sender fills it.
use std::time::Duration;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct LedbatConfig {
    /// Queueing delay the controller aims at (100 ms, as libtorrent and µTorrent).
    pub target_delay: Duration,
    /// Most bytes the window grows by per RTT when the delay is zero (3000).
    pub gain: u32,
    /// Percent of the window kept after a loss (50).
    pub loss_keep_percent: u8,
    /// The window is cut at most once per this interval (100 ms).
    pub cut_interval: Duration,
    /// Ceiling of the window in bytes.
    pub max_window: usize,
    /// The window of a new connection, bytes.
    pub initial_window: usize,
}

impl Default for LedbatConfig {
    fn default() -> Self {
        LedbatConfig {
            target_delay: Duration::from_millis(100),
            gain: 3000,
            loss_keep_percent: 50,
            cut_interval: Duration::from_millis(100),
            max_window: 16 << 20,
            initial_window: 1500,
        }
    }
}

/// The controller of one connection.
#[derive(Debug, Clone)]
pub struct Ledbat {
    cfg: LedbatConfig,
    cwnd: i64,
    slow_start: bool,
    ssthresh: usize,
    next_cut: Duration,
}

const ONE: i64 = 1 << 16;

impl Ledbat {
    /// A controller in slow start at the initial window.
    pub fn new(cfg: LedbatConfig) -> Ledbat {
        let cwnd = cfg.initial_window as i64 * ONE;
        Ledbat {
            cfg,
            cwnd,
            slow_start: true,
            ssthresh: 0,
            next_cut: Duration::ZERO,
        }
    }

    /// The congestion window, bytes.
    pub fn window(&self) -> usize {
        (self.cwnd / ONE) as usize
    }

    /// Whether the controller is in slow start.
    pub fn in_slow_start(&self) -> bool {
        self.slow_start
    }

    /// Keeps the window at least one packet of `mss` bytes.
    pub fn at_least(&mut self, mss: usize) {
        self.cwnd = self.cwnd.max(mss as i64 * ONE);
    }

    /// `acked` payload bytes were acknowledged while `in_flight_before` were
    /// outstanding (`in_flight_after` remain); `delay_us` is the queueing
    /// delay measured on the way out.
    pub fn on_ack(
        &mut self,
        acked: usize,
        delay_us: u32,
        in_flight_before: usize,
        in_flight_after: usize,
        mss: usize,
    ) {
        if acked == 0 || in_flight_before == 0 {
            return;
        }
        let target = (self.cfg.target_delay.as_micros() as i64).max(1);
        let delay = delay_us as i64;
        let saturated = in_flight_after + acked + mss > self.window();
        let window_factor = acked as i64 * ONE / in_flight_before as i64;
        let delay_factor = (target - delay) * ONE / target;
        if delay >= target && self.slow_start {
            self.ssthresh = self.window() / 2;
            self.slow_start = false;
        }
        let linear = ((window_factor * delay_factor) >> 16) * self.cfg.gain as i64;
        let gain = if !saturated {
            0
        } else if self.slow_start {
            let exponential = acked as i64 * ONE;
            if self.ssthresh != 0 && ((self.cwnd + exponential) / ONE) as usize > self.ssthresh {
                self.slow_start = false;
                linear
            } else {
                exponential.max(linear)
            }
        } else {
            linear
        };
        let max = self.cfg.max_window as i64 * ONE;
        self.cwnd = (self.cwnd + gain).clamp(mss as i64 * ONE, max.max(mss as i64 * ONE));
    }

    /// A packet was lost at `now`: the window is cut unless it was cut less
    /// than the cut interval ago (the caller also cuts once per window).
    /// Returns whether it was cut.
    pub fn on_loss(&mut self, now: Duration, mss: usize) -> bool {
        if now < self.next_cut {
            return false;
        }
        self.next_cut = now + self.cfg.cut_interval;
        let kept = self.cwnd * self.cfg.loss_keep_percent as i64 / 100;
        self.cwnd = kept.max(mss as i64 * ONE);
        if self.slow_start {
            self.ssthresh = self.window();
            self.slow_start = false;
        }
        true
    }

    /// The retransmission timer fired. `idle`: nothing was in flight (the
    /// window only decays); otherwise it restarts at one packet in slow start.
    pub fn on_timeout(&mut self, mss: usize, idle: bool) {
        let one_packet = mss as i64 * ONE;
        if idle && self.cwnd >= one_packet {
            self.cwnd = (self.cwnd * 2 / 3).max(one_packet);
        } else {
            self.cwnd = one_packet;
            self.slow_start = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1400;

    fn ledbat() -> Ledbat {
        Ledbat::new(LedbatConfig::default())
    }

    #[test]
    fn slow_start_doubles_per_window_until_the_target() {
        let mut c = ledbat();
        // Small windows grow by at least the linear gain.
        c.on_ack(1500, 0, 1500, 0, MSS);
        assert_eq!(c.window(), 1500 + 3000);
        c.cwnd = 30_000 * ONE;
        let w0 = c.window();
        // A whole window acked at zero delay, window full: grows by acked bytes.
        c.on_ack(w0, 0, w0, 0, MSS);
        assert_eq!(c.window(), 2 * w0);
        assert!(c.in_slow_start());
        // Delay at the target ends slow start with ssthresh at half the window.
        let w = c.window();
        c.on_ack(MSS, 100_000, w, w - MSS, MSS);
        assert!(!c.in_slow_start());
        assert_eq!(c.window(), w, "no gain exactly at the target");
    }

    #[test]
    fn linear_gain_is_proportional_to_the_distance_from_target() {
        let mut c = ledbat();
        c.on_loss(Duration::ZERO, MSS); // leave slow start
        let mut below = c.clone();
        let w = c.window().max(10 * MSS);
        below.cwnd = w as i64 * ONE;
        c.cwnd = w as i64 * ONE;
        // A full window of ACKs at zero delay adds `gain` bytes.
        below.on_ack(w, 0, w, 0, MSS);
        assert_eq!(below.window(), w + 3000);
        // At twice the target it removes `gain` bytes.
        c.on_ack(w, 200_000, w, 0, MSS);
        assert_eq!(c.window(), w - 3000);
    }

    #[test]
    fn no_growth_when_the_sender_does_not_fill_the_window() {
        let mut c = ledbat();
        c.cwnd = 100 * MSS as i64 * ONE;
        c.on_ack(MSS, 0, 2 * MSS, MSS, MSS);
        assert_eq!(c.window(), 100 * MSS);
    }

    #[test]
    fn loss_halves_at_most_once_per_interval() {
        let mut c = ledbat();
        c.cwnd = 100 * MSS as i64 * ONE;
        assert!(c.on_loss(Duration::from_millis(1000), MSS));
        assert_eq!(c.window(), 50 * MSS);
        assert!(!c.on_loss(Duration::from_millis(1050), MSS));
        assert!(c.on_loss(Duration::from_millis(1100), MSS));
        assert_eq!(c.window(), 25 * MSS);
        for i in 0..20 {
            c.on_loss(Duration::from_secs(10 + i), MSS);
        }
        assert_eq!(c.window(), MSS, "never below one packet");
    }

    #[test]
    fn timeout_restarts_at_one_packet() {
        let mut c = ledbat();
        c.cwnd = 90 * MSS as i64 * ONE;
        c.on_timeout(MSS, true);
        assert_eq!(c.window(), 60 * MSS, "idle: decays by a third");
        c.on_loss(Duration::ZERO, MSS);
        c.on_timeout(MSS, false);
        assert_eq!(c.window(), MSS);
        assert!(c.in_slow_start());
    }
}
