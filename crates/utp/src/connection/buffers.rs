//! The two packet buffers of a connection: [`OutBuf`], packets sent and not
//! yet acknowledged, indexed by sequence number from the oldest; and
//! [`Reorder`], packets received ahead of a gap, indexed from the first
//! missing one, which also yields the selective-ACK bitmask.
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::Duration;

/// What a sent packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentKind {
    Syn,
    Data,
    Fin,
}

/// A packet kept until it is acknowledged.
#[derive(Debug, Clone)]
pub(crate) struct Sent {
    pub kind: SentKind,
    pub payload: Bytes,
    /// When it was last (re)sent.
    pub sent_at: Duration,
    pub transmissions: u32,
    /// Marked lost by a timeout: not counted in flight until resent.
    pub need_resend: bool,
    /// The datagram size it was cut for (resends fit a SACK within it).
    pub budget: u16,
}

/// Sent packets by sequence number; slot 0 is the oldest unacked (`first`).
#[derive(Debug)]
pub(crate) struct OutBuf {
    first: u16,
    slots: VecDeque<Option<Sent>>,
    live: usize,
}

impl OutBuf {
    /// Empty, the next packet to send being `first`.
    pub fn new(first: u16) -> OutBuf {
        OutBuf {
            first,
            slots: VecDeque::new(),
            live: 0,
        }
    }

    /// Sequence number of slot 0 (one past the cumulative ack).
    pub fn first(&self) -> u16 {
        self.first
    }

    /// Packets not yet acked.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Whether nothing is waiting for an ACK.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Sequence numbers covered, acked or not.
    pub fn span(&self) -> usize {
        self.slots.len()
    }

    fn index(&self, seq: u16) -> Option<usize> {
        let i = seq.wrapping_sub(self.first) as usize;
        (i < self.slots.len()).then_some(i)
    }

    /// Appends the packet with the next sequence number (`first + span`).
    pub fn push(&mut self, sent: Sent) -> u16 {
        let seq = self.first.wrapping_add(self.slots.len() as u16);
        self.slots.push_back(Some(sent));
        self.live += 1;
        seq
    }

    /// The packet `seq`, if sent and not acked.
    pub fn get(&self, seq: u16) -> Option<&Sent> {
        self.index(seq).and_then(|i| self.slots[i].as_ref())
    }

    /// The packet `seq`, mutably.
    pub fn get_mut(&mut self, seq: u16) -> Option<&mut Sent> {
        self.index(seq).and_then(|i| self.slots[i].as_mut())
    }

    /// Takes packet `seq` out (it was acked).
    pub fn remove(&mut self, seq: u16) -> Option<Sent> {
        let i = self.index(seq)?;
        let p = self.slots[i].take();
        if p.is_some() {
            self.live -= 1;
        }
        p
    }

    /// Drops the acked slots at the front; returns whether `first` moved.
    pub fn advance(&mut self) -> bool {
        let mut moved = false;
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.first = self.first.wrapping_add(1);
            moved = true;
        }
        moved
    }

    /// Sequence numbers and packets, oldest first.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u16, &mut Sent)> {
        let first = self.first;
        self.slots
            .iter_mut()
            .enumerate()
            .filter_map(move |(i, s)| s.as_mut().map(|s| (first.wrapping_add(i as u16), s)))
    }

    /// The oldest packet marked for resending after a timeout.
    pub fn first_needing_resend(&self) -> Option<(u16, &Sent)> {
        self.slots.iter().enumerate().find_map(|(i, s)| {
            s.as_ref()
                .filter(|s| s.need_resend)
                .map(|s| (self.first.wrapping_add(i as u16), s))
        })
    }

    /// Frees every packet.
    pub fn clear(&mut self) {
        self.first = self.first.wrapping_add(self.slots.len() as u16);
        self.slots.clear();
        self.live = 0;
    }
}

