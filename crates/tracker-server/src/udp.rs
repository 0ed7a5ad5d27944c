//! The UDP tracker (BEP 15, with BEP 41 URL data), sans-IO: one datagram and
//! the time in, at most one datagram out. No state is kept per client:
//! connection ids come from [`ConnectionIds`]. Before an id is proven, the
//! answer is never larger than the request (a connect reply is 16 bytes for a
//! 16-byte request; a bad-id error is cut to the request's length), so the
//! tracker cannot be used to amplify traffic towards a forged source.
use crate::clock::secs;
use crate::conn_id::ConnectionIds;
use crate::peers::{canonical_ip, pack};
use crate::ratelimit::{RateLimiter, Verdict};
use crate::stats::{Stats, Transport};
use crate::swarm::{AnnounceReply, PeerAnnounce, Swarms};
use shoal_tracker::udp_codec::{Request, ANNOUNCE_REQUEST_LEN};
use shoal_tracker::UdpPacketError;
use std::net::SocketAddr;
use std::sync::Arc;

const ACTION_CONNECT: u32 = 0;
const ACTION_ANNOUNCE: u32 = 1;
const ACTION_SCRAPE: u32 = 2;
const ACTION_ERROR: u32 = 3;

/// Longest BEP 41 URL data kept (the path and query of the announce URL).
pub const MAX_URL_DATA: usize = 1024;

/// The BEP 41 options after an announce request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UrlData {
    /// The concatenated URL data (e.g. `/announce?key=x`).
    pub url: Vec<u8>,
}

/// Why the options after an announce are malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlDataError {
    /// An option's length runs past the end of the packet.
    #[error("option at byte {at} runs past the end of the packet")]
    Truncated {
        /// Offset of the option in the options area.
        at: usize,
    },
    /// The URL data is longer than [`MAX_URL_DATA`].
    #[error("URL data longer than {MAX_URL_DATA} bytes")]
    TooLong,
}

/// Parses the BEP 41 options that follow an announce request: 0 ends them,
/// 1 is a one-byte no-op, 2 carries a length byte and URL data (repeated
/// options concatenate). Unknown options also carry a length byte and are
/// skipped.
pub fn parse_url_data(options: &[u8]) -> Result<UrlData, UrlDataError> {
    let mut out = UrlData::default();
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(
                    *options
                        .get(i + 1)
                        .ok_or(UrlDataError::Truncated { at: i })?,
                );
                let body = options
                    .get(i + 2..i + 2 + len)
                    .ok_or(UrlDataError::Truncated { at: i })?;
                if kind == 2 {
                    if out.url.len() + len > MAX_URL_DATA {
                        return Err(UrlDataError::TooLong);
                    }
                    out.url.extend_from_slice(body);
                }
                i += 2 + len;
            }
        }
    }
    Ok(out)
}

/// Answers UDP tracker datagrams from a shared [`Swarms`].
#[derive(Debug, Clone)]
pub struct UdpTracker {
    swarms: Arc<Swarms>,
    ids: ConnectionIds,
    limiter: Arc<RateLimiter>,
    stats: Arc<Stats>,
}

/// What [`UdpTracker::handle`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handled {
    /// A reply is in the output buffer.
    Reply,
    /// Nothing to send: the datagram did not parse.
    Dropped(UdpPacketError),
}

fn header(out: &mut Vec<u8>, action: u32, transaction_id: u32) {
    out.clear();
    out.extend_from_slice(&action.to_be_bytes());
    out.extend_from_slice(&transaction_id.to_be_bytes());
}

fn error(out: &mut Vec<u8>, transaction_id: u32, message: &[u8], max_len: usize) {
    header(out, ACTION_ERROR, transaction_id);
    let room = max_len.saturating_sub(out.len());
    out.extend_from_slice(message.get(..room).unwrap_or(message));
}

