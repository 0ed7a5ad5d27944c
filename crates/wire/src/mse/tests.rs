//! Tests of the MSE handshake: both roles against each other (every crypto
//! selection, split and byte-by-byte delivery) and against a hand-written
//! peer that breaks one rule at a time.

use super::crypto::{self, DhKey, Rc4, DH_LEN};
use super::*;
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SKEY: [u8; 20] = [0x5a; 20];
const IA: &[u8] = b"\x13BitTorrent protocol-initial-payload-of-the-initiator-xxxxxxxxxxxxxx";

fn lookup_for(skeys: &[[u8; 20]]) -> Arc<dyn SkeyLookup + Send + Sync> {
    let table: Vec<([u8; 20], [u8; 20])> = skeys.iter().map(|s| (crypto::req2(s), *s)).collect();
    Arc::new(move |h: &[u8; 20]| table.iter().find(|(r, _)| r == h).map(|(_, s)| *s))
}

fn cfg(allowed: CryptoSet, prefer_rc4: bool) -> MseConfig {
    MseConfig {
        allowed,
        prefer_rc4,
        ..MseConfig::default()
    }
}

/// Moves bytes both ways, `chunk` at a time, until neither side has
/// anything to send. Returns the first error of either side.
fn shuttle(
    a: &mut MseHandshake,
    b: &mut MseHandshake,
    now: Instant,
    chunk: usize,
) -> Result<(), (char, MseError)> {
    loop {
        let mut moved = false;
        if let Some(bytes) = a.poll_transmit() {
            moved = true;
            for c in bytes.chunks(chunk) {
                b.handle_bytes(now, c).map_err(|e| ('b', e))?;
            }
        }
        if let Some(bytes) = b.poll_transmit() {
            moved = true;
            for c in bytes.chunks(chunk) {
                a.handle_bytes(now, c).map_err(|e| ('a', e))?;
            }
        }
        if !moved {
            return Ok(());
        }
    }
}

fn pair(ca: MseConfig, cb: MseConfig, seed: u64, now: Instant) -> (MseHandshake, MseHandshake) {
    let mut rng = StdRng::seed_from_u64(seed);
    let a = MseHandshake::initiator(ca, SKEY, IA, &mut rng, now);
    let b = MseHandshake::responder(cb, lookup_for(&[[1; 20], SKEY, [2; 20]]), &mut rng, now);
    (a, b)
}

/// After the handshake, payload flows both ways through the outcomes'
/// ciphers (or in the clear).
fn check_payload_flow(oa: &mut MseOutcome, ob: &mut MseOutcome) {
    send_through(oa, ob);
    send_through(ob, oa);
}

fn send_through(from: &mut MseOutcome, to: &mut MseOutcome) {
    let msg = b"\x00\x00\x00\x01\x02 some payload".to_vec();
    let mut wire = msg.clone();
    if let Some(c) = &mut from.cipher {
        c.send.apply(&mut wire);
        assert_ne!(wire, msg, "RC4 leaves the payload unchanged");
    }
    if let Some(c) = &mut to.cipher {
        c.recv.apply(&mut wire);
    }
    assert_eq!(wire, msg);
}

