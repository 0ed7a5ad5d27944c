//! The tokio driver: one task owns the UDP socket's receive side and feeds
//! the sans-IO [`Endpoint`]; [`UtpSocket`] (connect, accept) and
//! [`UtpStream`] (`AsyncRead + AsyncWrite`) are handles on the same state.
//!
//! As quinn's `ConnectionDriver`, the endpoint sits behind one short-held
//! mutex: streams copy bytes in and out under it and wake the driver task
//! through a [`Notify`]; the driver receives a batch of datagrams, handles
//! them, fires timers, sends what the endpoint has to send, and wakes the
//! streams whose state changed. Nothing awaits while holding the lock.
//!
//! Datagrams move in batches where the platform allows ([`batch`]: `recvmmsg`,
//! UDP GSO and GRO through `quinn-udp`), one per system call elsewhere.
//!
//! The socket can be shared: datagrams that are not uTP ([`crate::is_utp`]:
//! DHT messages, UDP tracker answers) go to a bounded channel
//! ([`UtpSocket::bind_shared`]) instead, and [`UtpSocket::udp`] lends the
//! socket for sending, so one UDP port serves uTP, the DHT and the UDP
//! tracker client.
mod batch;
mod stream;

pub use stream::UtpStream;

use crate::config::EndpointConfig;
use crate::connection::{Event, State as ConnState};
use crate::endpoint::{ConnectionHandle, Endpoint, Transmit};
use crate::error::{ConnectError, ConnectionError};
use bytes::Bytes;
use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// Datagrams taken from the endpoint per send batch (under the lock; sent
/// after it is released).
const SEND_BATCH: usize = 128;
/// Receive calls per wake-up, at most, before what the endpoint has to send
/// (ACKs) goes out.
const RECV_CALLS: usize = 8;
/// How long the driver keeps closing connections after every handle is gone.
const DRAIN: Duration = Duration::from_secs(2);

/// A datagram that is not uTP, for another user of the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender.
    pub from: SocketAddr,
    /// Contents.
    pub data: Bytes,
}

/// Settings of a [`UtpSocket`].
#[derive(Debug, Clone)]
pub struct UtpSocketConfig {
    /// The endpoint's settings.
    pub endpoint: EndpointConfig,
    /// Seed of the endpoint's randomness (`None`: from the OS).
    pub seed: Option<u64>,
    /// Non-uTP datagrams queued for the other user at most; more are dropped.
    pub other_queue: usize,
    /// Send MTU probes with the don't-fragment bit (Linux).
    pub dont_fragment_probes: bool,
    /// Kernel receive buffer of the socket, bytes (capped by the system's
    /// maximum); a burst larger than it is dropped before uTP sees it.
    pub socket_recv_buffer: usize,
    /// Kernel send buffer of the socket, bytes.
    pub socket_send_buffer: usize,
    /// Batch datagrams into fewer system calls where the platform allows
    /// (`recvmmsg`, UDP GSO/GRO on Linux); `false`: one call a datagram.
    pub batch_io: bool,
    /// Most datagrams sent to one peer in one system call with UDP GSO
    /// (Linux, with `batch_io`); 1 turns GSO off. Only peers that said in
    /// the handshake that they read coalesced datagrams (UDP GRO; shoal
    /// does, [`crate::packet::BIT_COALESCED_READS`]) get such runs: a GSO
    /// run reaches the peer's socket all at once, and a peer that reads one
    /// datagram per call (libtorrent) drops part of it on loopback and its
    /// download halves.
    pub gso_segments: usize,
}

impl Default for UtpSocketConfig {
    fn default() -> Self {
        UtpSocketConfig {
            endpoint: EndpointConfig::default(),
            seed: None,
            other_queue: 1024,
            dont_fragment_probes: true,
            socket_recv_buffer: 4 << 20,
            socket_send_buffer: 4 << 20,
            batch_io: true,
            gso_segments: 64,
        }
    }
}

#[derive(Default)]
struct ConnWakers {
    read: Option<Waker>,
    write: Option<Waker>,
    connect: Option<Waker>,
}

struct Inner {
    endpoint: Endpoint,
    wakers: HashMap<ConnectionHandle, ConnWakers>,
    accept: Option<Waker>,
    /// Live `UtpSocket` handles.
    sockets: usize,
    /// Live streams.
    streams: usize,
    /// The driver task ended.
    stopped: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    notify: Notify,
    socket: Arc<UdpSocket>,
    local_addr: SocketAddr,
    start: Instant,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A uTP endpoint on a UDP socket: connect and accept [`UtpStream`]s.
/// Cheap to clone; the driver task stops once every clone and every stream
/// is dropped.
pub struct UtpSocket {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for UtpSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UtpSocket")
            .field("local_addr", &self.shared.local_addr)
            .finish_non_exhaustive()
    }
}

