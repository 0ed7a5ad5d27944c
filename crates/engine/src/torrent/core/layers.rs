//! The core's fetch of a v2 torrent's missing piece layers (BEP 52 `hash
//! request` / `hashes` / `hash reject`) over the torrent's own connections
//! (the peers that gave a magnet link's metadata, or a .torrent's first
//! peers), with [`LayerAssembler`] checking every answer against the
//! files' `pieces root`s.
//!
//! Each connected peer gets up to [`MAX_IN_FLIGHT`] requests; a peer that
//! sends hashes that do not prove out, rejects too often or leaves
//! requests unanswered for [`REQUEST_TIMEOUT`] is asked no more (and, for
//! bad hashes, closed), and its requests go back to the queue for the
//! others.
use super::{Action, PeerCmd, TorrentCore};
use crate::picker::PeerKey;
use crate::piece_layers::LayerAssembler;
use shoal_wire::HashRequest;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Hash requests outstanding to one peer.
pub(crate) const MAX_IN_FLIGHT: usize = 4;
/// Rejects one peer may send before it is asked no more.
const MAX_REJECTS: u32 = 8;
/// A request unanswered this long goes to another peer.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// The fetch. See the module docs.
pub(crate) struct LayerFetch {
    asm: LayerAssembler,
    in_flight: BTreeMap<PeerKey, Vec<(HashRequest, Instant)>>,
    rejects: BTreeMap<PeerKey, u32>,
    given_up: BTreeSet<PeerKey>,
}

impl std::fmt::Debug for LayerFetch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerFetch")
            .field("queued", &self.asm.queued())
            .field("in_flight", &self.asm.in_flight())
            .finish_non_exhaustive()
    }
}

fn same(a: &HashRequest, b: &HashRequest) -> bool {
    a.pieces_root == b.pieces_root
        && a.base_layer == b.base_layer
        && a.index == b.index
        && a.length == b.length
}

impl TorrentCore {
    /// Starts fetching the layers `asm` plans (the torrent stays in
    /// `FetchingMetadata`); [`Action::LayersReady`] when done.
    pub(crate) fn start_layer_fetch(&mut self, now: Instant, asm: LayerAssembler) {
        self.layers = Some(LayerFetch {
            asm,
            in_flight: BTreeMap::new(),
            rejects: BTreeMap::new(),
            given_up: BTreeSet::new(),
        });
        self.request_layers(now);
    }

    /// Tops up every connected peer's hash requests; gives requests that
    /// timed out to others.
    pub(super) fn request_layers(&mut self, now: Instant) {
        let Some(l) = self.layers.as_mut() else {
            return;
        };
        // Timed-out requests go back to the queue; their peer is skipped.
        let mut late: Vec<(PeerKey, HashRequest)> = Vec::new();
        for (&k, reqs) in l.in_flight.iter_mut() {
            reqs.retain(|(r, at)| {
                let keep = now < *at + REQUEST_TIMEOUT;
                if !keep {
                    late.push((k, *r));
                }
                keep
            });
        }
        for (k, r) in late {
            let _ = l.asm.on_reject(&r);
            l.given_up.insert(k);
        }
        let keys: Vec<PeerKey> = self
            .peers
            .iter()
            .filter(|(k, p)| p.peer_id.is_some() && !p.closing && !l.given_up.contains(k))
            .map(|(&k, _)| k)
            .collect();
        let mut out: Vec<(PeerKey, HashRequest)> = Vec::new();
        for k in keys {
            let reqs = l.in_flight.entry(k).or_default();
            while reqs.len() < MAX_IN_FLIGHT {
                let Some(r) = l.asm.next_request() else {
                    break;
                };
                reqs.push((r, now));
                out.push((k, r));
            }
        }
        for (k, r) in out {
            self.send(k, PeerCmd::RequestHashes(r));
        }
    }

    /// A `hashes` answer from `key`.
    pub(super) fn on_hashes(&mut self, now: Instant, key: PeerKey, r: HashRequest, hashes: &[u8]) {
        let Some(l) = self.layers.as_mut() else {
            return;
        };
        let asked = l
            .in_flight
            .get_mut(&key)
            .and_then(|v| v.iter().position(|(q, _)| same(q, &r)).map(|i| v.remove(i)))
            .is_some();
        if !asked {
            return;
        }
        if let Err(e) = l.asm.on_hashes(&r, hashes) {
            tracing::info!(key, error = %e, "bad piece-layer hashes; closing the peer");
            l.given_up.insert(key);
            self.requeue_layers_of(key);
            self.close_peer(key);
            return;
        }
        self.layers_progress(now);
    }

    /// A `hash reject` from `key`.
    pub(super) fn on_hash_reject(&mut self, now: Instant, key: PeerKey, r: HashRequest) {
        let Some(l) = self.layers.as_mut() else {
            return;
        };
        let asked = l
            .in_flight
            .get_mut(&key)
            .and_then(|v| v.iter().position(|(q, _)| same(q, &r)).map(|i| v.remove(i)))
            .is_some();
        if !asked {
            return;
        }
        let _ = l.asm.on_reject(&r);
        let n = l.rejects.entry(key).or_default();
        *n += 1;
        if *n > MAX_REJECTS {
            l.given_up.insert(key);
        }
        self.request_layers(now);
    }

    /// Puts back what `key` was asked (it left, or failed).
    pub(super) fn requeue_layers_of(&mut self, key: PeerKey) {
        let Some(l) = self.layers.as_mut() else {
            return;
        };
        for (r, _) in l.in_flight.remove(&key).unwrap_or_default() {
            let _ = l.asm.on_reject(&r);
        }
    }

    fn layers_progress(&mut self, now: Instant) {
        let complete = self.layers.as_ref().is_some_and(|l| l.asm.is_complete());
        if complete {
            if let Some(l) = self.layers.take() {
                self.actions
                    .push_back(Action::LayersReady(l.asm.into_layers()));
            }
        } else {
            self.request_layers(now);
        }
    }
}