#[test]
fn every_crypto_selection() {
    use CryptoSet as S;
    let now = Instant::now();
    // (initiator offers, responder allows, responder prefers RC4) -> selection
    let cases = [
        (S::BOTH, S::BOTH, true, Some(Crypto::Rc4)),
        (S::BOTH, S::BOTH, false, Some(Crypto::Plaintext)),
        (S::RC4, S::BOTH, false, Some(Crypto::Rc4)),
        (S::PLAINTEXT, S::BOTH, true, Some(Crypto::Plaintext)),
        (S::BOTH, S::RC4, false, Some(Crypto::Rc4)),
        (S::BOTH, S::PLAINTEXT, true, Some(Crypto::Plaintext)),
        (S::RC4, S::RC4, true, Some(Crypto::Rc4)),
        (S::RC4, S::PLAINTEXT, true, None),
        (S::PLAINTEXT, S::RC4, true, None),
    ];
    for (i, (offer, allow, prefer, want)) in cases.into_iter().enumerate() {
        let (mut a, mut b) = pair(cfg(offer, true), cfg(allow, prefer), i as u64, now);
        let r = shuttle(&mut a, &mut b, now, usize::MAX);
        let Some(want) = want else {
            assert_eq!(
                r,
                Err((
                    'b',
                    MseError::NoCommonCrypto {
                        offered: offer.bits(),
                        allowed: allow.bits()
                    }
                )),
                "case {i}"
            );
            continue;
        };
        r.unwrap();
        assert!(a.is_done() && b.is_done(), "case {i}");
        let mut oa = a.take_outcome().unwrap();
        let mut ob = b.take_outcome().unwrap();
        assert_eq!((oa.crypto, ob.crypto), (want, want), "case {i}");
        assert_eq!((oa.skey, ob.skey), (SKEY, SKEY));
        assert_eq!(ob.payload, IA, "the responder got the initial payload");
        assert!(oa.payload.is_empty());
        assert_eq!(oa.cipher.is_some(), want == Crypto::Rc4);
        assert_eq!(ob.cipher.is_some(), want == Crypto::Rc4);
        check_payload_flow(&mut oa, &mut ob);
        assert!(a.take_outcome().is_none(), "taken once");
    }
}

#[test]
fn split_and_byte_by_byte_delivery() {
    let now = Instant::now();
    for (seed, chunk) in [(10, 1), (11, 2), (12, 7), (13, 19), (14, 97), (15, 500)] {
        let (mut a, mut b) = pair(MseConfig::default(), MseConfig::default(), seed, now);
        shuttle(&mut a, &mut b, now, chunk).unwrap();
        let oa = a.take_outcome().unwrap();
        let ob = b.take_outcome().unwrap();
        assert_eq!((oa.crypto, ob.crypto), (Crypto::Rc4, Crypto::Rc4));
        assert_eq!(ob.payload, IA, "chunk {chunk}");
    }
}

#[test]
fn payload_that_arrives_with_the_handshake_is_decrypted() {
    // The responder's first payload bytes come in the same read as step 4.
    let now = Instant::now();
    for crypto in [CryptoSet::RC4, CryptoSet::PLAINTEXT] {
        let (mut a, mut b) = pair(cfg(crypto, true), cfg(crypto, true), 3, now);
        let step1 = a.poll_transmit().unwrap();
        b.handle_bytes(now, &step1).unwrap();
        let step2 = b.poll_transmit().unwrap();
        a.handle_bytes(now, &step2).unwrap();
        let step3 = a.poll_transmit().unwrap();
        b.handle_bytes(now, &step3).unwrap();
        assert!(b.is_done());
        let mut step4 = b.poll_transmit().unwrap();
        let ob = b.take_outcome().unwrap();
        let mut more = b"responder payload".to_vec();
        let mut ob_cipher = ob.cipher;
        if let Some(c) = &mut ob_cipher {
            c.send.apply(&mut more);
        }
        step4.extend_from_slice(&more);
        a.handle_bytes(now, &step4).unwrap();
        assert!(a.is_done());
        let oa = a.take_outcome().unwrap();
        assert_eq!(oa.payload, b"responder payload");
    }
}

/// A hand-written initiator that can break one rule at a time.
#[derive(Clone)]
struct Manual {
    pad_a: usize,
    pad_c: usize,
    /// Announced `len(PadC)`, when different from `pad_c`.
    pad_c_field: Option<u16>,
    provide: u32,
    ia: Vec<u8>,
    ia_field: Option<u16>,
    vc: [u8; 8],
    skey: [u8; 20],
    public: Option<[u8; DH_LEN]>,
}

impl Default for Manual {
    fn default() -> Self {
        Manual {
            pad_a: 0,
            pad_c: 0,
            pad_c_field: None,
            provide: 0x03,
            ia: IA.to_vec(),
            ia_field: None,
            vc: [0; 8],
            skey: SKEY,
            public: None,
        }
    }
}

