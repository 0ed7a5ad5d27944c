//! Write tokens (BEP 5): `SHA-1(ip || secret)` truncated to 8 bytes; the secret rotates
//! every 5 minutes and tokens from the current and previous secret are accepted.
use rand::Rng;
use sha1::{Digest, Sha1};
use std::net::IpAddr;

/// How often the secret rotates, in milliseconds.
pub const ROTATE_MS: u64 = 5 * 60 * 1000;
/// Token length in bytes.
pub const TOKEN_LEN: usize = 8;

/// Token secrets: current and previous.
#[derive(Clone, Debug)]
pub struct Tokens {
    current: [u8; 8],
    previous: [u8; 8],
    rotated_at: u64,
}

fn make(secret: &[u8; 8], ip: IpAddr) -> [u8; TOKEN_LEN] {
    let mut h = Sha1::new();
    match ip {
        IpAddr::V4(v4) => h.update(v4.octets()),
        IpAddr::V6(v6) => h.update(v6.octets()),
    }
    h.update(secret);
    let d = h.finalize();
    let mut t = [0u8; TOKEN_LEN];
    t.copy_from_slice(&d[..TOKEN_LEN]);
    t
}

impl Tokens {
    /// Fresh secrets drawn from `rng`, valid from `now` (ms).
    pub fn new<R: Rng + ?Sized>(now: u64, rng: &mut R) -> Self {
        Tokens {
            current: rng.gen(),
            previous: rng.gen(),
            rotated_at: now,
        }
    }

    /// Rotates the secret when it is older than [`ROTATE_MS`].
    pub fn maybe_rotate<R: Rng + ?Sized>(&mut self, now: u64, rng: &mut R) {
        if now.saturating_sub(self.rotated_at) >= ROTATE_MS {
            self.previous = self.current;
            self.current = rng.gen();
            self.rotated_at = now;
        }
    }

    /// The time of the next rotation.
    pub fn next_rotation(&self) -> u64 {
        self.rotated_at + ROTATE_MS
    }

    /// The token to hand to `ip`.
    pub fn token_for(&self, ip: IpAddr) -> [u8; TOKEN_LEN] {
        make(&self.current, ip)
    }

    /// Whether `token` was issued to `ip` under the current or previous secret.
    pub fn check(&self, ip: IpAddr, token: &[u8]) -> bool {
        token == make(&self.current, ip) || token == make(&self.previous, ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn rotation_accepts_previous_only() {
        let mut rng = SmallRng::seed_from_u64(1);
        let mut t = Tokens::new(0, &mut rng);
        let ip: IpAddr = "1.2.3.4".parse().unwrap();
        let other: IpAddr = "1.2.3.5".parse().unwrap();
        let tok = t.token_for(ip);
        assert!(t.check(ip, &tok));
        assert!(!t.check(other, &tok));
        t.maybe_rotate(ROTATE_MS - 1, &mut rng);
        assert_eq!(t.token_for(ip), tok);
        t.maybe_rotate(ROTATE_MS, &mut rng);
        assert!(t.check(ip, &tok));
        t.maybe_rotate(2 * ROTATE_MS, &mut rng);
        assert!(!t.check(ip, &tok));
    }
}
