//! Fetching a torrent's info dictionary from peers (BEP 9 `ut_metadata`), for
//! magnet links.
//!
//! [`fetch_metadata`] dials candidate peers concurrently (at most
//! [`MetadataFetchConfig::max_concurrent`] at once, each bounded by
//! [`MetadataFetchConfig::peer_timeout`]), does the BEP 3 handshake with the
//! extension bit and the BEP 10 extension handshake, asks for every 16 KiB
//! piece and checks the whole dictionary against the info-hash (SHA-1 for v1,
//! SHA-256 for v2). Each peer assembles its own copy, so a peer that sends a
//! bad piece fails only its own attempt: it is dropped and other peers go on.
//! New candidates (from the DHT, say) can arrive while the fetch runs, and
//! peers named in a contacted peer's first `ut_pex` message (BEP 11; at most
//! [`shoal_wire::pex::MAX_PEX_PEERS`] per peer) join the candidates too. The
//! whole fetch is bounded by [`MetadataFetchConfig::overall_timeout`].
use bytes::Bytes;
use shoal_wire::metadata::DEFAULT_MAX_METADATA_SIZE;
use shoal_wire::{
    ConnectionConfig, ConnectionError, Event, MetadataAssembler, MetadataAssemblyError,
    MetadataHash, MetadataMessage, MetadataProgress, PeerConnection,
};
use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Most `ut_metadata` requests outstanding to one peer (libtorrent and others
/// reject peers that ask for too much at once).
const MAX_IN_FLIGHT: usize = 2;
/// Most rejects one peer may send before we give up on it.
const MAX_REJECTS: u32 = 4;
/// Bytes read from the socket per call.
const READ_CHUNK: usize = 64 * 1024;

/// Settings of a metadata fetch.
#[derive(Debug, Clone)]
pub struct MetadataFetchConfig {
    /// Our peer id in the handshake.
    pub peer_id: shoal_base::PeerId,
    /// Largest info dictionary accepted (BEP 9 `metadata_size`); default 16 MiB.
    pub max_metadata_size: u64,
    /// Most peers tried at the same time.
    pub max_concurrent: usize,
    /// Most candidate addresses remembered (the rest are ignored).
    pub max_candidates: usize,
    /// Time allowed for one peer, from dialling to the verified dictionary.
    pub peer_timeout: Duration,
    /// Time allowed for the whole fetch.
    pub overall_timeout: Duration,
}

impl Default for MetadataFetchConfig {
    fn default() -> Self {
        MetadataFetchConfig {
            peer_id: shoal_base::PeerId(*b"-SH0100-metadatafetc"),
            max_metadata_size: DEFAULT_MAX_METADATA_SIZE,
            max_concurrent: 8,
            max_candidates: 1000,
            peer_timeout: Duration::from_secs(30),
            overall_timeout: Duration::from_secs(120),
        }
    }
}

/// What to fetch: the 20-byte hash used in the handshake and the hash the
/// dictionary must have.
#[derive(Debug, Clone, Copy)]
pub struct MetadataTarget {
    /// Info-hash sent in the handshake (v1, or the truncated v2 hash).
    pub info_hash: shoal_base::InfoHash,
    /// Hash the assembled dictionary is checked against.
    pub hash: MetadataHash,
}

/// Progress of a fetch, reported on every change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchProgress {
    /// Distinct candidate peers known so far.
    pub known: usize,
    /// Peers being tried right now.
    pub active: usize,
    /// Peers that failed (unreachable, no metadata, bad data, timeout).
    pub failed: usize,
}

/// A verified info dictionary.
#[derive(Debug, Clone)]
pub struct FetchedMetadata {
    /// The bencoded info dictionary; its hash matches the target.
    pub info: Bytes,
    /// The peer it came from.
    pub from: SocketAddr,
    /// Every distinct candidate seen, including those learned by peer
    /// exchange (useful as initial peers for the download).
    pub candidates: Vec<SocketAddr>,
}

