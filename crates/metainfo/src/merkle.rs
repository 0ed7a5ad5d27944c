//! BEP 52 merkle trees: SHA-256 over 16 KiB leaf blocks.
//!
//! A file's `pieces root` is the root of a binary tree whose leaves are the
//! SHA-256 hashes of its 16 KiB blocks (the last block may be shorter and is
//! hashed as is, not padded). The leaf layer is padded up to a power of two with
//! all-zero 32-byte hashes; a padded subtree of height `h` therefore hashes to
//! [`pad_hash`]`(h)`. A piece layer is the layer of the tree whose nodes each
//! cover one piece (`piece_length / BLOCK_SIZE` leaves); it is itself padded to a
//! power of two with `pad_hash(log2(piece_length / BLOCK_SIZE))` when the root is
//! computed from it.
use sha2::{Digest, Sha256};

/// Size of one merkle leaf block in bytes (BEP 52).
pub const BLOCK_SIZE: usize = 16384;

/// SHA-256 of one leaf block (`data.len() <= BLOCK_SIZE`; the last block of a
/// file may be shorter and is hashed without padding).
pub fn block_hash(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of the concatenation of two child hashes.
pub fn hash_pair(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The hash of an all-padding subtree of height `levels`: `0` is the zero
/// leaf hash (32 zero bytes), `n + 1` is `hash_pair(pad(n), pad(n))`.
pub fn pad_hash(levels: u32) -> [u8; 32] {
    let mut h = [0u8; 32];
    for _ in 0..levels {
        h = hash_pair(&h, &h);
    }
    h
}

/// The merkle root over `leaves`, padded to `num_leaves_padded` leaves with
/// zero hashes (32 zero bytes).
///
/// `num_leaves_padded` is rounded up to a power of two and to at least
/// `leaves.len()` (and at least 1), so a caller can pass `leaves.len()`.
/// With one leaf and no padding the root is that leaf.
pub fn merkle_root(leaves: &[[u8; 32]], num_leaves_padded: usize) -> [u8; 32] {
    merkle_root_with_pad(leaves, num_leaves_padded, 0)
}

/// The merkle root over `leaves` that are themselves nodes at height
/// `leaf_level` of a bigger tree (for example a piece layer, whose nodes are at
/// height `log2(piece_length / BLOCK_SIZE)`): missing nodes are filled with
/// [`pad_hash`]`(leaf_level)` and so on upward. `num_leaves_padded` is rounded
/// up as in [`merkle_root`].
pub fn merkle_root_with_pad(
    leaves: &[[u8; 32]],
    num_leaves_padded: usize,
    leaf_level: u32,
) -> [u8; 32] {
    let width = num_leaves_padded
        .max(leaves.len())
        .max(1)
        .next_power_of_two();
    let mut pad = pad_hash(leaf_level);
    if leaves.is_empty() {
        // The whole tree is padding.
        let mut h = pad;
        let mut w = width;
        while w > 1 {
            h = hash_pair(&h, &h);
            w /= 2;
        }
        return h;
    }
    let mut layer: Vec<[u8; 32]> = leaves.to_vec();
    let mut w = width;
    while w > 1 {
        let mut next = Vec::with_capacity(layer.len().div_ceil(2));
        for pair in layer.chunks(2) {
            match pair {
                [l, r] => next.push(hash_pair(l, r)),
                [l] => next.push(hash_pair(l, &pad)),
                _ => {}
            }
        }
        pad = hash_pair(&pad, &pad);
        layer = next;
        w /= 2;
    }
    layer.first().copied().unwrap_or(pad)
}

/// Number of 16 KiB leaf blocks of a file of `length` bytes (0 for an empty file).
pub fn num_blocks(length: u64) -> u64 {
    length.div_ceil(BLOCK_SIZE as u64)
}

/// The merkle root of a whole file's contents (tests and small data; `create`
/// streams instead). Returns `None` for an empty file, which has no root.
pub fn root_of_data(data: &[u8]) -> Option<[u8; 32]> {
    if data.is_empty() {
        return None;
    }
    let leaves: Vec<[u8; 32]> = data.chunks(BLOCK_SIZE).map(block_hash).collect();
    Some(merkle_root(&leaves, leaves.len()))
}

/// The piece layer of a file: one hash per piece of `piece_length` bytes
/// (a power of two, at least `BLOCK_SIZE`), each the root of that piece's
/// subtree, the last one padded with zero leaves. Built from the leaf hashes.
pub fn piece_layer_from_leaves(leaves: &[[u8; 32]], piece_length: u64) -> Vec<[u8; 32]> {
    let per_piece = (piece_length / BLOCK_SIZE as u64).max(1) as usize;
    leaves
        .chunks(per_piece)
        .map(|c| merkle_root(c, per_piece))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_hash_levels() {
        assert_eq!(pad_hash(0), [0u8; 32]);
        let one = hash_pair(&[0; 32], &[0; 32]);
        assert_eq!(pad_hash(1), one);
        assert_eq!(pad_hash(2), hash_pair(&one, &one));
    }

    #[test]
    fn root_single_leaf_is_leaf() {
        let l = block_hash(b"abc");
        assert_eq!(merkle_root(&[l], 1), l);
        assert_eq!(merkle_root(&[l], 0), l);
    }

    #[test]
    fn root_pads_with_zero() {
        let a = block_hash(b"a");
        let b = block_hash(b"b");
        let c = block_hash(b"c");
        let expect = hash_pair(&hash_pair(&a, &b), &hash_pair(&c, &[0; 32]));
        assert_eq!(merkle_root(&[a, b, c], 3), expect);
        assert_eq!(merkle_root(&[a, b, c], 4), expect);
        // Padding to 8 adds a zero subtree of height 2.
        assert_eq!(merkle_root(&[a, b, c], 8), hash_pair(&expect, &pad_hash(2)));
    }

    #[test]
    fn piece_layer_root_equals_file_root() {
        // 5 blocks and a partial one, piece = 4 blocks.
        let data: Vec<u8> = (0..(5 * BLOCK_SIZE + 100))
            .map(|i| (i % 251) as u8)
            .collect();
        let leaves: Vec<[u8; 32]> = data.chunks(BLOCK_SIZE).map(block_hash).collect();
        let root = root_of_data(&data).unwrap();
        let layer = piece_layer_from_leaves(&leaves, 4 * BLOCK_SIZE as u64);
        assert_eq!(layer.len(), 2);
        assert_eq!(merkle_root_with_pad(&layer, layer.len(), 2), root);
        // Wrong pad level gives another root (the test can fail).
        let layer3: Vec<[u8; 32]> = piece_layer_from_leaves(&leaves, 2 * BLOCK_SIZE as u64);
        assert_eq!(layer3.len(), 3);
        assert_eq!(merkle_root_with_pad(&layer3, 3, 1), root);
        assert_ne!(merkle_root_with_pad(&layer3, 3, 0), root);
    }

    #[test]
    fn empty_data_has_no_root() {
        assert_eq!(root_of_data(&[]), None);
        assert_eq!(num_blocks(0), 0);
        assert_eq!(num_blocks(1), 1);
        assert_eq!(num_blocks(BLOCK_SIZE as u64 + 1), 2);
    }
}
