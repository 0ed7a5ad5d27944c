//! [`Endpoint`]: every uTP connection of one UDP socket, sans-IO.
//!
//! The driver feeds it datagrams ([`Endpoint::handle`]) and timer expiries
//! ([`Endpoint::handle_timeout`]) with the current time, and drains datagrams
//! to send ([`Endpoint::poll_transmit`]), application events
//! ([`Endpoint::poll_event`]), new incoming connections
//! ([`Endpoint::accept`]) and the next deadline ([`Endpoint::poll_timeout`]).
//! The application works on connections through their
//! [`ConnectionHandle`]s. Time is a [`Duration`] since an origin the driver
//! picks; randomness (connection ids, initial sequence numbers, the clock
//! offset on the wire) comes from the seed.
//!
//! Datagrams are demultiplexed by (source address, connection id). A SYN
//! opens a connection only within the limits of [`EndpointConfig`]: a total,
//! a number of half-open connections (whose peer has sent nothing after its
//! SYN, so may be spoofed), a number per IP address, and the accept backlog.
//! Packets of unknown connections are dropped, as libtorrent does (a RESET
//! could not name the sender's connection id unambiguously).
use crate::config::{ConnectionConfig, EndpointConfig};
use crate::connection::{Connection, Event, EV_CLOSED, EV_CONNECTED, EV_READABLE, EV_WRITABLE};
use crate::error::{ConnectError, ReadError, WriteError};
use crate::packet::{Packet, PacketType};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// Names a connection of an [`Endpoint`]; never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionHandle(pub u64);

/// A datagram [`Endpoint::poll_transmit`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Destination.
    pub to: SocketAddr,
    /// Its length at the end of the buffer.
    pub len: usize,
    /// An MTU probe: send with the don't-fragment bit; if refused as too
    /// big, report [`Endpoint::datagram_too_big`] and send it without.
    pub dont_fragment: bool,
    /// The connection that sent it.
    pub connection: ConnectionHandle,
    /// The peer reads coalesced datagrams: it may go in a GSO burst.
    pub coalesce: bool,
}

/// Counters of an endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to [`Endpoint::handle`].
    pub datagrams_in: u64,
    /// Datagrams from [`Endpoint::poll_transmit`].
    pub datagrams_out: u64,
    /// Datagrams that did not decode.
    pub invalid: u64,
    /// Packets for no known connection.
    pub unknown_connection: u64,
    /// SYNs that opened a connection.
    pub accepted: u64,
    /// SYNs refused by a limit (or with accepting off).
    pub refused: u64,
    /// Connections now.
    pub connections: usize,
    /// Incoming connections now whose peer sent nothing after its SYN.
    pub half_open: usize,
}

struct Entry {
    conn: Connection,
    timer: Option<Duration>,
    in_tx: bool,
    /// Handed to the application (outgoing ones from the start).
    taken: bool,
    /// Counted as half-open (incoming, unconfirmed).
    half_open: bool,
}

/// Every connection of one socket. See the module docs.
pub struct Endpoint {
    cfg: EndpointConfig,
    conn_cfg: Arc<ConnectionConfig>,
    rng: SmallRng,
    clock_offset: u32,
    next_handle: u64,
    conns: HashMap<u64, Entry>,
    by_id: HashMap<(SocketAddr, u16), u64>,
    timers: BTreeSet<(Duration, u64)>,
    tx_queue: VecDeque<u64>,
    events: VecDeque<(ConnectionHandle, Event)>,
    accept_queue: VecDeque<u64>,
    half_open_per_ip: HashMap<IpAddr, usize>,
    stats: EndpointStats,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// An endpoint with no connections; `seed` drives its randomness.
    pub fn new(cfg: EndpointConfig, seed: u64) -> Endpoint {
        let mut rng = SmallRng::seed_from_u64(seed);
        Endpoint {
            conn_cfg: Arc::new(cfg.connection.clone()),
            clock_offset: rng.gen(),
            rng,
            cfg,
            next_handle: 1,
            conns: HashMap::new(),
            by_id: HashMap::new(),
            timers: BTreeSet::new(),
            tx_queue: VecDeque::new(),
            events: VecDeque::new(),
            accept_queue: VecDeque::new(),
            half_open_per_ip: HashMap::new(),
            stats: EndpointStats::default(),
        }
    }

    /// Counters.
    pub fn stats(&self) -> EndpointStats {
        let mut s = self.stats;
        s.connections = self.conns.len();
        s
    }

    /// Whether [`Endpoint::poll_transmit`] may have a datagram.
    pub fn has_pending_transmit(&self) -> bool {
        !self.tx_queue.is_empty()
    }

    /// Whether no connection is left.
    pub fn is_empty(&self) -> bool {
        self.conns.is_empty()
    }

