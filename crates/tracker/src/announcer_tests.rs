//! Scheduler tests with a fake clock.
use super::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn ok(interval: u32, min_interval: Option<u32>) -> AnnounceResponse {
    AnnounceResponse {
        interval,
        min_interval,
        ..Default::default()
    }
}

fn urls(list: &[&[&str]]) -> Vec<Vec<String>> {
    list.iter()
        .map(|t| t.iter().map(|s| s.to_string()).collect())
        .collect()
}

fn new(list: &[&[&str]], seed: u64, now: Instant) -> Announcer {
    Announcer::new(
        urls(list),
        AnnouncerConfig::default(),
        &mut StdRng::seed_from_u64(seed),
        now,
    )
}

#[test]
fn shuffles_once_within_tiers_and_drops_duplicates() {
    let t0 = Instant::now();
    let list: &[&[&str]] = &[&["a", "b", "c", "d", "e", "f"], &["x", "a", ""], &[]];
    let orders: std::collections::HashSet<Vec<Vec<String>>> =
        (0..20).map(|s| new(list, s, t0).tiers()).collect();
    assert!(orders.len() > 1, "shuffling depends on the rng");
    for o in &orders {
        assert_eq!(o.len(), 2);
        let mut first = o[0].clone();
        first.sort();
        assert_eq!(first, ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(o[1], ["x"]);
    }
}

#[test]
fn tries_tier_in_order_and_moves_responder_to_front() {
    let t0 = Instant::now();
    let mut a = new(&[&["a", "b", "c"]], 7, t0);
    let order = a.tiers()[0].clone();
    let j1 = a.poll_announce(t0).unwrap();
    assert_eq!((&*j1.url, j1.event), (order[0].as_str(), Event::Started));
    assert!(
        a.poll_announce(t0).is_none(),
        "one tracker per tier at a time"
    );
    a.handle_failure(j1.key, t0, "connection refused");
    let j2 = a.poll_announce(t0).unwrap();
    assert_eq!((&*j2.url, j2.event), (order[1].as_str(), Event::Started));
    a.handle_success(j2.key, t0, &ok(1800, None));
    assert_eq!(
        a.tiers()[0],
        [order[1].clone(), order[0].clone(), order[2].clone()]
    );
    // regular announces go to the responder, with no event
    assert!(a.poll_announce(t0 + secs(1799)).is_none());
    assert_eq!(a.poll_timeout(), Some(t0 + secs(1800)));
    let j3 = a.poll_announce(t0 + secs(1800)).unwrap();
    assert_eq!((j3.key, j3.event), (j2.key, Event::None));
    let st = a.status();
    assert_eq!(
        st.iter()
            .find(|s| s.key == j1.key)
            .unwrap()
            .last_error
            .as_deref(),
        Some("connection refused")
    );
}

#[test]
fn tiers_run_in_parallel_and_a_dead_tier_stalls_nothing() {
    let t0 = Instant::now();
    let mut a = new(&[&["dead"], &["good"]], 1, t0);
    let j1 = a.poll_announce(t0).unwrap();
    let j2 = a.poll_announce(t0).unwrap();
    assert_eq!((&*j1.url, &*j2.url), ("dead", "good"));
    a.handle_success(j2.key, t0, &ok(100, None));
    a.handle_failure(j1.key, t0, "timeout");
    // the dead tier backs off 15 s, 30 s, ...; the good one keeps its interval
    assert_eq!(a.poll_timeout(), Some(t0 + secs(15)));
    let j = a.poll_announce(t0 + secs(15)).unwrap();
    assert_eq!(&*j.url, "dead");
    a.handle_failure(j.key, t0 + secs(15), "timeout");
    assert_eq!(a.poll_timeout(), Some(t0 + secs(45)));
    let j = a.poll_announce(t0 + secs(45)).unwrap();
    a.handle_failure(j.key, t0 + secs(45), "timeout");
    assert_eq!(a.poll_timeout(), Some(t0 + secs(100)));
    assert_eq!(
        a.poll_announce(t0 + secs(100)).unwrap().url.as_ref(),
        "good"
    );
}

#[test]
fn intervals_are_clamped_and_min_interval_honoured() {
    let t0 = Instant::now();
    let mut a = new(&[&["t"]], 1, t0);
    let j = a.poll_announce(t0).unwrap();
    // interval 5 s is below the 60 s floor
    a.handle_success(j.key, t0, &ok(5, None));
    assert_eq!(a.poll_timeout(), Some(t0 + secs(60)));
    let j = a.poll_announce(t0 + secs(60)).unwrap();
    a.handle_success(j.key, t0 + secs(60), &ok(1800, Some(300)));
    // wanting more peers: not before min interval
    a.announce_now(t0 + secs(70));
    assert_eq!(a.poll_timeout(), Some(t0 + secs(360)));
    assert!(a.poll_announce(t0 + secs(359)).is_none());
    assert!(a.poll_announce(t0 + secs(360)).is_some());
}

#[test]
fn events_started_completed_stopped() {
    let t0 = Instant::now();
    let mut a = new(&[&["t1"], &["t2"]], 1, t0);
    let j1 = a.poll_announce(t0).unwrap();
    let j2 = a.poll_announce(t0).unwrap();
    assert_eq!((j1.event, j2.event), (Event::Started, Event::Started));
    a.handle_success(
        j1.key,
        t0,
        &AnnounceResponse {
            interval: 600,
            tracker_id: Some(b"tid".to_vec()),
            ..Default::default()
        },
    );
    // t2 has not answered yet when the download completes
    a.completed(t0 + secs(10));
    let j = a.poll_announce(t0 + secs(10)).unwrap();
    assert_eq!((j.key, j.event), (j1.key, Event::Completed));
    assert_eq!(j.tracker_id.as_deref(), Some(&b"tid"[..]));
    a.handle_success(j.key, t0 + secs(10), &ok(600, None));
    // t2's started fails; the retry is a started, never a completed
    a.handle_failure(j2.key, t0 + secs(10), "x");
    let j = a.poll_announce(t0 + secs(25)).unwrap();
    assert_eq!((j.key, j.event), (j2.key, Event::Started));
    a.handle_success(j.key, t0 + secs(25), &ok(600, None));
    let j = a.poll_announce(t0 + secs(610)).unwrap();
    assert_eq!((j.key, j.event), (j1.key, Event::None));
    // shutdown while that announce is under way
    a.stop();
    assert!(!a.is_stopped());
    let s = a.poll_announce(t0 + secs(611)).unwrap();
    assert_eq!((s.key, s.event), (j2.key, Event::Stopped));
    assert!(a.poll_announce(t0 + secs(611)).is_none(), "t1 is busy");
    a.handle_success(j.key, t0 + secs(611), &ok(600, None));
    let s1 = a.poll_announce(t0 + secs(611)).unwrap();
    assert_eq!((s1.key, s1.event), (j1.key, Event::Stopped));
    a.handle_success(s.key, t0 + secs(612), &ok(600, None));
    assert!(!a.is_stopped());
    // a failed stopped is not retried
    a.handle_failure(s1.key, t0 + secs(612), "down");
    assert!(a.is_stopped());
    assert!(a.poll_announce(t0 + secs(10_000)).is_none());
    assert_eq!(a.poll_timeout(), None);
}

#[test]
fn completed_during_started_goes_out_after_min_interval() {
    let t0 = Instant::now();
    let mut a = new(&[&["t"]], 1, t0);
    let j = a.poll_announce(t0).unwrap();
    a.completed(t0);
    a.handle_success(j.key, t0, &ok(1800, Some(30)));
    assert_eq!(a.poll_timeout(), Some(t0 + secs(30)));
    let j = a.poll_announce(t0 + secs(30)).unwrap();
    assert_eq!(j.event, Event::Completed);
    a.handle_success(j.key, t0 + secs(30), &ok(1800, Some(30)));
    assert_eq!(a.poll_timeout(), Some(t0 + secs(1830)));
    assert_eq!(a.poll_announce(t0 + secs(1830)).unwrap().event, Event::None);
}

#[test]
fn completed_then_started_failure_sends_no_completed() {
    let t0 = Instant::now();
    let mut a = new(&[&["t"]], 1, t0);
    let j = a.poll_announce(t0).unwrap();
    a.completed(t0);
    a.handle_failure(j.key, t0, "x");
    let j = a.poll_announce(t0 + secs(15)).unwrap();
    assert_eq!(j.event, Event::Started);
    a.handle_success(j.key, t0 + secs(15), &ok(1800, None));
    assert_eq!(a.poll_announce(t0 + secs(1815)).unwrap().event, Event::None);
}

#[test]
fn stop_before_any_started_is_immediate() {
    let t0 = Instant::now();
    let mut a = new(&[&["t"]], 1, t0);
    let j = a.poll_announce(t0).unwrap();
    a.stop();
    assert!(!a.is_stopped(), "started in flight");
    a.handle_failure(j.key, t0, "x");
    assert!(a.is_stopped());
    let mut b = new(&[&["t"]], 1, t0);
    b.stop();
    assert!(b.is_stopped());
}

#[test]
fn back_off_is_capped() {
    let t0 = Instant::now();
    let cfg = AnnouncerConfig {
        retry_base: secs(10),
        retry_max: secs(35),
        ..Default::default()
    };
    let mut a = Announcer::new(urls(&[&["t"]]), cfg, &mut StdRng::seed_from_u64(1), t0);
    let mut now = t0;
    for want in [10, 20, 35, 35] {
        let j = a.poll_announce(now).unwrap();
        a.handle_failure(j.key, now, "x");
        assert_eq!(a.poll_timeout(), Some(now + secs(want)));
        now += secs(want);
    }
}

#[test]
fn tracker_count_is_bounded_and_stopped_wants_no_peers() {
    let t0 = Instant::now();
    let cfg = AnnouncerConfig {
        max_trackers: 3,
        ..Default::default()
    };
    let a = Announcer::new(
        urls(&[&["a", "b"], &["c", "d"], &["e"]]),
        cfg,
        &mut StdRng::seed_from_u64(1),
        t0,
    );
    let t = a.tiers();
    assert_eq!(t.len(), 2);
    assert_eq!(t.iter().map(Vec::len).sum::<usize>(), 3);
    let mut base = AnnounceRequest::new([0; 20], [0; 20], 1, 1);
    base.numwant = Some(80);
    let job = |event| AnnounceJob {
        key: TrackerKey(1),
        url: "u".into(),
        event,
        tracker_id: None,
    };
    assert_eq!(job(Event::Stopped).request(&base).numwant, Some(0));
    let r = job(Event::Started).request(&base);
    assert_eq!((r.numwant, r.event), (Some(80), Event::Started));
}

#[test]
fn status_keeps_what_each_tracker_said() {
    let t0 = Instant::now();
    let mut a = new(&[&["good"], &["bad"]], 1, t0);
    let j1 = a.poll_announce(t0).unwrap();
    let j2 = a.poll_announce(t0).unwrap();
    let (good, bad) = if &*j1.url == "good" {
        (j1, j2)
    } else {
        (j2, j1)
    };
    let resp = AnnounceResponse {
        interval: 1800,
        complete: Some(7),
        incomplete: Some(2),
        warning: Some("slow down".into()),
        peers: vec!["127.0.0.1:6881".parse().unwrap(); 3],
        ..Default::default()
    };
    a.handle_success(good.key, t0 + secs(1), &resp);
    a.handle_failure(bad.key, t0 + secs(2), "timed out");
    let st = a.status();
    let g = st.iter().find(|s| &*s.url == "good").unwrap();
    assert_eq!(
        (
            g.announces_ok,
            g.announces_failed,
            g.seeders,
            g.leechers,
            g.last_peers
        ),
        (1, 0, Some(7), Some(2), 3)
    );
    assert_eq!(g.warning.as_deref(), Some("slow down"));
    assert_eq!(g.last_announce, Some(t0 + secs(1)));
    assert_eq!((g.tier, g.last_error.as_deref()), (0, None));
    let b = st.iter().find(|s| &*s.url == "bad").unwrap();
    assert_eq!((b.announces_ok, b.announces_failed, b.tier), (0, 1, 1));
    assert_eq!(b.last_error.as_deref(), Some("timed out"));
    assert_eq!(b.last_announce, Some(t0 + secs(2)));
    // The next answer replaces the counts it gave and clears the warning.
    let j = a.poll_announce(t0 + secs(1801)).unwrap();
    assert_eq!(&*j.url, "good");
    a.handle_success(j.key, t0 + secs(1802), &ok(1800, None));
    let g = a.status().into_iter().find(|s| &*s.url == "good").unwrap();
    assert_eq!(
        (g.announces_ok, g.seeders, g.warning, g.last_peers),
        (2, None, None, 0)
    );
    // Trackers' URLs are one shared copy in every announcer.
    let other = new(&[&["good"]], 2, t0);
    assert!(Arc::ptr_eq(&g.url, &other.status()[0].url));
}

#[test]
fn times_are_whole_seconds_and_back_off_never_zero() {
    let t0 = Instant::now();
    let half = Duration::from_millis(500);
    let cfg = AnnouncerConfig {
        retry_base: half,
        retry_max: half,
        ..Default::default()
    };
    let mut a = Announcer::new(urls(&[&["t"]]), cfg, &mut StdRng::seed_from_u64(1), t0);
    let at = t0 + Duration::from_millis(1700);
    let j = a.poll_announce(at).unwrap();
    a.handle_failure(j.key, at, "x");
    // 1.7 s is kept as 1 s, the half-second back-off as a whole one.
    assert_eq!(a.poll_timeout(), Some(t0 + secs(2)));
    assert!(a.poll_announce(t0 + Duration::from_millis(1999)).is_none());
    assert!(a.poll_announce(t0 + secs(2)).is_some());
    assert_eq!(a.status()[0].last_announce, Some(t0 + secs(1)));
}

#[test]
fn a_tracker_is_small() {
    // One per tracker of every torrent of a daemon (thousands).
    assert!(
        std::mem::size_of::<Tracker>() <= 80,
        "{}",
        std::mem::size_of::<Tracker>()
    );
    assert!(
        std::mem::size_of::<Tier>() <= 32,
        "{}",
        std::mem::size_of::<Tier>()
    );
}

#[test]
fn status_says_when_each_tier_asks_next() {
    let t0 = Instant::now();
    let mut a = new(&[&["a", "b"], &["x"]], 3, t0);
    let next = |a: &Announcer, url: &str| {
        a.status()
            .into_iter()
            .find(|s| &*s.url == url)
            .and_then(|s| s.next_announce)
    };
    // Nothing asked yet: each tier's first tracker is due now; a tier
    // announces to one tracker, so the other has no time.
    let order = a.tiers()[0].clone();
    assert_eq!(next(&a, &order[0]), Some(t0));
    assert_eq!(next(&a, &order[1]), None);
    assert_eq!(next(&a, "x"), Some(t0));
    let j = a.poll_announce(t0).unwrap();
    assert_eq!(&*j.url, order[0].as_str());
    // Under way: no time for its tier; the other tier is still due.
    assert_eq!(next(&a, &order[0]), None);
    assert_eq!(next(&a, "x"), Some(t0));
    a.handle_success(j.key, t0 + secs(1), &ok(1800, None));
    assert_eq!(next(&a, &order[0]), Some(t0 + secs(1801)));
    assert_eq!(next(&a, &order[1]), None);
    // A failure moves the tier on to its next tracker, asked at once.
    let fail = a.poll_announce(t0 + secs(1801)).unwrap();
    assert_eq!(&*fail.url, order[0].as_str());
    a.handle_failure(fail.key, t0 + secs(1802), "timed out");
    assert_eq!(next(&a, &order[0]), None);
    assert_eq!(next(&a, &order[1]), Some(t0 + secs(1801)));
    // That one fails too: the tier waits for the first back-off to end,
    // and then asks the tracker whose back-off ends first.
    let fail = a.poll_announce(t0 + secs(1802)).unwrap();
    assert_eq!(&*fail.url, order[1].as_str());
    a.handle_failure(fail.key, t0 + secs(1803), "timed out");
    let (n0, n1) = (next(&a, &order[0]), next(&a, &order[1]));
    assert!(n1.is_none(), "{n0:?} {n1:?}");
    assert!(n0.is_some_and(|t| t > t0 + secs(1803)), "{n0:?}");
    // Stopping: nothing is scheduled any more.
    a.stop();
    assert!(a.status().iter().all(|s| s.next_announce.is_none()));
}
