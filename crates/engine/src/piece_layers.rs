//! Fetching the piece layers of a v2-only torrent from peers (BEP 52 `hash
//! request` / `hashes` / `hash reject`), for magnet links: the info
//! dictionary a magnet yields carries each file's `pieces root` but not the
//! per-piece hashes needed to verify pieces.
//!
//! [`LayerAssembler`] is the sans-IO core: it plans one hash request per run
//! of at most [`MAX_REQUEST_HASHES`] piece hashes of every file longer than
//! one piece (base layer = the piece layer, proof layers up to the root),
//! checks each answer against the file's `pieces root` with
//! [`shoal_storage::hash_proof::verify_hashes`] and assembles the layers.
//! [`fetch_piece_layers`] drives it over TCP, one peer at a time: a peer that
//! sends bad hashes, rejects too often, stalls or breaks the protocol is
//! dropped, its outstanding requests go back in the queue, and the next peer
//! is tried. Everything is bounded: pieces per torrent, requests in flight,
//! peers tried, an idle timeout per peer and an overall timeout.
use shoal_metainfo::{MetainfoError, Torrent};
use shoal_storage::hash_proof::{verify_hashes, HashProofError};
use shoal_wire::{ConnectionConfig, ConnectionError, Event, HashRequest, PeerConnection};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most hashes asked for in one request (BEP 52: length SHOULD NOT exceed 512).
pub const MAX_REQUEST_HASHES: u32 = 512;
/// Hash requests outstanding to one peer.
const MAX_IN_FLIGHT: usize = 4;
/// Rejects one peer may send before it is dropped.
const MAX_REJECTS: u32 = 8;
/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;
/// 16 KiB, the merkle leaf size.
const LEAF: u64 = 16 * 1024;

/// Why an answer is refused or the layers cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LayerAssemblyError {
    /// The torrent has more pieces than the configured budget.
    #[error("piece layers: {pieces} pieces, at most {max} accepted")]
    TooManyPieces {
        /// Pieces needing a layer hash.
        pieces: u64,
        /// The budget.
        max: u64,
    },
    /// A `hashes` or `hash reject` message that answers no outstanding request.
    #[error("hashes for index {index} (length {length}) were not requested")]
    Unsolicited {
        /// First hash of the answer.
        index: u32,
        /// Its length.
        length: u32,
    },
    /// The payload is not a whole number of 32-byte hashes.
    #[error("hashes payload of {len} bytes is not a multiple of 32")]
    BadPayload {
        /// Payload length.
        len: usize,
    },
    /// The hashes do not prove out to the file's `pieces root`.
    #[error("file {file_index}: hashes from index {index}: {source}")]
    BadHashes {
        /// The file (index in [`Torrent::files`]).
        file_index: usize,
        /// First hash of the answer.
        index: u32,
        /// What was wrong.
        source: HashProofError,
    },
}

/// The layer of one file being assembled.
#[derive(Debug)]
struct FileNeed {
    file_index: usize,
    root: [u8; 32],
    pieces: u64,
    layer: Vec<[u8; 32]>,
}

/// Sans-IO planner and checker of piece-layer hash requests.
///
/// Invariant: every planned request is either queued, in flight, or
/// answered and verified (its hashes written into the file's layer).
#[derive(Debug)]
pub struct LayerAssembler {
    piece_level: u32,
    files: Vec<FileNeed>,
    queue: VecDeque<(usize, HashRequest)>,
    in_flight: Vec<(usize, HashRequest)>,
}

