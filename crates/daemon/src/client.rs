//! A small HTTP/1.1 client (hyper's connection API over one TCP stream per
//! request): `torrent-add` fetching an `http://` .torrent URL, and the
//! `shoal` commands that talk to a running daemon. Bodies are bounded and
//! every request has a deadline; plain `http://` only.
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::HeaderValue;
use std::time::Duration;

/// Why a request failed (the messages say what happened, for people).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// No complete answer within the deadline.
    #[error("no answer within {secs} s")]
    Timeout {
        /// The deadline, in seconds.
        secs: u64,
    },
    /// The URL does not parse (or a redirect's target does not).
    #[error("{0}")]
    Url(#[from] url::ParseError),
    /// Not an `http://` URL.
    #[error("only http:// URLs are supported (got {scheme}://)")]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// The URL names no host.
    #[error("the URL has no host")]
    NoHost,
    /// The TCP connection failed.
    #[error("connecting to {host}:{port}: {source}")]
    Connect {
        /// The host.
        host: String,
        /// The port.
        port: u16,
        /// What the system said.
        source: std::io::Error,
    },
    /// The HTTP exchange failed.
    #[error("{0}")]
    Http(#[from] hyper::Error),
    /// A header or the request could not be built.
    #[error("{0}")]
    Request(#[from] hyper::http::Error),
    /// The answer's body failed or passed its size limit.
    #[error("reading the answer: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// A redirect without a `Location` header.
    #[error("a redirect without Location")]
    NoLocation,
    /// An answer other than 200 or a redirect.
    #[error("HTTP status {0}")]
    Status(u16),
    /// More redirects than followed.
    #[error("too many redirects")]
    TooManyRedirects,
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers.
    pub headers: hyper::HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

/// Sends one request to `url` (`http://HOST[:PORT]/PATH`) and reads the
/// answer, at most `max` body bytes, within `timeout`.
pub async fn request(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    max: usize,
    timeout: Duration,
) -> Result<Response, ClientError> {
    tokio::time::timeout(timeout, request_inner(method, url, headers, body, max))
        .await
        .map_err(|_| ClientError::Timeout {
            secs: timeout.as_secs(),
        })?
}

async fn request_inner(
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    max: usize,
) -> Result<Response, ClientError> {
    let u = url::Url::parse(url)?;
    if u.scheme() != "http" {
        return Err(ClientError::Scheme {
            scheme: u.scheme().to_owned(),
        });
    }
    let host = u.host_str().ok_or(ClientError::NoHost)?.to_owned();
    let port = u.port_or_known_default().unwrap_or(80);
    let connect_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let stream = tokio::net::TcpStream::connect((connect_host.as_str(), port))
        .await
        .map_err(|source| ClientError::Connect {
            host: host.clone(),
            port,
            source,
        })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    let driver = tokio::spawn(async move {
        let _ = conn.await;
    });
    let path = match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_owned(),
    };
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(
            hyper::header::HOST,
            match u.port() {
                Some(p) => format!("{host}:{p}"),
                None => host.clone(),
            },
        )
        .header(
            hyper::header::USER_AGENT,
            concat!("shoal/", env!("CARGO_PKG_VERSION")),
        );
    // A header given replaces the default one (e.g. `Host`).
    for (k, v) in headers {
        let v = HeaderValue::from_str(v).map_err(hyper::http::Error::from)?;
        let k = hyper::header::HeaderName::from_bytes(k.as_bytes())
            .map_err(hyper::http::Error::from)?;
        if let Some(h) = req.headers_mut() {
            h.insert(k, v);
        }
    }
    let req = req.body(Full::new(Bytes::from(body)))?;
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = Limited::new(resp.into_body(), max)
        .collect()
        .await
        .map_err(ClientError::Body)?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// GETs a file (a .torrent by URL), following up to 3 redirects.
pub async fn fetch(url: &str, max: usize, timeout: Duration) -> Result<Vec<u8>, ClientError> {
    let mut url = url.to_owned();
    for _ in 0..4 {
        let r = request("GET", &url, &[], Vec::new(), max, timeout).await?;
        match r.status {
            200 => return Ok(r.body),
            301 | 302 | 303 | 307 | 308 => {
                let loc = r
                    .headers
                    .get(hyper::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(ClientError::NoLocation)?;
                url = url::Url::parse(&url)?.join(loc)?.to_string();
            }
            s => return Err(ClientError::Status(s)),
        }
    }
    Err(ClientError::TooManyRedirects)
}