/// Why one peer could not give the metadata. The peer is dropped; others go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeerMetadataError {
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
    /// The peer does not speak BEP 10, or has no `ut_metadata`/`metadata_size`.
    #[error("peer {peer}: does not offer ut_metadata")]
    NoMetadataSupport {
        /// The peer.
        peer: SocketAddr,
    },
    /// Bad size, a piece of the wrong length, or a hash mismatch.
    #[error("peer {peer}: {source}")]
    BadMetadata {
        /// The peer.
        peer: SocketAddr,
        /// What was wrong.
        source: MetadataAssemblyError,
    },
    /// The peer rejected our requests too often.
    #[error("peer {peer}: rejected {rejects} metadata requests")]
    Rejected {
        /// The peer.
        peer: SocketAddr,
        /// How many rejects.
        rejects: u32,
    },
    /// The per-peer time ran out.
    #[error("peer {peer}: no metadata within {after:?}")]
    TimedOut {
        /// The peer.
        peer: SocketAddr,
        /// The per-peer timeout.
        after: Duration,
    },
}

/// Why the whole fetch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchMetadataError {
    /// The overall timeout passed.
    #[error("no metadata after {after:?} ({tried} peers tried, {failed} failed{})", last_error_suffix(.last_error))]
    TimedOut {
        /// The overall timeout.
        after: Duration,
        /// Peers tried.
        tried: usize,
        /// Peers that failed.
        failed: usize,
        /// The most recent peer failure, as text.
        last_error: Option<String>,
    },
    /// Every candidate failed and no more can arrive.
    #[error("no peer gave the metadata ({failed} failed{})", last_error_suffix(.last_error))]
    NoPeers {
        /// Peers that failed.
        failed: usize,
        /// The most recent peer failure, as text.
        last_error: Option<String>,
    },
}

fn last_error_suffix(e: &Option<String>) -> String {
    e.as_ref()
        .map(|e| format!("; last: {e}"))
        .unwrap_or_default()
}

/// Fetches and verifies the info dictionary of `target` from `initial` peers
/// and from those arriving on `more` (closed or dropped sender: no more; the
/// receiver stays with the caller, who may keep using it afterwards).
/// `on_progress` is called whenever the counts change. Returns at the first
/// verified dictionary; the other attempts are aborted.
pub async fn fetch_metadata(
    target: MetadataTarget,
    config: MetadataFetchConfig,
    initial: Vec<SocketAddr>,
    more: &mut mpsc::Receiver<Vec<SocketAddr>>,
    mut on_progress: impl FnMut(FetchProgress),
) -> Result<FetchedMetadata, FetchMetadataError> {
    let start = tokio::time::Instant::now();
    let deadline = start + config.overall_timeout;
    let mut seen: HashSet<SocketAddr> = HashSet::new();
    let mut order: Vec<SocketAddr> = Vec::new();
    let mut queue: VecDeque<SocketAddr> = VecDeque::new();
    let mut add = |addrs: Vec<SocketAddr>,
                   seen: &mut HashSet<SocketAddr>,
                   queue: &mut VecDeque<SocketAddr>| {
        for a in addrs {
            if seen.len() < config.max_candidates && a.port() != 0 && seen.insert(a) {
                order.push(a);
                queue.push_back(a);
            }
        }
    };
    add(initial, &mut seen, &mut queue);
    let mut active: JoinSet<(SocketAddr, Result<Bytes, PeerMetadataError>)> = JoinSet::new();
    // Peers' `ut_pex` lists; bounded, and a full channel drops a list.
    let (pex_tx, mut pex_rx) = mpsc::channel::<Vec<SocketAddr>>(16);
    let mut more_open = true;
    let mut failed = 0usize;
    let mut last_error: Option<String> = None;
    let mut last_progress = FetchProgress::default();
    loop {
        while active.len() < config.max_concurrent.max(1) {
            let Some(peer) = queue.pop_front() else { break };
            let cfg = config.clone();
            let pex = pex_tx.clone();
            active.spawn(async move {
                let r = fetch_with_pex(peer, target, &cfg, Some(pex)).await;
                (peer, r)
            });
        }
        let progress = FetchProgress {
            known: seen.len(),
            active: active.len(),
            failed,
        };
        if progress != last_progress {
            last_progress = progress;
            on_progress(progress);
        }
        if active.is_empty() && queue.is_empty() && !more_open {
            return Err(FetchMetadataError::NoPeers { failed, last_error });
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {
                return Err(FetchMetadataError::TimedOut {
                    after: config.overall_timeout,
                    tried: seen.len() - queue.len(),
                    failed,
                    last_error,
                });
            }
            r = more.recv(), if more_open => match r {
                Some(addrs) => add(addrs, &mut seen, &mut queue),
                None => more_open = false,
            },
            Some(addrs) = pex_rx.recv() => {
                tracing::debug!(peers = addrs.len(), "metadata: peers from ut_pex");
                add(addrs, &mut seen, &mut queue);
            }
            Some(joined) = active.join_next(), if !active.is_empty() => match joined {
                Ok((from, Ok(info))) => {
                    return Ok(FetchedMetadata { info, from, candidates: order });
                }
                Ok((peer, Err(e))) => {
                    tracing::debug!(%peer, error = %e, "metadata: peer dropped");
                    failed += 1;
                    last_error = Some(e.to_string());
                }
                Err(e) => {
                    failed += 1;
                    last_error = Some(format!("peer task: {e}"));
                }
            },
        }
    }
}

