//! Tests of the MSE handshake over tokio streams, the listening side's
//! detection and policies, and property tests of [`MseStream`].

use super::crypto::{self, Rc4};
use super::io::{accept, run, AcceptError, AcceptPolicy, MseIoError};
use super::*;
use crate::handshake::{Handshake, InfoHash, PeerId, Reserved};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt, DuplexStream};

const SKEY: [u8; 20] = [0x61; 20];

fn lookup() -> Arc<dyn SkeyLookup + Send + Sync> {
    let want = crypto::req2(&SKEY);
    Arc::new(move |h: &[u8; 20]| (*h == want).then_some(SKEY))
}

fn bt_handshake(info_hash: [u8; 20]) -> [u8; 68] {
    Handshake {
        reserved: Reserved::shoal(false),
        info_hash: InfoHash(info_hash),
        peer_id: PeerId(*b"-SH0001-0123456789ab"),
    }
    .encode()
}

/// Two streams joined by a relay that records every byte going A to B.
fn tapped() -> (DuplexStream, DuplexStream, Arc<Mutex<Vec<u8>>>) {
    let (a, mut a_far) = duplex(1 << 16);
    let (b, mut b_far) = duplex(1 << 16);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let (mut ar, mut aw) = tokio::io::split(&mut a_far);
        let (mut br, mut bw) = tokio::io::split(&mut b_far);
        let up = async {
            let mut buf = [0u8; 4096];
            loop {
                let n = ar.read(&mut buf).await.unwrap_or(0);
                if n == 0 || bw.write_all(&buf[..n]).await.is_err() {
                    let _ = bw.shutdown().await;
                    return;
                }
                log.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        };
        let down = async {
            let _ = tokio::io::copy(&mut br, &mut aw).await;
            let _ = aw.shutdown().await;
        };
        tokio::join!(up, down);
    });
    (a, b, seen)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn handshake_and_payload_over_a_stream_with_each_selection() {
    let cases = [
        (CryptoSet::BOTH, CryptoSet::BOTH, Encryption::Rc4),
        (CryptoSet::PLAINTEXT, CryptoSet::BOTH, Encryption::Plaintext),
        (CryptoSet::BOTH, CryptoSet::PLAINTEXT, Encryption::Plaintext),
        (CryptoSet::RC4, CryptoSet::RC4, Encryption::Rc4),
    ];
    for (i, (offer, allow, want)) in cases.into_iter().enumerate() {
        let (a, b, seen) = tapped();
        let ia = bt_handshake(SKEY);
        let hs_a = {
            let cfg = MseConfig {
                allowed: offer,
                ..MseConfig::default()
            };
            MseHandshake::initiator(
                cfg,
                SKEY,
                &ia,
                &mut StdRng::seed_from_u64(i as u64),
                Instant::now(),
            )
        };
        let policy = AcceptPolicy {
            plaintext: false,
            mse: Some(MseConfig {
                allowed: allow,
                ..MseConfig::default()
            }),
        };
        let responder = tokio::spawn(async move {
            let mut acc = accept(b, &policy, lookup(), StdRng::seed_from_u64(100)).await?;
            assert_eq!(acc.prefix.info_hash.0, SKEY);
            let mut rest = [0u8; 20];
            acc.stream.read_exact(&mut rest).await?;
            assert_eq!(&rest, b"-SH0001-0123456789ab");
            let mut msg = vec![0u8; 11];
            acc.stream.read_exact(&mut msg).await?;
            acc.stream.write_all(b"pong from b").await?;
            acc.stream.flush().await?;
            Ok::<_, AcceptError>((acc.encryption(), msg))
        });
        let mut s = run(a, hs_a, &[]).await.unwrap();
        assert_eq!(s.encryption(), want, "case {i}");
        assert_eq!(s.skey(), Some(SKEY));
        s.write_all(b"ping from a").await.unwrap();
        s.flush().await.unwrap();
        let mut pong = [0u8; 11];
        s.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"pong from b");
        let (enc_b, msg) = tokio::time::timeout(Duration::from_secs(5), responder)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(enc_b, want);
        assert_eq!(msg, b"ping from a");
        // On the wire: the handshake (always RC4 in the initial payload)
        // never shows; the payload only when plaintext was selected.
        let wire = seen.lock().unwrap().clone();
        assert!(!contains(&wire, b"BitTorrent protocol"), "case {i}");
        assert!(!contains(&wire, &SKEY), "case {i}");
        assert_eq!(
            contains(&wire, b"ping from a"),
            want == Encryption::Plaintext,
            "case {i}"
        );
    }
}

