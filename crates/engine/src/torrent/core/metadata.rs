//! The core's `ut_metadata` fetch (BEP 9) for a torrent that started from
//! a magnet link: the same connections that will transfer its pieces ask
//! for the info dictionary first.
//!
//! Each peer that offers the dictionary (`ut_metadata` and `metadata_size`
//! in its extension handshake) assembles its own copy, at most
//! [`MAX_SOURCES`] at once with [`MAX_IN_FLIGHT`] requests each, so a peer
//! that sends a bad piece fails only its own copy (and is closed), never
//! someone else's. The first copy that hashes to the info-hash wins.
use super::{Action, PeerCmd, TorrentCore};
use crate::picker::{PeerKey, PiecePicker};
use crate::status::TorrentState;
use shoal_wire::metadata::DEFAULT_MAX_METADATA_SIZE;
use shoal_wire::{Bitfield, MetadataAssembler, MetadataHash, MetadataMessage, MetadataProgress};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Peers assembling a copy at once.
pub(crate) const MAX_SOURCES: usize = 4;
/// `ut_metadata` requests outstanding to one peer (libtorrent and others
/// reject peers that ask for too much at once).
pub(crate) const MAX_IN_FLIGHT: usize = 2;
/// Rejects one peer may send before it is no longer asked.
const MAX_REJECTS: u32 = 4;
/// A request unanswered this long is asked again (of the same peer).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

/// One peer's copy.
#[derive(Debug)]
struct Source {
    size: u64,
    asm: Option<MetadataAssembler>,
    in_flight: usize,
    rejects: u32,
    /// Gave up on it (too many rejects, bad data).
    done: bool,
}

/// The fetch. See the module docs.
#[derive(Debug)]
pub(crate) struct MetadataFetch {
    hash: MetadataHash,
    max_size: u64,
    /// Peers that offer the dictionary, in the order they said so.
    sources: BTreeMap<PeerKey, Source>,
    /// The dictionary is here: nobody is asked any more.
    done: bool,
}

impl MetadataFetch {
    pub(crate) fn new(hash: MetadataHash) -> Self {
        MetadataFetch {
            hash,
            max_size: DEFAULT_MAX_METADATA_SIZE,
            sources: BTreeMap::new(),
            done: false,
        }
    }
}

impl TorrentCore {
    /// Turns this core (made with an empty picker) into a magnet link's:
    /// state [`TorrentState::FetchingMetadata`] until
    /// [`TorrentCore::set_metadata`].
    pub(crate) fn start_metadata_fetch(&mut self, hash: MetadataHash) {
        self.meta = Some(MetadataFetch::new(hash));
        self.status.state = TorrentState::FetchingMetadata;
        self.completed = false;
        self.was_complete_at_start = false;
    }

    /// Whether the info dictionary is still being fetched (the piece count
    /// is unknown).
    pub(crate) fn fetching_metadata(&self) -> bool {
        self.meta.is_some()
    }

    /// The dictionary arrived (the task parses it, fetches layers, checks):
    /// stop asking for it; the state stays `FetchingMetadata` until
    /// [`TorrentCore::set_metadata`].
    pub(crate) fn metadata_received(&mut self) {
        if let Some(m) = self.meta.as_mut() {
            m.sources.clear();
            m.done = true;
        }
    }

    /// A peer's extension handshake named the dictionary's size.
    pub(super) fn on_metadata_offer(&mut self, key: PeerKey, size: Option<u64>) {
        let Some(m) = self.meta.as_mut() else {
            return;
        };
        if m.done {
            return;
        }
        if let Some(size) = size {
            m.sources.entry(key).or_insert(Source {
                size,
                asm: None,
                in_flight: 0,
                rejects: 0,
                done: false,
            });
        }
    }

    /// A `ut_metadata` answer from `key`.
    pub(super) fn on_metadata_message(&mut self, now: Instant, key: PeerKey, msg: MetadataMessage) {
        let Some(m) = self.meta.as_mut() else {
            return;
        };
        let Some(src) = m.sources.get_mut(&key) else {
            return;
        };
        let Some(asm) = src.asm.as_mut() else {
            return;
        };
        match msg {
            MetadataMessage::Data { piece, data, .. } => {
                src.in_flight = src.in_flight.saturating_sub(1);
                match asm.on_data(piece, data) {
                    Ok(MetadataProgress::Complete(info)) => {
                        self.actions.push_back(Action::MetadataReady(info));
                        // Nobody needs to send more: stop asking.
                        m.sources.clear();
                        return;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::info!(key, error = %e, "bad metadata from a peer; closing it");
                        src.done = true;
                        src.asm = None;
                        self.close_peer(key);
                    }
                }
            }
            MetadataMessage::Reject { piece } => {
                asm.on_reject(piece);
                src.in_flight = src.in_flight.saturating_sub(1);
                src.rejects += 1;
                if src.rejects > MAX_REJECTS {
                    src.done = true;
                    src.asm = None;
                }
            }
            MetadataMessage::Request { .. } => {}
        }
        self.request_metadata(now);
    }

