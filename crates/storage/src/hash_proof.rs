//! BEP 52 hash transfer, sans-IO: answering `hash request` messages from a
//! file's piece layer ([`FileTree::hashes`]) and checking the `hashes` a peer
//! sent against the file's `pieces root` ([`verify_hashes`]), the two halves
//! needed to fetch piece layers for v2-only magnet links.
//!
//! Only requests whose base layer is the piece layer are served (BEP 52
//! requires the leaf and piece layers; leaves would need the data). Proof
//! layers follow the spec's counting: with `length = 2^k` requested hashes
//! the first `k - 1` proof layers lie inside the requested subtree and are
//! omitted but still counted, so a `hashes` message carries
//! `min(proof_layers - (k - 1), height - k)` uncle hashes, lowest first.
//! This counting is confirmed against libtorrent 2.0 both ways (interop test
//! `interop_v2_magnet`): libtorrent asks with `proof_layers = height - 1`
//! (its maximum) and checks our answers; it answers ours the same way.
//!
//! Used by the engine's peer task (serving) and by
//! `shoal_engine::piece_layers` (fetching layers for v2-only magnets).

use shoal_metainfo::merkle::{hash_pair, pad_hash};

/// Largest `length` served or accepted (BEP 52: SHOULD NOT exceed 512).
pub const MAX_HASHES: u32 = 512;

/// Why a hash request cannot be served or a `hashes` answer is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HashProofError {
    /// `length` is not a power of two in `2..=MAX_HASHES`.
    #[error("hash request: length {length} is not a power of two in 2..={MAX_HASHES}")]
    BadLength {
        /// The length asked for.
        length: u32,
    },
    /// `index` is not a multiple of `length`, or the range leaves the layer.
    #[error("hash request: index {index} + length {length} outside a layer of {width}")]
    BadRange {
        /// First hash.
        index: u32,
        /// Number of hashes.
        length: u32,
        /// Width of the (padded) layer.
        width: u64,
    },
    /// The base layer is not the piece layer.
    #[error("hash request: base layer {base_layer} not served (piece layer is {piece_level})")]
    UnsupportedLayer {
        /// Layer asked for.
        base_layer: u32,
        /// The piece layer's height above the leaves.
        piece_level: u32,
    },
    /// The answer has the wrong number of hashes for its request.
    #[error("hashes: {got} hashes, expected {expected}")]
    WrongCount {
        /// Hashes received.
        got: usize,
        /// Hashes the request implies.
        expected: usize,
    },
    /// The answer does not carry enough uncles to reach the pieces root.
    #[error("hashes: proof stops {missing} layers below the root")]
    ShortProof {
        /// Layers missing.
        missing: u32,
    },
    /// The hashes and their proof do not hash to the pieces root.
    #[error("hashes: proof does not match the pieces root")]
    Mismatch,
}

/// The merkle tree of one file above its piece layer, for answering hash
/// requests. Invariant: `layers[0]` is the piece layer padded to a power of
/// two with the pad hash of a piece-sized subtree; each next layer halves it;
/// the last holds the root alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileTree {
    piece_level: u32,
    pieces: usize,
    layers: Vec<Vec<[u8; 32]>>,
}

impl FileTree {
    /// Builds the tree from a file's piece layer (as verified by the
    /// metainfo parser); `piece_level` is `log2(piece_length / 16 KiB)`.
    pub fn from_piece_layer(layer: &[[u8; 32]], piece_level: u32) -> FileTree {
        let width = layer.len().max(1).next_power_of_two();
        let mut pad = pad_hash(piece_level);
        let mut cur = layer.to_vec();
        cur.resize(width, pad);
        let mut layers = vec![cur];
        while layers.last().is_some_and(|l| l.len() > 1) {
            let prev = layers.last().map(Vec::as_slice).unwrap_or_default();
            let next: Vec<[u8; 32]> = prev
                .chunks(2)
                .map(|p| match p {
                    [l, r] => hash_pair(l, r),
                    [l] => hash_pair(l, &pad),
                    _ => pad,
                })
                .collect();
            pad = hash_pair(&pad, &pad);
            layers.push(next);
        }
        FileTree {
            piece_level,
            pieces: layer.len(),
            layers,
        }
    }

