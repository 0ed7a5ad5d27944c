//! The UDP tracker protocol's packets (BEP 15), both directions, zero-copy
//! where it matters and bounded everywhere.
//!
//! All integers are big-endian. Requests: connect (16 bytes), announce (98),
//! scrape (16 + 20·n). Responses: connect (16), announce (20 + 6·n, or
//! 20 + 18·n from a tracker reached over IPv6), scrape (8 + 12·n), error
//! (8 + message).
use crate::error::UdpPacketError;
use crate::peers::{parse_compact_v4, parse_compact_v6, COMPACT_V4_LEN, COMPACT_V6_LEN};
use crate::types::{AnnounceRequest, Event, ScrapeStats};
use shoal_base::InfoHash;
use std::net::{Ipv4Addr, SocketAddr};

/// The magic `protocol_id` of a connect request.
pub const PROTOCOL_ID: u64 = 0x0417_2710_1980;
/// Most info-hashes in one scrape request (BEP 15: about 74 fit in a packet).
pub const MAX_SCRAPE_HASHES: usize = 74;
/// Largest datagram we ever need to read (a full scrape reply or many peers).
pub const MAX_DATAGRAM: usize = 65_536;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// Length of an announce request.
pub const ANNOUNCE_REQUEST_LEN: usize = 98;

/// A request from client to tracker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Ask for a connection id.
    Connect {
        /// Transaction id.
        transaction_id: u32,
    },
    /// Announce (action 1).
    Announce {
        /// Connection id from the connect response.
        connection_id: u64,
        /// Transaction id.
        transaction_id: u32,
        /// The announce. `ipv6`, `compact` are not carried; `numwant` -1 is `None`.
        request: AnnounceRequest,
    },
    /// Scrape (action 2).
    Scrape {
        /// Connection id.
        connection_id: u64,
        /// Transaction id.
        transaction_id: u32,
        /// 1..=[`MAX_SCRAPE_HASHES`] info-hashes.
        info_hashes: Vec<InfoHash>,
    },
}

/// A response from tracker to client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// The connection id.
    Connect {
        /// Transaction id.
        transaction_id: u32,
        /// The id to use for the next minute.
        connection_id: u64,
    },
    /// Announce result.
    Announce {
        /// Transaction id.
        transaction_id: u32,
        /// Seconds until the next announce.
        interval: u32,
        /// Leechers in the swarm.
        leechers: u32,
        /// Seeders in the swarm.
        seeders: u32,
        /// Peers (IPv4 or IPv6 by the tracker's address family).
        peers: Vec<SocketAddr>,
    },
    /// Scrape result, one entry per requested hash, in request order.
    Scrape {
        /// Transaction id.
        transaction_id: u32,
        /// Statistics in request order.
        stats: Vec<ScrapeStats>,
    },
    /// The tracker refused.
    Error {
        /// Transaction id.
        transaction_id: u32,
        /// The message (lossily UTF-8).
        message: String,
    },
}

impl Response {
    /// The transaction id, to match a response with its request.
    pub fn transaction_id(&self) -> u32 {
        match self {
            Response::Connect { transaction_id, .. }
            | Response::Announce { transaction_id, .. }
            | Response::Scrape { transaction_id, .. }
            | Response::Error { transaction_id, .. } => *transaction_id,
        }
    }
}

/// A bounds-checked big-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4));
        u32::from_be_bytes(b)
    }
    fn u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8));
        u64::from_be_bytes(b)
    }
    fn u16(&mut self) -> u16 {
        let mut b = [0u8; 2];
        b.copy_from_slice(self.take(2));
        u16::from_be_bytes(b)
    }
    fn arr20(&mut self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b.copy_from_slice(self.take(20));
        b
    }
    /// Callers check the length first; a short buffer yields zeros, never a panic.
    fn take(&mut self, n: usize) -> &'a [u8] {
        const ZEROS: [u8; 20] = [0; 20];
        match self.buf.get(self.pos..self.pos + n) {
            Some(s) => {
                self.pos += n;
                s
            }
            None => &ZEROS[..n.min(20)],
        }
    }
    fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or(&[])
    }
}

