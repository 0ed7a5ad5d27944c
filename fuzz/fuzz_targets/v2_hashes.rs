#![no_main]
//! Fuzz BEP 52 hash handling in storage: a `hashes` answer with arbitrary
//! request fields and hashes never panics and is accepted only when it
//! proves the pieces root; a tree built from arbitrary hashes answers its own
//! requests with proofs that verify. Also feeds arbitrary data to the v2
//! piece-root hasher.
use libfuzzer_sys::fuzz_target;
use shoal_storage::hash::v2_piece_root;
use shoal_storage::hash_proof::{verify_hashes, FileTree};

fn u32_at(d: &[u8], i: usize) -> u32 {
    d.get(i..i + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(0)
}

fuzz_target!(|data: &[u8]| {
    let pieces = u64::from(u32_at(data, 0) % 5000);
    let level = u32_at(data, 4) % 12;
    let (base, index, length, proof) = (
        u32_at(data, 8) % 16,
        u32_at(data, 12),
        u32_at(data, 16),
        u32_at(data, 20),
    );
    let body = data.get(24..).unwrap_or_default();
    let hashes: Vec<[u8; 32]> = body
        .chunks_exact(32)
        .take(1024)
        .map(|c| {
            let mut a = [0u8; 32];
            a.copy_from_slice(c);
            a
        })
        .collect();
    let root = hashes.first().copied().unwrap_or_default();
    let _ = verify_hashes(&root, level, pieces, base, index, length, proof, &hashes);
    if hashes.len() >= 2 {
        let tree = FileTree::from_piece_layer(&hashes, level);
        if let Ok(h) = tree.hashes(level, index, length, proof) {
            let n = hashes.len() as u64;
            if proof >= 64 {
                verify_hashes(&tree.root(), level, n, level, index, length, proof, &h)
                    .expect("own full proof verifies");
            }
        }
    }
    let _ = v2_piece_root(
        u64::from(u32_at(data, 0)) % (body.len() as u64 + 2),
        1 << level,
        [body],
    );
});