/// Out-of-order packets; slot `i` holds sequence number `ack_nr + 2 + i`.
#[derive(Debug, Default)]
pub(crate) struct Reorder {
    slots: VecDeque<Option<Vec<u8>>>,
    bytes: usize,
    count: usize,
}

impl Reorder {
    /// Payload bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Stores the packet `offset` places after the first missing one's
    /// successor; returns false if it was already there.
    pub fn insert(&mut self, offset: usize, payload: &[u8]) -> bool {
        if self.slots.len() <= offset {
            self.slots.resize(offset + 1, None);
        }
        if self.slots[offset].is_some() {
            return false;
        }
        self.bytes += payload.len();
        self.count += 1;
        self.slots[offset] = Some(payload.to_vec());
        true
    }

    /// Whether the slot at `offset` is filled.
    pub fn has(&self, offset: usize) -> bool {
        self.slots.get(offset).is_some_and(|s| s.is_some())
    }

    /// The missing packet arrived and `ack_nr` moved one up: shifts the
    /// slots and returns the packet now next in order, if held.
    pub fn shift(&mut self) -> Option<Vec<u8>> {
        let p = self.slots.pop_front().flatten();
        if let Some(p) = &p {
            self.bytes -= p.len();
            self.count -= 1;
        }
        p
    }

    /// Writes the SACK bitmask (bit `i` is slot `i`) into `out`, which must
    /// be zeroed; returns the mask length (a multiple of 4, at most
    /// `out.len()`), or 0 when nothing is held.
    pub fn write_sack(&self, out: &mut [u8]) -> usize {
        if self.count == 0 {
            return 0;
        }
        let max = out.len() / 4 * 4;
        let len = (self.slots.len().div_ceil(8).div_ceil(4) * 4).clamp(4, max.max(4));
        let len = len.min(max);
        for (i, s) in self.slots.iter().enumerate().take(len * 8) {
            if s.is_some() {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        len
    }

    /// Frees every packet.
    pub fn clear(&mut self) {
        self.slots.clear();
        self.bytes = 0;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent() -> Sent {
        Sent {
            kind: SentKind::Data,
            payload: Bytes::from_static(b"x"),
            sent_at: Duration::ZERO,
            transmissions: 1,
            need_resend: false,
            budget: 100,
        }
    }

    #[test]
    fn outbuf_acks_and_advances_across_the_wrap() {
        let mut b = OutBuf::new(65534);
        assert_eq!(b.push(sent()), 65534);
        assert_eq!(b.push(sent()), 65535);
        assert_eq!(b.push(sent()), 0);
        assert!(b.remove(65535).is_some());
        assert!(!b.advance());
        assert!(b.remove(65534).is_some());
        assert!(b.advance());
        assert_eq!(b.first(), 0);
        assert_eq!(b.live(), 1);
        assert!(b.get(0).is_some());
        assert!(b.remove(7).is_none());
        b.get_mut(0).unwrap().need_resend = true;
        assert_eq!(b.first_needing_resend().map(|p| p.0), Some(0));
        b.clear();
        assert!(b.is_empty());
        assert_eq!(b.first(), 1);
        assert_eq!(b.push(sent()), 1);
    }

    #[test]
    fn reorder_shifts_and_sacks() {
        let mut r = Reorder::default();
        assert!(r.insert(0, b"ab"));
        assert!(!r.insert(0, b"ab"));
        assert!(r.insert(9, b"c"));
        assert_eq!(r.bytes(), 3);
        let mut mask = [0u8; 8];
        assert_eq!(r.write_sack(&mut mask), 4);
        assert_eq!(mask[..4], [0b1, 0b10, 0, 0]);
        // The gap is filled: slot 0 is next.
        assert_eq!(r.shift().as_deref(), Some(&b"ab"[..]));
        assert_eq!(r.shift(), None);
        assert!(r.has(7));
        assert_eq!(r.bytes(), 1);
        let mut small = [0u8; 4];
        r.insert(100, b"z");
        assert_eq!(r.write_sack(&mut small), 4, "truncated to the room");
    }
}
