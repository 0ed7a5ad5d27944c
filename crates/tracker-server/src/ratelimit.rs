//! Per-IP rate limits against announce floods: a token bucket per client
//! address (per /64 for IPv6, since one host usually owns a whole /64), in a
//! bounded, sharded table. Time is an argument (milliseconds).
//!
//! At the bound: idle buckets (full again) are dropped; if the table is
//! still full, clients not in it are let through (an attacker with that many
//! addresses is not stopped by per-address limits anyway), and counted.
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

const SHARDS: usize = 16;

/// Rate limit policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateConfig {
    /// Requests per second allowed per address, sustained; 0 turns limits off.
    pub per_second: f64,
    /// Requests allowed in a burst.
    pub burst: f64,
    /// Most addresses tracked at once.
    pub max_clients: usize,
}

impl Default for RateConfig {
    /// 200 requests/s per address with bursts of 1000, 100 000 addresses.
    fn default() -> Self {
        RateConfig {
            per_second: 200.0,
            burst: 1000.0,
            max_clients: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Serve it.
    Allow,
    /// Serve it: the table is full and the client untracked.
    AllowUntracked,
    /// Refuse it.
    Deny,
}

/// The per-address limiter.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    shards: Vec<Mutex<HashMap<[u8; 16], Bucket>>>,
}

fn key(ip: IpAddr) -> [u8; 16] {
    match crate::peers::canonical_ip(ip) {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => {
            let mut k = v6.octets();
            k[8..].fill(0);
            k
        }
    }
}

impl RateLimiter {
    /// A limiter with `config`.
    pub fn new(config: RateConfig) -> Self {
        RateLimiter {
            config,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes a token for `ip` at time `now_ms`.
    pub fn check(&self, now_ms: u64, ip: IpAddr) -> Verdict {
        let c = &self.config;
        if c.per_second <= 0.0 {
            return Verdict::Allow;
        }
        let k = key(ip);
        let i = (usize::from(k[15]) ^ usize::from(k[7]) ^ usize::from(k[13])) % SHARDS;
        let mut m = self.shards[i]
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let per_shard = (c.max_clients / SHARDS).max(1);
        let refill = |b: &Bucket| {
            let dt = now_ms.saturating_sub(b.at_ms) as f64 / 1000.0;
            (b.tokens + dt * c.per_second).min(c.burst)
        };
        if !m.contains_key(&k) && m.len() >= per_shard {
            m.retain(|_, b| refill(b) < c.burst);
            if m.len() >= per_shard {
                return Verdict::AllowUntracked;
            }
        }
        let b = m.entry(k).or_insert(Bucket {
            tokens: c.burst,
            at_ms: now_ms,
        });
        let tokens = refill(b);
        b.at_ms = now_ms;
        if tokens >= 1.0 {
            b.tokens = tokens - 1.0;
            Verdict::Allow
        } else {
            b.tokens = tokens;
            Verdict::Deny
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn bursts_then_sustained_rate() {
        let l = RateLimiter::new(RateConfig {
            per_second: 10.0,
            burst: 5.0,
            max_clients: 100,
        });
        let a = ip("10.0.0.1");
        for _ in 0..5 {
            assert_eq!(l.check(0, a), Verdict::Allow);
        }
        assert_eq!(l.check(0, a), Verdict::Deny);
        assert_eq!(l.check(50, a), Verdict::Deny, "half a token after 50 ms");
        assert_eq!(l.check(100, a), Verdict::Allow, "one token after 100 ms");
        assert_eq!(l.check(100, a), Verdict::Deny);
        // Another address has its own bucket.
        assert_eq!(l.check(100, ip("10.0.0.2")), Verdict::Allow);
        // Over a long idle time the bucket fills to the burst only.
        let allowed = (0..100)
            .filter(|_| l.check(60_000, a) == Verdict::Allow)
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_v4_is_v4() {
        let l = RateLimiter::new(RateConfig {
            per_second: 1.0,
            burst: 1.0,
            max_clients: 100,
        });
        assert_eq!(l.check(0, ip("2001:db8::1")), Verdict::Allow);
        assert_eq!(l.check(0, ip("2001:db8::2")), Verdict::Deny);
        assert_eq!(l.check(0, ip("2001:db8:0:1::2")), Verdict::Allow);
        assert_eq!(l.check(0, ip("10.0.0.1")), Verdict::Allow);
        assert_eq!(l.check(0, ip("::ffff:10.0.0.1")), Verdict::Deny);
    }

    #[test]
    fn table_is_bounded() {
        let l = RateLimiter::new(RateConfig {
            per_second: 1.0,
            burst: 2.0,
            max_clients: SHARDS,
        });
        // Fill every shard with a busy client (one token used, not idle).
        let mut busy = Vec::new();
        for i in 0..=255u8 {
            let a = IpAddr::from([10, 0, 0, i]);
            if l.check(0, a) == Verdict::Allow {
                busy.push(a);
            }
        }
        let untracked = (0..=255u8)
            .map(|i| l.check(0, IpAddr::from([10, 0, 1, i])))
            .filter(|v| *v == Verdict::AllowUntracked)
            .count();
        assert!(untracked > 0);
        let total: usize = l.shards.iter().map(|s| s.lock().unwrap().len()).sum();
        assert!(total <= SHARDS);
        // Once buckets are idle (full again) they make room.
        assert_eq!(l.check(10_000, IpAddr::from([10, 0, 2, 1])), Verdict::Allow);
    }

    #[test]
    fn zero_rate_is_off() {
        let l = RateLimiter::new(RateConfig {
            per_second: 0.0,
            ..RateConfig::default()
        });
        assert!((0..10_000).all(|_| l.check(0, ip("10.0.0.1")) == Verdict::Allow));
    }
}