fn need(what: &'static str, buf: &[u8], n: usize) -> Result<(), UdpPacketError> {
    if buf.len() < n {
        Err(UdpPacketError::TooShort {
            what,
            len: buf.len(),
            need: n,
        })
    } else {
        Ok(())
    }
}

impl Request {
    /// Encodes the request into a new buffer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ANNOUNCE_REQUEST_LEN);
        match self {
            Request::Connect { transaction_id } => {
                out.extend_from_slice(&PROTOCOL_ID.to_be_bytes());
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
            }
            Request::Announce {
                connection_id,
                transaction_id,
                request: r,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_ANNOUNCE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&r.info_hash.0);
                out.extend_from_slice(&r.peer_id.0);
                out.extend_from_slice(&r.downloaded.to_be_bytes());
                out.extend_from_slice(&r.left.to_be_bytes());
                out.extend_from_slice(&r.uploaded.to_be_bytes());
                out.extend_from_slice(&r.event.udp_code().to_be_bytes());
                let ip = r.ip.map_or(0, u32::from);
                out.extend_from_slice(&ip.to_be_bytes());
                out.extend_from_slice(&r.key.to_be_bytes());
                // -1 (all ones) means "tracker's default".
                let numwant = r.numwant.map_or(u32::MAX, |n| n.min(i32::MAX as u32));
                out.extend_from_slice(&numwant.to_be_bytes());
                out.extend_from_slice(&r.port.to_be_bytes());
            }
            Request::Scrape {
                connection_id,
                transaction_id,
                info_hashes,
            } => {
                out.extend_from_slice(&connection_id.to_be_bytes());
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for h in info_hashes {
                    out.extend_from_slice(&h.0);
                }
            }
        }
        out
    }

    /// Decodes a request (the tracker side). Trailing bytes after an announce
    /// (BEP 41 options) are ignored.
    pub fn decode(buf: &[u8]) -> Result<Request, UdpPacketError> {
        need("request", buf, 16)?;
        let mut r = Reader { buf, pos: 0 };
        let connection_id = r.u64();
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT => {
                if connection_id != PROTOCOL_ID {
                    return Err(UdpPacketError::BadMagic {
                        found: connection_id,
                    });
                }
                Ok(Request::Connect { transaction_id })
            }
            ACTION_ANNOUNCE => {
                need("announce request", buf, ANNOUNCE_REQUEST_LEN)?;
                let info_hash = r.arr20();
                let peer_id = r.arr20();
                let downloaded = r.u64();
                let left = r.u64();
                let uploaded = r.u64();
                let event_code = r.u32();
                let ip = r.u32();
                let key = r.u32();
                let numwant = r.u32();
                let port = r.u16();
                let request = AnnounceRequest {
                    info_hash: InfoHash(info_hash),
                    peer_id: shoal_base::PeerId(peer_id),
                    port,
                    uploaded,
                    downloaded,
                    left,
                    // An unknown event is treated as a regular announce.
                    event: Event::from_udp_code(event_code).unwrap_or_default(),
                    numwant: i32::try_from(numwant).ok().map(|n| n as u32),
                    compact: true,
                    key,
                    ip: (ip != 0).then(|| Ipv4Addr::from(ip)),
                    ipv6: None,
                };
                Ok(Request::Announce {
                    connection_id,
                    transaction_id,
                    request,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                if !rest.len().is_multiple_of(20) {
                    return Err(UdpPacketError::BadLength {
                        what: "scrape request",
                        len: rest.len(),
                        unit: 20,
                    });
                }
                let count = rest.len() / 20;
                if count > MAX_SCRAPE_HASHES {
                    return Err(UdpPacketError::TooMany {
                        what: "scrape request",
                        count,
                        max: MAX_SCRAPE_HASHES,
                    });
                }
                let info_hashes = rest
                    .chunks_exact(20)
                    .map(|c| {
                        let mut h = [0u8; 20];
                        h.copy_from_slice(c);
                        InfoHash(h)
                    })
                    .collect();
                Ok(Request::Scrape {
                    connection_id,
                    transaction_id,
                    info_hashes,
                })
            }
            action => Err(UdpPacketError::UnknownAction { action }),
        }
    }
}