impl Manual {
    /// Runs against a responder; returns its result.
    fn run(&self, now: Instant) -> Result<MseHandshake, MseError> {
        let mut rng = StdRng::seed_from_u64(99);
        let mut b = MseHandshake::responder(
            MseConfig::default(),
            lookup_for(&[SKEY, [1; 20]]),
            &mut rng,
            now,
        );
        let key = DhKey::new([0x42; 20]);
        let mut step1 = self.public.unwrap_or(*key.public()).to_vec();
        step1.extend(std::iter::repeat_n(0xab, self.pad_a));
        b.handle_bytes(now, &step1)?;
        let step2 = b.poll_transmit().expect("responder answers with its key");
        let mut yb = [0u8; DH_LEN];
        yb.copy_from_slice(&step2[..DH_LEN]);
        let s = key.shared_secret(&yb).expect("valid key");
        let mut step3 = crypto::req1(&s).to_vec();
        step3.extend_from_slice(&crypto::xor20(&crypto::req2(&self.skey), &crypto::req3(&s)));
        let mut enc = self.vc.to_vec();
        enc.extend_from_slice(&self.provide.to_be_bytes());
        let pad_c_field = self.pad_c_field.unwrap_or(self.pad_c as u16);
        enc.extend_from_slice(&pad_c_field.to_be_bytes());
        enc.extend(std::iter::repeat_n(0, self.pad_c));
        let ia_field = self.ia_field.unwrap_or(self.ia.len() as u16);
        enc.extend_from_slice(&ia_field.to_be_bytes());
        enc.extend_from_slice(&self.ia);
        let (mut send, _) = Rc4::pair(&s, &self.skey, true);
        send.apply(&mut enc);
        step3.extend_from_slice(&enc);
        b.handle_bytes(now, &step3)?;
        Ok(b)
    }
}

#[test]
fn the_hand_written_peer_completes_when_it_follows_the_rules() {
    let now = Instant::now();
    for pad in [0, 1, 511, 512] {
        let m = Manual {
            pad_a: pad,
            pad_c: pad,
            ..Manual::default()
        };
        let mut b = m.run(now).unwrap();
        let o = b.take_outcome().unwrap();
        assert_eq!(o.payload, IA, "pad {pad}");
        assert_eq!(o.crypto, Crypto::Rc4);
    }
    // An empty initial payload is allowed (the handshake then follows it).
    let m = Manual {
        ia: Vec::new(),
        ..Manual::default()
    };
    assert!(m.run(now).unwrap().is_done());
}

#[test]
fn oversized_padding_is_refused() {
    let now = Instant::now();
    let m = Manual {
        pad_a: 513,
        ..Manual::default()
    };
    assert!(matches!(m.run(now), Err(MseError::SyncHashNotFound { .. })));
    let m = Manual {
        pad_c_field: Some(513),
        ..Manual::default()
    };
    assert_eq!(m.run(now).unwrap_err(), MseError::PadTooLong { len: 513 });
    let m = Manual {
        ia_field: Some((MAX_IA_LEN + 1) as u16),
        ..Manual::default()
    };
    assert_eq!(
        m.run(now).unwrap_err(),
        MseError::InitialPayloadTooLong {
            len: MAX_IA_LEN + 1
        }
    );
}

#[test]
fn wrong_skey_bad_vc_and_bad_keys_are_refused() {
    let now = Instant::now();
    let unknown = Manual {
        skey: [0x77; 20],
        ..Manual::default()
    };
    assert_eq!(unknown.run(now).unwrap_err(), MseError::UnknownTorrent);
    let bad_vc = Manual {
        vc: [0, 0, 0, 0, 0, 0, 0, 1],
        ..Manual::default()
    };
    assert_eq!(bad_vc.run(now).unwrap_err(), MseError::BadVc);
    let mut one = [0u8; DH_LEN];
    one[DH_LEN - 1] = 1;
    let bad_key = Manual {
        public: Some(one),
        ..Manual::default()
    };
    assert_eq!(bad_key.run(now).unwrap_err(), MseError::BadPublicKey);

    // A responder whose lookup maps the hash to the wrong SKEY: its RC4 keys
    // differ from the initiator's and the VC does not decrypt.
    let mut rng = StdRng::seed_from_u64(5);
    let mut a = MseHandshake::initiator(MseConfig::default(), SKEY, IA, &mut rng, now);
    let liar: Arc<dyn SkeyLookup + Send + Sync> = Arc::new(|_: &[u8; 20]| Some([0x33; 20]));
    let mut b = MseHandshake::responder(MseConfig::default(), liar, &mut rng, now);
    assert_eq!(
        shuttle(&mut a, &mut b, now, usize::MAX),
        Err(('b', MseError::BadVc))
    );
    // Failed handshakes refuse everything after.
    assert_eq!(b.handle_bytes(now, &[0]), Err(MseError::Closed));
    assert!(b.poll_timeout().is_none());
}

