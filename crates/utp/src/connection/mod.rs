//! [`Connection`]: the sans-IO state machine of one uTP connection.
//!
//! The [`crate::Endpoint`] owns every connection: it feeds each the packets
//! with its connection id ([`recv`]), asks it for datagrams ([`send`]) and
//! fires its timer. The application reaches a connection through
//! [`crate::Endpoint::connection`] to write, read, close and read stats.
//!
//! Sequence numbers count packets. `outbuf` holds what we sent and the peer
//! has not acknowledged (from `acked_seq_nr + 1`); `reorder` what arrived
//! ahead of a gap (from `ack_nr + 2`). A FIN takes a sequence number; the
//! STATE packets that follow our FIN carry the FIN's number, as libtorrent's
//! do, because libtorrent drops packets numbered past a FIN.
mod buffers;
mod recv;
mod send;

use crate::config::ConnectionConfig;
use crate::delay::DelayHistory;
use crate::error::{ConnectionError, ReadError, WriteError};
use crate::ledbat::Ledbat;
use crate::mtu::MtuSearch;
use crate::rtt::RttEstimator;
use buffers::{OutBuf, Reorder, Sent, SentKind};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Duplicate ACKs (or selectively acked successors) that mark a packet lost.
pub(crate) const DUP_ACK_LIMIT: u32 = 3;

/// What changed for the application (see [`crate::Endpoint::poll_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// An outgoing connection was accepted by the peer.
    Connected,
    /// Data, the end of the stream or an error can be read (after a read
    /// returned [`ReadError::WouldBlock`]).
    Readable,
    /// The send buffer has room again (after a write took less than offered).
    Writable,
    /// The connection ended: cleanly, or with [`Connection::error`].
    Closed,
}

pub(crate) const EV_CONNECTED: u8 = 1;
pub(crate) const EV_READABLE: u8 = 2;
pub(crate) const EV_WRITABLE: u8 = 4;
pub(crate) const EV_CLOSED: u8 = 8;

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// SYN sent, waiting for the peer's STATE.
    SynSent,
    /// Data flows (an accepted connection starts here).
    Connected,
    /// Closed cleanly or with an error.
    Closed,
}

/// Counters and estimates of one connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Smoothed round-trip time, once measured.
    pub rtt: Option<Duration>,
    /// Current retransmission timeout.
    pub rto: Duration,
    /// Congestion window, bytes.
    pub cwnd: usize,
    /// Payload bytes in flight.
    pub in_flight: usize,
    /// The peer's advertised receive window, bytes.
    pub peer_window: u32,
    /// Latest queueing delay measured on our packets (LEDBAT's input), µs.
    pub send_delay_us: u32,
    /// Datagram size of ordinary packets (the MTU search floor).
    pub packet_size: usize,
    /// Datagrams sent (any type, retransmissions included).
    pub packets_sent: u64,
    /// Datagrams accepted for this connection.
    pub packets_received: u64,
    /// Payload bytes sent for the first time.
    pub bytes_sent: u64,
    /// Payload bytes delivered in order.
    pub bytes_received: u64,
    /// Packets resent after a timeout.
    pub retransmits: u64,
    /// Packets resent after duplicate or selective ACKs.
    pub fast_retransmits: u64,
    /// Retransmission timer expiries.
    pub timeouts: u64,
    /// Data packets received twice (or already delivered).
    pub duplicates: u64,
    /// Packets ignored as invalid for this connection.
    pub ignored: u64,
    /// The peer said in the handshake that it reads coalesced datagrams
    /// (so runs of datagrams go to it in GSO sends).
    pub peer_coalesces: bool,
}

/// One uTP connection. See the module docs.
#[derive(Debug)]
pub struct Connection {
    cfg: Arc<ConnectionConfig>,
    remote: SocketAddr,
    recv_id: u16,
    send_id: u16,
    state: State,
    clock_offset: u32,
    outgoing: bool,

