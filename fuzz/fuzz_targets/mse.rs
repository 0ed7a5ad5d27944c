#![no_main]
//! Fuzz the MSE/PE handshake, both roles. Raw bytes go to a fresh
//! responder and a fresh initiator (they must fail or wait, never panic).
//! Then an honest pair runs with the fuzz input XORed into one side's
//! messages: RC4 is a XOR stream, so flipped ciphertext bits flip the
//! decrypted fields (pad lengths, crypto fields, len(IA)) and the fuzzer
//! reaches every state past the sync markers.
use libfuzzer_sys::fuzz_target;
use rand::rngs::StdRng;
use rand::SeedableRng;
use shoal_wire::mse::{crypto, CryptoSet, MseConfig, MseHandshake, SkeyLookup};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SKEY: [u8; 20] = [0x42; 20];

fn lookup() -> Arc<dyn SkeyLookup + Send + Sync> {
    let want = crypto::req2(&SKEY);
    Arc::new(move |h: &[u8; 20]| (*h == want).then_some(SKEY))
}

fn feed(h: &mut MseHandshake, now: Instant, bytes: &[u8], chunk: usize) -> bool {
    bytes.chunks(chunk.max(1)).all(|c| h.handle_bytes(now, c).is_ok())
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let now = Instant::now();
    let chunk = usize::from(mode >> 2) + 1;
    let cfg = MseConfig {
        allowed: match mode & 3 {
            0 => CryptoSet::PLAINTEXT,
            1 => CryptoSet::RC4,
            _ => CryptoSet::BOTH,
        },
        prefer_rc4: mode & 0x80 != 0,
        max_pad: usize::from(mode),
        timeout: Duration::from_secs(10),
    };
    let mut rng = StdRng::seed_from_u64(u64::from(mode));

    // Raw input to both roles.
    let mut b = MseHandshake::responder(cfg.clone(), lookup(), &mut rng, now);
    feed(&mut b, now, rest, chunk);
    let mut a = MseHandshake::initiator(cfg.clone(), SKEY, b"ia", &mut rng, now);
    feed(&mut a, now, rest, chunk);
    let _ = a.handle_timeout(now + Duration::from_secs(11));

    // An honest pair, one side's messages XORed with the input.
    let mut a = MseHandshake::initiator(cfg.clone(), SKEY, b"initial payload", &mut rng, now);
    let mut b = MseHandshake::responder(cfg, lookup(), &mut rng, now);
    let tamper_a = mode & 0x40 != 0;
    let mut offset = 0usize;
    for _ in 0..4 {
        let mut moved = false;
        if let Some(mut m) = a.poll_transmit() {
            moved = true;
            if tamper_a {
                for (i, x) in m.iter_mut().enumerate() {
                    *x ^= rest.get(offset + i).copied().unwrap_or(0);
                }
                offset += m.len();
            }
            if !feed(&mut b, now, &m, chunk) {
                return;
            }
        }
        if let Some(mut m) = b.poll_transmit() {
            moved = true;
            if !tamper_a {
                for (i, x) in m.iter_mut().enumerate() {
                    *x ^= rest.get(offset + i).copied().unwrap_or(0);
                }
                offset += m.len();
            }
            if !feed(&mut a, now, &m, chunk) {
                return;
            }
        }
        if !moved {
            break;
        }
    }
    // Whatever is left of the input arrives as payload.
    let tail = rest.get(offset..).unwrap_or(&[]);
    let _ = feed(&mut a, now, tail, chunk);
    let _ = feed(&mut b, now, tail, chunk);
    let _ = a.take_outcome();
    let _ = b.take_outcome();
});
