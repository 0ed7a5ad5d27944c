//! Counters of what the tracker did, request rates over the last seconds,
//! and their two renderings: a small HTML page (`/`, `/stats`) and the
//! Prometheus text format (`/metrics`, names `shoal_tracker_…`).
use crate::swarm::SwarmTotals;
use std::collections::VecDeque;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The transport a request came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP.
    Http = 0,
    /// UDP (BEP 15).
    Udp = 1,
}

/// Event counters; all monotonic.
#[derive(Debug, Default)]
pub struct Stats {
    announces: [AtomicU64; 2],
    scrapes: [AtomicU64; 2],
    bad_requests: [AtomicU64; 2],
    rate_limited: [AtomicU64; 2],
    refused: [AtomicU64; 2],
    udp_connects: AtomicU64,
    udp_bad_connection_ids: AtomicU64,
    rate_untracked: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

/// A copy of the counters at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Sample {
    /// Tracker time (ms) of the sample.
    pub at_ms: u64,
    /// Announces answered, HTTP and UDP.
    pub announces: [u64; 2],
    /// Scrapes answered, HTTP and UDP.
    pub scrapes: [u64; 2],
}

/// Samples kept for rates: rates are over the last this-many seconds.
const WINDOW: usize = 10;

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Stats {
    /// An announce answered.
    pub fn announce(&self, t: Transport) {
        bump(&self.announces[t as usize]);
    }
    /// A scrape answered.
    pub fn scrape(&self, t: Transport) {
        bump(&self.scrapes[t as usize]);
    }
    /// A request that did not parse.
    pub fn bad_request(&self, t: Transport) {
        bump(&self.bad_requests[t as usize]);
    }
    /// A request refused by the rate limit.
    pub fn rate_limited(&self, t: Transport) {
        bump(&self.rate_limited[t as usize]);
    }
    /// A request let through because the rate table was full.
    pub fn rate_untracked(&self) {
        bump(&self.rate_untracked);
    }
    /// An announce refused (not allowed, tracker full).
    pub fn refused(&self, t: Transport) {
        bump(&self.refused[t as usize]);
    }
    /// A UDP connect answered.
    pub fn udp_connect(&self) {
        bump(&self.udp_connects);
    }
    /// A UDP request with an unknown or expired connection id.
    pub fn udp_bad_connection_id(&self) {
        bump(&self.udp_bad_connection_ids);
    }

    /// The counters now.
    pub fn sample(&self, at_ms: u64) -> Sample {
        let l = |a: &[AtomicU64; 2]| [a[0].load(Ordering::Relaxed), a[1].load(Ordering::Relaxed)];
        Sample {
            at_ms,
            announces: l(&self.announces),
            scrapes: l(&self.scrapes),
        }
    }

    /// Records a sample for the rates (call about once a second).
    pub fn tick(&self, at_ms: u64) {
        let s = self.sample(at_ms);
        let mut q = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        q.push_back(s);
        while q.len() > WINDOW + 1 {
            q.pop_front();
        }
    }

    /// Announces per second over HTTP and UDP across the recorded window.
    pub fn announce_rates(&self) -> [f64; 2] {
        let q = self
            .samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (q.front(), q.back()) {
            (Some(a), Some(b)) if b.at_ms > a.at_ms => {
                let dt = (b.at_ms - a.at_ms) as f64 / 1000.0;
                [0, 1].map(|i| (b.announces[i] - a.announces[i]) as f64 / dt)
            }
            _ => [0.0, 0.0],
        }
    }

    /// The Prometheus text exposition.
    pub fn prometheus(&self, totals: &SwarmTotals) -> String {
        let mut o = String::with_capacity(2048);
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let per_transport = |o: &mut String, name: &str, help: &str, a: &[AtomicU64; 2]| {
            let _ = writeln!(o, "# HELP shoal_tracker_{name} {help}");
            let _ = writeln!(o, "# TYPE shoal_tracker_{name} counter");
            for (i, t) in ["http", "udp"].iter().enumerate() {
                let _ = writeln!(o, "shoal_tracker_{name}{{transport=\"{t}\"}} {}", l(&a[i]));
            }
        };
        per_transport(
            &mut o,
            "announces_total",
            "Announces answered.",
            &self.announces,
        );
        per_transport(&mut o, "scrapes_total", "Scrapes answered.", &self.scrapes);
        per_transport(
            &mut o,
            "bad_requests_total",
            "Requests that did not parse.",
            &self.bad_requests,
        );
        per_transport(
            &mut o,
            "rate_limited_total",
            "Requests refused by the per-IP rate limit.",
            &self.rate_limited,
        );
        per_transport(
            &mut o,
            "refused_total",
            "Announces refused (not allowed, tracker full).",
            &self.refused,
        );
        let single = |o: &mut String, name: &str, kind: &str, help: &str, v: u64| {
            let _ = writeln!(o, "# HELP shoal_tracker_{name} {help}");
            let _ = writeln!(o, "# TYPE shoal_tracker_{name} {kind}");
            let _ = writeln!(o, "shoal_tracker_{name} {v}");
        };
        single(
            &mut o,
            "udp_connects_total",
            "counter",
            "UDP connect requests answered.",
            l(&self.udp_connects),
        );
        single(
            &mut o,
            "udp_bad_connection_ids_total",
            "counter",
            "UDP requests with an unknown or expired connection id.",
            l(&self.udp_bad_connection_ids),
        );
        single(
            &mut o,
            "rate_untracked_total",
            "counter",
            "Requests let through untracked because the rate table was full.",
            l(&self.rate_untracked),
        );
        single(
            &mut o,
            "torrents",
            "gauge",
            "Torrents tracked.",
            totals.torrents as u64,
        );
        let _ = writeln!(o, "# HELP shoal_tracker_peers Peers tracked.");
        let _ = writeln!(o, "# TYPE shoal_tracker_peers gauge");
        let _ = writeln!(
            o,
            "shoal_tracker_peers{{state=\"seeder\"}} {}",
            totals.seeders
        );
        let _ = writeln!(
            o,
            "shoal_tracker_peers{{state=\"leecher\"}} {}",
            totals.peers.saturating_sub(totals.seeders)
        );
        o
    }

    /// The HTML statistics page (refreshes itself every 5 s).
    pub fn html(&self, totals: &SwarmTotals) -> String {
        let rates = self.announce_rates();
        let s = self.sample(0);
        let rows = [
            ("torrents", totals.torrents.to_string()),
            ("peers", totals.peers.to_string()),
            ("seeders", totals.seeders.to_string()),
            (
                "leechers",
                totals.peers.saturating_sub(totals.seeders).to_string(),
            ),
            ("announces/s over HTTP", format!("{:.1}", rates[0])),
            ("announces/s over UDP", format!("{:.1}", rates[1])),
            (
                "announces (HTTP, UDP)",
                format!("{}, {}", s.announces[0], s.announces[1]),
            ),
            (
                "scrapes (HTTP, UDP)",
                format!("{}, {}", s.scrapes[0], s.scrapes[1]),
            ),
        ];
        let mut o = String::from(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"5\"><title>shoal tracker</title>\
             <style>body{font-family:sans-serif}td{padding:2px 12px}td+td{text-align:right}</style>\
             </head><body><h1>shoal tracker</h1><table>\n",
        );
        for (k, v) in rows {
            let _ = writeln!(o, "<tr><td>{k}</td><td>{v}</td></tr>");
        }
        o.push_str("</table><p><a href=\"/metrics\">metrics</a></p></body></html>\n");
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_over_the_window() {
        let s = Stats::default();
        s.tick(0);
        for _ in 0..30 {
            s.announce(Transport::Udp);
        }
        for _ in 0..10 {
            s.announce(Transport::Http);
        }
        s.tick(2000);
        assert_eq!(s.announce_rates(), [5.0, 15.0]);
        for i in 0..20 {
            s.tick(3000 + i * 1000);
        }
        assert_eq!(
            s.announce_rates(),
            [0.0, 0.0],
            "old samples leave the window"
        );
    }

    #[test]
    fn renderings_name_everything() {
        let s = Stats::default();
        s.announce(Transport::Http);
        s.scrape(Transport::Udp);
        s.udp_connect();
        let t = SwarmTotals {
            torrents: 3,
            peers: 7,
            seeders: 2,
        };
        let p = s.prometheus(&t);
        assert!(p.contains("shoal_tracker_announces_total{transport=\"http\"} 1\n"));
        assert!(p.contains("shoal_tracker_scrapes_total{transport=\"udp\"} 1\n"));
        assert!(p.contains("shoal_tracker_udp_connects_total 1\n"));
        assert!(p.contains("shoal_tracker_torrents 3\n"));
        assert!(p.contains("shoal_tracker_peers{state=\"leecher\"} 5\n"));
        // Every sample line has a TYPE line for its name.
        for line in p.lines().filter(|l| !l.starts_with('#')) {
            let name = line.split(['{', ' ']).next().unwrap();
            assert!(p.contains(&format!("# TYPE {name} ")), "{name}");
        }
        let h = s.html(&t);
        assert!(h.contains("<td>peers</td><td>7</td>"));
        assert!(h.contains("<td>leechers</td><td>5</td>"));
    }
}
