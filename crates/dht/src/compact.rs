//! Compact node and peer info (BEP 5, BEP 32): 26/38-byte node entries and 6/18-byte
//! peer addresses.
use crate::id::Id20;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A DHT contact: node ID and UDP address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeInfo {
    /// The node's ID.
    pub id: Id20,
    /// The node's UDP address.
    pub addr: SocketAddr,
}

/// Length of one compact IPv4 node entry (20-byte ID, 4-byte IP, 2-byte port).
pub const NODE_V4_LEN: usize = 26;
/// Length of one compact IPv6 node entry (20-byte ID, 16-byte IP, 2-byte port).
pub const NODE_V6_LEN: usize = 38;

/// Appends the compact form of `addr` (6 bytes for IPv4, 18 for IPv6).
pub fn write_addr(addr: &SocketAddr, out: &mut Vec<u8>) {
    match addr.ip() {
        IpAddr::V4(v4) => out.extend_from_slice(&v4.octets()),
        IpAddr::V6(v6) => out.extend_from_slice(&v6.octets()),
    }
    out.extend_from_slice(&addr.port().to_be_bytes());
}

/// Parses a 6- or 18-byte compact address; `None` for any other length.
pub fn read_addr(b: &[u8]) -> Option<SocketAddr> {
    match b.len() {
        6 => {
            let ip = Ipv4Addr::new(b[0], b[1], b[2], b[3]);
            Some(SocketAddr::new(ip.into(), u16::from_be_bytes([b[4], b[5]])))
        }
        18 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[..16]);
            Some(SocketAddr::new(
                Ipv6Addr::from(o).into(),
                u16::from_be_bytes([b[16], b[17]]),
            ))
        }
        _ => None,
    }
}

/// Encodes nodes of one family into a compact string; nodes of the other family are
/// skipped.
pub fn write_nodes(nodes: &[NodeInfo], v6: bool, out: &mut Vec<u8>) {
    for n in nodes.iter().filter(|n| n.addr.is_ipv6() == v6) {
        out.extend_from_slice(&n.id.0);
        write_addr(&n.addr, out);
    }
}

/// Decodes a compact node string; `None` when its length is not a multiple of the entry
/// size. At most `max` entries are returned (the rest are ignored).
pub fn read_nodes(b: &[u8], v6: bool, max: usize) -> Option<Vec<NodeInfo>> {
    let len = if v6 { NODE_V6_LEN } else { NODE_V4_LEN };
    if b.len() % len != 0 {
        return None;
    }
    let mut v = Vec::with_capacity((b.len() / len).min(max));
    for chunk in b.chunks_exact(len).take(max) {
        let id = Id20::from_slice(&chunk[..20])?;
        let addr = read_addr(&chunk[20..])?;
        v.push(NodeInfo { id, addr });
    }
    Some(v)
}
