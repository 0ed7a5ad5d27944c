//! The cryptographic pieces of MSE/PE: the 768-bit Diffie-Hellman group
//! (prime P of the spec, generator 2, 160-bit private keys), the SHA-1
//! derived values (`HASH('req1', S)`, the obfuscated info-hash, the RC4
//! keys) and [`Rc4`], RC4 with its first 1024 keystream bytes discarded.
//!
//! The modular exponentiation is `num-bigint`'s (Montgomery multiplication
//! for the odd prime): a well-kept, stable crate, and fast enough for one
//! 768-bit exponentiation with a 160-bit exponent per connection (measured
//! in `tests::dh_cost`). It is not constant-time; MSE keys are ephemeral
//! and the protocol only hides traffic from passive observers, so timing
//! leaks of one connection's exponent are not worth a less stable API.

use num_bigint::BigUint;
use rc4::{KeyInit, StreamCipher};
use sha1::{Digest, Sha1};
use std::sync::OnceLock;

/// Length of a DH public key and of the shared secret on the wire.
pub const DH_LEN: usize = 96;
/// Length of a private key (160 bits, as libtorrent and the spec use).
pub const PRIVATE_KEY_LEN: usize = 20;
/// Keystream bytes RC4 discards before use.
pub const RC4_DISCARD: usize = 1024;

/// The 768-bit MSE prime P (big-endian hex), as in the spec.
const PRIME_HEX: &[u8] = b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74\
020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576\
625E7EC6F44C42E9A63A36210000000000090563";

fn prime() -> &'static BigUint {
    static P: OnceLock<BigUint> = OnceLock::new();
    // A constant that parses: the fallback is never taken.
    P.get_or_init(|| BigUint::parse_bytes(PRIME_HEX, 16).unwrap_or_default())
}

/// A number as `DH_LEN` big-endian bytes (left-padded with zeros).
fn export(n: &BigUint) -> [u8; DH_LEN] {
    let b = n.to_bytes_be();
    let mut out = [0u8; DH_LEN];
    let len = b.len().min(DH_LEN);
    out[DH_LEN - len..].copy_from_slice(&b[b.len() - len..]);
    out
}

/// One side's DH key pair.
pub struct DhKey {
    private: BigUint,
    public: [u8; DH_LEN],
}

impl std::fmt::Debug for DhKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhKey").finish_non_exhaustive()
    }
}

impl DhKey {
    /// A key pair from 20 random bytes: `Y = 2^X mod P`.
    pub fn new(private: [u8; PRIVATE_KEY_LEN]) -> Self {
        let private = BigUint::from_bytes_be(&private);
        let public = export(&BigUint::from(2u32).modpow(&private, prime()));
        DhKey { private, public }
    }

    /// The public key as sent (96 bytes, big-endian).
    pub fn public(&self) -> &[u8; DH_LEN] {
        &self.public
    }

    /// The shared secret `S = Y_remote^X mod P`, or `None` when the remote
    /// key is degenerate (outside `[2, P-2]`: its secret would lie in a
    /// subgroup of order at most 2), as libtorrent refuses it.
    pub fn shared_secret(&self, remote: &[u8; DH_LEN]) -> Option<[u8; DH_LEN]> {
        let y = BigUint::from_bytes_be(remote);
        let p = prime();
        if y < BigUint::from(2u32) || y >= p - 1u32 {
            return None;
        }
        Some(export(&y.modpow(&self.private, p)))
    }
}

