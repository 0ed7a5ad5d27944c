//! Compact peer lists shared by HTTP (BEP 23, BEP 7) and UDP (BEP 15):
//! 6 bytes per IPv4 peer and 18 bytes per IPv6 peer, address then big-endian port.
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// Bytes of one compact IPv4 peer (4 address + 2 port).
pub const COMPACT_V4_LEN: usize = 6;
/// Bytes of one compact IPv6 peer (16 address + 2 port).
pub const COMPACT_V6_LEN: usize = 18;

/// Appends the peers of `data` (a whole number of `COMPACT_V4_LEN` entries) to
/// `out`, stopping once `out` holds `max` peers. Returns `false` if the length
/// is not a multiple of 6 (nothing is appended then).
pub fn parse_compact_v4(data: &[u8], out: &mut Vec<SocketAddr>, max: usize) -> bool {
    if !data.len().is_multiple_of(COMPACT_V4_LEN) {
        return false;
    }
    for c in data.chunks_exact(COMPACT_V4_LEN) {
        if out.len() >= max {
            break;
        }
        let ip = Ipv4Addr::new(c[0], c[1], c[2], c[3]);
        let port = u16::from_be_bytes([c[4], c[5]]);
        out.push(SocketAddr::V4(SocketAddrV4::new(ip, port)));
    }
    true
}

/// Like [`parse_compact_v4`] for 18-byte IPv6 entries.
pub fn parse_compact_v6(data: &[u8], out: &mut Vec<SocketAddr>, max: usize) -> bool {
    if !data.len().is_multiple_of(COMPACT_V6_LEN) {
        return false;
    }
    for c in data.chunks_exact(COMPACT_V6_LEN) {
        if out.len() >= max {
            break;
        }
        let mut a = [0u8; 16];
        a.copy_from_slice(&c[..16]);
        let port = u16::from_be_bytes([c[16], c[17]]);
        out.push(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(a),
            port,
            0,
            0,
        )));
    }
    true
}

/// Encodes one peer in compact form (6 or 18 bytes by address family).
pub fn encode_compact(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr {
        SocketAddr::V4(a) => out.extend_from_slice(&a.ip().octets()),
        SocketAddr::V6(a) => out.extend_from_slice(&a.ip().octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_exact_bytes() {
        let mut out = Vec::new();
        assert!(parse_compact_v4(
            &[127, 0, 0, 1, 0x1a, 0xe1, 10, 1, 2, 3, 0, 80],
            &mut out,
            10
        ));
        assert_eq!(
            out,
            vec![
                "127.0.0.1:6881".parse().unwrap(),
                "10.1.2.3:80".parse().unwrap()
            ]
        );
        assert!(!parse_compact_v4(&[1, 2, 3], &mut out, 10));
    }

    #[test]
    fn v6_exact_bytes_and_cap() {
        let mut data = vec![0u8; 15];
        data.push(1);
        data.extend_from_slice(&[0x1a, 0xe1]);
        let twice = [data.clone(), data].concat();
        let mut out = Vec::new();
        assert!(parse_compact_v6(&twice, &mut out, 1));
        assert_eq!(out, vec!["[::1]:6881".parse().unwrap()]);
        let mut enc = Vec::new();
        encode_compact(&out[0], &mut enc);
        assert_eq!(enc, twice[..18]);
    }
}