impl Response {
    /// Encodes the response (the tracker side). Announce peers must all be of
    /// one family for the client to read them; v4 peers use 6 bytes, v6 18.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            Response::Connect {
                transaction_id,
                connection_id,
            } => {
                out.extend_from_slice(&ACTION_CONNECT.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(&connection_id.to_be_bytes());
            }
            Response::Announce {
                transaction_id,
                interval,
                leechers,
                seeders,
                peers,
            } => {
                for v in [
                    ACTION_ANNOUNCE,
                    *transaction_id,
                    *interval,
                    *leechers,
                    *seeders,
                ] {
                    out.extend_from_slice(&v.to_be_bytes());
                }
                for p in peers {
                    crate::peers::encode_compact(p, &mut out);
                }
            }
            Response::Scrape {
                transaction_id,
                stats,
            } => {
                out.extend_from_slice(&ACTION_SCRAPE.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                for s in stats {
                    for v in [s.complete, s.downloaded, s.incomplete] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            Response::Error {
                transaction_id,
                message,
            } => {
                out.extend_from_slice(&ACTION_ERROR.to_be_bytes());
                out.extend_from_slice(&transaction_id.to_be_bytes());
                out.extend_from_slice(message.as_bytes());
            }
        }
        out
    }

    /// Decodes a response. `ipv6` says the tracker was reached over IPv6, so
    /// announce peers are 18 bytes each; at most `max_peers` are kept.
    pub fn decode(buf: &[u8], ipv6: bool, max_peers: usize) -> Result<Response, UdpPacketError> {
        need("response", buf, 8)?;
        let mut r = Reader { buf, pos: 0 };
        let action = r.u32();
        let transaction_id = r.u32();
        match action {
            ACTION_CONNECT => {
                need("connect response", buf, 16)?;
                Ok(Response::Connect {
                    transaction_id,
                    connection_id: r.u64(),
                })
            }
            ACTION_ANNOUNCE => {
                need("announce response", buf, 20)?;
                let interval = r.u32();
                let leechers = r.u32();
                let seeders = r.u32();
                let rest = r.rest();
                let mut peers = Vec::new();
                let (ok, unit) = if ipv6 {
                    (
                        parse_compact_v6(rest, &mut peers, max_peers),
                        COMPACT_V6_LEN,
                    )
                } else {
                    (
                        parse_compact_v4(rest, &mut peers, max_peers),
                        COMPACT_V4_LEN,
                    )
                };
                if !ok {
                    return Err(UdpPacketError::BadLength {
                        what: "announce response",
                        len: rest.len(),
                        unit,
                    });
                }
                Ok(Response::Announce {
                    transaction_id,
                    interval,
                    leechers,
                    seeders,
                    peers,
                })
            }
            ACTION_SCRAPE => {
                let rest = r.rest();
                if !rest.len().is_multiple_of(12) {
                    return Err(UdpPacketError::BadLength {
                        what: "scrape response",
                        len: rest.len(),
                        unit: 12,
                    });
                }
                let stats = rest
                    .chunks_exact(12)
                    .take(MAX_SCRAPE_HASHES)
                    .map(|c| {
                        let mut cr = Reader { buf: c, pos: 0 };
                        ScrapeStats {
                            complete: cr.u32(),
                            downloaded: cr.u32(),
                            incomplete: cr.u32(),
                        }
                    })
                    .collect();
                Ok(Response::Scrape {
                    transaction_id,
                    stats,
                })
            }
            ACTION_ERROR => Ok(Response::Error {
                transaction_id,
                message: String::from_utf8_lossy(r.rest()).into_owned(),
            }),
            action => Err(UdpPacketError::UnknownAction { action }),
        }
    }
}

#[cfg(test)]
#[path = "udp_codec_tests.rs"]
mod tests;