fn sha1(parts: &[&[u8]]) -> [u8; 20] {
    let mut h = Sha1::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// `HASH('req1', S)`: the initiator's synchronisation marker.
pub fn req1(secret: &[u8; DH_LEN]) -> [u8; 20] {
    sha1(&[b"req1", secret])
}

/// `HASH('req2', SKEY)`: what a responder precomputes for each torrent it
/// serves (SKEY is the v1 info-hash or the truncated v2 one).
pub fn req2(skey: &[u8; 20]) -> [u8; 20] {
    sha1(&[b"req2", skey])
}

/// `HASH('req3', S)`: the mask that hides `req2` on the wire.
pub fn req3(secret: &[u8; DH_LEN]) -> [u8; 20] {
    sha1(&[b"req3", secret])
}

/// `a xor b`.
pub fn xor20(a: &[u8; 20], b: &[u8; 20]) -> [u8; 20] {
    std::array::from_fn(|i| a[i] ^ b[i])
}

/// RC4 as MSE uses it: keyed with a 20-byte SHA-1 value, its first 1024
/// keystream bytes discarded. Encryption and decryption are the same
/// operation.
pub struct Rc4(rc4::Rc4);

impl std::fmt::Debug for Rc4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rc4").finish_non_exhaustive()
    }
}

impl Rc4 {
    /// RC4 keyed with `key` (1 to 256 bytes; MSE's are 20), the first
    /// [`RC4_DISCARD`] bytes of keystream already dropped.
    pub fn new(key: &[u8; 20]) -> Self {
        // A 20-byte key is within RC4's 1..=256: `new_from_slice` cannot fail.
        let Ok(inner) = rc4::Rc4::new_from_slice(key) else {
            unreachable!("RC4 accepts 20-byte keys")
        };
        let mut c = Rc4(inner);
        c.apply(&mut [0u8; RC4_DISCARD]);
        c
    }

    /// The keys of the two directions for one side: `(outgoing, incoming)`.
    /// The initiator (A) sends with `HASH('keyA', S, SKEY)` and receives
    /// with `HASH('keyB', S, SKEY)`; the responder the other way round.
    pub fn pair(secret: &[u8; DH_LEN], skey: &[u8; 20], initiator: bool) -> (Rc4, Rc4) {
        let a = Rc4::new(&sha1(&[b"keyA", secret, skey]));
        let b = Rc4::new(&sha1(&[b"keyB", secret, skey]));
        if initiator {
            (a, b)
        } else {
            (b, a)
        }
    }

    /// Encrypts (or decrypts) `buf` in place.
    pub fn apply(&mut self, buf: &mut [u8]) {
        self.0.apply_keystream(buf);
    }

