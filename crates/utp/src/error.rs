//! Typed errors of the uTP core.
use std::net::SocketAddr;

/// Why a connection ended other than by a clean close.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer sent a RESET.
    #[error("utp: connection reset by the peer")]
    Reset,
    /// No answer to the SYN.
    #[error("utp: connecting timed out")]
    ConnectTimedOut,
    /// The peer stopped answering.
    #[error("utp: connection timed out")]
    TimedOut,
    /// Closed by this side with [`crate::Connection::abort`].
    #[error("utp: connection aborted")]
    Aborted,
    /// The endpoint shut down.
    #[error("utp: endpoint closed")]
    EndpointClosed,
}

/// Why [`crate::Endpoint::connect`] could not start a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The endpoint's connection limit is reached.
    #[error("utp: too many connections ({0})")]
    TooManyConnections(usize),
    /// No free connection id towards this address.
    #[error("utp: no free connection id towards {0}")]
    NoConnectionId(SocketAddr),
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The connection is still connecting.
    #[error("utp: not connected yet")]
    NotConnected,
    /// The write side was shut down by this side.
    #[error("utp: write side closed")]
    Shutdown,
    /// The connection ended.
    #[error("{0}")]
    Closed(ConnectionError),
    /// The connection closed cleanly.
    #[error("utp: connection closed")]
    Finished,
    /// No such connection (it was released or never existed).
    #[error("utp: unknown connection")]
    UnknownConnection,
}

/// Why a read returned no data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Nothing to read yet (wait for [`crate::Event::Readable`]).
    #[error("utp: no data yet")]
    WouldBlock,
    /// The connection ended (data received before it was returned first).
    #[error("{0}")]
    Closed(ConnectionError),
    /// No such connection (it was released or never existed).
    #[error("utp: unknown connection")]
    UnknownConnection,
}
