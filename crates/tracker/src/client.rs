//! [`TrackerClient`]: one entry point for announces and scrapes that picks
//! the HTTP or UDP driver by URL scheme and bounds each call in time.
use crate::error::{TrackerError, UrlError};
use crate::http_client::{HttpConfig, HttpTrackerClient};
use crate::types::{AnnounceRequest, AnnounceResponse, ScrapeResponse};
use crate::udp_client::resolve_udp_url;
use crate::udp_mux::{SharedUdpSocket, UdpMux};
use crate::udp_session::{UdpConfig, UdpOutcome};
use shoal_base::InfoHash;
use std::time::Duration;

/// Settings for [`TrackerClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// HTTP settings (its `timeout` bounds one HTTP request).
    pub http: HttpConfig,
    /// UDP retransmission settings.
    pub udp: UdpConfig,
    /// Upper bound on one whole UDP exchange, whatever the retry schedule
    /// (BEP 15's full schedule lasts over two hours).
    pub udp_timeout: Duration,
}

impl Default for ClientConfig {
    /// HTTP defaults; UDP with BEP 15 back-off but at most 60 s per exchange
    /// (so about three transmissions of each step), as libtorrent also gives
    /// up on UDP trackers well before the full schedule.
    fn default() -> Self {
        ClientConfig {
            http: HttpConfig::default(),
            udp: UdpConfig::default(),
            udp_timeout: Duration::from_secs(60),
        }
    }
}

/// The kind of tracker a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackerKind {
    /// `http://` or `https://`.
    Http,
    /// `udp://`.
    Udp,
}

impl TrackerKind {
    /// The kind of the tracker at `url`, from its scheme (case-insensitive).
    pub fn of(url: &str) -> Result<TrackerKind, UrlError> {
        let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("http") | Some("https") => Ok(TrackerKind::Http),
            Some("udp") => Ok(TrackerKind::Udp),
            _ => Err(UrlError::UnsupportedScheme {
                url: url.to_owned(),
                scheme: scheme.unwrap_or_default(),
            }),
        }
    }
}

/// Announces to and scrapes any tracker by URL. Cheap to clone; calls may
/// run concurrently. All UDP exchanges of a client and its clones share one
/// socket per address family (bound at the first UDP call), so a session of
/// 10,000 torrents does not open a socket per announce.
#[derive(Debug, Clone)]
pub struct TrackerClient {
    http: HttpTrackerClient,
    udp: UdpMux,
    config: ClientConfig,
}

impl TrackerClient {
    /// Builds the client (fails only if TLS cannot be set up).
    pub fn new(config: ClientConfig) -> Result<Self, TrackerError> {
        Ok(TrackerClient {
            http: HttpTrackerClient::new(config.http.clone())?,
            udp: UdpMux::default(),
            config,
        })
    }

    /// As [`TrackerClient::new`], with the UDP exchanges of `shared`'s
    /// address family on `shared` (a session's one UDP port, shared with the
    /// DHT and uTP); the other family binds its own socket when needed.
    pub fn with_shared_udp(
        config: ClientConfig,
        shared: SharedUdpSocket,
    ) -> Result<Self, TrackerError> {
        Ok(TrackerClient {
            http: HttpTrackerClient::new(config.http.clone())?,
            udp: UdpMux::with_shared(shared).map_err(|source| TrackerError::Io {
                url: "udp://".to_owned(),
                source,
            })?,
            config,
        })
    }

    /// Announces `req` to `url`. `tracker_id` is the `tracker id` this HTTP
    /// tracker gave before (ignored for UDP).
    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
        tracker_id: Option<&[u8]>,
    ) -> Result<AnnounceResponse, TrackerError> {
        match TrackerKind::of(url)? {
            TrackerKind::Http => self.http.announce(url, req, tracker_id).await,
            TrackerKind::Udp => {
                let req = req.clone();
                let out = self.udp_exchange(url, |s, now| s.start_announce(now, req));
                match self.udp_bounded(url, out).await? {
                    UdpOutcome::Announced(a) => Ok(a),
                    UdpOutcome::Scraped(_) => Err(unexpected(url)),
                }
            }
        }
    }

    /// Scrapes `info_hashes` from the tracker at announce URL `url`.
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        match TrackerKind::of(url)? {
            TrackerKind::Http => self.http.scrape(url, info_hashes).await,
            TrackerKind::Udp => {
                let hashes = info_hashes.to_vec();
                let out = self.udp_exchange(url, |s, now| s.start_scrape(now, hashes));
                match self.udp_bounded(url, out).await? {
                    UdpOutcome::Scraped(s) => Ok(s),
                    UdpOutcome::Announced(_) => Err(unexpected(url)),
                }
            }
        }
    }

    /// The local address of the shared UDP socket of `family_of`'s address
    /// family, once a UDP call has bound it.
    pub fn udp_local_addr(&self, family_of: std::net::SocketAddr) -> Option<std::net::SocketAddr> {
        self.udp.local_addr(family_of)
    }

    /// Resolves `url` and runs one exchange on the shared socket.
    async fn udp_exchange(
        &self,
        url: &str,
        start: impl FnOnce(
            &mut crate::udp_session::UdpSession,
            std::time::Instant,
        ) -> Result<(), crate::error::UdpTrackerError>,
    ) -> Result<UdpOutcome, TrackerError> {
        let addr = resolve_udp_url(url).await?;
        self.udp.exchange(url, addr, self.config.udp, start).await
    }

    async fn udp_bounded<T>(
        &self,
        url: &str,
        fut: impl std::future::Future<Output = Result<T, TrackerError>>,
    ) -> Result<T, TrackerError> {
        let after = self.config.udp_timeout;
        tokio::time::timeout(after, fut).await.unwrap_or_else(|_| {
            Err(TrackerError::Timeout {
                url: url.to_owned(),
                after,
            })
        })
    }
}

/// An exchange ended with the other kind of outcome (not reachable: each
/// session runs the operation it was started with).
fn unexpected(url: &str) -> TrackerError {
    TrackerError::Udp {
        url: url.to_owned(),
        source: crate::error::UdpTrackerError::Busy,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_by_scheme() {
        assert_eq!(
            TrackerKind::of("HTTP://x/announce").ok(),
            Some(TrackerKind::Http)
        );
        assert_eq!(
            TrackerKind::of("https://x/announce").ok(),
            Some(TrackerKind::Http)
        );
        assert_eq!(TrackerKind::of("udp://x:1").ok(), Some(TrackerKind::Udp));
        assert!(matches!(
            TrackerKind::of("wss://x"),
            Err(UrlError::UnsupportedScheme { scheme, .. }) if scheme == "wss"
        ));
        assert!(TrackerKind::of("no scheme").is_err());
    }
}
