//! The sans-IO UDP tracker client (BEP 15): one exchange at a time with one
//! tracker address — connect if the connection id is missing or older than
//! its lifetime, then announce or scrape — with transaction ids, timeouts and
//! retransmission with back-off `base · 2^n` (n = 0 ..= `max_retries`).
//!
//! Shape (as quinn-proto): the driver calls [`UdpSession::start_announce`] or
//! [`UdpSession::start_scrape`], sends what [`UdpSession::poll_transmit`]
//! gives, feeds datagrams to [`UdpSession::handle_datagram`], sleeps until
//! [`UdpSession::poll_timeout`] and then calls [`UdpSession::handle_timeout`],
//! until [`UdpSession::poll_result`] yields the outcome. Time is always an
//! argument; the transaction-id RNG is seeded by the caller.
//!
//! Retransmissions reuse the transaction id, so a late answer to an earlier
//! copy is accepted. The retry counter restarts at 0 after each successful
//! step (connect, then announce). Datagrams with another transaction id or an
//! unexpected action are ignored; a malformed datagram with our transaction id
//! ends the exchange with [`UdpTrackerError::Malformed`]; an error packet ends
//! it with [`UdpTrackerError::Failure`] and forgets the connection id.
use crate::error::{UdpPacketError, UdpTrackerError};
use crate::types::{AnnounceRequest, AnnounceResponse, ScrapeResponse};
use crate::udp_codec::{Request, Response, MAX_SCRAPE_HASHES};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use shoal_base::InfoHash;
use std::time::{Duration, Instant};

/// Timing and limits of the UDP tracker client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpConfig {
    /// The first timeout; attempt n waits `base_timeout · 2^n` (BEP 15: 15 s).
    pub base_timeout: Duration,
    /// Retransmissions per step before giving up (BEP 15: 8, so 9 sends).
    pub max_retries: u32,
    /// How long a connection id may be used (BEP 15: 1 minute for clients).
    pub connection_lifetime: Duration,
    /// Most peers kept from one announce response.
    pub max_peers: usize,
}

impl Default for UdpConfig {
    /// The BEP 15 values: 15 s base, 8 retries, 60 s connection ids; 10 000 peers.
    fn default() -> Self {
        UdpConfig {
            base_timeout: Duration::from_secs(15),
            max_retries: 8,
            connection_lifetime: Duration::from_secs(60),
            max_peers: 10_000,
        }
    }
}

/// The result of a finished exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UdpOutcome {
    /// The announce succeeded.
    Announced(AnnounceResponse),
    /// The scrape succeeded.
    Scraped(ScrapeResponse),
}

#[derive(Debug, Clone)]
enum Operation {
    Announce(AnnounceRequest),
    Scrape(Vec<InfoHash>),
}

impl Operation {
    fn name(&self) -> &'static str {
        match self {
            Operation::Announce(_) => "announce",
            Operation::Scrape(_) => "scrape",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Connecting,
    Requesting,
}

#[derive(Debug)]
struct Exchange {
    op: Operation,
    step: Step,
    transaction_id: u32,
    /// Retransmissions made in this step so far (the `n` of BEP 15).
    retries: u32,
    deadline: Instant,
    /// The last datagram sent, kept for retransmission.
    packet: Vec<u8>,
}

/// One tracker's UDP client state. See the module docs for the driving loop.
#[derive(Debug)]
pub struct UdpSession {
    config: UdpConfig,
    ipv6: bool,
    rng: StdRng,
    connection: Option<(u64, Instant)>,
    exchange: Option<Exchange>,
    transmit: Option<Vec<u8>>,
    result: Option<Result<UdpOutcome, UdpTrackerError>>,
}

impl UdpSession {
    /// A session with a tracker reached over IPv6 (`ipv6`, so peers are 18
    /// bytes) or IPv4; `seed` seeds the transaction-id generator.
    pub fn new(config: UdpConfig, ipv6: bool, seed: u64) -> Self {
        UdpSession {
            config,
            ipv6,
            rng: StdRng::seed_from_u64(seed),
            connection: None,
            exchange: None,
            transmit: None,
            result: None,
        }
    }

    /// Starts an announce. Fails with [`UdpTrackerError::Busy`] while another exchange runs.
    pub fn start_announce(
        &mut self,
        now: Instant,
        request: AnnounceRequest,
    ) -> Result<(), UdpTrackerError> {
        self.start(now, Operation::Announce(request))
    }

    /// Starts a scrape of 1 ..= [`MAX_SCRAPE_HASHES`] info-hashes.
    pub fn start_scrape(
        &mut self,
        now: Instant,
        info_hashes: Vec<InfoHash>,
    ) -> Result<(), UdpTrackerError> {
        if info_hashes.is_empty() || info_hashes.len() > MAX_SCRAPE_HASHES {
            return Err(UdpTrackerError::BadScrapeCount {
                count: info_hashes.len(),
                max: MAX_SCRAPE_HASHES,
            });
        }
        self.start(now, Operation::Scrape(info_hashes))
    }

    fn start(&mut self, now: Instant, op: Operation) -> Result<(), UdpTrackerError> {
        if self.exchange.is_some() {
            return Err(UdpTrackerError::Busy);
        }
        self.result = None;
        let step = if self.valid_connection(now).is_some() {
            Step::Requesting
        } else {
            Step::Connecting
        };
        let mut ex = Exchange {
            op,
            step,
            transaction_id: 0,
            retries: 0,
            deadline: now,
            packet: Vec::new(),
        };
        self.begin_step(now, &mut ex);
        self.exchange = Some(ex);
        Ok(())
    }