    // Sending.
    seq_nr: u16,
    outbuf: OutBuf,
    in_flight: usize,
    /// Packets in `outbuf` marked `need_resend`.
    need_resend: usize,
    write_buf: BytesMut,
    write_shut: bool,
    write_blocked: bool,
    fin_seq: Option<u16>,
    fin_acked: bool,
    fast_resend: VecDeque<u16>,
    fast_resend_seq_nr: u16,
    dup_acks: u32,
    loss_seq_nr: u16,
    nagle_seq: Option<u16>,
    adv_wnd: u32,
    zero_window_probe: bool,
    ledbat: Ledbat,
    mtu: MtuSearch,
    rtt: RttEstimator,
    num_timeouts: u32,
    rto_deadline: Option<Duration>,

    // One-way delay.
    reply_micro: u32,
    our_delay: DelayHistory,
    their_delay: DelayHistory,
    recent_delays: [u32; 3],
    recent_idx: usize,
    last_step: Duration,

    // Receiving.
    ack_nr: u16,
    syn_seq: u16,
    recv_buf: VecDeque<u8>,
    reorder: Reorder,
    eof_seq: Option<u16>,
    read_eof: bool,
    read_blocked: bool,
    ack_pending: bool,
    last_adv_wnd: u32,

    /// The peer said it reads coalesced datagrams (UDP GRO).
    peer_coalesces: bool,

    // Life.
    confirmed: bool,
    detached: bool,
    error: Option<ConnectionError>,
    linger_until: Option<Duration>,
    send_reset: bool,
    events: u8,
    stats: ConnectionStats,
}

impl Connection {
    fn new(
        cfg: Arc<ConnectionConfig>,
        remote: SocketAddr,
        (recv_id, send_id): (u16, u16),
        seq_nr: u16,
        clock_offset: u32,
        now: Duration,
        outgoing: bool,
    ) -> Connection {
        let ceiling = if remote.is_ipv6() {
            cfg.mtu_ceiling_v6
        } else {
            cfg.mtu_ceiling_v4
        };
        let mtu = MtuSearch::new(cfg.mtu_floor, ceiling);
        let mut ledbat = Ledbat::new(cfg.ledbat.clone());
        ledbat.at_least(mtu.floor());
        Connection {
            rtt: RttEstimator::new(cfg.initial_rto, cfg.min_rto, cfg.max_rto),
            recv_id,
            send_id,
            state: State::Connected,
            clock_offset,
            outgoing,
            seq_nr,
            outbuf: OutBuf::new(seq_nr),
            in_flight: 0,
            need_resend: 0,
            write_buf: BytesMut::new(),
            write_shut: false,
            write_blocked: false,
            fin_seq: None,
            fin_acked: false,
            fast_resend: VecDeque::new(),
            fast_resend_seq_nr: seq_nr,
            dup_acks: 0,
            loss_seq_nr: seq_nr.wrapping_sub(1),
            nagle_seq: None,
            adv_wnd: 0,
            zero_window_probe: false,
            ledbat,
            mtu,
            num_timeouts: 0,
            rto_deadline: None,
            reply_micro: 0,
            our_delay: DelayHistory::default(),
            their_delay: DelayHistory::default(),
            recent_delays: [u32::MAX; 3],
            recent_idx: 0,
            last_step: now,
            ack_nr: 0,
            syn_seq: 0,
            recv_buf: VecDeque::new(),
            reorder: Reorder::default(),
            eof_seq: None,
            read_eof: false,
            read_blocked: false,
            ack_pending: false,
            last_adv_wnd: cfg.recv_buffer as u32,
            peer_coalesces: false,
            confirmed: false,
            detached: false,
            error: None,
            linger_until: None,
            send_reset: false,
            events: 0,
            stats: ConnectionStats::default(),
            remote,
            cfg,
        }
    }

    /// An outgoing connection: its SYN (id `recv_id`, sequence `seq_nr`)
    /// goes out at the next transmit.
    pub(crate) fn connect(
        cfg: Arc<ConnectionConfig>,
        remote: SocketAddr,
        recv_id: u16,
        seq_nr: u16,
        clock_offset: u32,
        now: Duration,
    ) -> Connection {
        let mut c = Connection::new(
            cfg,
            remote,
            (recv_id, recv_id.wrapping_add(1)),
            seq_nr,
            clock_offset,
            now,
            true,
        );
        c.state = State::SynSent;
        c.outbuf.push(Sent {
            kind: SentKind::Syn,
            payload: Bytes::new(),
            sent_at: now,
            transmissions: 0,
            need_resend: true,
            budget: crate::packet::HEADER_LEN as u16,
        });
        c.need_resend = 1;
        c.seq_nr = c.seq_nr.wrapping_add(1);
        c
    }

