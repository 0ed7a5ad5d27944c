//! The HTTP(S) tracker driver: reqwest with rustls (no system OpenSSL), an
//! overall timeout per request, and a body cap enforced while streaming
//! (reading stops as soon as the cap is passed).
use crate::error::{ReplyError, TrackerError};
use crate::http_reply::{parse_announce_reply, parse_scrape_reply, ReplyLimits};
use crate::http_url::{announce_url, scrape_request_url};
use crate::types::{AnnounceRequest, AnnounceResponse, ScrapeResponse};
use shoal_base::InfoHash;
use std::time::Duration;
use url::Url;

/// Settings of the HTTP tracker client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpConfig {
    /// Time allowed for one whole request (connect, send, read the body).
    pub timeout: Duration,
    /// Reply bounds (body size, peers).
    pub limits: ReplyLimits,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpConfig {
    /// 30 s timeout, default [`ReplyLimits`], `shoal/<version>`.
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(30),
            limits: ReplyLimits::default(),
            user_agent: concat!("shoal/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// An HTTP(S) tracker client. Cheap to clone. Keeps no idle connections.
#[derive(Debug, Clone)]
pub struct HttpTrackerClient {
    client: reqwest::Client,
    config: HttpConfig,
}

impl HttpTrackerClient {
    /// Builds a client; fails only if the TLS backend cannot be set up.
    pub fn new(config: HttpConfig) -> Result<Self, TrackerError> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .user_agent(config.user_agent.clone())
            .redirect(reqwest::redirect::Policy::limited(5))
            // Announces are minutes apart and many trackers (opentracker)
            // close the connection after each reply: reusing a pooled one
            // would race with that close and fail with a reset.
            .pool_max_idle_per_host(0)
            .build()
            .map_err(|source| TrackerError::Http {
                url: String::new(),
                source,
            })?;
        Ok(HttpTrackerClient { client, config })
    }

    /// Announces `req` to the tracker at `url`; `tracker_id` is what this
    /// tracker sent before, if anything.
    pub async fn announce(
        &self,
        url: &str,
        req: &AnnounceRequest,
        tracker_id: Option<&[u8]>,
    ) -> Result<AnnounceResponse, TrackerError> {
        let full = announce_url(url, req, tracker_id)?;
        let body = self.get_capped(url, full).await?;
        parse_announce_reply(&body, &self.config.limits).map_err(|source| TrackerError::Reply {
            url: url.to_owned(),
            source,
        })
    }

    /// Scrapes `info_hashes` from the tracker whose announce URL is `url` (BEP 48).
    pub async fn scrape(
        &self,
        url: &str,
        info_hashes: &[InfoHash],
    ) -> Result<ScrapeResponse, TrackerError> {
        let full = scrape_request_url(url, info_hashes)?;
        let body = self.get_capped(url, full).await?;
        parse_scrape_reply(&body, &self.config.limits).map_err(|source| TrackerError::Reply {
            url: url.to_owned(),
            source,
        })
    }

    async fn get_capped(&self, url: &str, full: Url) -> Result<Vec<u8>, TrackerError> {
        let fut = async {
            let http = |source| TrackerError::Http {
                url: url.to_owned(),
                source,
            };
            let mut resp = self.client.get(full).send().await.map_err(http)?;
            let status = resp.status();
            let limit = self.config.limits.max_body;
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(http)? {
                if body.len() + chunk.len() > limit {
                    return Err(TrackerError::Reply {
                        url: url.to_owned(),
                        source: ReplyError::TooLarge {
                            len: body.len() + chunk.len(),
                            limit,
                        },
                    });
                }
                body.extend_from_slice(&chunk);
            }
            if !status.is_success() {
                // Some trackers send their `failure reason` with an error status.
                if let Err(source @ ReplyError::Failure { .. }) =
                    parse_announce_reply(&body, &self.config.limits)
                {
                    return Err(TrackerError::Reply {
                        url: url.to_owned(),
                        source,
                    });
                }
                return Err(TrackerError::HttpStatus {
                    url: url.to_owned(),
                    status: status.as_u16(),
                });
            }
            Ok(body)
        };
        // reqwest's own timeout covers this too; the outer one bounds the body loop.
        match tokio::time::timeout(self.config.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(TrackerError::Timeout {
                url: url.to_owned(),
                after: self.config.timeout,
            }),
        }
    }
}