    /// Encrypts `input` into `output` (same length: only the shorter prefix
    /// of both is processed), in one pass.
    pub fn apply_to(&mut self, input: &[u8], output: &mut [u8]) {
        let n = input.len().min(output.len());
        // Equal lengths, as `apply_keystream_b2b` requires.
        self.0.apply_keystream_b2b(&input[..n], &mut output[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prime_is_768_bits_and_odd() {
        let p = prime();
        assert_eq!(p.bits(), 768);
        assert!(p.bit(0));
        assert_eq!(export(p)[0], 0xff);
        assert_eq!(&export(p)[DH_LEN - 3..], &[0x09, 0x05, 0x63]);
    }

    #[test]
    fn both_sides_agree_on_the_secret() {
        let a = DhKey::new([0x11; 20]);
        let b = DhKey::new([0x22; 20]);
        let sa = a.shared_secret(b.public()).unwrap();
        let sb = b.shared_secret(a.public()).unwrap();
        assert_eq!(sa, sb);
        assert_ne!(sa, [0; DH_LEN]);
        // A private key of 1 gives the generator itself.
        let one = DhKey::new({
            let mut k = [0u8; 20];
            k[19] = 1;
            k
        });
        let mut two = [0u8; DH_LEN];
        two[DH_LEN - 1] = 2;
        assert_eq!(one.public(), &two);
    }

    #[test]
    fn degenerate_public_keys_are_refused() {
        let a = DhKey::new([0x33; 20]);
        let mut y = [0u8; DH_LEN];
        assert!(a.shared_secret(&y).is_none()); // 0
        y[DH_LEN - 1] = 1;
        assert!(a.shared_secret(&y).is_none()); // 1
        y[DH_LEN - 1] = 2;
        assert!(a.shared_secret(&y).is_some()); // 2 is allowed
        let p_minus_1 = export(&(prime() - 1u32));
        assert!(a.shared_secret(&p_minus_1).is_none());
        assert!(a.shared_secret(&export(prime())).is_none());
        assert!(a.shared_secret(&[0xff; DH_LEN]).is_none());
        let p_minus_2 = export(&(prime() - 2u32));
        assert!(a.shared_secret(&p_minus_2).is_some());
    }

    #[test]
    fn rc4_matches_the_rfc_6229_vector_after_the_discard() {
        // RFC 6229, key 0x0102030405 (40 bits): keystream at offsets 0 and 1024.
        let key = [1u8, 2, 3, 4, 5];
        let mut raw = rc4::Rc4::new_from_slice(&key).unwrap();
        let mut ks = [0u8; 1040];
        raw.apply_keystream(&mut ks);
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        assert_eq!(hex(&ks[..16]), "b2396305f03dc027ccc3524a0a1118a8");
        assert_eq!(hex(&ks[1024..]), "30abbcc7c20b01609f23ee2d5f6bb7df");
        // Our wrapper discards exactly RC4_DISCARD bytes.
        let k20: [u8; 20] = std::array::from_fn(|i| i as u8);
        let mut raw = rc4::Rc4::new_from_slice(&k20).unwrap();
        let mut ks = [0u8; 1100];
        raw.apply_keystream(&mut ks);
        let mut ours = [0u8; 76];
        Rc4::new(&k20).apply(&mut ours);
        assert_eq!(&ours[..], &ks[1024..]);
    }

    #[test]
    fn pair_directions_cross() {
        let s = [7u8; DH_LEN];
        let skey = [9u8; 20];
        let (mut a_out, mut a_in) = Rc4::pair(&s, &skey, true);
        let (mut b_out, mut b_in) = Rc4::pair(&s, &skey, false);
        let mut m = *b"hello, responder";
        a_out.apply(&mut m);
        assert_ne!(&m, b"hello, responder");
        b_in.apply(&mut m);
        assert_eq!(&m, b"hello, responder");
        let mut r = *b"hello, initiator";
        let mut enc = [0u8; 16];
        b_out.apply_to(&r, &mut enc);
        a_in.apply(&mut enc);
        assert_eq!(enc, r);
        r.fill(0);
    }

    /// Prints what one handshake's DH work costs (`cargo test -p shoal-wire
    /// --release -- --ignored dh_cost --nocapture`).
    #[test]
    #[ignore = "measurement, not a test"]
    fn dh_cost() {
        let n = 200;
        let t = std::time::Instant::now();
        for i in 0..n {
            let a = DhKey::new([(i as u8) | 0x01; 20]);
            let b = DhKey::new([(i as u8) | 0x80; 20]);
            assert!(a.shared_secret(b.public()).is_some());
        }
        let per = t.elapsed() / (2 * n);
        println!("768-bit DH: {per:?} per modexp (key pair or shared secret)");
    }

    /// Prints RC4 throughput on this machine, in place and buffer to buffer
    /// (`cargo test -p shoal-wire --release --lib -- --ignored rc4_throughput
    /// --nocapture`).
    #[test]
    #[ignore = "measurement, not a test"]
    fn rc4_throughput() {
        let total = 512usize << 20;
        let mut buf = vec![0x5au8; 64 * 1024];
        let mut out = vec![0u8; 64 * 1024];
        let mut c = Rc4::new(&[1; 20]);
        let t = std::time::Instant::now();
        for _ in 0..total / buf.len() {
            c.apply(&mut buf);
        }
        let in_place = total as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
        let t = std::time::Instant::now();
        for _ in 0..total / buf.len() {
            c.apply_to(&buf, &mut out);
        }
        let b2b = total as f64 / (1 << 20) as f64 / t.elapsed().as_secs_f64();
        println!("RC4: {in_place:.0} MiB/s in place, {b2b:.0} MiB/s buffer to buffer");
        assert!(buf.iter().any(|&b| b != 0x5a));
    }
}
