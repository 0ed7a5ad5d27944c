//! Both hashing paths against an independent reference.
//!
//! RustCrypto `sha1`/`sha2` pick their SHA-NI code or their portable code at
//! run time (`cpufeatures`). These tests compare whatever path this build
//! and CPU use with the plain FIPS 180-4 reference implementations below, on
//! inputs of every length up to a few blocks and random lengths, fed in
//! random chunks, through [`sha1_of`], [`PieceHasher`] and the v2 root.
//! `scripts/test` runs them twice: as built (the SHA-NI path on these
//! machines, see [`crate::hash::sha_ni`]) and with the `force-soft-hash`
//! feature, which compiles the crates' portable path only.

use proptest::prelude::*;
use sha1::Digest;

use crate::hash::{sha1_of, sha_ni, update_prefetched, v2_piece_root, PieceHasher};
use crate::layout::V2Piece;

/// FIPS 180-4 SHA-1, one block at a time, no tricks.
fn ref_sha1(msg: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    for block in pad(msg).chunks(64) {
        let mut w = [0u32; 80];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, &wi) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A827999),
                20..=39 => (b ^ c ^ d, 0x6ED9EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6u32),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(wi);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (o, x) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// FIPS 180-4 SHA-256.
fn ref_sha256(msg: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    for block in pad(msg).chunks(64) {
        let mut w = [0u32; 64];
        for (i, c) in block.chunks(4).enumerate() {
            w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let mut v = h;
        for i in 0..64 {
            let [a, b, c, d, e, f, g, hh] = v;
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            v = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
        }
        for (x, y) in h.iter_mut().zip(v) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (o, x) in out.chunks_mut(4).zip(h) {
        o.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Message padding shared by SHA-1 and SHA-256.
fn pad(msg: &[u8]) -> Vec<u8> {
    let mut m = msg.to_vec();
    m.push(0x80);
    while m.len() % 64 != 56 {
        m.push(0);
    }
    m.extend_from_slice(&((msg.len() as u64) * 8).to_be_bytes());
    m
}

/// The BEP 52 subtree root over `leaves` leaf slots, by the reference SHA-256.
fn ref_v2_root(data: &[u8], leaves: usize) -> [u8; 32] {
    let mut layer: Vec<[u8; 32]> = data.chunks(16384).map(ref_sha256).collect();
    layer.resize(leaves.max(1).next_power_of_two(), [0u8; 32]);
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|p| ref_sha256(&[p[0], p[1]].concat()))
            .collect();
    }
    layer[0]
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Splits `data` at the given cut points (taken modulo its length).
fn chunks<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    at.push(0);
    at.push(data.len());
    at.sort_unstable();
    at.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

#[test]
fn reports_the_path_in_use() {
    // With `force-soft-hash` the crates never use SHA-NI, whatever the CPU.
    if cfg!(feature = "force-soft-hash") {
        assert!(!sha_ni());
    }
    eprintln!("SHA-NI path in use: {}", sha_ni());
}

#[test]
fn reference_matches_fips_vectors() {
    // FIPS 180 "abc" for both: the reference is right before it judges.
    assert_eq!(
        hex(&ref_sha1(b"abc")),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        hex(&ref_sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn every_length_up_to_five_blocks() {
    let data = bytes(5 * 64 + 1, 3);
    for len in 0..=data.len() {
        let d = &data[..len];
        assert_eq!(sha1_of([d]), ref_sha1(d), "sha1 len {len}");
        let mut h = PieceHasher::v1(ref_sha1(d));
        h.update(d);
        assert!(h.finish(), "piece hasher len {len}");
        assert_eq!(
            shoal_metainfo::merkle::block_hash(d),
            ref_sha256(d),
            "sha256 len {len}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn prefetched_updates_hash_as_plain_ones(
        len in 0usize..40_000,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        // Blocks fed page by page with the next one prefetched (the
        // leecher's path) give the reference digest, whatever the cuts.
        let data = bytes(len, seed);
        let parts = chunks(&data, &cuts);
        let mut h = sha1::Sha1::new();
        for (i, p) in parts.iter().enumerate() {
            update_prefetched(&mut h, p, parts.get(i + 1).copied());
        }
        prop_assert_eq!(<[u8; 20]>::from(h.finalize()), ref_sha1(&data));
    }

    #[test]
    fn sha1_any_length_any_chunks(
        len in 0usize..200_000,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let data = bytes(len, seed);
        let want = ref_sha1(&data);
        let parts = chunks(&data, &cuts);
        prop_assert_eq!(sha1_of(parts.iter().copied()), want);
        let mut h = PieceHasher::v1(want);
        for p in &parts {
            h.update(p);
        }
        prop_assert!(h.finish());
    }

    #[test]
    fn v2_root_any_length_any_chunks(
        blocks in 1u32..9,
        tail in 0usize..16384,
        seed in any::<u64>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let len = (blocks as usize - 1) * 16384 + tail.max(1);
        let data = bytes(len, seed);
        let leaves = blocks.next_power_of_two();
        let root = ref_v2_root(&data, leaves as usize);
        let parts = chunks(&data, &cuts);
        prop_assert_eq!(v2_piece_root(len as u64, leaves, parts.iter().copied()), Some(root));
        let e = V2Piece { root, data_len: len as u64, leaves };
        let mut h = PieceHasher::v2(e);
        for p in &parts {
            h.update(p);
        }
        prop_assert!(h.finish());
        // One flipped bit fails.
        let mut bad = data.clone();
        bad[seed as usize % len] ^= 1;
        let mut h = PieceHasher::v2(e);
        h.update(&bad);
        prop_assert!(!h.finish());
    }
}