    /// Opens a connection to `remote`: its SYN is the next datagram out.
    pub fn connect(
        &mut self,
        now: Duration,
        remote: SocketAddr,
    ) -> Result<ConnectionHandle, ConnectError> {
        if self.conns.len() >= self.cfg.max_connections {
            return Err(ConnectError::TooManyConnections(self.cfg.max_connections));
        }
        let recv_id = (0..64)
            .map(|_| self.rng.gen::<u16>())
            .find(|id| !self.by_id.contains_key(&(remote, *id)))
            .ok_or(ConnectError::NoConnectionId(remote))?;
        let seq = self.rng.gen();
        let conn = Connection::connect(
            self.conn_cfg.clone(),
            remote,
            recv_id,
            seq,
            self.clock_offset,
            now,
        );
        let h = self.insert(conn, true, false);
        self.by_id.insert((remote, recv_id), h);
        self.refresh(h, now, true);
        Ok(ConnectionHandle(h))
    }

    fn insert(&mut self, conn: Connection, taken: bool, half_open: bool) -> u64 {
        let h = self.next_handle;
        self.next_handle += 1;
        self.conns.insert(
            h,
            Entry {
                conn,
                timer: None,
                in_tx: false,
                taken,
                half_open,
            },
        );
        h
    }

    /// Handles a datagram from `from` (one [`crate::is_utp`] accepts).
    pub fn handle(&mut self, now: Duration, from: SocketAddr, data: &[u8]) {
        self.stats.datagrams_in += 1;
        let Ok(pkt) = Packet::decode(data) else {
            self.stats.invalid += 1;
            return;
        };
        let cid = pkt.header.connection_id;
        let key = if pkt.header.ty == PacketType::Syn {
            (from, cid.wrapping_add(1))
        } else {
            (from, cid)
        };
        if let Some(&h) = self.by_id.get(&key) {
            if let Some(e) = self.conns.get_mut(&h) {
                e.conn.handle_packet(now, &pkt);
            }
            self.refresh(h, now, true);
            return;
        }
        if pkt.header.ty == PacketType::Syn {
            self.incoming_syn(now, from, &pkt);
        } else {
            self.stats.unknown_connection += 1;
        }
    }

    fn incoming_syn(&mut self, now: Duration, from: SocketAddr, pkt: &Packet<'_>) {
        let per_ip = self.half_open_per_ip.get(&from.ip()).copied().unwrap_or(0);
        let unaccepted = self.accept_queue.len();
        if !self.cfg.accept
            || self.conns.len() >= self.cfg.max_connections
            || self.stats.half_open >= self.cfg.max_half_open
            || per_ip >= self.cfg.max_half_open_per_ip
            || unaccepted >= self.cfg.accept_backlog
        {
            self.stats.refused += 1;
            return;
        }
        let seq = self.rng.gen();
        let conn = Connection::accept(
            self.conn_cfg.clone(),
            from,
            pkt,
            seq,
            self.clock_offset,
            now,
        );
        let recv_id = conn.recv_id();
        let h = self.insert(conn, false, true);
        self.by_id.insert((from, recv_id), h);
        self.stats.half_open += 1;
        *self.half_open_per_ip.entry(from.ip()).or_insert(0) += 1;
        self.stats.accepted += 1;
        self.accept_queue.push_back(h);
        self.refresh(h, now, true);
    }

    /// The next incoming connection, if any.
    pub fn accept(&mut self) -> Option<ConnectionHandle> {
        while let Some(h) = self.accept_queue.pop_front() {
            if let Some(e) = self.conns.get_mut(&h) {
                e.taken = true;
                return Some(ConnectionHandle(h));
            }
        }
        None
    }

    /// Whether [`Endpoint::accept`] has a connection.
    pub fn has_incoming(&self) -> bool {
        self.accept_queue.iter().any(|h| self.conns.contains_key(h))
    }

