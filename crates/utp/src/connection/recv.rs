//! Incoming packets of one connection: validation against our sequence
//! space, cumulative and selective ACKs (RTT samples, loss detection and
//! fast retransmit), one-way delay samples for LEDBAT, in-order delivery
//! through the reorder buffer, and the FIN.
use super::{Connection, State, DUP_ACK_LIMIT, EV_CONNECTED, EV_READABLE, EV_WRITABLE};
use crate::error::ConnectionError;
use crate::packet::{Packet, PacketType};
use crate::seq::{seq_le, seq_lt};
use std::time::Duration;

/// Most fast retransmits one selective ACK triggers (as libtorrent).
const MAX_SACK_RESENDS: usize = 5;
/// A base-delay history step is taken at most once a minute.
const HISTORY_STEP: Duration = Duration::from_secs(60);

impl Connection {
    /// Handles a packet the endpoint routed here.
    pub(crate) fn handle_packet(&mut self, now: Duration, pkt: &Packet<'_>) {
        let h = pkt.header;
        if self.state == State::Closed {
            // Lingering after a clean close: acknowledge what the peer sends
            // again (our last ACK was lost), and stay while it does.
            if self.error.is_none() && matches!(h.ty, PacketType::Fin | PacketType::Data) {
                self.ack_pending = true;
                if self.linger_until.is_some() {
                    self.linger_until = Some(now + self.linger());
                }
            }
            return;
        }
        if h.ty == PacketType::Syn {
            // The peer did not hear our answer to its SYN: answer again.
            if !self.outgoing && h.seq_nr == self.syn_seq && !self.confirmed {
                self.ack_pending = true;
                self.rto_deadline = Some(now + self.syn_ack_timeout());
            } else {
                self.stats.ignored += 1;
            }
            return;
        }
        let last_sent = self.seq_nr.wrapping_sub(1);
        let acked = self.outbuf.first().wrapping_sub(1);
        let ack_ok = if self.state == State::SynSent {
            h.ack_nr == last_sent
        } else {
            seq_le(h.ack_nr, last_sent)
                && !seq_lt(h.ack_nr, acked.wrapping_sub(DUP_ACK_LIMIT as u16))
        };
        if !ack_ok {
            self.stats.ignored += 1;
            return;
        }
        if h.ty == PacketType::Reset {
            self.fail(ConnectionError::Reset);
            return;
        }
        if matches!(h.ty, PacketType::Data | PacketType::Fin) && self.state == State::Connected {
            let window = self.cfg.max_reorder as u16;
            if seq_lt(self.ack_nr.wrapping_add(window), h.seq_nr) {
                self.stats.ignored += 1;
                return;
            }
        }
        self.stats.packets_received += 1;
        if self.state == State::SynSent {
            self.note_ext_bits(pkt);
        }
        self.confirmed = true;
        self.num_timeouts = 0;
        self.zero_window_probe = false;
        self.adv_wnd = h.wnd_size;

        // One-way delays: theirs (echoed back) and ours (their echo).
        let step = now.saturating_sub(self.last_step) >= HISTORY_STEP;
        if step {
            self.last_step = now;
        }
        if h.timestamp_us != 0 {
            self.note_timestamp(now, h.timestamp_us);
            let prev_base = self
                .their_delay
                .initialized()
                .then(|| self.their_delay.base());
            self.their_delay.add_sample(self.reply_micro, step);
            if let Some(prev) = prev_base {
                // Their base went down by a little: clock drift. Raise ours.
                let down = prev.wrapping_sub(self.their_delay.base()) as i32;
                if down > 0 && down < 10_000 && self.our_delay.initialized() {
                    self.our_delay.adjust_base(down as u32);
                }
            }
        }
        // µTorrent sometimes sends i32::MAX for "no sample yet".
        let sample = match h.timestamp_diff_us {
            0x7fff_ffff => 0,
            s => s,
        };
        if sample != 0 {
            let d = self.our_delay.add_sample(sample, step);
            self.recent_delays[self.recent_idx] = d;
            self.recent_idx = (self.recent_idx + 1) % self.recent_delays.len();
        }

        let in_flight_before = self.in_flight;
        if h.ack_nr == acked && !self.outbuf.is_empty() && h.ty == PacketType::State {
            self.dup_acks += 1;
        }
        let mut acked_bytes = 0;
        let mut min_rtt = u32::MAX;
        if seq_lt(acked, h.ack_nr) {
            let mut s = acked.wrapping_add(1);
            loop {
                if let Some(p) = self.outbuf.remove(s) {
                    acked_bytes += p.payload.len();
                    min_rtt = min_rtt.min(self.on_acked(s, &p, now));
                }
                if s == h.ack_nr {
                    break;
                }
                s = s.wrapping_add(1);
            }
            self.advance_acked();
        }
        if pkt.sack.is_some() {
            let (bytes, rtt) = self.handle_sack(now, pkt);
            acked_bytes += bytes;
            min_rtt = min_rtt.min(rtt);
        }

        // Three duplicate ACKs: the packet after the cumulative ack is lost.
        let first = self.outbuf.first();
        if self.dup_acks >= DUP_ACK_LIMIT && first == self.fast_resend_seq_nr {
            if self.outbuf.get(first).is_some() {
                self.fast_resend_seq_nr = first.wrapping_add(1);
                self.packet_lost(first, now);
                self.fast_resend.push_back(first);
            }
            self.dup_acks = 0;
        }

        let mss = self.mtu.floor();
        if sample != 0 && acked_bytes > 0 && in_flight_before > 0 {
            let mut delay = self.recent_delays.iter().copied().min().unwrap_or(0);
            delay = delay.min(min_rtt);
            self.ledbat
                .on_ack(acked_bytes, delay, in_flight_before, self.in_flight, mss);
            self.stats.send_delay_us = delay;
        }

        if self.state == State::SynSent {
            self.state = State::Connected;
            self.ack_nr = h.seq_nr.wrapping_sub(1);
            self.events |= EV_CONNECTED | EV_WRITABLE;
            // Confirms us to the acceptor, which sends no data before.
            self.ack_pending = true;
        }
        match h.ty {
            PacketType::Data => {
                self.ack_pending = true;
                self.consume_data(h.seq_nr, pkt.payload);
            }
            PacketType::Fin => {
                self.ack_pending = true;
                if self.eof_seq.is_none() {
                    self.eof_seq = Some(h.seq_nr);
                }
                self.check_eof();
            }
            _ => {}
        }
        if let Some(f) = self.fin_seq {
            if seq_lt(f, self.outbuf.first()) {
                self.fin_acked = true;
            }
        }
        // The retransmission timer restarts when the cumulative ack moves
        // (RFC 6298 5.3) or nothing is outstanding, not on every packet: a
        // peer streaming data to us while our packets are lost (its acks
        // ride on DATA, which do not count as duplicate acks) would
        // otherwise push the timer back for ever.
        if self.outbuf.is_empty() || self.outbuf.first() != acked.wrapping_add(1) {
            self.rto_deadline = None;
        }
        self.rearm(now);
        self.check_finished(now);
    }

