//! SHA-1 speed on one core: one message at a time (RustCrypto `sha1`)
//! against two interleaved ([`shoal_metainfo::sha1_pair`]), over the same
//! 1 MiB buffers in memory. Prints MB/s (10^6 bytes) for each, to set beside
//! `openssl speed -evp sha1 -bytes 1048576`.
//!
//! `cargo run --release -p shoal-metainfo --example sha1_pair_speed [MIB]`
use sha1::{Digest, Sha1};
use shoal_metainfo::sha1_pair::{interleaved, update_pair, Sha1State};
use std::time::Instant;

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2048);
    let a: Vec<u8> = (0..1usize << 20).map(|i| (i * 7 + 3) as u8).collect();
    let b: Vec<u8> = (0..1usize << 20).map(|i| (i * 13 + 5) as u8).collect();
    let mb = (mib << 20) as f64 / 1e6;

    let t = Instant::now();
    let mut h = Sha1::new();
    for _ in 0..mib {
        h.update(&a);
    }
    let single = mb / t.elapsed().as_secs_f64();
    let d1 = h.finalize();

    let t = Instant::now();
    let (mut sa, mut sb) = (Sha1State::new(), Sha1State::new());
    for _ in 0..mib / 2 {
        update_pair(&mut sa, &a, &mut sb, &b);
    }
    let pair = mb / t.elapsed().as_secs_f64();
    let (d2, d3) = (sa.finalize(), sb.finalize());

    println!(
        "{mib} MiB on one core: sha1 crate {single:.0} MB/s, interleaved pair {pair:.0} MB/s \
         ({:.2}x; SHA-NI pair path: {}) [{:02x}{:02x}{:02x}]",
        pair / single,
        interleaved(),
        d1[0],
        d2[0],
        d3[0]
    );
}