    /// The root (the file's `pieces root` when the layer is genuine).
    pub fn root(&self) -> [u8; 32] {
        self.layers
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or_default()
    }

    /// Number of real pieces of the file.
    pub fn piece_count(&self) -> usize {
        self.pieces
    }

    /// The payload of a `hashes` answer: `length` hashes of the piece layer
    /// from `index`, then the uncle hashes (see the module docs).
    pub fn hashes(
        &self,
        base_layer: u32,
        index: u32,
        length: u32,
        proof_layers: u32,
    ) -> Result<Vec<[u8; 32]>, HashProofError> {
        if base_layer != self.piece_level {
            return Err(HashProofError::UnsupportedLayer {
                base_layer,
                piece_level: self.piece_level,
            });
        }
        let base = self.layers.first().map(Vec::as_slice).unwrap_or_default();
        let k = check_request(index, length, base.len() as u64)?;
        let height = self.layers.len() as u32 - 1;
        let start = index as usize;
        let mut out: Vec<[u8; 32]> = base
            .get(start..start + length as usize)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        let uncles = uncle_count(proof_layers, k, height);
        let mut pos = start >> k;
        for layer in self.layers.iter().skip(k as usize).take(uncles as usize) {
            if let Some(h) = layer.get(pos ^ 1) {
                out.push(*h);
            }
            pos >>= 1;
        }
        Ok(out)
    }
}

/// Checks `index`/`length` against a layer of `width` nodes; returns
/// `log2(length)`.
fn check_request(index: u32, length: u32, width: u64) -> Result<u32, HashProofError> {
    if !(2..=MAX_HASHES).contains(&length) || !length.is_power_of_two() {
        return Err(HashProofError::BadLength { length });
    }
    if index & (length - 1) != 0 || u64::from(index) + u64::from(length) > width {
        return Err(HashProofError::BadRange {
            index,
            length,
            width,
        });
    }
    Ok(length.trailing_zeros())
}

/// Uncles carried for `proof_layers` with `2^k` hashes in a tree `height`
/// layers above the base.
fn uncle_count(proof_layers: u32, k: u32, height: u32) -> u32 {
    proof_layers
        .saturating_sub(k.saturating_sub(1))
        .min(height.saturating_sub(k))
}

