//! The drivers: a hyper HTTP/1.1 server (keep-alive, bounded connections and
//! header size and time) over [`HttpTracker`], UDP worker threads (blocking
//! sockets, one reply per request) over [`UdpTracker`], and a housekeeping
//! task (rate samples every second, expiry sweeps); an optional
//! [`HttpExtension`] answers its own routes on the HTTP port. [`TrackerServer`] starts
//! them and stops them when dropped.
use crate::clock::Clock;
use crate::extension::{ExtensionRequest, HttpExtension};
use crate::http::{HttpAnswer, HttpTracker};
use crate::ratelimit::{RateConfig, RateLimiter};
use crate::state::{save_state, StateError};
use crate::stats::Stats;
use crate::swarm::{AnnounceReply, Swarms};
use crate::udp::{Handled, UdpTracker};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// How to run the tracker.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackerConfig {
    /// Where to serve HTTP (`None`: no HTTP).
    pub http: Option<SocketAddr>,
    /// Where to serve UDP (`None`: no UDP).
    pub udp: Option<SocketAddr>,
    /// Per-IP rate limits (announces and scrapes, both transports).
    pub rate: RateConfig,
    /// UDP worker threads; 0 picks the number of CPUs.
    pub udp_threads: usize,
    /// Most HTTP connections open at once; more are closed at accept.
    pub max_http_connections: usize,
    /// Time a client has to send a request's head.
    pub http_header_timeout: Duration,
    /// Time between expiry sweeps.
    pub expire_every: Duration,
}

impl Default for TrackerConfig {
    /// No listeners, default rate limits, one UDP thread per CPU, 10 000
    /// HTTP connections, 10 s for a request head, a sweep a minute.
    fn default() -> Self {
        TrackerConfig {
            http: None,
            udp: None,
            rate: RateConfig::default(),
            udp_threads: 0,
            max_http_connections: 10_000,
            http_header_timeout: Duration::from_secs(10),
            expire_every: Duration::from_secs(60),
        }
    }
}