    fn valid_connection(&self, now: Instant) -> Option<u64> {
        match self.connection {
            Some((id, at))
                if now.saturating_duration_since(at) < self.config.connection_lifetime =>
            {
                Some(id)
            }
            _ => None,
        }
    }

    /// Chooses a fresh transaction id, builds the step's packet and queues it.
    fn begin_step(&mut self, now: Instant, ex: &mut Exchange) {
        ex.transaction_id = self.rng.gen();
        let connection_id = self.valid_connection(now);
        let packet = match (ex.step, connection_id) {
            (Step::Requesting, Some(connection_id)) => match &ex.op {
                Operation::Announce(r) => Request::Announce {
                    connection_id,
                    transaction_id: ex.transaction_id,
                    request: r.clone(),
                },
                Operation::Scrape(h) => Request::Scrape {
                    connection_id,
                    transaction_id: ex.transaction_id,
                    info_hashes: h.clone(),
                },
            },
            _ => {
                ex.step = Step::Connecting;
                Request::Connect {
                    transaction_id: ex.transaction_id,
                }
            }
        };
        ex.packet = packet.encode();
        self.send(now, ex);
    }

    fn send(&mut self, now: Instant, ex: &mut Exchange) {
        self.transmit = Some(ex.packet.clone());
        let factor = 1u32 << ex.retries.min(16);
        ex.deadline = now + self.config.base_timeout.saturating_mul(factor);
    }

    /// The next datagram to send, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.take()
    }

    /// When [`UdpSession::handle_timeout`] should be called next, if an exchange runs.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.exchange.as_ref().map(|e| e.deadline)
    }

    /// The outcome of the last exchange, once it has finished (taken once).
    pub fn poll_result(&mut self) -> Option<Result<UdpOutcome, UdpTrackerError>> {
        self.result.take()
    }

    /// Whether an exchange is running.
    pub fn is_busy(&self) -> bool {
        self.exchange.is_some()
    }

    /// Abandons the running exchange (no result is produced).
    pub fn cancel(&mut self) {
        self.exchange = None;
        self.transmit = None;
    }

    /// Retransmits or gives up when the deadline has passed; does nothing before it.
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(mut ex) = self.exchange.take() else {
            return;
        };
        if now < ex.deadline {
            self.exchange = Some(ex);
            return;
        }
        if ex.retries >= self.config.max_retries {
            let what = match ex.step {
                Step::Connecting => "connect",
                Step::Requesting => ex.op.name(),
            };
            self.transmit = None;
            self.result = Some(Err(UdpTrackerError::TimedOut {
                what,
                attempts: ex.retries + 1,
            }));
            return;
        }
        ex.retries += 1;
        if ex.step == Step::Requesting && self.valid_connection(now).is_none() {
            // The connection id expired while we waited: connect again,
            // keeping the back-off where it is.
            ex.step = Step::Connecting;
            self.begin_step(now, &mut ex);
        } else {
            self.send(now, &mut ex);
        }
        self.exchange = Some(ex);
    }

    /// Feeds one datagram received from the tracker's address.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let Some(mut ex) = self.exchange.take() else {
            return;
        };
        let tid = match datagram.get(4..8) {
            Some(b) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            None => {
                self.exchange = Some(ex);
                return;
            }
        };
        if tid != ex.transaction_id {
            self.exchange = Some(ex);
            return;
        }
        let resp = match Response::decode(datagram, self.ipv6, self.config.max_peers) {
            Ok(r) => r,
            Err(e) => return self.finish(Err(e.into())),
        };
        match (ex.step, resp, &ex.op) {
            (Step::Connecting, Response::Connect { connection_id, .. }, _) => {
                self.connection = Some((connection_id, now));
                ex.step = Step::Requesting;
                ex.retries = 0;
                self.begin_step(now, &mut ex);
                self.exchange = Some(ex);
            }
            (
                Step::Requesting,
                Response::Announce {
                    interval,
                    leechers,
                    seeders,
                    peers,
                    ..
                },
                Operation::Announce(_),
            ) => self.finish(Ok(UdpOutcome::Announced(AnnounceResponse {
                interval,
                complete: Some(seeders),
                incomplete: Some(leechers),
                peers,
                ..AnnounceResponse::default()
            }))),
            (Step::Requesting, Response::Scrape { stats, .. }, Operation::Scrape(hashes)) => {
                if stats.len() != hashes.len() {
                    return self.finish(Err(UdpTrackerError::Malformed(
                        UdpPacketError::BadLength {
                            what: "scrape response",
                            len: stats.len() * 12,
                            unit: 12 * hashes.len(),
                        },
                    )));
                }
                let files = hashes.iter().copied().zip(stats).collect();
                self.finish(Ok(UdpOutcome::Scraped(ScrapeResponse {
                    files,
                    min_request_interval: None,
                })))
            }
            (_, Response::Error { message, .. }, _) => {
                // The id may be what the tracker disliked: get a new one next time.
                self.connection = None;
                self.finish(Err(UdpTrackerError::Failure { message }))
            }
            // Right transaction id, wrong action for this step: ignore it.
            _ => self.exchange = Some(ex),
        }
    }

    fn finish(&mut self, result: Result<UdpOutcome, UdpTrackerError>) {
        self.exchange = None;
        self.transmit = None;
        self.result = Some(result);
    }
}

#[cfg(test)]
#[path = "udp_session_tests.rs"]
mod tests;
