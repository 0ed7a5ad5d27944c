use super::*;
use crate::clock::EPOCH_OFFSET;
use crate::ratelimit::RateConfig;
use crate::swarm::SwarmConfig;
use shoal_tracker::http_url::{announce_url, scrape_request_url};
use shoal_tracker::{
    parse_announce_reply, parse_scrape_reply, AnnounceRequest, Event, ReplyError, ReplyLimits,
    ScrapeStats,
};

const T0: u64 = EPOCH_OFFSET as u64 * 1000;

fn tracker(rate: RateConfig) -> HttpTracker {
    HttpTracker::new(
        Arc::new(Swarms::new(SwarmConfig::default(), 1)),
        Arc::new(RateLimiter::new(rate)),
        Arc::new(Stats::default()),
    )
}

fn target(r: &AnnounceRequest) -> String {
    let u = announce_url("http://t/announce", r, None).unwrap();
    format!("{}?{}", u.path(), u.query().unwrap())
}

fn req(id: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
    let mut r = AnnounceRequest::new([0x42; 20], [id; 20], port, left);
    r.event = event;
    r
}

fn get(t: &HttpTracker, from: &str, target: &str) -> HttpAnswer {
    t.respond(T0, from.parse().unwrap(), "GET", target)
}

#[test]
fn announces_over_both_families_and_scrape() {
    let t = tracker(RateConfig::default());
    let a = get(
        &t,
        "[2001:db8::1]:999",
        &target(&req(1, 1111, 0, Event::Started)),
    );
    let r = parse_announce_reply(&a.body, &ReplyLimits::default()).unwrap();
    assert_eq!(r.external_ip, Some("2001:db8::1".parse().unwrap()));
    assert_eq!((r.complete, r.incomplete), (Some(1), Some(0)));
    let a = get(
        &t,
        "[::ffff:10.0.0.2]:999",
        &target(&req(2, 2222, 5, Event::Started)),
    );
    // Canonical bencode (sorted keys), so any strict decoder reads it.
    let v = shoal_bencode::decode(&a.body, &shoal_bencode::Limits::default()).unwrap();
    assert_eq!(shoal_bencode::encode(&v), a.body);
    let r = parse_announce_reply(&a.body, &ReplyLimits::default()).unwrap();
    assert_eq!(r.external_ip, Some("10.0.0.2".parse().unwrap()));
    assert_eq!(r.peers, vec!["[2001:db8::1]:1111".parse().unwrap()]);
    assert_eq!(r.interval, SwarmConfig::default().interval);
    assert_eq!(r.min_interval, Some(SwarmConfig::default().min_interval));
    // Non-compact: a list of dicts.
    let mut nc = req(3, 3333, 5, Event::None);
    nc.compact = false;
    let a = get(
        &t,
        "10.0.0.3:1",
        &target(&nc).replace("compact=1", "compact=0"),
    );
    let r = parse_announce_reply(&a.body, &ReplyLimits::default()).unwrap();
    let mut peers = r.peers.clone();
    peers.sort();
    assert_eq!(
        peers,
        vec![
            "10.0.0.2:2222".parse().unwrap(),
            "[2001:db8::1]:1111".parse().unwrap()
        ]
    );
    get(
        &t,
        "10.0.0.2:1",
        &target(&req(2, 2222, 0, Event::Completed)),
    );
    let u = scrape_request_url(
        "http://t/announce",
        &[
            shoal_base::InfoHash([0x42; 20]),
            shoal_base::InfoHash([0x43; 20]),
        ],
    )
    .unwrap();
    let a = get(
        &t,
        "10.0.0.9:1",
        &format!("{}?{}", u.path(), u.query().unwrap()),
    );
    let s = parse_scrape_reply(&a.body, &ReplyLimits::default()).unwrap();
    assert_eq!(
        s.files,
        vec![(
            shoal_base::InfoHash([0x42; 20]),
            ScrapeStats {
                complete: 2,
                downloaded: 1,
                incomplete: 1
            }
        )]
    );
}

#[test]
fn failures_are_bencoded_reasons() {
    let t = tracker(RateConfig {
        per_second: 1.0,
        burst: 3.0,
        max_clients: 10,
    });
    let fail = |a: HttpAnswer| match parse_announce_reply(&a.body, &ReplyLimits::default()) {
        Err(ReplyError::Failure { reason }) => reason,
        r => panic!("expected a failure, got {r:?}"),
    };
    assert_eq!(
        fail(get(&t, "10.0.0.1:1", "/announce?port=1")),
        "missing parameter info_hash"
    );
    // A request that does not parse costs no token; a full scrape costs one.
    assert_eq!(
        fail(get(&t, "10.0.0.1:1", "/scrape")),
        "full scrape not supported"
    );
    let ok_target = target(&req(1, 1, 0, Event::None));
    assert!(parse_announce_reply(
        &get(&t, "10.0.0.1:1", &ok_target).body,
        &ReplyLimits::default()
    )
    .is_ok());
    assert!(parse_announce_reply(
        &get(&t, "10.0.0.1:1", &ok_target).body,
        &ReplyLimits::default()
    )
    .is_ok());
    assert_eq!(
        fail(get(&t, "10.0.0.1:1", &ok_target)),
        "too many requests, slow down"
    );
    assert_eq!(get(&t, "10.0.0.1:1", "/favicon.ico").status, 404);
    assert_eq!(
        t.respond(T0, "10.0.0.1:1".parse().unwrap(), "POST", "/announce")
            .status,
        405
    );
    t.swarms
        .set_allow_list(Some(crate::allow::AllowList::from_hashes([[1; 20]])));
    assert_eq!(
        fail(get(&t, "10.0.0.2:1", &ok_target)),
        "torrent not tracked here"
    );
}

#[test]
fn stats_page_and_metrics() {
    let t = tracker(RateConfig::default());
    get(&t, "10.0.0.1:1", &target(&req(1, 1, 0, Event::None)));
    let page = get(&t, "10.0.0.1:1", "/");
    assert_eq!(page.content_type, "text/html; charset=utf-8");
    let html = String::from_utf8(page.body).unwrap();
    assert!(html.contains("<td>torrents</td><td>1</td>"), "{html}");
    assert_eq!(get(&t, "10.0.0.1:1", "/stats").status, 200);
    let m = String::from_utf8(get(&t, "10.0.0.1:1", "/metrics").body).unwrap();
    assert!(
        m.contains("shoal_tracker_announces_total{transport=\"http\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("shoal_tracker_peers{state=\"seeder\"} 1\n"),
        "{m}"
    );
}
