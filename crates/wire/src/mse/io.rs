//! The MSE handshake over a tokio stream (feature `tokio`): [`run`] drives
//! an [`MseHandshake`] of either role to its end; [`accept`] is the
//! listening side, telling a plain BitTorrent handshake (`\x13BitTorrent
//! protocol`) from MSE by the first bytes and reading the BitTorrent
//! handshake prefix either way, so the caller can route the connection.

use super::handshake::MseHandshake;
use super::stream::{Encryption, MseStream};
use super::{MseConfig, MseError, SkeyLookup};
use crate::handshake::{HandshakeError, HandshakePrefix, HANDSHAKE_PREFIX_LEN};
use rand::RngCore;
use std::sync::Arc;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bytes read from the socket at a time during the handshake (what comes
/// after it is kept as payload).
const READ_CHUNK: usize = 4096;

/// Why [`run`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum MseIoError {
    /// The socket failed or closed early.
    #[error("mse: {0}")]
    Io(#[from] std::io::Error),
    /// The peer broke the protocol, or the deadline passed.
    #[error(transparent)]
    Handshake(#[from] MseError),
}

/// Drives `hs` over `stream` until it completes: writes what it sends, feeds
/// it what arrives (starting with `received`, bytes already read from the
/// stream), and stops at its deadline. The returned stream continues the
/// connection with the selected crypto.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    mut hs: MseHandshake,
    received: &[u8],
) -> Result<MseStream<S>, MseIoError> {
    if !received.is_empty() {
        hs.handle_bytes(std::time::Instant::now(), received)?;
    }
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        let mut wrote = false;
        while let Some(out) = hs.poll_transmit() {
            stream.write_all(&out).await?;
            wrote = true;
        }
        if wrote {
            stream.flush().await?;
        }
        if let Some(o) = hs.take_outcome() {
            return Ok(MseStream::from_outcome(stream, o));
        }
        let Some(deadline) = hs.poll_timeout() else {
            return Err(MseError::Closed.into());
        };
        let read = tokio::time::timeout_at(deadline.into(), stream.read(&mut buf)).await;
        let now = std::time::Instant::now();
        match read {
            Err(_) => {
                hs.handle_timeout(now.max(deadline))?;
            }
            Ok(r) => {
                let n = r?;
                if n == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
                }
                hs.handle_bytes(now, &buf[..n])?;
            }
        }
    }
}

/// What [`accept`] lets in.
#[derive(Debug, Clone)]
pub struct AcceptPolicy {
    /// Plain BitTorrent handshakes are accepted.
    pub plaintext: bool,
    /// MSE handshakes are accepted, with these settings (`None`: refused).
    pub mse: Option<MseConfig>,
}

/// Why [`accept`] failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum AcceptError {
    /// The socket failed or closed early.
    #[error("accept: {0}")]
    Io(#[from] std::io::Error),
    /// A plain BitTorrent handshake, and the policy requires MSE.
    #[error("accept: plaintext connection refused (encryption required)")]
    PlaintextRefused,
    /// Not a plain BitTorrent handshake, and the policy refuses MSE.
    #[error("accept: not a BitTorrent handshake and encryption is disabled ({0})")]
    EncryptedRefused(HandshakeError),
    /// The MSE handshake failed.
    #[error(transparent)]
    Mse(#[from] MseError),
    /// After MSE, the bytes are not a BitTorrent handshake.
    #[error("accept: after mse: {0}")]
    Handshake(#[from] HandshakeError),
    /// After MSE, the BitTorrent handshake names another torrent than SKEY.
    #[error("accept: the BitTorrent handshake names another torrent than the MSE one")]
    InfoHashMismatch,
    /// The deadline passed.
    #[error("accept: timed out")]
    TimedOut,
}

impl From<MseIoError> for AcceptError {
    fn from(e: MseIoError) -> Self {
        match e {
            MseIoError::Io(e) => AcceptError::Io(e),
            MseIoError::Handshake(MseError::TimedOut) => AcceptError::TimedOut,
            MseIoError::Handshake(e) => AcceptError::Mse(e),
        }
    }
}

/// An incoming connection, ready for [`crate::PeerConnection::incoming`].
#[derive(Debug)]
pub struct Accepted<S> {
    /// The stream, positioned after the 48-byte handshake prefix.
    pub stream: MseStream<S>,
    /// The peer's handshake prefix: the torrent and its feature bits.
    pub prefix: HandshakePrefix,
}

impl<S> Accepted<S> {
    /// What protects the connection.
    pub fn encryption(&self) -> Encryption {
        self.stream.encryption()
    }
}

/// The listening side: reads the first bytes of `stream`; a plain
/// BitTorrent handshake is taken as it is, anything else is run as an MSE
/// responder (finding the torrent with `lookup`), as `policy` allows. Either
/// way it returns once the 48-byte BitTorrent handshake prefix is read, so
/// the caller can pick the torrent; the whole of it is bounded by the MSE
/// timeout (or 10 s without MSE). `rng` draws the DH key and padding.
pub async fn accept<S, R>(
    mut stream: S,
    policy: &AcceptPolicy,
    lookup: Arc<dyn SkeyLookup + Send + Sync>,
    mut rng: R,
) -> Result<Accepted<S>, AcceptError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: RngCore,
{
    let timeout = policy
        .mse
        .as_ref()
        .map_or(std::time::Duration::from_secs(10), |c| c.timeout);
    let start = std::time::Instant::now();
    let deadline = tokio::time::Instant::from_std(start + timeout);
    // Read up to the prefix length, stopping as soon as the bytes cannot be
    // a plain handshake (never past the 48 bytes, so nothing is lost).
    let mut head = [0u8; HANDSHAKE_PREFIX_LEN];
    let mut have = 0;
    let not_plain = loop {
        let n = tokio::time::timeout_at(deadline, stream.read(&mut head[have..]))
            .await
            .map_err(|_| AcceptError::TimedOut)??;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        have += n;
        match HandshakePrefix::parse(&head[..have]) {
            Ok(Some(prefix)) => {
                if !policy.plaintext {
                    return Err(AcceptError::PlaintextRefused);
                }
                return Ok(Accepted {
                    stream: MseStream::plain(stream),
                    prefix,
                });
            }
            Ok(None) => continue,
            Err(e) => break e,
        }
    };
    let Some(cfg) = policy.mse.clone() else {
        return Err(AcceptError::EncryptedRefused(not_plain));
    };
    let hs = MseHandshake::responder(cfg, lookup, &mut rng, start);
    let mut s = run(stream, hs, &head[..have]).await?;
    let prefix = tokio::time::timeout_at(deadline, crate::tokio_io::read_handshake_prefix(&mut s))
        .await
        .map_err(|_| AcceptError::TimedOut)?
        .map_err(|e| match e {
            crate::tokio_io::ReadPrefixError::Io(e) => AcceptError::Io(e),
            crate::tokio_io::ReadPrefixError::Handshake(e) => AcceptError::Handshake(e),
        })?;
    if Some(prefix.info_hash.0) != s.skey() {
        return Err(AcceptError::InfoHashMismatch);
    }
    Ok(Accepted { stream: s, prefix })
}