/// Checks a `hashes` answer for a file of `pieces` pieces (more than one)
/// against its `pieces_root`, and returns the requested piece-layer hashes
/// that belong to real pieces (padding positions dropped).
///
/// The proof must reach the root: ask with `proof_layers` at least the
/// tree height when nothing above the piece layer is known yet.
#[allow(clippy::too_many_arguments)]
pub fn verify_hashes(
    pieces_root: &[u8; 32],
    piece_level: u32,
    pieces: u64,
    base_layer: u32,
    index: u32,
    length: u32,
    proof_layers: u32,
    hashes: &[[u8; 32]],
) -> Result<Vec<[u8; 32]>, HashProofError> {
    if base_layer != piece_level {
        return Err(HashProofError::UnsupportedLayer {
            base_layer,
            piece_level,
        });
    }
    let width = pieces.max(1).next_power_of_two();
    let k = check_request(index, length, width)?;
    let height = width.trailing_zeros();
    let uncles = uncle_count(proof_layers, k, height);
    let expected = length as usize + uncles as usize;
    if hashes.len() != expected {
        return Err(HashProofError::WrongCount {
            got: hashes.len(),
            expected,
        });
    }
    if uncles < height - k {
        return Err(HashProofError::ShortProof {
            missing: height - k - uncles,
        });
    }
    let (base, proof) = hashes.split_at(length as usize);
    let mut layer = base.to_vec();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|p| match p {
                [l, r] => hash_pair(l, r),
                _ => [0; 32],
            })
            .collect();
    }
    let mut node = layer.first().copied().unwrap_or_default();
    let mut pos = u64::from(index) >> k;
    for uncle in proof {
        node = if pos & 1 == 0 {
            hash_pair(&node, uncle)
        } else {
            hash_pair(uncle, &node)
        };
        pos >>= 1;
    }
    if node != *pieces_root {
        return Err(HashProofError::Mismatch);
    }
    let real = pieces
        .saturating_sub(u64::from(index))
        .min(u64::from(length)) as usize;
    Ok(base.get(..real).map(<[_]>::to_vec).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_metainfo::merkle::{block_hash, merkle_root_with_pad};

    fn layer(n: usize) -> Vec<[u8; 32]> {
        (0..n).map(|i| block_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn root_matches_metainfo() {
        for n in [2, 3, 5, 8, 13] {
            let l = layer(n);
            let t = FileTree::from_piece_layer(&l, 2);
            assert_eq!(t.root(), merkle_root_with_pad(&l, n, 2), "n={n}");
        }
    }

    #[test]
    fn two_hashes_full_proof_by_hand() {
        // 4 pieces: root = H(H(a,b), H(c,d)); ask for c,d with 1 proof layer.
        let l = layer(4);
        let t = FileTree::from_piece_layer(&l, 0);
        let got = t.hashes(0, 2, 2, 5).unwrap();
        assert_eq!(got, vec![l[2], l[3], hash_pair(&l[0], &l[1])]);
        assert_eq!(
            verify_hashes(&t.root(), 0, 4, 0, 2, 2, 5, &got).unwrap(),
            vec![l[2], l[3]]
        );
        // Without proof layers there is nothing to reach the root with.
        let bare = t.hashes(0, 2, 2, 0).unwrap();
        assert_eq!(bare.len(), 2);
        assert_eq!(
            verify_hashes(&t.root(), 0, 4, 0, 2, 2, 0, &bare),
            Err(HashProofError::ShortProof { missing: 1 })
        );
    }

    #[test]
    fn round_trip_every_request_and_tampering_fails() {
        for n in [2usize, 3, 7, 16, 33] {
            let l = layer(n);
            let t = FileTree::from_piece_layer(&l, 3);
            let width = n.next_power_of_two() as u32;
            let mut length = 2;
            while length <= width {
                for index in (0..width).step_by(length as usize) {
                    let h = t.hashes(3, index, length, 64).unwrap();
                    let ok =
                        verify_hashes(&t.root(), 3, n as u64, 3, index, length, 64, &h).unwrap();
                    let real = n.saturating_sub(index as usize).min(length as usize);
                    let from = (index as usize).min(n);
                    assert_eq!(ok, l[from..from + real].to_vec());
                    for i in 0..h.len() {
                        let mut bad = h.clone();
                        bad[i][7] ^= 1;
                        assert_eq!(
                            verify_hashes(&t.root(), 3, n as u64, 3, index, length, 64, &bad),
                            Err(HashProofError::Mismatch),
                            "n={n} index={index} length={length} i={i}"
                        );
                    }
                }
                length *= 2;
            }
        }
    }

    #[test]
    fn bad_requests_rejected() {
        let t = FileTree::from_piece_layer(&layer(5), 1);
        assert!(matches!(
            t.hashes(0, 0, 2, 0),
            Err(HashProofError::UnsupportedLayer { .. })
        ));
        assert!(matches!(
            t.hashes(1, 0, 3, 0),
            Err(HashProofError::BadLength { .. })
        ));
        assert!(matches!(
            t.hashes(1, 0, 1, 0),
            Err(HashProofError::BadLength { .. })
        ));
        assert!(matches!(
            t.hashes(1, 0, 1024, 0),
            Err(HashProofError::BadLength { .. })
        ));
        assert!(matches!(
            t.hashes(1, 2, 4, 0),
            Err(HashProofError::BadRange { .. })
        ));
        assert!(matches!(
            t.hashes(1, 8, 2, 0),
            Err(HashProofError::BadRange { .. })
        ));
        let h = t.hashes(1, 0, 4, 9).unwrap();
        assert!(matches!(
            verify_hashes(&t.root(), 1, 5, 1, 0, 4, 9, &h[..h.len() - 1]),
            Err(HashProofError::WrongCount { .. })
        ));
    }
}
