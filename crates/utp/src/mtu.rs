//! Path MTU discovery as libtorrent does it: ordinary packets use the largest
//! datagram size known to get through (the floor); now and then, with enough
//! packets in flight around it to tell a lost probe from ordinary loss, one
//! packet is sent at the midpoint between the floor and the ceiling. An acked
//! probe raises the floor, a lost one lowers the ceiling: a binary search
//! that stops once the two are within a few bytes. A send refused as too big
//! (`EMSGSIZE` with the don't-fragment bit) lowers the ceiling at once.

/// The search is over once floor and ceiling are this close.
const DONE_WITHIN: u16 = 8;

/// The MTU search of one connection (sizes are whole uTP datagrams).
#[derive(Debug, Clone)]
pub struct MtuSearch {
    floor: u16,
    ceiling: u16,
    probe: Option<(u16, u16)>,
}

impl MtuSearch {
    /// A search between `floor` and `ceiling` datagram bytes.
    pub fn new(floor: u16, ceiling: u16) -> MtuSearch {
        MtuSearch {
            floor: floor.min(ceiling),
            ceiling,
            probe: None,
        }
    }

    /// The size of ordinary packets.
    pub fn floor(&self) -> usize {
        self.floor as usize
    }

    /// The largest size that may get through.
    pub fn ceiling(&self) -> usize {
        self.ceiling as usize
    }

    /// The size of the next probe.
    pub fn probe_size(&self) -> usize {
        (self.floor as usize + self.ceiling as usize).div_ceil(2)
    }

    /// Whether the next packet should be a probe: none outstanding, the
    /// search not over, and more than three ordinary packets of window.
    pub fn want_probe(&self, cwnd: usize) -> bool {
        self.probe.is_none()
            && self.ceiling - self.floor >= DONE_WITHIN
            && cwnd > 3 * self.floor as usize
    }

    /// The sequence number of the outstanding probe.
    pub fn probe_seq(&self) -> Option<u16> {
        self.probe.map(|p| p.0)
    }

    /// A probe of `size` bytes went out as packet `seq`.
    pub fn probe_sent(&mut self, seq: u16, size: usize) {
        self.probe = Some((seq, size.min(u16::MAX as usize) as u16));
    }

    /// Packet `seq` was acked: if it was the probe, its size gets through.
    pub fn on_acked(&mut self, seq: u16) {
        if let Some((p, size)) = self.probe {
            if p == seq {
                self.floor = self.floor.max(size).min(self.ceiling);
                self.probe = None;
            }
        }
    }

    /// Packet `seq` was lost: if it was the probe, its size does not get
    /// through. Returns whether it was the probe.
    pub fn on_lost(&mut self, seq: u16) -> bool {
        match self.probe {
            Some((p, size)) if p == seq => {
                self.ceiling = size.saturating_sub(1).max(self.floor);
                self.probe = None;
                true
            }
            _ => false,
        }
    }

    /// Everything in flight timed out: the probe tells nothing.
    pub fn forget_probe(&mut self) {
        self.probe = None;
    }

    /// Sending `size` bytes was refused as too big.
    pub fn too_big(&mut self, size: usize) {
        let size = size.min(u16::MAX as usize) as u16;
        let limit = size
            .saturating_sub(1)
            .max(crate::packet::HEADER_LEN as u16 + 1);
        self.ceiling = self.ceiling.min(limit);
        self.floor = self.floor.min(self.ceiling);
        self.probe = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_search_converges_on_the_path_mtu() {
        let path = 1400usize;
        let mut m = MtuSearch::new(1220, 1472);
        let mut seq = 0u16;
        let mut probes = 0;
        while m.want_probe(100_000) {
            seq += 1;
            let size = m.probe_size();
            m.probe_sent(seq, size);
            if size <= path {
                m.on_acked(seq);
            } else {
                assert!(m.on_lost(seq));
            }
            probes += 1;
            assert!(probes < 20);
        }
        assert!(
            m.floor() <= path && path - m.floor() < DONE_WITHIN as usize,
            "{}",
            m.floor()
        );
        assert!(probes <= 6, "{probes} probes");
    }

    #[test]
    fn probes_need_window_and_one_at_a_time() {
        let mut m = MtuSearch::new(1220, 1472);
        assert!(!m.want_probe(3 * 1220));
        assert!(m.want_probe(3 * 1220 + 1));
        m.probe_sent(7, m.probe_size());
        assert!(!m.want_probe(100_000));
        assert!(!m.on_lost(8));
        m.forget_probe();
        assert!(m.want_probe(100_000));
    }

    #[test]
    fn refused_send_lowers_the_ceiling() {
        let mut m = MtuSearch::new(1220, 1472);
        m.too_big(1400);
        assert_eq!(m.ceiling(), 1399);
        m.too_big(1000);
        assert_eq!(m.ceiling(), 999);
        assert_eq!(m.floor(), 999);
    }
}
