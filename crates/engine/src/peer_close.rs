//! Why a peer connection ended: the typed reason a peer task hands its
//! torrent with its last message.

use shoal_storage::DiskError;
use shoal_wire::ConnectionError;

/// Why a peer connection ended (or never started). Every variant concerns
/// this connection only; none stops the torrent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerClose {
    /// We closed it: the torrent paused, stopped or dropped the peer.
    #[error("closed")]
    Closed,
    /// The dial was cancelled before the connection was up.
    #[error("cancelled")]
    Cancelled,
    /// The connect (TCP or uTP) failed.
    #[error("connect: {0}")]
    Connect(std::io::Error),
    /// The connect (TCP or uTP) did not finish in time.
    #[error("connect: timed out")]
    ConnectTimeout,
    /// No connection slot was free in the session.
    #[error("session connection limit")]
    ConnectionLimit,
    /// The peer closed its side.
    #[error("peer closed the connection")]
    PeerClosed,
    /// Reading from the socket failed.
    #[error("read: {0}")]
    Read(std::io::Error),
    /// The MSE/PE handshake of an outgoing connection failed (and no
    /// plain reconnect was allowed).
    #[error("{0}")]
    Mse(Box<shoal_wire::mse::io::MseIoError>),
    /// The socket's writer ended.
    #[error("write: connection closed")]
    WriteClosed,
    /// The peer broke the protocol or a timeout of the protocol expired.
    #[error("protocol: {0}")]
    Protocol(Box<ConnectionError>),
    /// The disk pool failed in a way that ends this connection.
    #[error("disk: {0}")]
    Disk(Box<DiskError>),
    /// The torrent is gone (its task stopped before this peer's).
    #[error("torrent stopped")]
    TorrentStopped,
    /// A simulated connection ended (the swarm simulator's reasons).
    #[error("{0}")]
    Simulated(&'static str),
}

impl PeerClose {
    /// The peer's host refused the connect (a TCP reset): it is up, nothing
    /// listens there on TCP.
    pub fn is_refused(&self) -> bool {
        matches!(self, PeerClose::Connect(e) if e.kind() == std::io::ErrorKind::ConnectionRefused)
    }
}

impl From<ConnectionError> for PeerClose {
    fn from(e: ConnectionError) -> Self {
        PeerClose::Protocol(Box::new(e))
    }
}

impl From<DiskError> for PeerClose {
    fn from(e: DiskError) -> Self {
        PeerClose::Disk(Box::new(e))
    }
}

#[cfg(test)]
mod tests {
    use super::PeerClose;

    /// Peer messages carry the reason: keep it one or two words.
    #[test]
    fn stays_small() {
        assert!(std::mem::size_of::<PeerClose>() <= 24);
    }

    #[test]
    fn says_what_happened() {
        let e = PeerClose::Connect(std::io::ErrorKind::ConnectionRefused.into());
        assert!(e.to_string().starts_with("connect: "));
        assert!(e.is_refused() && !PeerClose::ConnectTimeout.is_refused());
        assert_eq!(PeerClose::Simulated("refused").to_string(), "refused");
    }
}
