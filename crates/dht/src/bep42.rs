//! BEP 42 node-ID security: IDs derived from the node's external IP with CRC32C.
//!
//! A compliant ID has its first 21 bits equal to the first 21 bits of
//! `crc32c((ip & mask) | (r << 29))` (IPv4, `r` = the last byte of the ID & 7) or the
//! 64-bit equivalent for IPv6. Loopback, private and link-local addresses are exempt.
use crate::id::Id20;
use rand::Rng;
use std::net::IpAddr;

const V4_MASK: [u8; 4] = [0x03, 0x0f, 0x3f, 0xff];
const V6_MASK: [u8; 8] = [0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff];

fn crc_for(ip: IpAddr, r: u8) -> u32 {
    let r = r & 7;
    match ip {
        IpAddr::V4(v4) => {
            let mut b = v4.octets();
            for (x, m) in b.iter_mut().zip(V4_MASK) {
                *x &= m;
            }
            b[0] |= r << 5;
            crc32c::crc32c(&b)
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            let mut b = [0u8; 8];
            for i in 0..8 {
                b[i] = o[i] & V6_MASK[i];
            }
            b[0] |= r << 5;
            crc32c::crc32c(&b)
        }
    }
}

/// Builds a BEP 42 node ID for `ip` from the random byte `r` (only its low 3 bits are
/// used in the hash; it is stored in the last byte) and 20 random bytes for the rest.
pub fn id_from_parts(ip: IpAddr, r: u8, random: [u8; 20]) -> Id20 {
    let crc = crc_for(ip, r);
    let mut id = random;
    id[0] = (crc >> 24) as u8;
    id[1] = (crc >> 16) as u8;
    id[2] = ((crc >> 8) as u8 & 0xf8) | (random[2] & 0x07);
    id[19] = r;
    Id20(id)
}

/// Generates a random BEP 42-compliant node ID for the external address `ip`.
pub fn generate_id<R: Rng + ?Sized>(ip: IpAddr, rng: &mut R) -> Id20 {
    let mut random = [0u8; 20];
    rng.fill(&mut random[..]);
    id_from_parts(ip, random[19], random)
}

/// True when `ip` is exempt from BEP 42 (loopback, private, link-local, unspecified,
/// unique-local IPv6): IDs of such nodes are never checked.
pub fn is_exempt(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_exempt(IpAddr::V4(v4)))
        }
    }
}

/// True when `id` is valid for `ip` under BEP 42 (always true for exempt addresses).
pub fn is_valid(id: &Id20, ip: IpAddr) -> bool {
    if is_exempt(ip) {
        return true;
    }
    let crc = crc_for(ip, id.0[19]);
    id.0[0] == (crc >> 24) as u8
        && id.0[1] == (crc >> 16) as u8
        && (id.0[2] & 0xf8) == ((crc >> 8) as u8 & 0xf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vectors of bep_0042.rst: IP, rand, and the bold prefix/suffix.
    const VECTORS: [(&str, u8, [u8; 3], u8); 5] = [
        ("124.31.75.21", 1, [0x5f, 0xbf, 0xbf], 0x01),
        ("21.75.31.124", 86, [0x5a, 0x3c, 0xe9], 0x56),
        ("65.23.51.170", 22, [0xa5, 0xd4, 0x32], 0x16),
        ("84.124.73.14", 65, [0x1b, 0x03, 0x21], 0x41),
        ("43.213.53.83", 90, [0xe5, 0x6f, 0x6c], 0x5a),
    ];

    #[test]
    fn bep42_vectors() {
        for (ip, r, prefix, last) in VECTORS {
            let ip: IpAddr = ip.parse().unwrap();
            // Use the example's own third byte low bits as "random" material.
            let mut random = [0u8; 20];
            random[2] = prefix[2] & 7;
            let id = id_from_parts(ip, r, random);
            assert_eq!(&id.0[..2], &prefix[..2], "ip {ip}");
            assert_eq!(id.0[2] & 0xf8, prefix[2] & 0xf8, "ip {ip}");
            assert_eq!(id.0[19], last);
            // The full example ID from the spec must validate.
            let mut full = [0u8; 20];
            full[..3].copy_from_slice(&prefix);
            full[19] = last;
            assert!(is_valid(&Id20(full), ip));
            // Changing a checked bit breaks it.
            full[0] ^= 0x80;
            assert!(!is_valid(&Id20(full), ip));
        }
    }

    #[test]
    fn exemptions_and_generation() {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(1);
        assert!(is_exempt("127.0.0.1".parse().unwrap()));
        assert!(is_exempt("::1".parse().unwrap()));
        assert!(is_exempt("192.168.1.1".parse().unwrap()));
        assert!(!is_exempt("8.8.8.8".parse().unwrap()));
        for ip in ["8.8.8.8", "2001:db8::1", "1.2.3.4"] {
            let ip: IpAddr = ip.parse().unwrap();
            let id = generate_id(ip, &mut rng);
            assert!(is_valid(&id, ip));
            assert!(!is_valid(&Id20::ZERO.with_bit(0, !id.bit(0)), ip) || id.0[0] & 0x80 == 0);
        }
    }
    use rand::SeedableRng;
}