#[test]
fn the_initiator_checks_the_responder() {
    let now = Instant::now();
    // A responder that pads PadB beyond 512 bytes: the VC is never found.
    let mut rng = StdRng::seed_from_u64(8);
    let mut a = MseHandshake::initiator(MseConfig::default(), SKEY, IA, &mut rng, now);
    let _ = a.poll_transmit();
    let b = DhKey::new([0x24; 20]);
    let mut step2 = b.public().to_vec();
    step2.extend(std::iter::repeat_n(0xcd, 600));
    assert!(matches!(
        a.handle_bytes(now, &step2),
        Err(MseError::VcNotFound { scanned }) if scanned >= 520
    ));

    // A responder that selects what was not offered.
    for (offer, select) in [
        (CryptoSet::RC4, 0x01u32),
        (CryptoSet::BOTH, 0x03),
        (CryptoSet::BOTH, 0x04),
    ] {
        let mut a = MseHandshake::initiator(cfg(offer, true), SKEY, IA, &mut rng, now);
        let step1 = a.poll_transmit().unwrap();
        let mut ya = [0u8; DH_LEN];
        ya.copy_from_slice(&step1[..DH_LEN]);
        let s = b.shared_secret(&ya).unwrap();
        let mut step4 = b.public().to_vec();
        let (mut send, _) = Rc4::pair(&s, &SKEY, false);
        let mut enc = VC.to_vec();
        enc.extend_from_slice(&select.to_be_bytes());
        enc.extend_from_slice(&0u16.to_be_bytes());
        send.apply(&mut enc);
        step4.extend_from_slice(&enc);
        assert_eq!(
            a.handle_bytes(now, &step4),
            Err(MseError::BadCryptoSelect {
                selected: select,
                offered: offer.bits()
            })
        );
    }
}

#[test]
fn the_deadline_bounds_the_whole_handshake() {
    let now = Instant::now();
    let (mut a, mut b) = pair(MseConfig::default(), MseConfig::default(), 1, now);
    let deadline = a.poll_timeout().unwrap();
    assert_eq!(deadline, now + MseConfig::default().timeout);
    assert_eq!(a.handle_timeout(now + Duration::from_secs(1)), Ok(()));
    let step1 = a.poll_transmit().unwrap();
    b.handle_bytes(now, &step1).unwrap();
    // B's answer arrives too late.
    let step2 = b.poll_transmit().unwrap();
    assert_eq!(a.handle_bytes(deadline, &step2), Err(MseError::TimedOut));
    assert_eq!(b.handle_timeout(deadline), Err(MseError::TimedOut));
    assert_eq!(b.handle_timeout(deadline), Err(MseError::Closed));
    // A finished handshake has no deadline.
    let (mut a, mut b) = pair(MseConfig::default(), MseConfig::default(), 2, now);
    shuttle(&mut a, &mut b, now, usize::MAX).unwrap();
    assert!(a.poll_timeout().is_none() && b.poll_timeout().is_none());
    assert_eq!(a.handle_timeout(now + Duration::from_secs(3600)), Ok(()));
}

#[test]
fn random_input_never_panics_and_is_bounded() {
    let now = Instant::now();
    let mut rng = StdRng::seed_from_u64(77);
    for round in 0..200 {
        let mut b =
            MseHandshake::responder(MseConfig::default(), lookup_for(&[SKEY]), &mut rng, now);
        let mut a = MseHandshake::initiator(MseConfig::default(), SKEY, IA, &mut rng, now);
        let mut junk = vec![0u8; 2000];
        rng.fill_bytes(&mut junk);
        let mut failed = (false, false);
        for c in junk.chunks(1 + round % 64) {
            failed.0 |= b.handle_bytes(now, c).is_err();
            failed.1 |= a.handle_bytes(now, c).is_err();
        }
        // Junk cannot carry a valid sync marker: both give up within the limits.
        assert_eq!(failed, (true, true), "round {round}");
    }
}