impl LayerAssembler {
    /// Plans the requests for every file of `torrent` lacking its piece layer
    /// ([`Torrent::needs_piece_layer`]); at most `max_pieces` hashes in all.
    pub fn new(torrent: &Torrent, max_pieces: u64) -> Result<LayerAssembler, LayerAssemblyError> {
        let piece_length = torrent.piece_length().max(LEAF);
        let piece_level = (piece_length / LEAF).trailing_zeros();
        let mut files = Vec::new();
        let mut queue = VecDeque::new();
        let mut total = 0u64;
        for (i, f) in torrent.files().iter().enumerate() {
            if !torrent.needs_piece_layer(i) {
                continue;
            }
            let Some(root) = f.pieces_root else { continue };
            let pieces = f.length.div_ceil(piece_length);
            total = total.saturating_add(pieces);
            if total > max_pieces {
                return Err(LayerAssemblyError::TooManyPieces {
                    pieces: total,
                    max: max_pieces,
                });
            }
            let width = pieces.max(2).next_power_of_two();
            let height = width.trailing_zeros();
            let length = width.min(u64::from(MAX_REQUEST_HASHES)) as u32;
            let need = files.len();
            let mut index = 0u64;
            while index < pieces {
                queue.push_back((
                    need,
                    HashRequest {
                        pieces_root: root,
                        base_layer: piece_level,
                        index: index as u32,
                        length,
                        // Counted from the base layer, the first log2(length) - 1
                        // omitted (BEP 52): `height - 1` reaches the root, and is
                        // the most libtorrent accepts.
                        proof_layers: height.saturating_sub(1),
                    },
                ));
                index += u64::from(length);
            }
            files.push(FileNeed {
                file_index: i,
                root,
                pieces,
                layer: vec![[0; 32]; pieces as usize],
            });
        }
        Ok(LayerAssembler {
            piece_level,
            files,
            queue,
            in_flight: Vec::new(),
        })
    }

