//! Outgoing packets of one connection, one datagram per call, in priority
//! order: a RESET; fast retransmits (regardless of the window); packets a
//! timeout marked lost (as the window allows); new data cut from the send
//! buffer (window, Nagle, MTU probes); the FIN; a bare ACK.
use super::{Connection, Sent, SentKind, State, EV_WRITABLE};
use crate::packet::{sack_overhead, Header, Packet, PacketType, EXT_BITS_OVERHEAD, HEADER_LEN};
use bytes::Bytes;
use std::time::Duration;

/// Largest SACK mask the header's one-byte length allows, in whole words.
const SACK_MAX: usize = 252;

/// A datagram a connection wrote.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Written {
    pub len: usize,
    /// An MTU probe: send it with the don't-fragment bit.
    pub dont_fragment: bool,
}

impl Connection {
    /// Whether [`Connection::poll_transmit`] may have something to send.
    pub(crate) fn has_pending_transmit(&self) -> bool {
        if self.send_reset || self.ack_pending {
            return true;
        }
        self.state != State::Closed
            && (!self.fast_resend.is_empty()
                || self.need_resend > 0
                || (self.state == State::Connected
                    && (!self.write_buf.is_empty() || (self.write_shut && self.fin_seq.is_none()))))
    }

    /// Writes the next datagram to the end of `out`.
    pub(crate) fn poll_transmit(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<Written> {
        if self.send_reset {
            self.send_reset = false;
            let h = self.header(PacketType::Reset, self.seq_nr, now);
            let len = Packet::encode(&h, None, &[], out);
            self.stats.packets_sent += 1;
            return Some(Written {
                len,
                dont_fragment: false,
            });
        }
        if self.state == State::Closed {
            return self.send_state(now, out);
        }
        while let Some(seq) = self.fast_resend.pop_front() {
            if self.outbuf.get(seq).is_some() {
                return self.resend(seq, now, out, true);
            }
        }
        let mut blocked = false;
        if self.need_resend > 0 {
            if let Some((seq, p)) = self.outbuf.first_needing_resend() {
                let window = self.window();
                if self.in_flight == 0 || self.in_flight + p.payload.len() <= window {
                    return self.resend(seq, now, out, false);
                }
                blocked = true;
            }
        }
        if !blocked {
            if let Some(w) = self.send_data(now, out) {
                return Some(w);
            }
        }
        if let Some(w) = self.send_fin(now, out) {
            return Some(w);
        }
        self.send_state(now, out)
    }

    /// Bytes we may have in flight: the congestion and the peer's window.
    fn window(&self) -> usize {
        self.ledbat.window().min(self.adv_wnd as usize)
    }

    fn header(&self, ty: PacketType, seq: u16, now: Duration) -> Header {
        Header {
            ty,
            extension: 0,
            connection_id: if ty == PacketType::Syn {
                self.recv_id
            } else {
                self.send_id
            },
            timestamp_us: self.timestamp(now),
            timestamp_diff_us: self.reply_micro,
            wnd_size: self.recv_window(),
            seq_nr: seq,
            ack_nr: if ty == PacketType::Syn {
                0
            } else {
                self.ack_nr
            },
        }
    }

    /// Writes a packet with a SACK of at most `sack_room` bytes.
    fn emit(
        &mut self,
        h: Header,
        sack_room: usize,
        payload: &[u8],
        now: Duration,
        out: &mut Vec<u8>,
    ) -> usize {
        let mut mask = [0u8; SACK_MAX];
        let bits = self.ext_bits_for(h.ty);
        let sack_room = sack_room.saturating_sub(bits.map_or(0, |_| EXT_BITS_OVERHEAD));
        let room = sack_room.min(self.cfg.max_sack_bytes).min(SACK_MAX) / 4 * 4;
        let sack_len = if room >= 4 {
            self.reorder.write_sack(&mut mask[..room])
        } else {
            0
        };
        let sack = (sack_len > 0).then(|| &mask[..sack_len]);
        let len = Packet::encode_with_bits(&h, bits.as_ref(), sack, payload, out);
        self.last_adv_wnd = h.wnd_size;
        self.ack_pending = false;
        self.stats.packets_sent += 1;
        if self.rto_deadline.is_none() && !self.outbuf.is_empty() {
            self.rto_deadline = Some(now + self.rtt.rto(self.num_timeouts));
        }
        len
    }

    /// Sends packet `seq` of the out buffer again (or for the first time,
    /// for a SYN).
    fn resend(
        &mut self,
        seq: u16,
        now: Duration,
        out: &mut Vec<u8>,
        fast: bool,
    ) -> Option<Written> {
        let p = self.outbuf.get_mut(seq)?;
        if p.need_resend {
            p.need_resend = false;
            self.need_resend -= 1;
            self.in_flight += p.payload.len();
        }
        p.transmissions += 1;
        p.sent_at = now;
        let (kind, payload, budget, first) =
            (p.kind, p.payload.clone(), p.budget, p.transmissions == 1);
        let ty = match kind {
            SentKind::Syn => PacketType::Syn,
            SentKind::Data => PacketType::Data,
            SentKind::Fin => PacketType::Fin,
        };
        if !first {
            if fast {
                self.stats.fast_retransmits += 1;
            } else {
                self.stats.retransmits += 1;
            }
        }
        let h = self.header(ty, seq, now);
        let room = if kind == SentKind::Syn {
            0
        } else {
            (budget as usize).saturating_sub(HEADER_LEN + 2 + payload.len())
        };
        let len = self.emit(h, room, &payload, now, out);
        Some(Written {
            len,
            dont_fragment: false,
        })
    }

    /// Cuts a new DATA packet from the send buffer, if the windows, Nagle
    /// and the acceptor's wait for confirmation allow.
    fn send_data(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<Written> {
        if self.state != State::Connected || self.write_buf.is_empty() {
            return None;
        }
        // An acceptor sends no data before the peer showed it is connected:
        // its first packets tell the initiator where our sequence starts.
        if !self.outgoing && !self.confirmed {
            return None;
        }
        if self.outbuf.span() >= self.cfg.max_in_flight_packets {
            return None;
        }
        let mut scratch = [0u8; SACK_MAX];
        let sack_room = self.cfg.max_sack_bytes.min(SACK_MAX) / 4 * 4;
        let sack_len = self.reorder.write_sack(&mut scratch[..sack_room.max(4)]);
        let header_len = HEADER_LEN + sack_overhead(sack_len);
        let cwnd = self.ledbat.window();
        let probe_size = self.mtu.probe_size();
        let probe = self.mtu.want_probe(cwnd) && self.write_buf.len() + header_len >= probe_size;
        let size = if probe { probe_size } else { self.mtu.floor() };
        let max_payload = size.saturating_sub(header_len).max(1);
        let n = self.write_buf.len().min(max_payload);
        if self.in_flight + n > self.window() {
            if self.zero_window_probe && self.in_flight == 0 {
                self.zero_window_probe = false;
            } else {
                return None;
            }
        }
        if self.cfg.nagle
            && n < max_payload
            && !self.write_shut
            && self.in_flight > 0
            && self.nagle_seq.is_some()
        {
            return None;
        }
        let payload: Bytes = self.write_buf.split_to(n).freeze();
        let seq = self.seq_nr;
        self.seq_nr = self.seq_nr.wrapping_add(1);
        self.outbuf.push(Sent {
            kind: SentKind::Data,
            payload: payload.clone(),
            sent_at: now,
            transmissions: 1,
            need_resend: false,
            budget: size.min(u16::MAX as usize) as u16,
        });
        self.in_flight += n;
        self.stats.bytes_sent += n as u64;
        if n < max_payload {
            self.nagle_seq = Some(seq);
        }
        let h = self.header(PacketType::Data, seq, now);
        let len = self.emit(
            h,
            size.saturating_sub(HEADER_LEN + 2 + n),
            &payload,
            now,
            out,
        );
        if probe {
            self.mtu.probe_sent(seq, len);
        }
        if self.write_blocked && self.write_buf.len() <= self.cfg.send_buffer / 4 * 3 {
            self.write_blocked = false;
            self.events |= EV_WRITABLE;
        }
        Some(Written {
            len,
            dont_fragment: probe,
        })
    }

    /// The FIN, once everything written was packetised.
    fn send_fin(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<Written> {
        if !self.write_shut
            || !self.write_buf.is_empty()
            || self.fin_seq.is_some()
            || self.state != State::Connected
            || (!self.outgoing && !self.confirmed)
        {
            return None;
        }
        let seq = self.seq_nr;
        self.seq_nr = self.seq_nr.wrapping_add(1);
        self.fin_seq = Some(seq);
        let budget = self.mtu.floor();
        self.outbuf.push(Sent {
            kind: SentKind::Fin,
            payload: Bytes::new(),
            sent_at: now,
            transmissions: 1,
            need_resend: false,
            budget: budget.min(u16::MAX as usize) as u16,
        });
        let h = self.header(PacketType::Fin, seq, now);
        let len = self.emit(h, budget.saturating_sub(HEADER_LEN + 2), &[], now, out);
        Some(Written {
            len,
            dont_fragment: false,
        })
    }

    /// A bare ACK, when one is owed.
    fn send_state(&mut self, now: Duration, out: &mut Vec<u8>) -> Option<Written> {
        if !self.ack_pending {
            return None;
        }
        // After our FIN, STATE packets carry the FIN's number (libtorrent
        // ignores anything numbered past a FIN it received).
        let seq = self.fin_seq.unwrap_or(self.seq_nr);
        let h = self.header(PacketType::State, seq, now);
        let room = self.mtu.floor().saturating_sub(HEADER_LEN + 2);
        let len = self.emit(h, room, &[], now, out);
        Some(Written {
            len,
            dont_fragment: false,
        })
    }

    /// Sending `len` bytes was refused as larger than the path allows.
    pub(crate) fn datagram_too_big(&mut self, len: usize) {
        self.mtu.too_big(len);
        self.ledbat.at_least(self.mtu.floor());
    }
}