impl Clone for UtpSocket {
    fn clone(&self) -> Self {
        self.shared.lock().sockets += 1;
        UtpSocket {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for UtpSocket {
    fn drop(&mut self) {
        self.shared.lock().sockets -= 1;
        self.shared.notify.notify_one();
    }
}

fn connection_io_error(e: ConnectionError) -> io::Error {
    let kind = match e {
        ConnectionError::Reset => io::ErrorKind::ConnectionReset,
        ConnectionError::ConnectTimedOut | ConnectionError::TimedOut => io::ErrorKind::TimedOut,
        ConnectionError::Aborted => io::ErrorKind::ConnectionAborted,
        _ => io::ErrorKind::NotConnected,
    };
    io::Error::new(kind, e)
}

impl UtpSocket {
    /// Binds `addr` for uTP only: other datagrams are dropped.
    pub async fn bind(addr: SocketAddr, cfg: UtpSocketConfig) -> io::Result<UtpSocket> {
        let socket = UdpSocket::bind(addr).await?;
        Ok(Self::start(socket, cfg, None))
    }

    /// Binds `addr` and hands every datagram that is not uTP to the returned
    /// receiver (bounded by [`UtpSocketConfig::other_queue`]; dropped when
    /// full). Send the other protocol's datagrams through [`UtpSocket::udp`].
    pub async fn bind_shared(
        addr: SocketAddr,
        cfg: UtpSocketConfig,
    ) -> io::Result<(UtpSocket, mpsc::Receiver<Datagram>)> {
        let socket = UdpSocket::bind(addr).await?;
        let (tx, rx) = mpsc::channel(cfg.other_queue.max(1));
        Ok((Self::start(socket, cfg, Some(tx)), rx))
    }

    /// Runs uTP on a bound socket (non-uTP datagrams to `other`, if given).
    pub fn from_socket(
        socket: UdpSocket,
        cfg: UtpSocketConfig,
        other: Option<mpsc::Sender<Datagram>>,
    ) -> UtpSocket {
        Self::start(socket, cfg, other)
    }

    fn start(
        socket: UdpSocket,
        cfg: UtpSocketConfig,
        other: Option<mpsc::Sender<Datagram>>,
    ) -> UtpSocket {
        let io = batch::UdpIo::new(&socket, cfg.batch_io, cfg.gso_segments);
        let mut cfg = cfg;
        cfg.endpoint.connection.coalesced_reads = io.reads_coalesced();
        let sock = socket2::SockRef::from(&socket);
        if let Err(e) = sock.set_recv_buffer_size(cfg.socket_recv_buffer) {
            tracing::debug!(error = %e, "utp: cannot size the receive buffer");
        }
        if let Err(e) = sock.set_send_buffer_size(cfg.socket_send_buffer) {
            tracing::debug!(error = %e, "utp: cannot size the send buffer");
        }
        let local_addr = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let seed = cfg.seed.unwrap_or_else(rand::random);
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                endpoint: Endpoint::new(cfg.endpoint.clone(), seed),
                wakers: HashMap::new(),
                accept: None,
                sockets: 1,
                streams: 0,
                stopped: false,
            }),
            notify: Notify::new(),
            socket: Arc::new(socket),
            local_addr,
            start: Instant::now(),
        });
        let driver = Driver {
            shared: shared.clone(),
            other,
            dont_fragment: cfg.dont_fragment_probes,
            io,
        };
        tokio::spawn(driver.run());
        UtpSocket { shared }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The UDP socket, for sending another protocol's datagrams from it.
    pub fn udp(&self) -> Arc<UdpSocket> {
        self.shared.socket.clone()
    }

    /// Counters of the endpoint.
    pub fn stats(&self) -> crate::EndpointStats {
        self.shared.lock().endpoint.stats()
    }

