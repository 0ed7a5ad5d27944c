//! Wrong credentials throttled per client address, against password
//! guessing: after [`MAX_FAILURES`] wrong attempts from one IP address within
//! [`WINDOW`], every attempt from it (right or wrong, so a guesser learns
//! nothing more) gets `429 Too Many Requests` until [`LOCKOUT`] has passed.
//! A browser already logged in (its cookie) is not affected.
//!
//! Invariant: at most [`MAX_TRACKED`] addresses are remembered; when full,
//! expired entries go first, then the oldest one.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Wrong attempts allowed from one address within [`WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// The window the failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long an address that went over the limit is refused.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// Addresses remembered at most.
pub const MAX_TRACKED: usize = 4096;

/// One address's recent failures.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The first failure of the current window.
    since: Instant,
    failures: u32,
    /// Refused until then, once over the limit.
    locked_until: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        match self.locked_until {
            Some(t) => now >= t,
            None => now.duration_since(self.since) >= WINDOW,
        }
    }
}

/// The failed-login record of the daemon. See the module docs.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    entries: Mutex<HashMap<IpAddr, Entry>>,
}

impl LoginThrottle {
    /// How long `ip` must still wait before it may try again; `None` when
    /// it may try now.
    pub fn blocked(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let until = entries.get(&ip)?.locked_until?;
        (now < until).then(|| until - now)
    }

    /// Records wrong credentials from `ip`.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&ip) {
            entries.retain(|_, e| !e.expired(now));
            if entries.len() >= MAX_TRACKED {
                if let Some(oldest) = entries.iter().min_by_key(|(_, e)| e.since).map(|(k, _)| *k) {
                    entries.remove(&oldest);
                }
            }
        }
        let e = entries.entry(ip).or_insert(Entry {
            since: now,
            failures: 0,
            locked_until: None,
        });
        if e.expired(now) {
            *e = Entry {
                since: now,
                failures: 0,
                locked_until: None,
            };
        }
        e.failures += 1;
        if e.failures >= MAX_FAILURES {
            e.locked_until = Some(now + LOCKOUT);
        }
    }

    /// Forgets `ip`'s failures after it logged in.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&ip);
    }

    /// Addresses remembered now.
    pub fn tracked(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u32) -> IpAddr {
        IpAddr::from(n.to_be_bytes())
    }

    #[test]
    fn locks_out_after_the_limit_then_lets_in_again() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES - 1 {
            t.failed(ip(1), t0 + Duration::from_secs(i.into()));
            assert_eq!(t.blocked(ip(1), t0 + Duration::from_secs(i.into())), None);
        }
        let at = t0 + Duration::from_secs(20);
        t.failed(ip(1), at);
        assert_eq!(t.blocked(ip(1), at), Some(LOCKOUT));
        // Another address is not affected.
        assert_eq!(t.blocked(ip(2), at), None);
        assert_eq!(
            t.blocked(ip(1), at + LOCKOUT - Duration::from_secs(1)),
            Some(Duration::from_secs(1))
        );
        let later = at + LOCKOUT;
        assert_eq!(t.blocked(ip(1), later), None);
        // A fresh window: one more failure does not lock again.
        t.failed(ip(1), later);
        assert_eq!(t.blocked(ip(1), later), None);
    }

    #[test]
    fn failures_spread_over_windows_never_lock_and_success_forgets() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for i in 0..5 * MAX_FAILURES {
            let now = t0 + WINDOW / (MAX_FAILURES / 2) * i;
            t.failed(ip(7), now);
            assert_eq!(t.blocked(ip(7), now), None, "failure {i}");
        }
        t.succeeded(ip(7));
        assert_eq!(t.tracked(), 0);
    }

    #[test]
    fn the_record_stays_bounded() {
        let t = LoginThrottle::default();
        let t0 = Instant::now();
        for n in 0..(MAX_TRACKED as u32 + 100) {
            t.failed(ip(n), t0);
        }
        assert_eq!(t.tracked(), MAX_TRACKED);
        // Expired entries make room first.
        t.failed(ip(u32::MAX), t0 + WINDOW);
        assert_eq!(t.tracked(), 1);
    }
}
