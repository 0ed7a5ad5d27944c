//! Async helpers over tokio (feature `tokio`): reading the first 48 bytes of
//! an incoming handshake so a listener can route the connection by info-hash
//! before building a [`crate::PeerConnection::incoming`]. Everything else is
//! driven through the sans-IO [`crate::PeerConnection`].

use crate::handshake::{HandshakeError, HandshakePrefix, HANDSHAKE_PREFIX_LEN};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Why the handshake prefix could not be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ReadPrefixError {
    /// The socket failed or closed early.
    #[error("reading handshake: {0}")]
    Io(#[from] std::io::Error),
    /// The bytes are not a BitTorrent handshake (detected as early as possible).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

/// Reads exactly the 48-byte handshake prefix (never more, so the rest stays
/// in the stream for the connection), failing as soon as the bytes cannot be
/// a BitTorrent handshake. Callers bound it with a timeout.
pub async fn read_handshake_prefix<R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<HandshakePrefix, ReadPrefixError> {
    let mut buf = [0u8; HANDSHAKE_PREFIX_LEN];
    let mut have = 0;
    loop {
        let n = r.read(&mut buf[have..]).await?;
        if n == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        have += n;
        if let Some(p) = HandshakePrefix::parse(&buf[..have])? {
            return Ok(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::{Handshake, InfoHash, PeerId, Reserved};
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    #[tokio::test]
    async fn prefix_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let hs = Handshake {
                reserved: Reserved::shoal(true),
                info_hash: InfoHash([3; 20]),
                peer_id: PeerId([4; 20]),
            };
            // in two writes, to exercise partial reads
            s.write_all(&hs.encode()[..10]).await.unwrap();
            s.flush().await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
            s.write_all(&hs.encode()[10..]).await.unwrap();
            s
        });
        let (mut conn, _) = listener.accept().await.unwrap();
        let p = tokio::time::timeout(Duration::from_secs(5), read_handshake_prefix(&mut conn))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(p.info_hash, InfoHash([3; 20]));
        assert!(p.reserved.dht());
        let mut rest = [0u8; 20];
        conn.read_exact(&mut rest).await.unwrap();
        assert_eq!(rest, [4; 20]);
        drop(client.await.unwrap());
    }

    #[tokio::test]
    async fn garbage_fails_early_and_eof_is_an_error() {
        let mut garbage: &[u8] = b"GET / HTTP/1.1\r\n";
        assert!(matches!(
            read_handshake_prefix(&mut garbage).await,
            Err(ReadPrefixError::Handshake(_))
        ));
        let mut short: &[u8] = &[19, b'B', b'i'];
        assert!(matches!(
            read_handshake_prefix(&mut short).await,
            Err(ReadPrefixError::Io(_))
        ));
    }
}