    /// The dictionary was refused after all (it did not parse): start over
    /// with other peers than the one it came from.
    pub(crate) fn metadata_unusable(&mut self) {
        if let Some(m) = self.meta.as_mut() {
            m.sources.clear();
        }
    }

    /// Tops up the requests of the peers assembling a copy, starting new
    /// copies up to [`MAX_SOURCES`].
    pub(super) fn request_metadata(&mut self, now: Instant) {
        let Some(m) = self.meta.as_mut().filter(|m| !m.done) else {
            return;
        };
        let mut active = m.sources.values().filter(|s| s.asm.is_some()).count();
        let mut out: Vec<(PeerKey, u32)> = Vec::new();
        for (&key, src) in m.sources.iter_mut() {
            if src.done {
                continue;
            }
            let connected = self
                .peers
                .get(&key)
                .is_some_and(|p| p.peer_id.is_some() && !p.closing);
            if !connected {
                continue;
            }
            if src.asm.is_none() {
                if active >= MAX_SOURCES {
                    continue;
                }
                match MetadataAssembler::new(m.hash, src.size, m.max_size) {
                    Ok(mut a) => {
                        a.set_request_timeout(REQUEST_TIMEOUT);
                        src.asm = Some(a);
                        active += 1;
                    }
                    Err(e) => {
                        tracing::debug!(key, error = %e, "metadata size refused");
                        src.done = true;
                        continue;
                    }
                }
            }
            let Some(asm) = src.asm.as_mut() else {
                continue;
            };
            while src.in_flight < MAX_IN_FLIGHT {
                let Some(piece) = asm.next_request(now) else {
                    break;
                };
                src.in_flight += 1;
                out.push((key, piece));
            }
        }
        for (key, piece) in out {
            self.send(key, PeerCmd::RequestMetadata(piece));
        }
    }

    /// A connection closed: its copy is gone.
    pub(super) fn forget_metadata_source(&mut self, key: PeerKey) {
        if let Some(m) = self.meta.as_mut() {
            m.sources.remove(&key);
        }
    }

    /// The metadata is known and the data checked: the torrent gets its
    /// pieces (`picker`, with what is verified already) and every
    /// connection learns the piece count and what we have.
    pub(crate) fn set_metadata(&mut self, now: Instant, picker: PiecePicker, private: bool) {
        self.meta = None;
        let n = picker.num_pieces();
        self.picker = picker;
        // Readers that opened while the metadata was fetched have raised
        // priorities in the picker: their pieces get deadlines now.
        self.update_deadlines(now);
        self.have = Bitfield::new(n);
        let mut s = std::mem::take(&mut self.status);
        s.pieces = n;
        s.pieces_have = 0;
        s.wanted_bytes = 0;
        s.verified_wanted_bytes = 0;
        for p in 0..n {
            if self.picker.has(p) {
                let _ = self.have.set(p);
                s.pieces_have += 1;
            }
            if self.picker.priority(p) > 0 {
                let len = u64::from(self.picker.piece_len(p));
                s.wanted_bytes += len;
                if self.picker.has(p) {
                    s.verified_wanted_bytes += len;
                }
            }
        }
        let complete = self.picker.is_complete();
        self.completed = complete;
        self.was_complete_at_start = complete;
        if s.state == TorrentState::FetchingMetadata {
            s.state = if complete {
                TorrentState::Seeding
            } else {
                TorrentState::Downloading
            };
        }
        self.status = s;
        if private {
            // BEP 27: a private torrent exchanges no peers.
            self.pex.disable();
        }
        let keys: Vec<PeerKey> = self.peers.keys().copied().collect();
        for k in keys {
            if let Some(p) = self.peers.get_mut(&k) {
                p.has = Bitfield::new(n);
                p.seed = false;
                p.interesting = 0;
            }
            self.send(k, PeerCmd::SetPieces(self.have.clone()));
        }
        self.next_tick = now;
    }
}
