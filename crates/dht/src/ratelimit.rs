//! Per-source rate limit on answers: a token bucket per IP (per address for loopback
//! and private sources, which may be many nodes on one host) in a bounded map.
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Rate-limit settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateConfig {
    /// Sustained answers per second per source.
    pub per_sec: f32,
    /// Burst size.
    pub burst: f32,
    /// Most sources tracked; when full, idle ones are dropped first, then any.
    pub max_sources: usize,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            per_sec: 50.0,
            burst: 100.0,
            max_sources: 1024,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Ip(IpAddr),
    Addr(SocketAddr),
}

/// A bounded map of token buckets.
#[derive(Clone, Debug, Default)]
pub struct RateLimiter {
    cfg: Option<RateConfig>,
    buckets: BTreeMap<Key, (f32, u64)>,
}

impl RateLimiter {
    /// A limiter with `cfg` (no limit at all when `None`).
    pub fn new(cfg: Option<RateConfig>) -> Self {
        RateLimiter {
            cfg,
            buckets: BTreeMap::new(),
        }
    }

    /// Whether an answer to `from` is allowed at `now` (ms); consumes one token.
    pub fn allow(&mut self, from: SocketAddr, now: u64) -> bool {
        let Some(cfg) = self.cfg else {
            return true;
        };
        let key = if crate::bep42::is_exempt(from.ip()) {
            Key::Addr(from)
        } else {
            Key::Ip(from.ip())
        };
        if !self.buckets.contains_key(&key) && self.buckets.len() >= cfg.max_sources {
            let full_after = ((cfg.burst / cfg.per_sec) * 1000.0) as u64;
            self.buckets
                .retain(|_, (_, last)| now.saturating_sub(*last) < full_after);
            if self.buckets.len() >= cfg.max_sources {
                if let Some(k) = self.buckets.keys().next().copied() {
                    self.buckets.remove(&k);
                }
            }
        }
        let (tokens, last) = self.buckets.entry(key).or_insert((cfg.burst, now));
        let elapsed = now.saturating_sub(*last) as f32 / 1000.0;
        *tokens = (*tokens + elapsed * cfg.per_sec).min(cfg.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Number of sources tracked.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// True when no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_refills() {
        let cfg = RateConfig {
            per_sec: 10.0,
            burst: 5.0,
            max_sources: 4,
        };
        let mut r = RateLimiter::new(Some(cfg));
        let a: SocketAddr = "8.8.8.8:1".parse().unwrap();
        let b: SocketAddr = "8.8.8.8:2".parse().unwrap();
        let allowed = (0..20).filter(|_| r.allow(a, 0)).count();
        assert_eq!(allowed, 5);
        // Same IP, other port: same bucket.
        assert!(!r.allow(b, 0));
        // 1 s later: refilled to the burst.
        assert_eq!((0..20).filter(|_| r.allow(a, 1000)).count(), 5);
        // Bounded map.
        for i in 0..100u32 {
            r.allow(
                SocketAddr::new(std::net::Ipv4Addr::from(i + 0x0900_0000).into(), 1),
                2000,
            );
        }
        assert!(r.len() <= 4);
    }
}