    /// Re-files a connection after it changed: events, timer, the transmit
    /// queue (when `requeue`), the half-open count, and removal when done.
    fn refresh(&mut self, h: u64, now: Duration, requeue: bool) {
        let Some(e) = self.conns.get_mut(&h) else {
            return;
        };
        let bits = e.conn.take_events();
        if e.taken {
            for (bit, ev) in [
                (EV_CONNECTED, Event::Connected),
                (EV_READABLE, Event::Readable),
                (EV_WRITABLE, Event::Writable),
                (EV_CLOSED, Event::Closed),
            ] {
                if bits & bit != 0 {
                    self.events.push_back((ConnectionHandle(h), ev));
                }
            }
        }
        if e.half_open
            && (e.conn.is_confirmed() || e.conn.state() == crate::connection::State::Closed)
        {
            e.half_open = false;
            self.stats.half_open -= 1;
            let ip = e.conn.remote().ip();
            if let Some(n) = self.half_open_per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.half_open_per_ip.remove(&ip);
                }
            }
        }
        let untaken_closed = !e.taken && e.conn.state() == crate::connection::State::Closed;
        if e.conn.is_drained(now) || untaken_closed {
            self.remove(h);
            return;
        }
        let deadline = e.conn.poll_timeout();
        if deadline != e.timer {
            if let Some(old) = e.timer {
                self.timers.remove(&(old, h));
            }
            if let Some(new) = deadline {
                self.timers.insert((new, h));
            }
            e.timer = deadline;
        }
        if requeue && !e.in_tx && e.conn.has_pending_transmit() {
            e.in_tx = true;
            self.tx_queue.push_back(h);
        }
    }

    fn remove(&mut self, h: u64) {
        let Some(e) = self.conns.remove(&h) else {
            return;
        };
        self.by_id.remove(&(e.conn.remote(), e.conn.recv_id()));
        if let Some(t) = e.timer {
            self.timers.remove(&(t, h));
        }
        if e.half_open {
            self.stats.half_open -= 1;
            let ip = e.conn.remote().ip();
            if let Some(n) = self.half_open_per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.half_open_per_ip.remove(&ip);
                }
            }
        }
    }

    /// Writes the next datagram to send to the end of `buf`.
    pub fn poll_transmit(&mut self, now: Duration, buf: &mut Vec<u8>) -> Option<Transmit> {
        while let Some(h) = self.tx_queue.pop_front() {
            let Some(e) = self.conns.get_mut(&h) else {
                continue;
            };
            e.in_tx = false;
            let written = e.conn.poll_transmit(now, buf);
            let to = e.conn.remote();
            let coalesce = e.conn.peer_coalesces();
            // Round robin: a connection with more to send goes to the back.
            self.refresh(h, now, written.is_some());
            if let Some(w) = written {
                self.stats.datagrams_out += 1;
                return Some(Transmit {
                    to,
                    len: w.len,
                    dont_fragment: w.dont_fragment,
                    connection: ConnectionHandle(h),
                    coalesce,
                });
            }
        }
        None
    }

    /// The next time [`Endpoint::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<Duration> {
        self.timers.first().map(|t| t.0)
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Duration) {
        let due: Vec<u64> = self
            .timers
            .iter()
            .take_while(|t| t.0 <= now)
            .map(|t| t.1)
            .collect();
        for h in due {
            if let Some(e) = self.conns.get_mut(&h) {
                if let Some(t) = e.timer.take() {
                    self.timers.remove(&(t, h));
                }
                e.conn.handle_timeout(now);
            }
            self.refresh(h, now, true);
        }
    }

    /// The next application event.
    pub fn poll_event(&mut self) -> Option<(ConnectionHandle, Event)> {
        self.events.pop_front()
    }

    /// A connection, to look at.
    pub fn connection(&self, h: ConnectionHandle) -> Option<&Connection> {
        self.conns.get(&h.0).map(|e| &e.conn)
    }

    fn with<T>(
        &mut self,
        h: ConnectionHandle,
        now: Duration,
        f: impl FnOnce(&mut Connection) -> T,
    ) -> Option<T> {
        let e = self.conns.get_mut(&h.0)?;
        let r = f(&mut e.conn);
        self.refresh(h.0, now, true);
        Some(r)
    }

    /// Queues bytes on a connection (see [`Connection::write`]).
    pub fn write(
        &mut self,
        h: ConnectionHandle,
        now: Duration,
        data: &[u8],
    ) -> Result<usize, WriteError> {
        self.with(h, now, |c| {
            let r = c.write(data);
            c.rearm_after_write(now);
            r
        })
        .unwrap_or(Err(WriteError::UnknownConnection))
    }

    /// Reads bytes from a connection (see [`Connection::read`]).
    pub fn read(
        &mut self,
        h: ConnectionHandle,
        now: Duration,
        buf: &mut [u8],
    ) -> Result<usize, ReadError> {
        self.with(h, now, |c| c.read(buf))
            .unwrap_or(Err(ReadError::UnknownConnection))
    }

    /// Shuts a connection's write side (a FIN follows the data).
    pub fn close(&mut self, h: ConnectionHandle, now: Duration) {
        self.with(h, now, |c| {
            c.close();
            c.rearm_after_write(now);
        });
    }

    /// Resets a connection.
    pub fn abort(&mut self, h: ConnectionHandle, now: Duration) {
        self.with(h, now, |c| c.abort());
    }

    /// The application is done with a connection: it closes gracefully in
    /// the background and is forgotten afterwards; the handle is dead.
    pub fn release(&mut self, h: ConnectionHandle, now: Duration) {
        self.with(h, now, |c| {
            c.detach();
            c.rearm_after_write(now);
        });
    }

    /// The datagram of `h` of `len` bytes was refused as too big for the
    /// path (`EMSGSIZE` on a don't-fragment send).
    pub fn datagram_too_big(&mut self, h: ConnectionHandle, now: Duration, len: usize) {
        self.with(h, now, |c| c.datagram_too_big(len));
    }

    /// Ends every connection with [`crate::ConnectionError::EndpointClosed`].
    pub fn close_all(&mut self, now: Duration) {
        let all: Vec<u64> = self.conns.keys().copied().collect();
        for h in all {
            self.with(ConnectionHandle(h), now, |c| {
                c.fail(crate::error::ConnectionError::EndpointClosed)
            });
        }
    }
}
