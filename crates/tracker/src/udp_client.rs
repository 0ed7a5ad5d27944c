//! The UDP tracker driver: a tokio `UdpSocket` connected to the tracker,
//! driving a [`UdpSession`] with the real clock.
use crate::error::{TrackerError, UrlError};
use crate::types::{AnnounceRequest, AnnounceResponse, ScrapeResponse};
use crate::udp_codec::MAX_DATAGRAM;
use crate::udp_session::{UdpConfig, UdpOutcome, UdpSession};
use shoal_base::InfoHash;
use std::net::SocketAddr;
use std::time::Instant;
use tokio::net::UdpSocket;

/// Resolves a `udp://host:port[/path]` URL to a socket address (the first one).
pub async fn resolve_udp_url(url: &str) -> Result<SocketAddr, TrackerError> {
    let u = url::Url::parse(url).map_err(|source| UrlError::Parse {
        url: url.to_owned(),
        source,
    })?;
    if u.scheme() != "udp" {
        return Err(UrlError::UnsupportedScheme {
            url: url.to_owned(),
            scheme: u.scheme().to_owned(),
        }
        .into());
    }
    let missing = || UrlError::MissingHostPort {
        url: url.to_owned(),
    };
    let port = u.port().ok_or_else(missing)?;
    let host = match u.host().ok_or_else(missing)? {
        url::Host::Ipv4(ip) => return Ok(SocketAddr::from((ip, port))),
        url::Host::Ipv6(ip) => return Ok(SocketAddr::from((ip, port))),
        url::Host::Domain(d) => d.to_owned(),
    };
    let mut addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|source| TrackerError::Io {
            url: url.to_owned(),
            source,
        })?;
    addrs.next().ok_or_else(|| TrackerError::NoAddress {
        url: url.to_owned(),
    })
}

/// A UDP tracker client bound to one tracker. Keeps its connection id
/// between calls (valid for a minute), so an announce followed by a scrape
/// costs one connect.
#[derive(Debug)]
pub struct UdpTrackerClient {
    url: String,
    socket: UdpSocket,
    session: UdpSession,
}

impl UdpTrackerClient {
    /// Resolves `url`, binds an ephemeral port of the same address family and
    /// connects the socket to the tracker (so only its datagrams are received).
    pub async fn connect(url: &str, config: UdpConfig) -> Result<Self, TrackerError> {
        let addr = resolve_udp_url(url).await?;
        let io = |source| TrackerError::Io {
            url: url.to_owned(),
            source,
        };
        let bind: SocketAddr = if addr.is_ipv6() {
            (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let socket = UdpSocket::bind(bind).await.map_err(io)?;
        socket.connect(addr).await.map_err(io)?;
        let seed = rand::random();
        Ok(UdpTrackerClient {
            url: url.to_owned(),
            socket,
            session: UdpSession::new(config, addr.is_ipv6(), seed),
        })
    }

    /// The tracker URL this client talks to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Announces; returns when the tracker answered, refused, or every retry timed out.
    pub async fn announce(
        &mut self,
        req: &AnnounceRequest,
    ) -> Result<AnnounceResponse, TrackerError> {
        // A previous call whose future was dropped may have left an exchange running.
        self.session.cancel();
        let started = self.session.start_announce(Instant::now(), req.clone());
        match self.run(started).await? {
            UdpOutcome::Announced(a) => Ok(a),
            UdpOutcome::Scraped(_) => Err(self.unexpected()),
        }
    }

    /// Scrapes 1 to 74 info-hashes.
    pub async fn scrape(
        &mut self,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        self.session.cancel();
        let started = self
            .session
            .start_scrape(Instant::now(), info_hashes.to_vec());
        match self.run(started).await? {
            UdpOutcome::Scraped(s) => Ok(s),
            UdpOutcome::Announced(_) => Err(self.unexpected()),
        }
    }

    fn unexpected(&self) -> TrackerError {
        TrackerError::Udp {
            url: self.url.clone(),
            source: crate::error::UdpTrackerError::Busy,
        }
    }

    async fn run(
        &mut self,
        started: Result<(), crate::error::UdpTrackerError>,
    ) -> Result<UdpOutcome, TrackerError> {
        let url = self.url.clone();
        started.map_err(|source| TrackerError::Udp {
            url: url.clone(),
            source,
        })?;
        let mut buf = vec![0u8; MAX_DATAGRAM];
        loop {
            while let Some(packet) = self.session.poll_transmit() {
                if let Err(source) = self.socket.send(&packet).await {
                    self.session.cancel();
                    return Err(TrackerError::Io { url, source });
                }
            }
            if let Some(result) = self.session.poll_result() {
                return result.map_err(|source| TrackerError::Udp { url, source });
            }
            let Some(deadline) = self.session.poll_timeout() else {
                // Not reachable: a running exchange always has a deadline.
                self.session.cancel();
                return Err(self.unexpected());
            };
            tokio::select! {
                r = self.socket.recv(&mut buf) => match r {
                    Ok(n) => {
                        let data = buf.get(..n).unwrap_or(&[]);
                        self.session.handle_datagram(Instant::now(), data);
                    }
                    // ICMP port unreachable and the like: keep waiting, the
                    // retransmission timer decides when to give up.
                    Err(e) => tracing::debug!(url = %url, error = %e, "UDP tracker recv error"),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    self.session.handle_timeout(Instant::now());
                }
            }
        }
    }
}