/// Fetches the dictionary from one peer, within the per-peer timeout.
pub async fn fetch_from_peer(
    peer: SocketAddr,
    target: MetadataTarget,
    config: &MetadataFetchConfig,
) -> Result<Bytes, PeerMetadataError> {
    fetch_with_pex(peer, target, config, None).await
}

/// [`fetch_from_peer`], passing the peer's first `ut_pex` list to `pex`.
async fn fetch_with_pex(
    peer: SocketAddr,
    target: MetadataTarget,
    config: &MetadataFetchConfig,
    pex: Option<mpsc::Sender<Vec<SocketAddr>>>,
) -> Result<Bytes, PeerMetadataError> {
    let inner = fetch_inner(peer, target, config, pex);
    match tokio::time::timeout(config.peer_timeout, inner).await {
        Ok(r) => r,
        Err(_) => Err(PeerMetadataError::TimedOut {
            peer,
            after: config.peer_timeout,
        }),
    }
}

/// The `ut_metadata` state of one peer.
struct PeerFetch {
    peer: SocketAddr,
    assembler: Option<MetadataAssembler>,
    in_flight: usize,
    rejects: u32,
}

impl PeerFetch {
    /// Handles one event; `Some(info)` when the dictionary is complete.
    fn on_event(
        &mut self,
        conn: &mut PeerConnection,
        ev: Event,
        target: &MetadataTarget,
        max_size: u64,
        now: Instant,
    ) -> Result<Option<Bytes>, PeerMetadataError> {
        let peer = self.peer;
        match ev {
            Event::HandshakeComplete { .. } if !conn.supports_extensions() => {
                Err(PeerMetadataError::NoMetadataSupport { peer })
            }
            Event::ExtensionHandshake(h) if self.assembler.is_none() => {
                let (Some(_), Some(size)) = (h.id_of("ut_metadata"), h.metadata_size) else {
                    return Err(PeerMetadataError::NoMetadataSupport { peer });
                };
                let a = MetadataAssembler::new(target.hash, size, max_size)
                    .map_err(|source| PeerMetadataError::BadMetadata { peer, source })?;
                self.assembler = Some(a);
                Ok(None)
            }
            Event::Metadata(MetadataMessage::Data { piece, data, .. }) => {
                let Some(a) = self.assembler.as_mut() else {
                    return Ok(None);
                };
                self.in_flight = self.in_flight.saturating_sub(1);
                match a.on_data(piece, data) {
                    Ok(MetadataProgress::Complete(info)) => Ok(Some(info)),
                    Ok(_) => Ok(None),
                    Err(source) => Err(PeerMetadataError::BadMetadata { peer, source }),
                }
            }
            Event::Metadata(MetadataMessage::Reject { piece }) => {
                if let Some(a) = self.assembler.as_mut() {
                    a.on_reject(piece);
                    self.in_flight = self.in_flight.saturating_sub(1);
                }
                self.rejects += 1;
                if self.rejects > MAX_REJECTS {
                    return Err(PeerMetadataError::Rejected {
                        peer,
                        rejects: self.rejects,
                    });
                }
                Ok(None)
            }
            Event::Metadata(MetadataMessage::Request { piece }) => {
                // We have nothing to give yet.
                let _ = conn.send_metadata(now, &MetadataMessage::Reject { piece });
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Tops up the outstanding requests.
    fn request_more(&mut self, conn: &mut PeerConnection, now: Instant) {
        let Some(a) = self.assembler.as_mut() else {
            return;
        };
        while self.in_flight < MAX_IN_FLIGHT {
            let Some(piece) = a.next_request(now) else {
                break;
            };
            if conn
                .send_metadata(now, &MetadataMessage::Request { piece })
                .is_err()
            {
                a.on_reject(piece);
                break;
            }
            self.in_flight += 1;
        }
    }
}

async fn fetch_inner(
    peer: SocketAddr,
    target: MetadataTarget,
    config: &MetadataFetchConfig,
    mut pex: Option<mpsc::Sender<Vec<SocketAddr>>>,
) -> Result<Bytes, PeerMetadataError> {
    let io = |source| PeerMetadataError::Io { peer, source };
    let mut stream = TcpStream::connect(peer).await.map_err(io)?;
    let _ = stream.set_nodelay(true);
    let conn_config = ConnectionConfig {
        max_metadata_size: config.max_metadata_size,
        ..ConnectionConfig::default()
    };
    let mut conn = PeerConnection::outgoing(
        conn_config,
        target.info_hash,
        config.peer_id,
        None,
        Instant::now(),
    );
    let mut state = PeerFetch {
        peer,
        assembler: None,
        in_flight: 0,
        rejects: 0,
    };
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        while let Some(out) = conn.poll_transmit() {
            stream.write_all(&out).await.map_err(io)?;
        }
        let wake = conn
            .poll_timeout()
            .map(tokio::time::Instant::from_std)
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(60));
        tokio::select! {
            r = stream.read(&mut buf) => {
                let n = r.map_err(io)?;
                if n == 0 {
                    return Err(PeerMetadataError::Closed { peer });
                }
                let chunk = buf.get(..n).unwrap_or_default();
                conn.handle_bytes(Instant::now(), chunk)
                    .map_err(|source| PeerMetadataError::Protocol { peer, source })?;
            }
            _ = tokio::time::sleep_until(wake) => {
                conn.handle_timeout(Instant::now())
                    .map_err(|source| PeerMetadataError::Protocol { peer, source })?;
            }
        }
        let now = Instant::now();
        while let Some(ev) = conn.poll_event() {
            if let Event::Pex(m) = &ev {
                // Only the first message of this peer is used.
                if let Some(tx) = pex.take() {
                    let addrs: Vec<SocketAddr> = m
                        .added
                        .iter()
                        .map(|(a, _)| *a)
                        .filter(|a| a.port() != 0 && !a.ip().is_unspecified() && *a != peer)
                        .take(shoal_wire::pex::MAX_PEX_PEERS)
                        .collect();
                    if !addrs.is_empty() {
                        let _ = tx.try_send(addrs);
                    }
                }
                continue;
            }
            if let Some(info) =
                state.on_event(&mut conn, ev, &target, config.max_metadata_size, now)?
            {
                return Ok(info);
            }
        }
        state.request_more(&mut conn, now);
    }
}

#[cfg(test)]
#[path = "metadata_tests.rs"]
mod tests;
