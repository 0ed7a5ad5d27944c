//! Round-trip time estimation and the retransmission timeout, RFC 6298
//! style: a smoothed RTT and its mean deviation from every packet acked after
//! a single transmission (Karn), `RTO = max(min, SRTT + 4·RTTVAR)`, doubled
//! on every consecutive timeout up to a ceiling.
use std::time::Duration;

/// The estimator.
#[derive(Debug, Clone)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    min_rto: Duration,
    max_rto: Duration,
    initial_rto: Duration,
}

impl RttEstimator {
    /// No sample yet: the RTO is `initial`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> RttEstimator {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            min_rto: min,
            max_rto: max,
            initial_rto: initial,
        }
    }

    /// Feeds one measured round trip.
    pub fn add_sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + r) / 8);
            }
        }
    }

    /// The smoothed RTT, once measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// The mean deviation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }

    /// The retransmission timeout after `backoff` consecutive timeouts.
    pub fn rto(&self, backoff: u32) -> Duration {
        let base = match self.srtt {
            None => self.initial_rto,
            Some(s) => (s + self.rttvar * 4).max(self.min_rto),
        };
        base.saturating_mul(1 << backoff.min(16)).min(self.max_rto)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn follows_rfc6298() {
        let mut r = RttEstimator::new(ms(1000), ms(500), ms(60_000));
        assert_eq!(r.rto(0), ms(1000));
        r.add_sample(ms(200));
        assert_eq!(r.srtt(), Some(ms(200)));
        assert_eq!(r.rttvar(), ms(100));
        assert_eq!(r.rto(0), ms(600));
        r.add_sample(ms(600));
        // rttvar = 3/4·100 + 1/4·400 = 175; srtt = 7/8·200 + 1/8·600 = 250
        assert_eq!(r.rttvar(), ms(175));
        assert_eq!(r.srtt(), Some(ms(250)));
        assert_eq!(r.rto(0), ms(950));
        assert_eq!(r.rto(1), ms(1900));
        assert_eq!(r.rto(30), ms(60_000));
        for _ in 0..50 {
            r.add_sample(ms(1));
        }
        assert_eq!(r.rto(0), ms(500), "clamped to the minimum");
    }
}