/// A running tracker. Its tasks and threads stop when it is dropped.
#[derive(Debug)]
pub struct TrackerServer {
    swarms: Arc<Swarms>,
    stats: Arc<Stats>,
    clock: Clock,
    http_addr: Option<SocketAddr>,
    udp_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl TrackerServer {
    /// Binds the listeners of `config` (port 0 picks a free port) and starts
    /// serving `swarms` with tracker time from `clock`. Call inside a tokio
    /// runtime.
    pub async fn start(
        config: TrackerConfig,
        swarms: Arc<Swarms>,
        clock: Clock,
    ) -> std::io::Result<TrackerServer> {
        Self::start_with(config, swarms, clock, None).await
    }

    /// [`TrackerServer::start`], with `extension` answering its own routes
    /// on the HTTP port.
    pub async fn start_with(
        config: TrackerConfig,
        swarms: Arc<Swarms>,
        clock: Clock,
        extension: Option<Arc<dyn HttpExtension>>,
    ) -> std::io::Result<TrackerServer> {
        let stats = Arc::new(Stats::default());
        let limiter = Arc::new(RateLimiter::new(config.rate));
        let mut s = TrackerServer {
            swarms: swarms.clone(),
            stats: stats.clone(),
            clock,
            http_addr: None,
            udp_addr: None,
            tasks: Vec::new(),
            threads: Vec::new(),
            stop: Arc::new(AtomicBool::new(false)),
        };
        if let Some(a) = config.udp {
            let sock = std::net::UdpSocket::bind(a)?;
            sock.set_read_timeout(Some(Duration::from_millis(200)))?;
            s.udp_addr = Some(sock.local_addr()?);
            let handler = UdpTracker::new(
                swarms.clone(),
                rand::random(),
                limiter.clone(),
                stats.clone(),
            );
            let n = match config.udp_threads {
                0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                n => n,
            };
            for i in 0..n {
                let (sock, handler, stop) = (sock.try_clone()?, handler.clone(), s.stop.clone());
                let t = std::thread::Builder::new()
                    .name(format!("tracker-udp-{i}"))
                    .spawn(move || udp_loop(sock, handler, clock, stop))?;
                s.threads.push(t);
            }
        }
        if let Some(a) = config.http {
            let l = TcpListener::bind(a).await?;
            s.http_addr = Some(l.local_addr()?);
            let handler = HttpTracker::new(swarms.clone(), limiter.clone(), stats.clone());
            s.tasks.push(tokio::spawn(http_loop(
                l,
                handler,
                extension,
                clock,
                config.clone(),
            )));
        }
        s.tasks.push(tokio::spawn(housekeeping(
            swarms,
            stats,
            clock,
            config.expire_every,
        )));
        Ok(s)
    }

    /// The HTTP address served, if any.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// The UDP address served, if any.
    pub fn udp_addr(&self) -> Option<SocketAddr> {
        self.udp_addr
    }

    /// The HTTP announce URL (`http://ADDR/announce`), if HTTP is served.
    pub fn http_url(&self) -> Option<String> {
        self.http_addr.map(|a| format!("http://{a}/announce"))
    }

    /// The UDP announce URL (`udp://ADDR/announce`), if UDP is served.
    pub fn udp_url(&self) -> Option<String> {
        self.udp_addr.map(|a| format!("udp://{a}/announce"))
    }

    /// The swarm table served.
    pub fn swarms(&self) -> &Arc<Swarms> {
        &self.swarms
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Tracker time now (seconds).
    pub fn now(&self) -> u32 {
        self.clock.now_secs()
    }

    /// Saves the table to `path` atomically (blocking; see [`save_state`]).
    pub fn save_state(&self, path: &Path) -> Result<usize, StateError> {
        save_state(&self.swarms, self.now(), path)
    }

    /// Stops serving and waits for the UDP threads (at most ~200 ms).
    pub fn shutdown(mut self) {
        self.stop_all();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    fn stop_all(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for TrackerServer {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn udp_loop(sock: std::net::UdpSocket, handler: UdpTracker, clock: Clock, stop: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 4096];
    let mut out = Vec::with_capacity(4096);
    let mut scratch = AnnounceReply::default();
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let packet = buf.get(..n).unwrap_or(&[]);
        if handler.handle(clock.now_ms(), from, packet, &mut scratch, &mut out) == Handled::Reply {
            let _ = sock.send_to(&out, from);
        }
    }
}

async fn http_loop(
    listener: TcpListener,
    handler: HttpTracker,
    extension: Option<Arc<dyn HttpExtension>>,
    clock: Clock,
    config: TrackerConfig,
) {
    let permits = Arc::new(Semaphore::new(config.max_http_connections));
    // Dropping the set (when this task is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, remote)) => {
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        tracing::debug!(%remote, "too many HTTP connections; closing");
                        continue;
                    };
                    let handler = handler.clone();
                    let extension = extension.clone();
                    let timeout = config.http_header_timeout;
                    conns.spawn(async move {
                        serve_connection(stream, remote, handler, extension, clock, timeout).await;
                        drop(permit);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

fn response(a: HttpAnswer) -> Result<hyper::Response<Full<Bytes>>, hyper::http::Error> {
    hyper::Response::builder()
        .status(a.status)
        .header(hyper::header::CONTENT_TYPE, a.content_type)
        .body(Full::new(Bytes::from(a.body)))
}

/// Reads the body (at most `max` bytes) and hands the request to `ext`.
async fn extension_answer(
    ext: Arc<dyn HttpExtension>,
    remote: SocketAddr,
    req: hyper::Request<Incoming>,
) -> HttpAnswer {
    let method = req.method().as_str().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let max = ext.max_body();
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return HttpAnswer {
                status: 413,
                content_type: "text/plain",
                body: format!("body larger than {max} bytes, or cut off\n").into_bytes(),
            }
        }
    };
    ext.respond(ExtensionRequest {
        remote,
        method,
        target,
        body,
    })
    .await
}

async fn serve_connection(
    stream: TcpStream,
    remote: SocketAddr,
    handler: HttpTracker,
    extension: Option<Arc<dyn HttpExtension>>,
    clock: Clock,
    header_timeout: Duration,
) {
    let _ = stream.set_nodelay(true);
    let svc = service_fn(move |req: hyper::Request<Incoming>| {
        let path = req.uri().path();
        let ext = extension.clone().filter(|e| e.serves(path));
        let extra_metrics = (path == "/metrics")
            .then(|| extension.as_ref().map(|e| e.metrics()))
            .flatten();
        let handler = handler.clone();
        async move {
            let mut a = match ext {
                Some(ext) => extension_answer(ext, remote, req).await,
                None => {
                    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
                    handler.respond(clock.now_ms(), remote, req.method().as_str(), target)
                }
            };
            if let Some(m) = extra_metrics.filter(|_| a.status == 200) {
                a.body.extend_from_slice(m.as_bytes());
            }
            response(a)
        }
    });
    let r = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(16 * 1024)
        .serve_connection(TokioIo::new(stream), svc)
        .await;
    if let Err(e) = r {
        tracing::trace!(%remote, error = %e, "HTTP connection ended");
    }
}

async fn housekeeping(
    swarms: Arc<Swarms>,
    stats: Arc<Stats>,
    clock: Clock,
    expire_every: Duration,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_expire = clock.now_ms();
    loop {
        tick.tick().await;
        let now = clock.now_ms();
        stats.tick(now);
        if now.saturating_sub(last_expire) >= expire_every.as_millis() as u64 {
            last_expire = now;
            let s = swarms.clone();
            let secs = crate::clock::secs(now);
            if let Ok(e) = tokio::task::spawn_blocking(move || s.expire(secs)).await {
                if e.peers > 0 || e.torrents > 0 {
                    tracing::debug!(peers = e.peers, torrents = e.torrents, "expired");
                }
            }
        }
    }
}