#[tokio::test]
async fn the_listener_tells_plaintext_from_mse_and_applies_its_policy() {
    let both = AcceptPolicy {
        plaintext: true,
        mse: Some(MseConfig::default()),
    };
    // Plain BitTorrent, accepted.
    let (mut a, b) = duplex(4096);
    a.write_all(&bt_handshake(SKEY)).await.unwrap();
    let mut acc = accept(b, &both, lookup(), StdRng::seed_from_u64(1))
        .await
        .unwrap();
    assert_eq!(acc.encryption(), Encryption::None);
    assert_eq!(acc.prefix.info_hash.0, SKEY);
    let mut id = [0u8; 20];
    acc.stream.read_exact(&mut id).await.unwrap();
    assert_eq!(
        &id, b"-SH0001-0123456789ab",
        "nothing after the prefix was eaten"
    );

    // Plain BitTorrent, encryption required.
    let required = AcceptPolicy {
        plaintext: false,
        ..both.clone()
    };
    let (mut a, b) = duplex(4096);
    a.write_all(&bt_handshake(SKEY)).await.unwrap();
    assert!(matches!(
        accept(b, &required, lookup(), StdRng::seed_from_u64(1)).await,
        Err(AcceptError::PlaintextRefused)
    ));

    // MSE, encryption disabled: refused on the first byte.
    let disabled = AcceptPolicy {
        plaintext: true,
        mse: None,
    };
    let (a, b) = duplex(4096);
    let hs = MseHandshake::initiator(
        MseConfig::default(),
        SKEY,
        &bt_handshake(SKEY),
        &mut StdRng::seed_from_u64(2),
        Instant::now(),
    );
    let initiator = tokio::spawn(run(a, hs, &[]));
    assert!(matches!(
        accept(b, &disabled, lookup(), StdRng::seed_from_u64(1)).await,
        Err(AcceptError::EncryptedRefused(_))
    ));
    // The initiator sees the connection close.
    assert!(matches!(initiator.await.unwrap(), Err(MseIoError::Io(_))));

    // MSE for a torrent we do not serve.
    let (a, b) = duplex(4096);
    let other = [0x99; 20];
    let hs = MseHandshake::initiator(
        MseConfig::default(),
        other,
        &bt_handshake(other),
        &mut StdRng::seed_from_u64(3),
        Instant::now(),
    );
    let _initiator = tokio::spawn(run(a, hs, &[]));
    assert!(matches!(
        accept(b, &both, lookup(), StdRng::seed_from_u64(1)).await,
        Err(AcceptError::Mse(MseError::UnknownTorrent))
    ));

    // MSE whose BitTorrent handshake names another torrent than SKEY.
    let (a, b) = duplex(4096);
    let hs = MseHandshake::initiator(
        MseConfig::default(),
        SKEY,
        &bt_handshake([0x99; 20]),
        &mut StdRng::seed_from_u64(4),
        Instant::now(),
    );
    let _initiator = tokio::spawn(run(a, hs, &[]));
    assert!(matches!(
        accept(b, &both, lookup(), StdRng::seed_from_u64(1)).await,
        Err(AcceptError::InfoHashMismatch)
    ));
}

#[tokio::test]
async fn silent_peers_time_out() {
    let cfg = MseConfig {
        timeout: Duration::from_millis(300),
        ..MseConfig::default()
    };
    // An initiator whose peer never answers.
    let (a, _b) = duplex(4096);
    let hs = MseHandshake::initiator(
        cfg.clone(),
        SKEY,
        &[],
        &mut StdRng::seed_from_u64(5),
        Instant::now(),
    );
    let r = tokio::time::timeout(Duration::from_secs(10), run(a, hs, &[])).await;
    assert!(matches!(
        r,
        Ok(Err(MseIoError::Handshake(MseError::TimedOut)))
    ));
    // A listener whose peer sends three bytes and stops.
    let (mut a, b) = duplex(4096);
    a.write_all(&[1, 2, 3]).await.unwrap();
    let policy = AcceptPolicy {
        plaintext: true,
        mse: Some(cfg),
    };
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        accept(b, &policy, lookup(), StdRng::seed_from_u64(6)),
    )
    .await;
    assert!(matches!(r, Ok(Err(AcceptError::TimedOut))));
}

/// Two streams joined by a small pipe, as after an RC4 handshake.
fn rc4_pair(cap: usize) -> (MseStream<DuplexStream>, MseStream<DuplexStream>) {
    let (a, b) = duplex(cap);
    let secret = [3u8; crypto::DH_LEN];
    let outcome = |initiator: bool| {
        let (send, recv) = Rc4::pair(&secret, &SKEY, initiator);
        MseOutcome {
            crypto: Crypto::Rc4,
            skey: SKEY,
            payload: b"early".to_vec(),
            cipher: Some(Rc4Pair { send, recv }),
        }
    };
    (
        MseStream::from_outcome(a, outcome(true)),
        MseStream::from_outcome(b, outcome(false)),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the write sizes (plain or vectored), read sizes and pipe
    /// capacity, the bytes that come out are the bytes that went in.
    #[test]
    fn rc4_stream_round_trips(
        data in proptest::collection::vec(any::<u8>(), 0..300_000),
        writes in proptest::collection::vec(1usize..70_000, 1..16),
        reads in proptest::collection::vec(1usize..50_000, 1..16),
        cap in 1usize..100_000,
        vectored in any::<bool>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let got = rt.block_on(async {
            let (mut a, mut b) = rc4_pair(cap);
            let expected_len = data.len() + 5;
            let send = data.clone();
            let writer = tokio::spawn(async move {
                let mut off = 0;
                let mut i = 0;
                while off < send.len() {
                    let n = writes[i % writes.len()].min(send.len() - off);
                    i += 1;
                    if vectored {
                        // Two slices per call, to gather.
                        let mid = off + n / 2;
                        let bufs = [std::io::IoSlice::new(&send[off..mid]), std::io::IoSlice::new(&send[mid..off + n])];
                        let w = a.write_vectored(&bufs).await.unwrap();
                        off += w;
                    } else {
                        a.write_all(&send[off..off + n]).await.unwrap();
                        off += n;
                    }
                }
                a.shutdown().await.unwrap();
            });
            // The pre-received bytes come first, then the stream.
            let mut got = Vec::with_capacity(expected_len);
            let mut i = 0;
            loop {
                let mut buf = vec![0u8; reads[i % reads.len()]];
                i += 1;
                let n = b.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            writer.await.unwrap();
            got
        });
        prop_assert_eq!(&got[..5], b"early");
        prop_assert_eq!(&got[5..], &data[..]);
    }
}
