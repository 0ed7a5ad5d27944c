//! BEP 15 connection ids without per-client state: an id is a keyed hash
//! (SipHash-1-3 under a random 128-bit secret) of the client's address and
//! the current time epoch (one minute). An id is accepted during its epoch
//! and the next, so it lives between one and two minutes, and nobody without
//! the secret can make one for an address they cannot receive packets at.
use siphasher::sip::SipHasher13;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};

/// Length of one epoch in seconds.
pub const EPOCH_SECS: u32 = 60;

/// Issues and checks connection ids.
#[derive(Debug, Clone)]
pub struct ConnectionIds {
    key: [u8; 16],
}

impl ConnectionIds {
    /// Ids keyed by `secret` (random at start; never persisted).
    pub fn new(secret: [u8; 16]) -> Self {
        ConnectionIds { key: secret }
    }

    fn id_for_epoch(&self, epoch: u32, from: &SocketAddr) -> u64 {
        let mut h = SipHasher13::new_with_key(&self.key);
        h.write_u32(epoch);
        match crate::peers::canonical_ip(from.ip()) {
            IpAddr::V4(ip) => h.write(&ip.octets()),
            IpAddr::V6(ip) => h.write(&ip.octets()),
        }
        h.write_u16(from.port());
        h.finish()
    }

    /// The id for a client at `from` at tracker time `now` (seconds).
    pub fn issue(&self, now: u32, from: &SocketAddr) -> u64 {
        self.id_for_epoch(now / EPOCH_SECS, from)
    }

    /// True if `id` was issued to `from` in this epoch or the previous one.
    pub fn check(&self, now: u32, from: &SocketAddr, id: u64) -> bool {
        let e = now / EPOCH_SECS;
        id == self.id_for_epoch(e, from) || (e > 0 && id == self.id_for_epoch(e - 1, from))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ids_live_one_to_two_epochs() {
        let ids = ConnectionIds::new([1; 16]);
        let from = a("10.0.0.1:5000");
        // Issued at the very end of an epoch: still good for the whole next one.
        let t = 10 * EPOCH_SECS + EPOCH_SECS - 1;
        let id = ids.issue(t, &from);
        assert!(ids.check(t, &from, id));
        assert!(ids.check(t + 1, &from, id));
        assert!(ids.check(t + EPOCH_SECS, &from, id));
        assert!(!ids.check(t + EPOCH_SECS + 1, &from, id));
        // Issued at the start of an epoch: good for two minutes less a second.
        let t = 20 * EPOCH_SECS;
        let id = ids.issue(t, &from);
        assert!(ids.check(t + 2 * EPOCH_SECS - 1, &from, id));
        assert!(!ids.check(t + 2 * EPOCH_SECS, &from, id));
        // The ids of two epochs differ.
        assert_ne!(ids.issue(t, &from), ids.issue(t + EPOCH_SECS, &from));
    }

    #[test]
    fn ids_are_bound_to_address_and_secret() {
        let ids = ConnectionIds::new([1; 16]);
        let t = 1000;
        let id = ids.issue(t, &a("10.0.0.1:5000"));
        assert!(!ids.check(t, &a("10.0.0.1:5001"), id), "other port");
        assert!(!ids.check(t, &a("10.0.0.2:5000"), id), "other ip");
        assert!(!ConnectionIds::new([2; 16]).check(t, &a("10.0.0.1:5000"), id));
        // A mapped address is the same client as its IPv4 form.
        assert!(ids.check(t, &a("[::ffff:10.0.0.1]:5000"), id));
        // Guessing does not work: none of many forged ids pass.
        let from = a("10.0.0.1:5000");
        let forged = (0..100_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .filter(|f| ids.check(t, &from, *f))
            .count();
        assert_eq!(forged, 0);
    }
}