    /// True when every layer is complete and verified.
    pub fn is_complete(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Requests waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Requests sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// The next request to send (it is counted as in flight).
    pub fn next_request(&mut self) -> Option<HashRequest> {
        let (need, r) = self.queue.pop_front()?;
        self.in_flight.push((need, r));
        Some(r)
    }

    /// Puts every in-flight request back in the queue (the peer is gone).
    pub fn requeue_in_flight(&mut self) {
        for x in self.in_flight.drain(..).rev() {
            self.queue.push_front(x);
        }
    }

    fn take_in_flight(&mut self, r: &HashRequest) -> Option<(usize, HashRequest)> {
        let pos = self.in_flight.iter().position(|(_, q)| {
            q.pieces_root == r.pieces_root
                && q.base_layer == r.base_layer
                && q.index == r.index
                && q.length == r.length
        })?;
        Some(self.in_flight.swap_remove(pos))
    }

    /// A `hash reject` for `r`: the request goes back to the queue (for another peer).
    pub fn on_reject(&mut self, r: &HashRequest) -> Result<(), LayerAssemblyError> {
        let x = self
            .take_in_flight(r)
            .ok_or(LayerAssemblyError::Unsolicited {
                index: r.index,
                length: r.length,
            })?;
        self.queue.push_back(x);
        Ok(())
    }

    /// A `hashes` answer: checked against the file's `pieces root`; on
    /// success its hashes are stored, on failure the request goes back to the
    /// front of the queue (for the next peer).
    pub fn on_hashes(&mut self, r: &HashRequest, payload: &[u8]) -> Result<(), LayerAssemblyError> {
        let (need, ours) = self
            .take_in_flight(r)
            .ok_or(LayerAssemblyError::Unsolicited {
                index: r.index,
                length: r.length,
            })?;
        let result = self.check(need, &ours, payload);
        if result.is_err() {
            self.queue.push_front((need, ours));
        }
        result
    }

    fn check(
        &mut self,
        need: usize,
        ours: &HashRequest,
        payload: &[u8],
    ) -> Result<(), LayerAssemblyError> {
        if !payload.len().is_multiple_of(32) {
            return Err(LayerAssemblyError::BadPayload { len: payload.len() });
        }
        let hashes: Vec<[u8; 32]> = payload
            .chunks_exact(32)
            .map(|c| {
                let mut a = [0u8; 32];
                a.copy_from_slice(c);
                a
            })
            .collect();
        let Some(f) = self.files.get_mut(need) else {
            return Err(LayerAssemblyError::Unsolicited {
                index: ours.index,
                length: ours.length,
            });
        };
        let bad = |source| LayerAssemblyError::BadHashes {
            file_index: f.file_index,
            index: ours.index,
            source,
        };
        let real = verify_hashes(
            &f.root,
            self.piece_level,
            f.pieces,
            ours.base_layer,
            ours.index,
            ours.length,
            ours.proof_layers,
            &hashes,
        )
        .map_err(bad)?;
        let start = ours.index as usize;
        if let Some(dst) = f.layer.get_mut(start..start + real.len()) {
            dst.copy_from_slice(&real);
        }
        Ok(())
    }

    /// The assembled layers as (file index, layer); meaningful once
    /// [`LayerAssembler::is_complete`].
    pub fn into_layers(self) -> Vec<(usize, Vec<[u8; 32]>)> {
        self.files
            .into_iter()
            .map(|f| (f.file_index, f.layer))
            .collect()
    }
}

/// Settings of a piece-layer fetch.
#[derive(Debug, Clone)]
pub struct LayerFetchConfig {
    /// Our peer id in the handshake.
    pub peer_id: shoal_base::PeerId,
    /// Most piece hashes fetched for one torrent (32 bytes each; the layers
    /// are allocated up front). Default 2^21 (64 MiB).
    pub max_pieces: u64,
    /// Most peers tried.
    pub max_peers: usize,
    /// A peer that answers nothing for this long is dropped.
    pub peer_idle_timeout: Duration,
    /// Time allowed for the whole fetch.
    pub overall_timeout: Duration,
}

impl Default for LayerFetchConfig {
    fn default() -> Self {
        LayerFetchConfig {
            peer_id: shoal_base::PeerId(*b"-SH0100-piecelayers0"),
            max_pieces: 1 << 21,
            max_peers: 50,
            peer_idle_timeout: Duration::from_secs(20),
            overall_timeout: Duration::from_secs(120),
        }
    }
}

/// Why one peer could not give the layers. The peer is dropped; the next is tried.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerLayerError {
    /// TCP connect or socket I/O failed.
    #[error("peer {peer}: {source}")]
    Io {
        /// The peer.
        peer: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The peer closed the connection.
    #[error("peer {peer}: connection closed")]
    Closed {
        /// The peer.
        peer: SocketAddr,
    },
    /// The peer broke the wire protocol.
    #[error("peer {peer}: {source}")]
    Protocol {
        /// The peer.
        peer: SocketAddr,
        /// What it did wrong.
        source: ConnectionError,
    },
    /// The connection refused to send a hash request.
    #[error("peer {peer}: cannot send BitTorrent v2 hash requests")]
    NoV2 {
        /// The peer.
        peer: SocketAddr,
    },
    /// The peer rejected too many hash requests.
    #[error("peer {peer}: rejected {rejects} hash requests")]
    Rejected {
        /// The peer.
        peer: SocketAddr,
        /// How many.
        rejects: u32,
    },
    /// The peer sent hashes that do not check out (or were not asked for).
    #[error("peer {peer}: {source}")]
    BadHashes {
        /// The peer.
        peer: SocketAddr,
        /// What was wrong.
        source: LayerAssemblyError,
    },
    /// The peer answered nothing for the idle timeout.
    #[error("peer {peer}: no hashes within {after:?}")]
    TimedOut {
        /// The peer.
        peer: SocketAddr,
        /// The idle timeout.
        after: Duration,
    },
}

/// Why the piece layers could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchLayersError {
    /// The torrent is too large for the configured budget.
    #[error(transparent)]
    Plan(LayerAssemblyError),
    /// Every peer failed.
    #[error("no peer gave the piece layers ({failed} failed{})", suffix(.last_error))]
    NoPeers {
        /// Peers that failed.
        failed: usize,
        /// The most recent failure, as text.
        last_error: Option<String>,
    },
    /// The overall timeout passed.
    #[error("no piece layers after {after:?}{}", suffix(.last_error))]
    TimedOut {
        /// The overall timeout.
        after: Duration,
        /// The most recent failure, as text.
        last_error: Option<String>,
    },
    /// A verified layer was refused by the torrent (a bug, not the peer).
    #[error("attaching piece layers: {0}")]
    Attach(MetainfoError),
}

fn suffix(e: &Option<String>) -> String {
    e.as_ref()
        .map(|e| format!("; last: {e}"))
        .unwrap_or_default()
}