    /// Bookkeeping of an acked packet; returns its RTT in µs (`u32::MAX`
    /// when it was sent more than once and so says nothing).
    fn on_acked(&mut self, seq: u16, p: &super::Sent, now: Duration) -> u32 {
        if p.need_resend {
            self.need_resend -= 1;
        } else {
            self.in_flight -= p.payload.len();
        }
        self.mtu.on_acked(seq);
        if self.nagle_seq == Some(seq) {
            self.nagle_seq = None;
        }
        if p.transmissions == 1 {
            let rtt = now.saturating_sub(p.sent_at);
            self.rtt.add_sample(rtt);
            rtt.as_micros().min(u32::MAX as u128) as u32
        } else {
            u32::MAX
        }
    }

    /// Moves the cumulative ack over packets acked out of order.
    fn advance_acked(&mut self) {
        if self.outbuf.advance() {
            let acked = self.outbuf.first().wrapping_sub(1);
            if seq_lt(self.fast_resend_seq_nr, self.outbuf.first()) {
                self.fast_resend_seq_nr = self.outbuf.first();
            }
            if seq_lt(self.loss_seq_nr, acked) {
                self.loss_seq_nr = acked;
            }
            self.dup_acks = 0;
        }
        if self.outbuf.is_empty() {
            self.dup_acks = 0;
        }
    }

