//! Typed errors, one enum per operation: building a tracker URL ([`UrlError`]),
//! parsing an HTTP tracker reply ([`ReplyError`]), parsing a UDP tracker packet
//! ([`UdpPacketError`]), one UDP tracker exchange ([`UdpTrackerError`]) and one
//! announce or scrape over the network ([`TrackerError`]).
use std::time::Duration;

/// Why a tracker URL cannot be used for the operation asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not parse.
    #[error("tracker URL {url:?} does not parse: {source}")]
    Parse {
        /// The URL as given.
        url: String,
        /// What the URL parser said.
        source: url::ParseError,
    },
    /// The scheme is not `http`, `https` or `udp`.
    #[error("tracker URL {url:?} has unsupported scheme {scheme:?} (want http, https or udp)")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// BEP 48: the last path segment does not start with `announce`, so there is no scrape URL.
    #[error("no scrape URL for {url:?}: its last path segment does not start with \"announce\" (BEP 48)")]
    NoScrape {
        /// The announce URL.
        url: String,
    },
    /// A `udp://` URL without host or port.
    #[error("UDP tracker URL {url:?} lacks a host or a port")]
    MissingHostPort {
        /// The URL as given.
        url: String,
    },
}

/// Why an HTTP tracker reply (announce or scrape) was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplyError {
    /// The body is longer than the configured cap.
    #[error("tracker reply is {len} bytes or more, over the limit of {limit}")]
    TooLarge {
        /// Bytes seen (at least).
        len: usize,
        /// The cap.
        limit: usize,
    },
    /// The body is not valid bencode (or exceeds the decoder limits).
    #[error("tracker reply: {0}")]
    Bencode(#[from] shoal_bencode::Error),
    /// The body is bencode but not a dictionary.
    #[error("tracker reply has type {found}, expected dictionary")]
    NotADict {
        /// The bencode type found.
        found: &'static str,
    },
    /// The tracker refused the request (`failure reason`).
    #[error("tracker refused: {reason}")]
    Failure {
        /// The tracker's text, lossily decoded as UTF-8.
        reason: String,
    },
    /// A field has the wrong bencode type.
    #[error("tracker reply field {field:?} has type {found}, expected {expected}")]
    WrongType {
        /// The field name.
        field: &'static str,
        /// The type wanted.
        expected: &'static str,
        /// The type found.
        found: &'static str,
    },
    /// An integer field is negative or too large.
    #[error("tracker reply field {field:?} = {value} is out of range")]
    OutOfRange {
        /// The field name.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// A compact peer string whose length is not a whole number of entries.
    #[error("tracker reply field {field:?} is {len} bytes, not a multiple of {unit}")]
    BadCompactLength {
        /// `peers` or `peers6`.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The entry size (6 or 18).
        unit: usize,
    },
    /// An entry of the dictionary-form `peers` list is unusable.
    #[error("peer #{index} of the tracker's peer list is invalid: {reason}")]
    BadPeer {
        /// Position in the list.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `external ip` is neither 4 nor 16 bytes (BEP 24).
    #[error("tracker reply field \"external ip\" is {len} bytes, expected 4 or 16")]
    BadExternalIp {
        /// Its length.
        len: usize,
    },
    /// A scrape `files` key that is not a 20-byte info-hash.
    #[error("scrape reply key #{index} is {len} bytes, expected a 20-byte info-hash")]
    BadScrapeKey {
        /// Position in the `files` dictionary.
        index: usize,
        /// Its length.
        len: usize,
    },
}

/// Why a UDP tracker packet (BEP 15) does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpPacketError {
    /// Shorter than the fixed part of its kind.
    #[error("UDP tracker {what} is {len} bytes, shorter than the {need} it needs")]
    TooShort {
        /// Which packet kind.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The minimum length.
        need: usize,
    },
    /// The action field is not 0..=3.
    #[error("UDP tracker packet has unknown action {action}")]
    UnknownAction {
        /// The action found.
        action: u32,
    },
    /// The variable part is not a whole number of entries.
    #[error("UDP tracker {what} has a {len}-byte tail, not a multiple of {unit}")]
    BadLength {
        /// Which packet kind.
        what: &'static str,
        /// Length of the variable part.
        len: usize,
        /// Entry size.
        unit: usize,
    },
    /// Too many entries (info-hashes in a scrape).
    #[error("UDP tracker {what} has {count} entries, more than {max}")]
    TooMany {
        /// Which packet kind.
        what: &'static str,
        /// Entries found.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A connect request without the BEP 15 magic protocol id.
    #[error("UDP connect request has protocol id {found:#x}, not 0x41727101980")]
    BadMagic {
        /// The value found.
        found: u64,
    },
}

/// Why one UDP tracker exchange (connect, then announce or scrape) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UdpTrackerError {
    /// No answer after every retransmission.
    #[error("UDP tracker did not answer the {what} after {attempts} attempts")]
    TimedOut {
        /// `connect`, `announce` or `scrape`.
        what: &'static str,
        /// Transmissions made.
        attempts: u32,
    },
    /// The tracker sent an error packet (action 3).
    #[error("UDP tracker refused: {message}")]
    Failure {
        /// The tracker's message, lossily decoded as UTF-8.
        message: String,
    },
    /// A reply with our transaction id that does not parse.
    #[error("UDP tracker reply is malformed: {0}")]
    Malformed(#[from] UdpPacketError),
    /// An exchange was started while another is still running.
    #[error("a UDP tracker exchange is already in progress")]
    Busy,
    /// A scrape of zero or too many info-hashes.
    #[error("a UDP scrape takes 1 to {max} info-hashes, not {count}")]
    BadScrapeCount {
        /// Hashes asked.
        count: usize,
        /// The limit.
        max: usize,
    },
}

/// Why an announce or scrape over the network failed. Carries the tracker URL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrackerError {
    /// The URL is unusable for this operation.
    #[error(transparent)]
    Url(#[from] UrlError),
    /// The HTTP reply was rejected (including `failure reason`).
    #[error("{url}: {source}")]
    Reply {
        /// The tracker URL.
        url: String,
        /// Why.
        source: ReplyError,
    },
    /// The UDP exchange failed.
    #[error("{url}: {source}")]
    Udp {
        /// The tracker URL.
        url: String,
        /// Why.
        source: UdpTrackerError,
    },
    /// The HTTP request failed (connect, TLS, protocol).
    #[error("{url}: HTTP request failed: {source}")]
    Http {
        /// The tracker URL.
        url: String,
        /// The client's error.
        source: reqwest::Error,
    },
    /// The HTTP status was not a success.
    #[error("{url}: HTTP status {status}")]
    HttpStatus {
        /// The tracker URL.
        url: String,
        /// The status code.
        status: u16,
    },
    /// Socket or name-resolution error.
    #[error("{url}: {source}")]
    Io {
        /// The tracker URL.
        url: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The host name resolved to no address.
    #[error("{url}: host resolves to no address")]
    NoAddress {
        /// The tracker URL.
        url: String,
    },
    /// The whole exchange took longer than allowed.
    #[error("{url}: no answer within {after:?}")]
    Timeout {
        /// The tracker URL.
        url: String,
        /// The time allowed.
        after: Duration,
    },
}

impl TrackerError {
    /// The tracker's own refusal text, if this is a `failure reason` or UDP error packet.
    pub fn tracker_message(&self) -> Option<&str> {
        match self {
            TrackerError::Reply {
                source: ReplyError::Failure { reason },
                ..
            } => Some(reason),
            TrackerError::Udp {
                source: UdpTrackerError::Failure { message },
                ..
            } => Some(message),
            _ => None,
        }
    }
}