    /// Opens a connection; resolves once the peer answered (or connecting
    /// failed: [`io::ErrorKind::TimedOut`], `ConnectionReset`).
    pub async fn connect(&self, addr: SocketAddr) -> io::Result<UtpStream> {
        let h = {
            let mut g = self.shared.lock();
            if g.stopped {
                return Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "utp: driver stopped",
                ));
            }
            let now = self.shared.now();
            let h = g.endpoint.connect(now, addr).map_err(|e| match e {
                ConnectError::TooManyConnections(_) => io::Error::other(e),
                _ => io::Error::new(io::ErrorKind::AddrNotAvailable, e),
            })?;
            g.wakers.insert(h, ConnWakers::default());
            g.streams += 1;
            h
        };
        self.shared.notify.notify_one();
        // The stream owns the connection from here: dropping this future
        // releases it.
        let stream = UtpStream::new(self.shared.clone(), h, addr);
        poll_fn(|cx| {
            let mut g = self.shared.lock();
            let g = &mut *g;
            let Some(c) = g.endpoint.connection(h) else {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "utp: gone",
                )));
            };
            match c.state() {
                ConnState::Connected => Poll::Ready(Ok(())),
                ConnState::Closed => Poll::Ready(Err(connection_io_error(
                    c.error().unwrap_or(ConnectionError::EndpointClosed),
                ))),
                ConnState::SynSent if g.stopped => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "utp: driver stopped",
                ))),
                ConnState::SynSent => {
                    g.wakers.entry(h).or_default().connect = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await?;
        Ok(stream)
    }

    /// The next incoming connection and its peer's address.
    pub async fn accept(&self) -> io::Result<(UtpStream, SocketAddr)> {
        poll_fn(|cx| {
            let mut g = self.shared.lock();
            if let Some(h) = g.endpoint.accept() {
                let peer = g
                    .endpoint
                    .connection(h)
                    .map(|c| c.remote())
                    .unwrap_or(self.shared.local_addr);
                g.wakers.insert(h, ConnWakers::default());
                g.streams += 1;
                drop(g);
                return Poll::Ready(Ok((UtpStream::new(self.shared.clone(), h, peer), peer)));
            }
            if g.stopped {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "utp: driver stopped",
                )));
            }
            g.accept = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

struct Driver {
    shared: Arc<Shared>,
    other: Option<mpsc::Sender<Datagram>>,
    dont_fragment: bool,
    io: batch::UdpIo,
}

impl Driver {
    async fn run(mut self) {
        let mut bufs = self.io.recv_bufs();
        let mut out = Vec::with_capacity(SEND_BATCH * 1500);
        let mut transmits: Vec<(usize, Transmit)> = Vec::with_capacity(SEND_BATCH);
        let mut items = Vec::with_capacity(SEND_BATCH);
        let mut orphaned_since: Option<Instant> = None;
        let socket = self.shared.socket.clone();
        loop {
            let deadline = {
                let g = self.shared.lock();
                if g.sockets == 0 && g.streams == 0 {
                    let since = *orphaned_since.get_or_insert_with(Instant::now);
                    if g.endpoint.is_empty() || since.elapsed() >= DRAIN {
                        break;
                    }
                }
                g.endpoint
                    .poll_timeout()
                    .map(|t| self.shared.start + t)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600))
            };
            let deadline = match orphaned_since {
                Some(s) => deadline.min(s + DRAIN),
                None => deadline,
            };
            tokio::select! {
                r = socket.readable() => {
                    if r.is_err() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    // Read until the socket is drained (bounded), then
                    // send: one ACK per drained burst, as libtorrent acks.
                    // (Acking every recvmmsg batch acked every other packet
                    // of a sender slower than us, and libtorrent's uTP
                    // sender slowed down by a half under that ACK load.)
                    for _ in 0..RECV_CALLS {
                        self.io.recv(&socket, &mut bufs);
                        if bufs.received.is_empty() {
                            break;
                        }
                        self.handle_batch(&bufs);
                    }
                }
                _ = self.shared.notify.notified() => {}
                _ = tokio::time::sleep_until(deadline) => {
                    let now = self.shared.now();
                    self.shared.lock().endpoint.handle_timeout(now);
                }
            }
            self.flush(&socket, &mut out, &mut transmits, &mut items)
                .await;
        }
        let mut g = self.shared.lock();
        g.stopped = true;
        let now = self.shared.now();
        g.endpoint.close_all(now);
        wake_all(&mut g);
    }

    fn handle_batch(&mut self, bufs: &batch::RecvBufs) {
        if bufs.received.is_empty() {
            return;
        }
        let now = self.shared.now();
        let mut g = self.shared.lock();
        for r in &bufs.received {
            let data = bufs.get(r);
            if crate::packet::is_utp(data) {
                g.endpoint.handle(now, r.from, data);
            } else if let Some(tx) = &self.other {
                if tx
                    .try_send(Datagram {
                        from: r.from,
                        data: Bytes::copy_from_slice(data),
                    })
                    .is_err()
                    && tx.is_closed()
                {
                    self.other = None;
                }
            }
        }
    }

    /// Sends everything the endpoint has to send and wakes the streams.
    async fn flush(
        &self,
        socket: &UdpSocket,
        out: &mut Vec<u8>,
        transmits: &mut Vec<(usize, Transmit)>,
        items: &mut Vec<(usize, usize, SocketAddr, bool)>,
    ) {
        loop {
            out.clear();
            transmits.clear();
            {
                let now = self.shared.now();
                let mut g = self.shared.lock();
                while transmits.len() < SEND_BATCH {
                    let at = out.len();
                    match g.endpoint.poll_transmit(now, out) {
                        Some(t) => transmits.push((at, t)),
                        None => break,
                    }
                }
                deliver_events(&mut g);
            }
            if transmits.is_empty() {
                return;
            }
            // MTU probes go alone (the don't-fragment bit is set around
            // them); runs of the others between them go in batches.
            let mut rest = &transmits[..];
            while !rest.is_empty() {
                let plain = rest
                    .iter()
                    .position(|(_, t)| t.dont_fragment && self.dont_fragment)
                    .unwrap_or(rest.len());
                self.send_runs(socket, out, &rest[..plain], items).await;
                if let Some((at, t)) = rest.get(plain) {
                    self.send(socket, t, &out[*at..*at + t.len]).await;
                    rest = &rest[plain + 1..];
                } else {
                    rest = &[];
                }
            }
        }
    }

    /// Sends datagrams that need no don't-fragment bit, as few calls as
    /// the platform allows ([`batch::group_runs`]).
    async fn send_runs(
        &self,
        socket: &UdpSocket,
        out: &[u8],
        transmits: &[(usize, Transmit)],
        items: &mut Vec<(usize, usize, SocketAddr, bool)>,
    ) {
        items.clear();
        items.extend(
            transmits
                .iter()
                .map(|(at, t)| (*at, t.len, t.to, t.coalesce)),
        );
        let mut runs = Vec::new();
        batch::group_runs(items, |size| self.io.max_send_bytes(size), |r| runs.push(r));
        for r in runs {
            let (start, size, to, _) = items[r.start];
            let (last, last_len, _, _) = items[r.end - 1];
            let data = &out[start..last + last_len];
            if let Err(e) = self.io.send(socket, to, data, size).await {
                tracing::debug!(%to, error = %e, "utp: send failed");
            }
        }
    }

    async fn send(&self, socket: &UdpSocket, t: &Transmit, data: &[u8]) {
        let df = t.dont_fragment && self.dont_fragment;
        if df {
            set_dont_fragment(socket, t.to, true);
        }
        let r = loop {
            match socket.try_send_to(data, t.to) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if socket.writable().await.is_err() {
                        break Err(e);
                    }
                }
                r => break r,
            }
        };
        if df {
            set_dont_fragment(socket, t.to, false);
        }
        if let Err(e) = r {
            if df && is_message_too_big(&e) {
                let now = self.shared.now();
                self.shared
                    .lock()
                    .endpoint
                    .datagram_too_big(t.connection, now, t.len);
                let _ = socket.send_to(data, t.to).await;
            } else {
                tracing::debug!(to = %t.to, error = %e, "utp: send failed");
            }
        }
    }
}