    /// A selective ACK: frees what it acks and fast-resends packets that at
    /// least [`DUP_ACK_LIMIT`] + 1 later packets overtook. Returns the bytes
    /// acked and the least RTT.
    fn handle_sack(&mut self, now: Duration, pkt: &Packet<'_>) -> (usize, u32) {
        let mut bytes = 0;
        let mut min_rtt = u32::MAX;
        let mut sacked: Vec<u16> = Vec::new();
        for s in pkt.sacked() {
            if !seq_lt(s, self.seq_nr) {
                break;
            }
            sacked.push(s);
            if let Some(p) = self.outbuf.remove(s) {
                bytes += p.payload.len();
                min_rtt = min_rtt.min(self.on_acked(s, &p, now));
            }
        }
        self.advance_acked();
        if sacked.len() <= DUP_ACK_LIMIT as usize {
            return (bytes, min_rtt);
        }
        // Only packets with more than DUP_ACK_LIMIT acked ones after them.
        let limit = sacked[sacked.len() - 1 - DUP_ACK_LIMIT as usize];
        let mut s = pkt.header.ack_nr.wrapping_add(1);
        let mut resent = 0;
        let mut cut = false;
        while seq_lt(s, limit) && resent < MAX_SACK_RESENDS {
            if seq_le(self.fast_resend_seq_nr, s) && self.outbuf.get(s).is_some() {
                if !cut {
                    cut = self.packet_lost(s, now);
                }
                self.fast_resend.push_back(s);
                self.fast_resend_seq_nr = s.wrapping_add(1);
                resent += 1;
            }
            s = s.wrapping_add(1);
        }
        (bytes, min_rtt)
    }

    /// Packet `seq` is lost: an MTU probe lowers the MTU ceiling, anything
    /// else cuts the window once per window of packets. Returns whether the
    /// loss counted as congestion.
    fn packet_lost(&mut self, seq: u16, now: Duration) -> bool {
        if self.mtu.on_lost(seq) {
            return false;
        }
        if seq_le(seq, self.loss_seq_nr) {
            return true;
        }
        if self.ledbat.on_loss(now, self.mtu.floor()) {
            self.loss_seq_nr = self.seq_nr.wrapping_sub(1);
        }
        true
    }

    /// A DATA packet: delivered in order, held if ahead, dropped if old or
    /// if it does not fit the receive buffer.
    fn consume_data(&mut self, seq: u16, payload: &[u8]) {
        if self.read_eof {
            return;
        }
        if self.eof_seq.is_some_and(|e| seq_le(e, seq)) {
            self.stats.ignored += 1;
            return;
        }
        let next = self.ack_nr.wrapping_add(1);
        let room = self
            .cfg
            .recv_buffer
            .saturating_sub(self.recv_buf.len() + self.reorder.bytes());
        if seq == next {
            // The packet that fills the hole is taken whenever the unread
            // bytes leave room for it: the packets held behind it fill the
            // window, and refusing it would wait for them forever. (They move
            // to the read buffer with it: at most one packet over the
            // buffer.)
            if payload.len() > self.cfg.recv_buffer.saturating_sub(self.recv_buf.len()) {
                return;
            }
            self.deliver(payload);
            self.ack_nr = next;
            while let Some(p) = self.reorder.shift() {
                self.deliver(&p);
                self.ack_nr = self.ack_nr.wrapping_add(1);
            }
            self.check_eof();
        } else if seq_lt(next, seq) {
            let offset = seq.wrapping_sub(next).wrapping_sub(1) as usize;
            if self.reorder.has(offset) {
                self.stats.duplicates += 1;
            } else if payload.len() <= room {
                self.reorder.insert(offset, payload);
            }
        } else {
            self.stats.duplicates += 1;
        }
    }

    fn deliver(&mut self, payload: &[u8]) {
        self.stats.bytes_received += payload.len() as u64;
        if self.detached {
            return;
        }
        if !payload.is_empty() {
            self.recv_buf.extend(payload);
            if self.read_blocked {
                self.read_blocked = false;
                self.events |= EV_READABLE;
            }
        }
    }

    /// Everything before the peer's FIN arrived: the FIN is acked and the
    /// stream ends.
    fn check_eof(&mut self) {
        if let Some(e) = self.eof_seq {
            if !self.read_eof && self.ack_nr.wrapping_add(1) == e {
                self.ack_nr = e;
                self.read_eof = true;
                self.reorder.clear();
                self.events |= EV_READABLE;
                self.read_blocked = false;
            }
        }
    }
}
