//! The service's scheduling with a tracker that never answers in time and
//! one that refuses at once (no network needed beyond a closed loopback
//! port): entries come and go, stop is bounded, stale heap times are
//! skipped. Announces against real trackers: tests/loopback.rs.
use super::*;
use crate::{AnnouncerConfig, ClientConfig, Event};
use std::sync::{Arc, Mutex};

fn client() -> TrackerClient {
    TrackerClient::new(ClientConfig::default()).expect("client")
}

fn announcer(urls: &[&str]) -> Announcer {
    Announcer::new(
        urls.iter().map(|u| vec![u.to_string()]).collect(),
        AnnouncerConfig::default(),
        &mut rand::thread_rng(),
        Instant::now(),
    )
}

fn stats() -> StatsFn {
    Box::new(|| crate::AnnounceRequest::new([7; 20], [8; 20], 6881, 0))
}

/// What a sink was given: URL, event, whether it succeeded.
type Got = Arc<Mutex<Vec<(String, Event, bool)>>>;

/// Collects the outcomes a sink is given.
fn sink() -> (OutcomeSink, Got) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    (
        Box::new(move |o: AnnounceOutcome| {
            g.lock()
                .unwrap()
                .push((o.url.to_string(), o.event, o.result.is_ok()));
        }),
        got,
    )
}

/// A loopback TCP port with nothing listening: an HTTP announce fails at once.
fn closed_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/announce")
}

#[tokio::test]
async fn many_torrents_one_task_each_failure_reaches_its_own_sink() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let svc = AnnounceService::spawn(client(), Duration::from_secs(1));
        let mut regs = Vec::new();
        let mut sinks = Vec::new();
        for _ in 0..50 {
            let (s, got) = sink();
            regs.push(svc.register(announcer(&[&closed_url()]), stats(), s));
            sinks.push(got);
        }
        // Each torrent's `started` fails and reaches its own sink only.
        for got in &sinks {
            while got.lock().unwrap().is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            let g = got.lock().unwrap();
            assert_eq!(g.len(), 1, "{g:?}");
            assert_eq!(g[0].1, Event::Started);
            assert!(!g[0].2);
        }
        // Backing off (15 s): nothing more comes meanwhile.
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(sinks.iter().all(|g| g.lock().unwrap().len() == 1));
        // Each registration's status says what its own tracker did.
        for (r, got) in regs.iter().zip(&sinks) {
            let (tx, rx) = oneshot::channel();
            r.status(Box::new(move |st| {
                let _ = tx.send(st);
            }));
            let st = rx.await.expect("status answered");
            assert_eq!(st.len(), 1);
            assert_eq!(*st[0].url, got.lock().unwrap()[0].0);
            assert_eq!((st[0].announces_ok, st[0].announces_failed), (0, 1));
            assert!(st[0].last_error.is_some() && st[0].last_announce.is_some());
        }
        // Never started: stop has nothing to send and returns at once.
        for r in regs {
            r.stop().await;
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn stop_is_bounded_by_the_timeout_when_the_tracker_is_silent() {
    // A tracker that takes the connection and never answers.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", l.local_addr().unwrap());
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            conns.push(c);
        }
    });
    tokio::time::timeout(Duration::from_secs(20), async {
        let svc = AnnounceService::spawn(client(), Duration::from_millis(300));
        let (s, got) = sink();
        let reg = svc.register(announcer(&[&url]), stats(), s);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let t = Instant::now();
        reg.stop().await;
        // `started` was under way, not answered: nothing to stop, or the
        // deadline ends it; either way well within the HTTP timeout.
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert!(got.lock().unwrap().is_empty());
    })
    .await
    .expect("bounded");
    hold.abort();
}

#[tokio::test]
async fn the_service_ends_with_its_last_handle_and_registration() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let rt = tokio::runtime::Handle::current();
        let before = rt.metrics().num_alive_tasks();
        let svc = AnnounceService::spawn(client(), Duration::from_millis(300));
        let (s, got) = sink();
        let reg = svc.register(announcer(&[&closed_url()]), stats(), s);
        while got.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(rt.metrics().num_alive_tasks() > before);
        let svc2 = svc.clone();
        drop(svc);
        drop(reg);
        // A handle keeps it running.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rt.metrics().num_alive_tasks() > before);
        drop(svc2);
        while rt.metrics().num_alive_tasks() > before {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("bounded");
}

#[tokio::test]
async fn at_most_max_in_flight_announces_at_once() {
    // A tracker that takes connections and never answers: every announce
    // stays under way.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/announce", l.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let a = accepted.clone();
    let hold = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = l.accept().await {
            a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            conns.push(c);
        }
    });
    tokio::time::timeout(Duration::from_secs(20), async {
        let svc = AnnounceService::spawn(client(), Duration::from_millis(200));
        let regs: Vec<_> = (0..MAX_IN_FLIGHT + 40)
            .map(|_| svc.register(announcer(&[&url]), stats(), sink().0))
            .collect();
        let count = || accepted.load(std::sync::atomic::Ordering::SeqCst);
        while count() < MAX_IN_FLIGHT {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(count(), MAX_IN_FLIGHT, "the others wait their turn");
        // Stopping them all is bounded by the stop timeout, waiting or not.
        let t = Instant::now();
        let mut stops = JoinSet::new();
        for r in regs {
            stops.spawn(r.stop());
        }
        while stops.join_next().await.is_some() {}
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    })
    .await
    .expect("bounded");
    hold.abort();
}
