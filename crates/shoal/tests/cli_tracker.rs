//! `shoal tracker` as a process on loopback, driven by small raw clients
//! (HTTP GET and BEP 15 datagrams): the state file survives a restart
//! (SIGTERM saves it), a corrupt state file is a clear error, the allow list
//! is re-read on SIGHUP, and the statistics page and `/metrics` answer.
mod interop_util;
mod tracker_util;

use interop_util::*;
use shoal_tracker::http_url::announce_url;
use shoal_tracker::udp_codec::{Request, Response};
use shoal_tracker::{AnnounceRequest, Event, ScrapeStats};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tracker_util::*;

fn req(h: u8, id: u8, port: u16, left: u64, event: Event) -> AnnounceRequest {
    let mut r = AnnounceRequest::new([h; 20], [id; 20], port, left);
    r.event = event;
    r
}

fn signal(p: &Proc, sig: &str) {
    Command::new("kill")
        .args([sig, &p.child.id().to_string()])
        .status()
        .expect("kill");
}

#[test]
fn state_survives_a_restart_and_corruption_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("tracker.state");
    let state_s = state.to_str().unwrap();
    let mut t = start_tracker(dir.path(), "tracker1", &["--state", state_s]);
    http_announce(&t, &req(1, 1, 1001, 0, Event::Started));
    http_announce(&t, &req(1, 2, 1002, 5, Event::Started));
    http_announce(&t, &req(1, 2, 1002, 0, Event::Completed));
    match udp_exchange(t.udp, |cid| Request::Announce {
        connection_id: cid,
        transaction_id: 5,
        request: req(2, 3, 1003, 7, Event::Started),
    }) {
        Response::Announce { leechers: 1, .. } => {}
        r => panic!("udp announce: {r:?}"),
    }
    let before = (
        http_scrape(&t, &shoal_base::InfoHash([1; 20])),
        udp_scrape(&t, &shoal_base::InfoHash([2; 20])),
    );
    assert_eq!(
        before.0,
        Some(ScrapeStats {
            complete: 2,
            downloaded: 1,
            incomplete: 0
        })
    );
    signal(&t.proc, "-TERM");
    let st = t.proc.wait(Duration::from_secs(20));
    assert!(st.success(), "{}", t.proc.logs());
    assert!(t.proc.err().contains("state saved"), "{}", t.proc.logs());
    assert!(!dir.path().join("tracker.state.tmp").exists());

    let t2 = start_tracker(dir.path(), "tracker2", &["--state", state_s]);
    assert!(
        t2.proc.err().contains("restored 2 torrents, 3 peers"),
        "{}",
        t2.proc.logs()
    );
    assert_eq!(
        (
            http_scrape(&t2, &shoal_base::InfoHash([1; 20])),
            udp_scrape(&t2, &shoal_base::InfoHash([2; 20]))
        ),
        before
    );
    // The restored peers are handed out.
    let r = http_announce(&t2, &req(1, 9, 1009, 5, Event::Started));
    let mut peers = r.peers.clone();
    peers.sort();
    assert_eq!(
        peers,
        vec![
            "127.0.0.1:1001".parse::<SocketAddr>().unwrap(),
            "127.0.0.1:1002".parse().unwrap()
        ]
    );
    drop(t2);

    // One flipped bit: the tracker refuses to start, and says why.
    let mut bytes = std::fs::read(&state).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(&state, &bytes).unwrap();
    let out = Command::new(shoal_bin())
        .args(["tracker", "--http", "127.0.0.1:0", "--state", state_s])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("corrupt") && err.contains("tracker.state"),
        "{err}"
    );
}

#[test]
fn allow_list_is_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let allow = dir.path().join("allow");
    std::fs::write(&allow, format!("# test\n{}\n", "01".repeat(20))).unwrap();
    let t = start_tracker(dir.path(), "tracker", &["--allow", allow.to_str().unwrap()]);
    assert_eq!(
        http_announce(&t, &req(1, 1, 1, 0, Event::None)).complete,
        Some(1)
    );
    let refused = |t: &Tracker| {
        let u = announce_url(
            &format!("http://{}/announce", t.http),
            &req(2, 1, 1, 0, Event::None),
            None,
        )
        .unwrap();
        String::from_utf8_lossy(&http_get(t.http, &target_of(u.path(), u.query())))
            .contains("not tracked")
    };
    assert!(refused(&t));
    match udp_exchange(t.udp, |cid| Request::Announce {
        connection_id: cid,
        transaction_id: 5,
        request: req(2, 3, 1003, 7, Event::Started),
    }) {
        Response::Error { message, .. } => assert!(message.contains("not tracked")),
        r => panic!("expected a refusal: {r:?}"),
    }
    std::fs::write(&allow, format!("{}\n", "02".repeat(20))).unwrap();
    signal(&t.proc, "-HUP");
    wait_for("the reload", Duration::from_secs(10), || {
        t.proc.err().contains("SIGHUP: allow list").then_some(())
    });
    assert!(!refused(&t));
    // A broken file keeps the old list.
    std::fs::write(&allow, "nonsense\n").unwrap();
    signal(&t.proc, "-HUP");
    wait_for("the failed reload", Duration::from_secs(10), || {
        t.proc
            .err()
            .contains("keeping the old allow list")
            .then_some(())
    });
    assert!(!refused(&t));
    // A bad list at start is a usage error.
    let out = Command::new(shoal_bin())
        .args([
            "tracker",
            "--http",
            "127.0.0.1:0",
            "--allow",
            allow.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1"));
}

#[test]
fn stats_page_and_metrics_count_announces() {
    let dir = tempfile::tempdir().unwrap();
    let t = start_tracker(dir.path(), "tracker", &[]);
    for i in 0..3 {
        http_announce(&t, &req(1, i, 1000 + u16::from(i), 1, Event::Started));
    }
    udp_exchange(t.udp, |cid| Request::Announce {
        connection_id: cid,
        transaction_id: 5,
        request: req(2, 3, 1003, 0, Event::Started),
    });
    let m = String::from_utf8(http_get(t.http, "/metrics")).unwrap();
    for line in [
        "shoal_tracker_announces_total{transport=\"http\"} 3",
        "shoal_tracker_announces_total{transport=\"udp\"} 1",
        "shoal_tracker_torrents 2",
        "shoal_tracker_peers{state=\"seeder\"} 1",
        "shoal_tracker_peers{state=\"leecher\"} 3",
    ] {
        assert!(m.lines().any(|l| l == line), "{line} missing in\n{m}");
    }
    let html = String::from_utf8(http_get(t.http, "/stats")).unwrap();
    assert!(html.contains("<td>torrents</td><td>2</td>"), "{html}");
    assert!(html.contains("announces/s over UDP"), "{html}");
}