/// Fetches the missing piece layers of `torrent` (a v2-only torrent made from
/// bare info bytes) from `peers`, in order, and attaches them. `info_hash`
/// is the 20-byte (truncated v2) hash of the handshake. Does nothing when no
/// layer is missing.
pub async fn fetch_piece_layers(
    torrent: &mut Torrent,
    info_hash: shoal_base::InfoHash,
    peers: &[SocketAddr],
    config: &LayerFetchConfig,
) -> Result<(), FetchLayersError> {
    let mut asm =
        LayerAssembler::new(torrent, config.max_pieces).map_err(FetchLayersError::Plan)?;
    if asm.is_complete() {
        return Ok(());
    }
    let mut failed = 0usize;
    let mut last_error: Option<String> = None;
    let run = async {
        for &peer in peers.iter().take(config.max_peers) {
            match from_peer(peer, info_hash, config, &mut asm).await {
                Ok(()) => return true,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "piece layers: peer dropped");
                    asm.requeue_in_flight();
                    failed += 1;
                    last_error = Some(e.to_string());
                }
            }
        }
        false
    };
    let done = tokio::time::timeout(config.overall_timeout, run).await;
    match done {
        Ok(true) => {}
        Ok(false) => return Err(FetchLayersError::NoPeers { failed, last_error }),
        Err(_) => {
            return Err(FetchLayersError::TimedOut {
                after: config.overall_timeout,
                last_error,
            })
        }
    }
    for (i, layer) in asm.into_layers() {
        torrent
            .attach_piece_layer(i, layer)
            .map_err(FetchLayersError::Attach)?;
    }
    Ok(())
}

/// Runs the assembler against one peer until complete or the peer fails.
async fn from_peer(
    peer: SocketAddr,
    info_hash: shoal_base::InfoHash,
    config: &LayerFetchConfig,
    asm: &mut LayerAssembler,
) -> Result<(), PeerLayerError> {
    let io = |source| PeerLayerError::Io { peer, source };
    let connect = TcpStream::connect(peer);
    let mut stream = tokio::time::timeout(config.peer_idle_timeout, connect)
        .await
        .map_err(|_| PeerLayerError::TimedOut {
            peer,
            after: config.peer_idle_timeout,
        })?
        .map_err(io)?;
    let _ = stream.set_nodelay(true);
    let mut conn_config = ConnectionConfig {
        v2_messages: true,
        ..ConnectionConfig::default()
    };
    conn_config.reserved.set_v2(true);
    let mut conn =
        PeerConnection::outgoing(conn_config, info_hash, config.peer_id, None, Instant::now());
    let mut ready = false;
    let mut rejects = 0u32;
    let mut buf = vec![0u8; READ_CHUNK];
    let mut idle = tokio::time::Instant::now() + config.peer_idle_timeout;
    loop {
        if ready {
            while asm.in_flight() < MAX_IN_FLIGHT {
                let Some(r) = asm.next_request() else { break };
                if conn.send_hash_request(Instant::now(), r).is_err() {
                    return Err(PeerLayerError::NoV2 { peer });
                }
            }
            if asm.is_complete() {
                return Ok(());
            }
        }
        while let Some(out) = conn.poll_transmit() {
            stream.write_all(&out).await.map_err(io)?;
        }
        let wake = conn
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or(idle)
            .min(idle);
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = r.map_err(io)?;
                if n == 0 {
                    return Err(PeerLayerError::Closed { peer });
                }
                let chunk = buf.get(..n).unwrap_or_default();
                conn.handle_bytes(Instant::now(), chunk)
                    .map_err(|source| PeerLayerError::Protocol { peer, source })?;
            }
            _ = tokio::time::sleep_until(wake) => {
                if tokio::time::Instant::now() >= idle {
                    return Err(PeerLayerError::TimedOut { peer, after: config.peer_idle_timeout });
                }
                conn.handle_timeout(Instant::now())
                    .map_err(|source| PeerLayerError::Protocol { peer, source })?;
            }
        }
        while let Some(ev) = conn.poll_event() {
            match ev {
                // libtorrent leaves the v2 bit clear for v2-only torrents:
                // the truncated v2 info-hash is enough.
                Event::HandshakeComplete { .. } => ready = true,
                Event::Hashes { request, hashes } => {
                    asm.on_hashes(&request, &hashes)
                        .map_err(|source| PeerLayerError::BadHashes { peer, source })?;
                    idle = tokio::time::Instant::now() + config.peer_idle_timeout;
                }
                Event::HashReject(request) => {
                    asm.on_reject(&request)
                        .map_err(|source| PeerLayerError::BadHashes { peer, source })?;
                    rejects += 1;
                    if rejects > MAX_REJECTS {
                        return Err(PeerLayerError::Rejected { peer, rejects });
                    }
                }
                Event::HashRequest(r) => {
                    // We have no layers yet.
                    let _ = conn.send_hash_reject(Instant::now(), r);
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
#[path = "piece_layers_tests.rs"]
mod tests;
