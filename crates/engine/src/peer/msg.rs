//! The messages between a peer task and its torrent.
use super::*;

/// Commands from the torrent to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    /// Request these blocks.
    Request(Vec<Block>),
    /// Withdraw a request (endgame loser).
    Cancel(Block),
    /// We verified a piece.
    Have(u32),
    /// Choke the peer.
    Choke,
    /// Unchoke the peer.
    Unchoke,
    /// Tell the peer whether we are interested.
    Interested(bool),
    /// Send this `ut_pex` message (BEP 11).
    Pex(shoal_wire::PexMessage),
    /// Ask for a piece of the info dictionary (BEP 9).
    RequestMetadata(u32),
    /// Ask for piece-layer hashes (BEP 52).
    RequestHashes(shoal_wire::HashRequest),
    /// The metadata arrived: the torrent has these pieces (the piece count
    /// is now known; we announce what we have).
    SetPieces(shoal_wire::Bitfield),
}

/// What a peer task tells its torrent.
#[derive(Debug)]
pub(crate) enum PeerMsg {
    /// The TCP connection is up (outgoing connects only).
    TcpConnected,
    /// The peer's handshake arrived.
    Handshake {
        peer_id: shoal_base::PeerId,
        /// The connection is RC4-encrypted (MSE/PE).
        encrypted: bool,
        /// The connection is uTP (else TCP).
        utp: bool,
    },
    /// The request pipeline cap (the peer's `reqq`).
    PipelineLimit(u32),
    /// Facts from the peer's extension handshake that peer exchange needs.
    Extensions {
        /// Its listen port (`p`).
        port: Option<u16>,
        /// It speaks `ut_pex`.
        pex: bool,
        /// Our address as it sees us (`yourip`).
        your_ip: Option<std::net::IpAddr>,
        /// The size of the info dictionary it offers (BEP 9), if any.
        metadata_size: Option<u64>,
    },
    /// A `ut_metadata` answer (a piece, or a reject) from the peer.
    Metadata(shoal_wire::MetadataMessage),
    /// Hashes answering our BEP 52 request.
    Hashes {
        /// What was asked.
        request: Box<shoal_wire::HashRequest>,
        /// The hashes (32 bytes each), proof layers included.
        hashes: Bytes,
    },
    /// The peer declined a BEP 52 request.
    HashReject(Box<shoal_wire::HashRequest>),
    /// A decoded `ut_pex` message (BEP 11).
    Pex(shoal_wire::PexMessage),
    /// The peer's piece set was replaced.
    Bitfield(shoal_wire::Bitfield),
    /// The peer has a new piece.
    Have(u32),
    /// The peer choked us.
    Choked,
    /// The peer unchoked us.
    Unchoked,
    /// The peer's interest in us changed.
    Interest(bool),
    /// Requested blocks arrived (their data went to the disk actor), with
    /// their SHA-1 when smart-ban digests are on. One message per socket
    /// read rather than per block.
    Blocks(Vec<(Block, Option<[u8; 20]>)>),
    /// These requests will not be answered.
    RequestsFailed(Vec<Block>),
    /// Periodic rates (payload bytes/s) and snub state.
    Stats {
        down_rate: u64,
        /// The download rate over the last second or two (sizes the
        /// request pipeline; `down_rate` lags a rise by seconds).
        recent_down_rate: u64,
        up_rate: u64,
        uploaded: u64,
        snubbed: bool,
    },
    /// The connection ended.
    Closed { reason: PeerClose },
}