/// Wakes the tasks waiting on what changed.
fn deliver_events(g: &mut Inner) {
    while let Some((h, ev)) = g.endpoint.poll_event() {
        let Some(w) = g.wakers.get_mut(&h) else {
            continue;
        };
        let wake = |w: &mut Option<Waker>| {
            if let Some(w) = w.take() {
                w.wake();
            }
        };
        match ev {
            Event::Connected => wake(&mut w.connect),
            Event::Readable => wake(&mut w.read),
            Event::Writable => wake(&mut w.write),
            Event::Closed => {
                wake(&mut w.connect);
                wake(&mut w.read);
                wake(&mut w.write);
            }
        }
    }
    if g.endpoint.has_incoming() {
        if let Some(w) = g.accept.take() {
            w.wake();
        }
    }
}

fn wake_all(g: &mut Inner) {
    for w in g.wakers.values_mut() {
        for w in [w.read.take(), w.write.take(), w.connect.take()]
            .into_iter()
            .flatten()
        {
            w.wake();
        }
    }
    if let Some(w) = g.accept.take() {
        w.wake();
    }
}

fn is_message_too_big(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        e.raw_os_error() == Some(libc::EMSGSIZE)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = e;
        false
    }
}

/// Sets or clears the don't-fragment bit (Linux `IP_MTU_DISCOVER`).
fn set_dont_fragment(socket: &UdpSocket, to: SocketAddr, on: bool) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = socket.as_raw_fd();
        let (level, name, value) = if to.is_ipv6() {
            let v = if on {
                libc::IPV6_PMTUDISC_PROBE
            } else {
                libc::IPV6_PMTUDISC_DONT
            };
            (libc::IPPROTO_IPV6, libc::IPV6_MTU_DISCOVER, v)
        } else {
            let v = if on {
                libc::IP_PMTUDISC_PROBE
            } else {
                libc::IP_PMTUDISC_DONT
            };
            (libc::IPPROTO_IP, libc::IP_MTU_DISCOVER, v)
        };
        // SAFETY: `fd` is a live UDP socket owned by `socket`; the option
        // value is a c_int that outlives the call.
        unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                &value as *const libc::c_int as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (socket, to, on);
    }
}
