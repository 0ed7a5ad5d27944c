//! BEP 6 allowed-fast set generation: the canonical algorithm, so that the
//! pieces we offer a peer while choking it are the same as other clients'.

use sha1::{Digest, Sha1};
use std::net::Ipv4Addr;

/// The first `k` pieces of the canonical allowed-fast set for a peer at `ip`
/// (BEP 6). Empty when the torrent has no pieces; at most `num_pieces` entries.
pub fn allowed_fast_set(
    k: u32,
    num_pieces: u32,
    info_hash: &crate::InfoHash,
    ip: Ipv4Addr,
) -> Vec<u32> {
    let k = k.min(num_pieces) as usize;
    let mut set: Vec<u32> = Vec::with_capacity(k);
    if k == 0 {
        return set;
    }
    let masked = u32::from(ip) & 0xffff_ff00;
    let mut x = Vec::with_capacity(24);
    x.extend_from_slice(&masked.to_be_bytes());
    x.extend_from_slice(&info_hash.0);
    while set.len() < k {
        let h = Sha1::digest(&x);
        for chunk in h.chunks_exact(4) {
            if set.len() >= k {
                break;
            }
            let y = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
            let index = y % num_pieces;
            if !set.contains(&index) {
                set.push(index);
            }
        }
        x = h.to_vec();
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bep6_reference_vectors() {
        // The reference values published with BEP 6's algorithm (80.4.4.200,
        // info-hash 0xaa * 20, 1313 pieces).
        let ih = crate::InfoHash([0xaa; 20]);
        let ip = Ipv4Addr::new(80, 4, 4, 200);
        assert_eq!(
            allowed_fast_set(7, 1313, &ih, ip),
            vec![1059, 431, 808, 1217, 287, 376, 1188]
        );
        assert_eq!(
            allowed_fast_set(9, 1313, &ih, ip),
            vec![1059, 431, 808, 1217, 287, 376, 1188, 353, 508]
        );
    }

    #[test]
    fn bounded_by_piece_count_and_same_subnet() {
        let ih = crate::InfoHash([1; 20]);
        let s = allowed_fast_set(10, 3, &ih, Ipv4Addr::new(1, 2, 3, 4));
        assert_eq!(s.len(), 3);
        assert_eq!(
            allowed_fast_set(5, 1000, &ih, Ipv4Addr::new(1, 2, 3, 4)),
            allowed_fast_set(5, 1000, &ih, Ipv4Addr::new(1, 2, 3, 99))
        );
        assert!(allowed_fast_set(5, 0, &ih, Ipv4Addr::LOCALHOST).is_empty());
    }
}