impl UdpTracker {
    /// A handler over `swarms`, its connection ids keyed by `secret`.
    pub fn new(
        swarms: Arc<Swarms>,
        secret: [u8; 16],
        limiter: Arc<RateLimiter>,
        stats: Arc<Stats>,
    ) -> Self {
        UdpTracker {
            swarms,
            ids: ConnectionIds::new(secret),
            limiter,
            stats,
        }
    }

    /// Handles one datagram from `from` at tracker time `now_ms`; a reply
    /// (if any) is written to `out`. `scratch` is reused across calls.
    pub fn handle(
        &self,
        now_ms: u64,
        from: SocketAddr,
        packet: &[u8],
        scratch: &mut AnnounceReply,
        out: &mut Vec<u8>,
    ) -> Handled {
        out.clear();
        let now = secs(now_ms);
        let req = match Request::decode(packet) {
            Ok(r) => r,
            Err(e) => {
                self.stats.bad_request(Transport::Udp);
                return Handled::Dropped(e);
            }
        };
        let (connection_id, transaction_id) = match &req {
            Request::Connect { transaction_id } => {
                header(out, ACTION_CONNECT, *transaction_id);
                out.extend_from_slice(&self.ids.issue(now, &from).to_be_bytes());
                self.stats.udp_connect();
                return Handled::Reply;
            }
            Request::Announce {
                connection_id,
                transaction_id,
                ..
            }
            | Request::Scrape {
                connection_id,
                transaction_id,
                ..
            } => (*connection_id, *transaction_id),
        };
        if !self.ids.check(now, &from, connection_id) {
            self.stats.udp_bad_connection_id();
            error(out, transaction_id, b"bad connection id", packet.len());
            return Handled::Reply;
        }
        match self.limiter.check(now_ms, from.ip()) {
            Verdict::Allow => {}
            Verdict::AllowUntracked => self.stats.rate_untracked(),
            Verdict::Deny => {
                self.stats.rate_limited(Transport::Udp);
                error(
                    out,
                    transaction_id,
                    b"too many requests, slow down",
                    usize::MAX,
                );
                return Handled::Reply;
            }
        }
        match req {
            Request::Announce { request, .. } => {
                // BEP 41 data is parsed (and bounded) but not needed to answer.
                let options = packet.get(ANNOUNCE_REQUEST_LEN..).unwrap_or(&[]);
                if let Err(e) = parse_url_data(options) {
                    tracing::debug!(%from, error = %e, "ignoring malformed BEP 41 options");
                }
                let peer = SocketAddr::new(canonical_ip(from.ip()), request.port);
                let a = PeerAnnounce {
                    info_hash: request.info_hash,
                    addr: pack(peer),
                    seeder: request.left == 0,
                    event: request.event,
                    numwant: request.numwant,
                };
                match self.swarms.announce(now, &a, false, scratch) {
                    Ok(()) => {
                        self.stats.announce(Transport::Udp);
                        header(out, ACTION_ANNOUNCE, transaction_id);
                        out.extend_from_slice(&self.swarms.config().interval.to_be_bytes());
                        out.extend_from_slice(&scratch.incomplete.to_be_bytes());
                        out.extend_from_slice(&scratch.complete.to_be_bytes());
                        out.extend_from_slice(&scratch.peers4);
                        out.extend_from_slice(&scratch.peers6);
                    }
                    Err(e) => {
                        self.stats.refused(Transport::Udp);
                        error(out, transaction_id, e.to_string().as_bytes(), usize::MAX);
                    }
                }
            }
            Request::Scrape { info_hashes, .. } => {
                self.stats.scrape(Transport::Udp);
                header(out, ACTION_SCRAPE, transaction_id);
                for h in &info_hashes {
                    let s = self.swarms.scrape(h).unwrap_or_default();
                    for v in [s.complete, s.downloaded, s.incomplete] {
                        out.extend_from_slice(&v.to_be_bytes());
                    }
                }
            }
            Request::Connect { .. } => {}
        }
        Handled::Reply
    }
}

#[cfg(test)]
#[path = "udp_tests.rs"]
mod tests;