    /// An incoming connection from a SYN: answered with a STATE at once.
    pub(crate) fn accept(
        cfg: Arc<ConnectionConfig>,
        remote: SocketAddr,
        syn_packet: &crate::packet::Packet<'_>,
        seq_nr: u16,
        clock_offset: u32,
        now: Duration,
    ) -> Connection {
        let syn = &syn_packet.header;
        let mut c = Connection::new(
            cfg,
            remote,
            (syn.connection_id.wrapping_add(1), syn.connection_id),
            seq_nr,
            clock_offset,
            now,
            false,
        );
        c.note_ext_bits(syn_packet);
        c.ack_nr = syn.seq_nr;
        c.syn_seq = syn.seq_nr;
        c.adv_wnd = syn.wnd_size;
        c.stats.packets_received = 1;
        c.note_timestamp(now, syn.timestamp_us);
        c.ack_pending = true;
        // An unconfirmed connection dies at its first timeout.
        c.rto_deadline = Some(now + c.syn_ack_timeout());
        c
    }

    /// How long an accepted connection waits for anything after the SYN.
    fn syn_ack_timeout(&self) -> Duration {
        self.cfg.half_open_timeout
    }

    /// The peer's address.
    pub fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The id on packets we receive (the endpoint's key with the address).
    pub fn recv_id(&self) -> u16 {
        self.recv_id
    }

    /// Where the connection is.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether this side opened the connection.
    pub fn is_outgoing(&self) -> bool {
        self.outgoing
    }

    /// Whether the peer has shown it is alive at its address (sent anything
    /// beyond its SYN, or answered ours).
    pub fn is_confirmed(&self) -> bool {
        self.confirmed
    }

    /// Whether the peer reads coalesced datagrams (said so in the
    /// handshake): GSO bursts to it are safe.
    pub fn peer_coalesces(&self) -> bool {
        self.peer_coalesces
    }

    /// Notes what the peer's extension bits say, if it sent any.
    fn note_ext_bits(&mut self, pkt: &crate::packet::Packet<'_>) {
        if let Some(bits) = pkt.ext_bits {
            self.peer_coalesces = bits[0] & crate::packet::BIT_COALESCED_READS != 0;
        }
    }

    /// The extension bits a packet of type `ty` carries: ours in a SYN and
    /// in the STATEs answering one, when we read coalesced datagrams.
    fn ext_bits_for(&self, ty: crate::packet::PacketType) -> Option<[u8; 8]> {
        use crate::packet::PacketType;
        let handshake =
            ty == PacketType::Syn || (ty == PacketType::State && !self.outgoing && !self.confirmed);
        (handshake && self.cfg.coalesced_reads).then_some(crate::packet::COALESCED_READS_BITS)
    }

    /// Why the connection ended, if not cleanly.
    pub fn error(&self) -> Option<ConnectionError> {
        self.error
    }

    /// Counters and estimates.
    pub fn stats(&self) -> ConnectionStats {
        let mut s = self.stats.clone();
        s.rtt = self.rtt.srtt();
        s.rto = self.rtt.rto(self.num_timeouts);
        s.cwnd = self.ledbat.window();
        s.in_flight = self.in_flight;
        s.peer_window = self.adv_wnd;
        s.packet_size = self.mtu.floor();
        s.peer_coalesces = self.peer_coalesces;
        s
    }

    /// Bytes the application may still write before the buffer is full.
    pub fn send_space(&self) -> usize {
        self.cfg.send_buffer.saturating_sub(self.write_buf.len())
    }

    /// Queues bytes to send; returns how many were taken (0 when the send
    /// buffer is full: wait for [`Event::Writable`]).
    pub fn write(&mut self, data: &[u8]) -> Result<usize, WriteError> {
        if let Some(e) = self.error {
            return Err(WriteError::Closed(e));
        }
        match self.state {
            State::SynSent => return Err(WriteError::NotConnected),
            State::Closed => return Err(WriteError::Finished),
            State::Connected => {}
        }
        if self.write_shut {
            return Err(WriteError::Shutdown);
        }
        let n = data.len().min(self.send_space());
        self.write_buf.extend_from_slice(&data[..n]);
        if n < data.len() {
            self.write_blocked = true;
        }
        Ok(n)
    }

    /// Reads bytes in order; `Ok(0)` (for a non-empty `buf`) is the end of
    /// the stream. Buffered data is returned before an error.
    pub fn read(&mut self, buf: &mut [u8]) -> Result<usize, ReadError> {
        if !self.recv_buf.is_empty() {
            let n = buf.len().min(self.recv_buf.len());
            let (a, b) = self.recv_buf.as_slices();
            let from_a = n.min(a.len());
            buf[..from_a].copy_from_slice(&a[..from_a]);
            buf[from_a..n].copy_from_slice(&b[..n - from_a]);
            self.recv_buf.drain(..n);
            self.window_opened();
            return Ok(n);
        }
        if self.read_eof {
            return Ok(0);
        }
        if let Some(e) = self.error {
            return Err(ReadError::Closed(e));
        }
        if self.state == State::Closed {
            return Ok(0);
        }
        self.read_blocked = true;
        Err(ReadError::WouldBlock)
    }

    /// Bytes ready to read.
    pub fn readable_bytes(&self) -> usize {
        self.recv_buf.len()
    }

    /// Shuts the write side: a FIN follows the data already written.
    pub fn close(&mut self) {
        self.write_shut = true;
    }

    /// Ends the connection at once with a RESET to the peer.
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            self.send_reset = self.state == State::Connected;
            self.fail(ConnectionError::Aborted);
        }
    }

    /// The application dropped its handle: the write side closes after the
    /// data written, data still arriving is acknowledged and discarded, and
    /// the endpoint forgets the connection once done.
    pub(crate) fn detach(&mut self) {
        self.detached = true;
        self.write_shut = true;
        self.recv_buf = VecDeque::new();
    }

    /// The connection is done and nobody holds it: the endpoint may drop it.
    pub(crate) fn is_drained(&self, now: Duration) -> bool {
        self.detached
            && !self.send_reset
            && match self.state {
                State::Closed => self.error.is_some() || self.linger_until.is_none_or(|l| now >= l),
                _ => self.fin_acked && self.linger_until.is_some_and(|l| now >= l),
            }
    }

    /// Takes the pending events (bits `EV_*`).
    pub(crate) fn take_events(&mut self) -> u8 {
        std::mem::take(&mut self.events)
    }

    /// The next time [`Connection::handle_timeout`] has work.
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        let linger = self.linger_until.filter(|_| self.detached);
        match (self.rto_deadline, linger) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Ends the connection with `e`.
    pub(crate) fn fail(&mut self, e: ConnectionError) {
        if self.state == State::Closed && self.error.is_some() {
            return;
        }
        self.error = Some(e);
        self.enter_closed();
        self.linger_until = None;
    }

    fn enter_closed(&mut self) {
        self.state = State::Closed;
        self.events |= EV_CLOSED | EV_READABLE | EV_WRITABLE;
        self.outbuf.clear();
        self.in_flight = 0;
        self.need_resend = 0;
        self.write_buf = BytesMut::new();
        self.fast_resend.clear();
        self.rto_deadline = None;
    }

    /// Clean end: our FIN acked and the peer's received (or nobody reads).
    fn check_finished(&mut self, now: Duration) {
        if self.state == State::Closed {
            return;
        }
        if self.fin_acked && self.read_eof {
            self.enter_closed();
            self.reorder.clear();
            self.linger_until = Some(now + self.linger());
        } else if self.fin_acked && self.detached && self.linger_until.is_none() {
            self.linger_until = Some(now + self.linger());
        }
    }

    fn linger(&self) -> Duration {
        self.cfg.linger.max(self.rtt.rto(0) * 4)
    }

    /// Our clock on the wire: microseconds, wrapping, offset per endpoint.
    fn timestamp(&self, now: Duration) -> u32 {
        (now.as_micros() as u32).wrapping_add(self.clock_offset)
    }

    /// Records the peer's send time of a packet received at `now`: the delay
    /// echoed back in our next packets, and drift compensation.
    fn note_timestamp(&mut self, now: Duration, their_ts: u32) {
        if their_ts == 0 {
            return;
        }
        self.reply_micro = self.timestamp(now).wrapping_sub(their_ts);
    }

    /// The receive window to advertise.
    fn recv_window(&self) -> u32 {
        let used = self.recv_buf.len() + self.reorder.bytes();
        self.cfg
            .recv_buffer
            .saturating_sub(used)
            .min(u32::MAX as usize) as u32
    }

    /// After the application read: announce a window that opened a lot.
    fn window_opened(&mut self) {
        let now_wnd = self.recv_window();
        let mss = self.mtu.floor() as u32;
        let quarter = (self.cfg.recv_buffer / 4) as u32;
        if (self.last_adv_wnd < mss && now_wnd >= mss)
            || now_wnd.saturating_sub(self.last_adv_wnd) >= quarter
        {
            self.ack_pending = true;
        }
    }

    /// After the application wrote or closed: a timer if the data cannot go.
    pub(crate) fn rearm_after_write(&mut self, now: Duration) {
        self.rearm(now);
    }

    /// (Re)arms the retransmission timer when something needs it.
    fn rearm(&mut self, now: Duration) {
        if self.rto_deadline.is_some() || self.state == State::Closed {
            return;
        }
        let blocked_by_window = self.state == State::Connected
            && self.outbuf.is_empty()
            && (!self.write_buf.is_empty() || (self.write_shut && self.fin_seq.is_none()));
        if !self.outbuf.is_empty() || blocked_by_window || !self.confirmed {
            self.rto_deadline = Some(now + self.rtt.rto(self.num_timeouts));
        }
    }

    /// The retransmission or linger timer.
    pub(crate) fn handle_timeout(&mut self, now: Duration) {
        if self.detached
            && self.state == State::Connected
            && self.linger_until.is_some_and(|l| now >= l)
        {
            // Released, our FIN acked, and the peer still has not closed:
            // tell it we are gone.
            self.abort();
            return;
        }
        if self.rto_deadline.is_none_or(|d| now < d) {
            return;
        }
        self.rto_deadline = None;
        self.stats.timeouts += 1;
        match self.state {
            State::Closed => return,
            State::SynSent => {
                let sent = self
                    .outbuf
                    .get(self.outbuf.first())
                    .map(|s| s.transmissions);
                if sent.is_none_or(|n| n >= self.cfg.max_syn_transmissions) {
                    self.fail(ConnectionError::ConnectTimedOut);
                    return;
                }
                self.num_timeouts += 1;
                self.mark_all_lost();
            }
            State::Connected if !self.confirmed => {
                self.fail(ConnectionError::TimedOut);
                return;
            }
            State::Connected => self.connected_timeout(),
        }
        if self.state != State::Closed {
            self.rearm(now);
        }
    }

    fn connected_timeout(&mut self) {
        let mss = self.mtu.floor();
        if self.outbuf.is_empty() {
            // Idle, or the peer's window is closed: probe it with one packet.
            self.ledbat.on_timeout(mss, true);
            if !self.write_buf.is_empty() {
                self.zero_window_probe = true;
            }
            return;
        }
        let only_probe =
            self.outbuf.live() == 1 && self.mtu.probe_seq() == Some(self.outbuf.first());
        if only_probe {
            // The only packet out was the MTU probe: too big, not congestion.
            self.mtu.on_lost(self.outbuf.first());
        } else {
            self.num_timeouts += 1;
            if self.num_timeouts > self.cfg.max_timeouts {
                self.fail(ConnectionError::TimedOut);
                return;
            }
            self.ledbat.on_timeout(mss, self.in_flight == 0);
            self.loss_seq_nr = self.seq_nr.wrapping_sub(1);
        }
        self.mtu.forget_probe();
        self.mark_all_lost();
        self.ledbat.at_least(self.mtu.floor());
    }

    /// Every packet in flight is to be sent again.
    fn mark_all_lost(&mut self) {
        let first = self.outbuf.first();
        for (_, p) in self.outbuf.iter_mut() {
            p.need_resend = true;
        }
        self.in_flight = 0;
        self.need_resend = self.outbuf.live();
        self.fast_resend.clear();
        if self.fast_resend_seq_nr == first {
            self.fast_resend_seq_nr = first.wrapping_add(1);
        }
    }
}
